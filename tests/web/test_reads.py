"""The read side behind the pages: effect lines, drift episodes, what changed, merged profiles,
and the chart helpers that keep sparse series honest."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from monitor.statistics.profiles import NumericProfile, profile_numeric
from monitor.web import charts
from monitor.web.pages.models import bucket_label
from monitor.web.reads import profiles, series
from monitor.web.reads.common import get_model, time_range
from tests.web.conftest import Site


def test_histogram_quantiles_match_numpy_on_percentile_bins() -> None:
    rng = np.random.default_rng(3)
    reference = rng.lognormal(10, 0.6, 50_000)  # skewed, like an income
    edges = np.quantile(reference, np.linspace(0, 1, 101)).tolist()
    current = rng.lognormal(10.2, 0.7, 5_000)
    prof = profile_numeric(current, edges).to_dict()
    got = profiles.histogram_quantiles(prof)
    want = np.quantile(current, profiles.QUANTILES)
    # exact to within the width of the bin each quantile falls in (about a percentile)
    for q, g, w in zip(profiles.QUANTILES, got, want, strict=True):
        k = int(np.searchsorted(edges, w))
        width = edges[min(k, 100)] - edges[max(k - 1, 0)]
        assert abs(g - w) <= width, (q, g, w)
    empty = profile_numeric(np.array([]), edges).to_dict()
    assert profiles.histogram_quantiles(empty) == [None] * 5
    assert profiles.histogram_quantiles({"edges": [1.0], "hist": [3]}) == [None] * 5


def test_what_changed_numeric_in_baseline_sd_and_categorical_in_points() -> None:
    rng = np.random.default_rng(5)
    ref_values = rng.normal(0, 2, 20_000)
    edges = np.quantile(ref_values, np.linspace(0, 1, 101)).tolist()
    ref = {"profile": profile_numeric(ref_values, edges).to_dict()}
    cur = {"profile": profile_numeric(rng.normal(1, 2, 4_000), edges).to_dict()}
    out = profiles.what_changed(ref, cur)
    assert out is not None and out["kind"] == "numeric"
    mean = next(r for r in out["rows"] if r["stat"] == "mean")
    assert mean["change"] == pytest.approx(1.0, abs=0.1)
    assert mean["change_sd"] == pytest.approx(0.5, abs=0.05)  # baseline sd is 2
    median = next(r for r in out["rows"] if r["stat"] == "median")
    assert median["current"] == pytest.approx(1.0, abs=0.1)
    cat = profiles.what_changed(
        {"profile": {"type": "categorical", "count": 100, "counts": {"a": 60, "b": 40}}},
        {"profile": {"type": "categorical", "count": 90, "nulls": 10,
                     "counts": {"a": 30, "b": 40, "new": 20}}},
    )  # fmt: skip
    assert cat is not None
    movers = {m["category"]: m for m in cat["movers"]}
    assert movers["a"]["points"] == pytest.approx(100 * (30 / 90 - 0.6))
    assert movers["new"]["new"] and not movers["a"]["new"]
    assert cat["movers"][0]["category"] == "a"  # the largest move first
    assert cat["missing"] == {"baseline": 0.0, "current": 0.1}
    assert profiles.what_changed(None, cur) is None


def test_merged_profile_equals_the_statistics_merge(site: Site, engine: sa.Engine) -> None:
    feature = site.data.drifted[0]
    with engine.connect() as conn:
        model = get_model(conn, site.data.model)
        tr = time_range(conn, model, "1d")
        merged = profiles.merged_profile(conn, model, feature, tr)
        rows = conn.execute(
            sa.text(
                "SELECT profile FROM window_profiles WHERE model_id = :m AND column_name = :c "
                "AND window_start >= :s AND window_start < :e AND segment = ''"
            ),
            {"m": model.id, "c": feature, "s": tr.start, "e": tr.end},
        ).scalars()
        parts = [NumericProfile.from_dict(p) for p in rows]
    want = parts[0]
    for part in parts[1:]:
        want = want.merge(part)
    assert merged is not None and merged["windows"] == len(parts) == 24
    got = merged["profile"]
    assert got["count"] == want.count and got["hist"] == list(want.hist)
    assert got["mean"] == pytest.approx(want.mean, rel=1e-12)
    assert got["m2"] == pytest.approx(want.m2, rel=1e-9)
    assert (got["min"], got["max"]) == (want.min, want.max)


def test_drift_episode_start_end_and_ongoing(site: Site, engine: sa.Engine) -> None:
    d = site.data
    feature = d.drifted[0]
    with engine.connect() as conn:
        model = get_model(conn, d.model)
        inside = series.drift_episode(conn, model, feature, d.drift_start + timedelta(hours=30))
        after = series.drift_episode(conn, model, feature, d.drift_end + timedelta(hours=2))
        calm = series.drift_episode(conn, model, feature, d.start + timedelta(hours=2))
        conn.execute(
            sa.text(
                "UPDATE results SET drifted = true WHERE model_id = :m AND family = 'drift' "
                "AND column_name = :c AND window_start >= :w"
            ),
            {"m": model.id, "c": feature, "w": d.end - timedelta(hours=3)},
        )
        ongoing = series.drift_episode(conn, model, feature, d.end - timedelta(hours=1))
        conn.rollback()
    assert inside is not None and inside["contains_window"] and not inside["ongoing"]
    assert inside["start"] == d.drift_start.isoformat()
    assert inside["end"] == d.drift_end.isoformat()
    assert inside["windows"] == 4 * 24
    assert after is not None and not after["contains_window"]  # the last episode before it
    assert after["start"] == d.drift_start.isoformat()
    assert calm is None
    assert ongoing is not None and ongoing["ongoing"] and ongoing["windows"] == 3
    assert ongoing["start"] == (d.end - timedelta(hours=3)).isoformat()


def test_effect_lines_pick_the_bucket_window_with_the_largest_lower_bound(
    site: Site, engine: sa.Engine
) -> None:
    feature = site.data.drifted[0]
    with engine.connect() as conn:
        model = get_model(conn, site.data.model)
        hourly = time_range(conn, model, "14d")
        wide = time_range(conn, model, "90d")
        one = series.effect_lines(conn, model, hourly, [feature])[feature]
        six = series.effect_lines(conn, model, wide, [feature])[feature]
    assert wide.bucket_seconds == 6 * 3600
    assert len(one["t"]) == 14 * 24 and len(six["t"]) == 14 * 4
    by_window = dict(zip(one["window"], one["ci_low"], strict=True))
    for t, w, lo in zip(six["t"], six["window"], six["ci_low"], strict=True):
        assert t <= w  # the point opens its own window, inside the bucket
        bucket = [v for k, v in by_window.items() if t <= k < _plus(t, 6)]
        assert lo == max(bucket)
    assert sum(six["drifted"]) == 4 * 4


def _plus(iso: str, hours: int) -> str:
    from datetime import datetime

    return (datetime.fromisoformat(iso) + timedelta(hours=hours)).isoformat()


def test_gapped_breaks_lines_and_sparse_series_are_markers() -> None:
    t = ["2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "2026-01-03T00:00:00+00:00"]
    out_t, out_y = charts.gapped(t, 3600, [1.0, 2.0, 3.0])
    assert out_t == [t[0], t[1], None, t[2]] and out_y == [1.0, 2.0, None, 3.0]
    assert charts.line_mode([1.0, None, 2.0, None]) == "markers"  # two isolated points
    assert charts.line_mode([1.0, 2.0, 3.0]) == "lines+markers"
    assert charts.line_mode([float(k) for k in range(100)]) == "lines"
    fig = charts.lines("latency", {"cold": {"t": [t[0], t[2]], "value": [5.0, 6.0],
                                            "drifted": [False, False]}}, step=3600)  # fmt: skip
    assert fig["data"][0]["mode"] == "markers" and None in fig["data"][0]["x"]


def test_bucket_labels() -> None:
    def view(seconds: int) -> dict:
        return {"range": {"bucket_seconds": seconds}}

    assert bucket_label(view(3600), 3600) == "window (1 h)"
    assert bucket_label(view(6 * 3600), 3600) == "6 h bucket"
    assert bucket_label(view(2 * 86400), 3600) == "2 d bucket"
    assert bucket_label(view(900), 900) == "window (15 min)"


def test_p_text_clamps() -> None:
    assert charts.p_text(0.0) == "< 1e-16" and charts.p_text(1e-300) == "< 1e-16"
    assert charts.p_text(0.0123) == "0.012" and charts.p_text(None) == "none"
