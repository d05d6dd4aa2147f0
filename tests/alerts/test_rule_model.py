"""One rule model for YAML, the API and the CLI; rules file validation; per-rule isolation."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from monitor.alerts.delivery import deliver_due
from monitor.alerts.evaluate import evaluate_alerts
from monitor.errors import InputError
from tests.alerts.conftest import (
    HOUR,
    T0,
    Site,
    add_channel,
    add_rule,
    add_webhook,
    make_model,
    put_results,
)

ROOT = Path(__file__).resolve().parents[2]

# (rule, fragment of the error) - each refused the same way by a rules file and by the API
BAD_RULES: list[tuple[dict[str, Any], str]] = [
    ({"metric": "no.such.metric"}, "unknown family 'no'"),
    ({"metric": "volume", "condition": ">"}, "expected 'drifted' or '<op> <number>'"),
    ({"metric": "volume", "condition": "> 1", "for": 500, "of": 1000}, "less than or equal to 100"),
    ({"metric": "quality.nul_share", "condition": "> 0.1"}, "did you mean null_share"),
    ({"metric": "volume", "condition": "> nan"}, "finite number"),
    ({"metric": "volume", "condition": "< 1", "channels": {"a": 1}}, "channels: Input should be"),
    ({"metric": "volume", "condition": "< 1", "for": "two"}, "for: Input should be a valid int"),
    ({"metric": "volume", "condition": "< 1", "labels": ["a", "b"]}, "labels: Input should be"),
    ({"metric": "volume", "condition": "< 1", "channels": ["hook-1-typo"]}, "hook-1-typo"),
    ({"metric": "volume", "condition": "< 1", "for": 3, "of": 2}, "for (3) cannot exceed of (2)"),
    ({"metric": "volume", "condition": "< 1", "group_wait": "soon"}, "duration 'soon'"),
    ({"metric": "volume", "condition": "< 1", "colour": "red"}, "colour: unknown field"),
    ({"metric": "drift.wassersteinn"}, "did you mean wasserstein"),
    ({"metric": "volume", "operator": ">"}, "needs a threshold"),
]


def _stored(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    skip = {"id", "model_id", "source", "created_at", "updated_at", "evaluated_through"}
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM alert_rules ORDER BY name")).all()
    return {r.name: {k: v for k, v in r._mapping.items() if k not in skip} for r in rows}


def _apply(engine: sa.Engine, text: str, prune: bool = False) -> dict[str, int]:
    from monitor.alerts.rules import apply_rules_yaml
    from monitor.storage.engine import session_scope

    with session_scope(engine) as session:
        return apply_rules_yaml(session, text, prune=prune)


def _yaml(model: str, *rules: dict[str, Any]) -> str:
    return yaml.safe_dump({"model": model, "rules": list(rules)}, sort_keys=False)


@pytest.mark.parametrize(("rule", "message"), BAD_RULES)
def test_a_bad_rule_is_refused_alike_by_a_rules_file_and_the_api(
    site: Site, alerts_env: sa.Engine, rule: dict[str, Any], message: str
) -> None:
    make_model(alerts_env)
    add_channel(alerts_env, "hook-1")
    with pytest.raises(InputError, match="nothing applied") as refused:
        _apply(alerts_env, _yaml("credit", {"name": "bad", **rule}))
    assert message in str(refused.value)
    answer = httpx.post(
        f"{site.base}/api/v1/rules",
        json={"model": "credit", "name": "bad", **rule},
        headers=site.headers,
    )
    assert answer.status_code in (400, 422), answer.text
    assert message in answer.text
    assert _stored(alerts_env) == {}


def test_api_and_file_store_the_same_rule_with_the_same_defaults(
    site: Site, alerts_env: sa.Engine
) -> None:
    """A rule given with the same fields is stored identically whichever way it came, and the
    API can express everything a file can (``drifted``, durations, channels, labels)."""
    make_model(alerts_env, "a")
    make_model(alerts_env, "b")
    add_channel(alerts_env, "ops")
    rules = [
        {"name": "minimal", "metric": "feature_drift"},
        {"name": "drifted", "metric": "prediction_drift", "condition": "drifted", "for": 2},
        {
            "name": "full",
            "metric": "quality.null_share",
            "columns": ["income", "age*"],
            "condition": ">= 0.05",
            "for": 2,
            "of": 3,
            "resolve_after": 2,
            "severity": "critical",
            "labels": {"team": "risk", "tier": 1},
            "annotations": {"runbook": "https://wiki.example.com/x"},
            "channels": ["ops"],
            "group_wait": "1m",
            "group_interval": "10m",
            "repeat_interval": "2h",
        },
    ]
    _apply(alerts_env, _yaml("a", *rules))
    for rule in rules:
        answer = httpx.post(
            f"{site.base}/api/v1/rules", json={"model": "b", **rule}, headers=site.headers
        )
        assert answer.status_code == 201, answer.text
    with alerts_env.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.name AS model, r.* FROM alert_rules r JOIN models m ON m.id = r.model_id"
            )
        ).all()
    skip = {"id", "model_id", "model", "source", "created_at", "updated_at"}
    by_model: dict[str, dict[str, dict[str, Any]]] = {"a": {}, "b": {}}
    for r in rows:
        by_model[r.model][r.name] = {k: v for k, v in r._mapping.items() if k not in skip}
    assert by_model["a"] == by_model["b"]
    minimal = by_model["a"]["minimal"]
    assert minimal["channels"] == ["@default"] and minimal["operator"] == "drifted"
    assert (minimal["for_windows"], minimal["of_windows"], minimal["resolve_after"]) == (1, 1, 1)
    assert by_model["a"]["drifted"]["of_windows"] == 2  # `of` defaults to `for`
    full = by_model["a"]["full"]
    assert full["column_selector"] == "income,age*" and full["labels"]["tier"] == "1"
    assert (full["group_wait_seconds"], full["repeat_interval_seconds"]) == (60, 7200)
    listed = httpx.get(f"{site.base}/api/v1/rules?model=b", headers=site.headers).json()
    conditions = {r["name"]: r["condition"] for r in listed["items"]}
    assert conditions == {"minimal": "drifted", "drifted": "drifted", "full": ">= 0.05"}


def test_apply_checks_every_document_and_applies_nothing_on_any_error(alerts_env) -> None:
    make_model(alerts_env, "credit")
    make_model(alerts_env, "fraud")
    good = {"name": "ok", "metric": "volume", "condition": "< 1"}
    text = "\n---\n".join(
        [
            _yaml("credit", good),
            _yaml("fraud", good, "a rule given as a string"),
            _yaml("credit", {**good, "condition": "< 2"}),  # same name again for credit
        ]
    )
    with pytest.raises(InputError) as refused:
        _apply(alerts_env, text)
    message = str(refused.value)
    assert "2 problem(s), nothing applied" in message
    assert "document 2 (model fraud), rule 2: expected a mapping" in message
    assert "rule 'ok' is defined twice for model 'credit'" in message
    assert _stored(alerts_env) == {}


def test_prune_over_several_documents_of_one_model_keeps_every_listed_rule(alerts_env) -> None:
    make_model(alerts_env, "credit")
    rule = {"metric": "volume", "condition": "< 1"}
    _apply(alerts_env, _yaml("credit", {"name": "old", **rule}))
    text = _yaml("credit", {"name": "first", **rule}) + "---\n"
    text += _yaml("credit", {"name": "second", **rule})
    assert _apply(alerts_env, text, prune=True) == {"applied": 2, "deleted": 1}
    assert set(_stored(alerts_env)) == {"first", "second"}


def test_cli_apply_prints_every_problem_without_a_traceback(
    alerts_env, database_url, tmp_path
) -> None:
    make_model(alerts_env, "credit")
    path = tmp_path / "rules.yaml"
    path.write_text(
        "model: credit\nrules:\n"
        "  - {name: a, metric: volume, condition: '< 1', for: two}\n"
        "  - {name: b, metric: volume, condition: '< 1', labels: [a, b]}\n"
        "  - {name: c, metric: quality.nul_share, condition: '> 0.1'}\n"
        "  - {name: d, metric: volume, condition: '< 1', channels: [hook-1-typo]}\n"
        "  - just a string\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "alerts", "apply", str(path)],
        cwd=ROOT,
        env={**os.environ, "MONITOR_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    for fragment in ("5 problem(s)", "'a': for:", "'b': labels:", "null_share", "hook-1-typo"):
        assert fragment in out.stderr
    assert _stored(alerts_env) == {}


def _always_true(name: str) -> dict[str, Any]:
    return {"name": name, "metric": "volume", "condition": ">= 0", "group_wait": 0, "channels": "*"}


def test_a_failing_rule_is_marked_errored_and_the_models_other_rules_go_on(
    site: Site, alerts_env: sa.Engine, receiver_factory, capsys
) -> None:
    """Rules stored before validation existed (or broken otherwise) fail alone: the good rule
    fires and notifies; the bad ones are errored on the page, in the API and in /metrics."""
    engine = alerts_env
    model = make_model(engine)
    add_webhook(engine, "ops", receiver := receiver_factory())
    add_rule(engine, model, _always_true("always"))
    with engine.begin() as conn:
        for name, metric, operator, threshold in (
            ("bad-metric", "no.such.metric", "drifted", None),
            ("no-threshold", "operational.volume", ">", None),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO alert_rules (model_id, name, metric, operator, threshold, "
                    "channels) VALUES (:m, :n, :metric, :op, :t, '{*}')"
                ),
                {"m": model, "n": name, "metric": metric, "op": operator, "t": threshold},
            )
    put_results(engine, model, T0, [{"family": "operational", "metric": "volume", "value": 5.0}])
    summary = evaluate_alerts(engine, now=T0 + 2 * HOUR)
    assert summary.fired == 1 and summary.rule_errors == 2 and summary.notifications == 1
    assert deliver_due(engine, now=T0 + 2 * HOUR).delivered == 1
    assert receiver.requests[0]["json"]["data"]["rule"]["name"] == "always"
    evaluate_alerts(engine, now=T0 + 3 * HOUR)  # errors are counted per evaluation
    rules = {
        r["name"]: r
        for r in httpx.get(f"{site.base}/api/v1/rules", headers=site.headers).json()["items"]
    }
    assert rules["always"]["error"] is None
    assert "unknown family 'no'" in rules["bad-metric"]["error"]
    assert rules["bad-metric"]["errors_total"] == 2
    assert "condition '>'" in rules["no-threshold"]["error"]
    page = httpx.get(f"{site.base}/alerts", headers=site.headers)
    assert page.status_code == 200
    assert "Rules that cannot be evaluated" in page.text and "bad-metric" in page.text
    metrics = httpx.get(f"{site.base}/metrics", headers=site.headers).text
    assert 'monitor_rule_evaluation_errors_total{model="credit",rule="bad-metric"} 2.0' in metrics
    assert 'monitor_rule_errored{model="credit",rule="no-threshold"} 1.0' in metrics
    from monitor.cli import main

    assert main(["alerts", "rules", "credit"]) == 0
    listed = capsys.readouterr().out
    assert "bad-metric: no.such.metric" in listed and "ERRORED: stored rule" in listed
    # fixing the rule clears its error at the next evaluation
    add_rule(engine, model, {"name": "bad-metric", "metric": "volume", "condition": "< 0"})
    evaluate_alerts(engine, now=T0 + 4 * HOUR)
    with engine.connect() as conn:
        error = conn.execute(
            sa.text("SELECT error FROM alert_rules WHERE name = 'bad-metric'")
        ).scalar_one()
    assert error is None


def test_default_rules_notify_only_the_channels_marked_default(
    alerts_env, receiver_factory, monkeypatch
) -> None:
    """A model first seen from the SDK gets the default rules at the next tick; they notify
    the default channels, not every channel; MONITOR_DEFAULT_RULES=off gives it none."""
    from types import SimpleNamespace

    from monitor.alerts.steps import evaluate_step
    from monitor.settings import get_settings

    engine = alerts_env
    ops, team = receiver_factory(), receiver_factory()
    add_webhook(engine, "ops", ops, is_default=True)
    add_webhook(engine, "team-hook", team)
    model = make_model(engine, "fresh")
    rows = [{"family": "operational", "metric": "volume", "value": 0.0}]
    put_results(engine, model, T0, rows)
    put_results(engine, model, T0 + HOUR, rows)
    ctx = SimpleNamespace(engine=engine)
    evaluate_step(ctx)  # defaults created and evaluated: volume-zero fires (2 of 2 windows)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alert_rules")).scalar_one() == 10
    evaluate_alerts(engine, now=datetime.now(UTC) + timedelta(minutes=1))  # group_wait over
    assert deliver_due(engine, now=datetime.now(UTC) + timedelta(minutes=1)).delivered == 1
    assert [r["json"]["data"]["rule"]["name"] for r in ops.requests] == ["volume-zero"]
    assert team.requests == []

    monkeypatch.setenv("MONITOR_DEFAULT_RULES", "off")
    get_settings.cache_clear()
    make_model(engine, "muted")
    evaluate_step(ctx)
    with engine.connect() as conn:
        names = conn.execute(
            sa.text("SELECT DISTINCT m.name FROM alert_rules r JOIN models m ON m.id = r.model_id")
        ).scalars()
        assert list(names) == ["fresh"]
