"""Every Evidently method: our value and verdict equal Evidently 0.7's on the same data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from monitor.statistics.columns import ColumnPair
from monitor.statistics.methods_numeric import mmd_test
from monitor.statistics.registry import available_methods, get_method

REL = 1e-9

rng = np.random.default_rng(42)
NUM_REF = rng.normal(0, 1, 600)
NUM_CUR = rng.normal(0.15, 1.1, 450)
NUM_REF_NAN = np.where(rng.random(600) < 0.1, np.nan, NUM_REF)
DISC_REF = rng.poisson(4, 700).astype(float)
DISC_CUR = rng.poisson(4.4, 500).astype(float)
FEW_REF = rng.choice([1.0, 2.0, 3.0, 4.0], 300, p=[0.4, 0.3, 0.2, 0.1])
FEW_CUR = rng.choice([1.0, 2.0, 3.0, 5.0], 250, p=[0.35, 0.3, 0.25, 0.1])
CAT_REF = rng.choice(list("abcde"), 800, p=[0.3, 0.25, 0.2, 0.15, 0.1]).astype(object)
CAT_CUR = rng.choice(list("abcdef"), 700, p=[0.25, 0.25, 0.2, 0.15, 0.1, 0.05]).astype(object)
CAT_REF_NULL = CAT_REF.copy()
CAT_REF_NULL[::17] = None
BIN_REF = rng.choice(["yes", "no"], 400, p=[0.3, 0.7]).astype(object)
BIN_CUR = rng.choice(["yes", "no"], 400, p=[0.4, 0.6]).astype(object)

NUMERIC_DATA = {
    "continuous": (NUM_REF, NUM_CUR),
    "with_nan": (NUM_REF_NAN, NUM_CUR),
    "discrete": (DISC_REF, DISC_CUR),
    "same": (NUM_REF, NUM_REF[::-1].copy()),
}
NUMERIC_METHODS = [
    "ks",
    "wasserstein",
    "ed",
    "t_test",
    "mannw",
    "anderson",
    "cramer_von_mises",
    "es",
    "psi",
    "kl_div",
    "jensenshannon",
    "hellinger",
]
CATEGORICAL_DATA = {
    "five_levels_unseen": (CAT_REF, CAT_CUR),
    "with_nulls": (CAT_REF_NULL, CAT_CUR),
    "binary": (BIN_REF, BIN_CUR),
}
CATEGORICAL_METHODS = ["chisquare", "z", "psi", "kl_div", "jensenshannon", "hellinger", "TVD"]


def evidently_score(evidently, name, kind, ref, cur, threshold=None):  # type: ignore[no-untyped-def]
    test, ctype = evidently.stattest(name, kind)
    # Evidently's data drift drops NaN/inf before calling a stattest; do the same here.
    r = pd.Series(ref).replace([np.inf, -np.inf], np.nan).dropna()
    c = pd.Series(cur).replace([np.inf, -np.inf], np.nan).dropna()
    if kind == "cat":
        r, c = r.astype(object), c.astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = test(r, c, ctype, threshold)
    return float(res.drift_score), bool(res.drifted), res.actual_threshold


def ours(name, kind, ref, cur, threshold=None):  # type: ignore[no-untyped-def]
    method = get_method(name, kind)
    out = method.func(ColumnPair(kind, ref, cur))
    t = method.default_threshold if threshold is None else threshold
    score = method.score(out)
    return score, method.decide(score, t), t


def assert_same(a: float, b: float) -> None:
    if np.isinf(a) or np.isinf(b):
        assert a == b
    else:
        assert a == pytest.approx(b, rel=REL, abs=1e-300)


@pytest.mark.parametrize("data", list(NUMERIC_DATA))
@pytest.mark.parametrize("name", NUMERIC_METHODS)
def test_numeric_parity(evidently, name: str, data: str) -> None:  # type: ignore[no-untyped-def]
    ref, cur = NUMERIC_DATA[data]
    ev = evidently_score(evidently, name, "num", ref, cur)
    us = ours(name, "num", ref, cur)
    assert_same(us[0], ev[0])
    assert us[1] == ev[1] and us[2] == ev[2]


@pytest.mark.parametrize("data", list(CATEGORICAL_DATA))
@pytest.mark.parametrize("name", CATEGORICAL_METHODS)
def test_categorical_parity(evidently, name: str, data: str) -> None:  # type: ignore[no-untyped-def]
    ref, cur = CATEGORICAL_DATA[data]
    if name == "TVD":  # Evidently's permutation loop is pure Python: keep it small
        ref, cur = ref[:250], cur[:200]
    ev = evidently_score(evidently, name, "cat", ref, cur)
    us = ours(name, "cat", ref, cur)
    assert_same(us[0], ev[0])
    assert us[1] == ev[1] and us[2] == ev[2]


@pytest.mark.parametrize("name", ["chisquare", "z", "jensenshannon", "psi"])
def test_few_valued_numeric_as_evidently_default(evidently, name: str) -> None:  # type: ignore[no-untyped-def]
    # Evidently's default selection runs chisquare/z/jensenshannon on few-valued numerics.
    ev = evidently_score(evidently, name, "num", FEW_REF, FEW_CUR)
    us = ours(name, "num", FEW_REF, FEW_CUR)
    assert_same(us[0], ev[0])
    assert us[1] == ev[1]


def test_fisher_and_g_test_equal_sizes(evidently) -> None:  # type: ignore[no-untyped-def]
    for name in ("fisher_exact", "g_test"):
        ev = evidently_score(evidently, name, "cat", BIN_REF, BIN_CUR)
        us = ours(name, "cat", BIN_REF, BIN_CUR)
        assert_same(us[0], ev[0])
        assert us[1] == ev[1]
    ev = evidently_score(evidently, "g_test", "cat", CAT_REF[:700], CAT_CUR)
    us = ours("g_test", "cat", CAT_REF[:700], CAT_CUR)
    assert_same(us[0], ev[0])


def test_thresholds_and_rules_follow_evidently(evidently) -> None:  # type: ignore[no-untyped-def]
    for name in NUMERIC_METHODS:
        for t in (0.01, 0.2, 0.5):
            ev = evidently_score(evidently, name, "num", NUM_REF, NUM_CUR, t)
            us = ours(name, "num", NUM_REF, NUM_CUR, t)
            assert us[1] == ev[1], (name, t)
    # boundary: a p-value exactly at the threshold (ks flags at <=, t_test only below)
    p = ours("ks", "num", NUM_REF, NUM_CUR)[0]
    assert ours("ks", "num", NUM_REF, NUM_CUR, p)[1] is True
    assert evidently_score(evidently, "ks", "num", NUM_REF, NUM_CUR, p)[1] is True
    p = ours("t_test", "num", NUM_REF, NUM_CUR)[0]
    assert ours("t_test", "num", NUM_REF, NUM_CUR, p)[1] is False
    assert evidently_score(evidently, "t_test", "num", NUM_REF, NUM_CUR, p)[1] is False


def test_empirical_mmd_parity(evidently) -> None:  # type: ignore[no-untyped-def]
    from evidently.legacy.calculations.stattests import mmd_stattest

    x, y = NUM_REF[:300], NUM_CUR[:250]
    np.random.seed(7)
    ev_p, ev_mmd = mmd_stattest.mmd_pval(x.reshape(-1, 1), y.reshape(-1, 1))
    np.random.seed(7)
    mmd, p = mmd_test(x, y, np.random.permutation)
    assert mmd == pytest.approx(ev_mmd, rel=REL)
    assert p == ev_p
    # through the registry (seeded generator): same statistic, a valid p-value
    out = get_method("empirical_mmd").func(ColumnPair("num", x, y))
    assert out.statistic == pytest.approx(ev_mmd, rel=REL) and 0.0 <= out.p_value <= 1.0


def test_every_evidently_method_is_registered(evidently) -> None:  # type: ignore[no-untyped-def]
    theirs = set(evidently.registry._registered_stat_tests)
    text_only = {"perc_text_content_drift", "abs_text_content_drift"}
    assert theirs - text_only <= set(available_methods())
    for name in theirs - text_only:
        ev_default = next(iter(evidently.registry._registered_stat_tests[name].values()))
        assert get_method(name).default_threshold == ev_default.default_threshold
