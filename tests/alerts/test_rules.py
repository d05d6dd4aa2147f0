"""Rules: YAML files, validation with clear errors, defaults for every model, secrets key."""

from __future__ import annotations

import stat

import pytest
import sqlalchemy as sa

from monitor.errors import InputError
from tests.alerts.conftest import make_model

RULES_YAML = """
model: credit
rules:
  - name: share-drifted
    metric: dataset_drift.share_drifted
    condition: "> 0.3"
    for: 2
    of: 3
    resolve_after: 2
    severity: critical
    labels: {team: risk}
    channels: [ops]
    group_wait: 1m
    repeat_interval: 2h
  - name: income-nulls
    metric: null_share
    columns: income,age*
    condition: ">= 0.05"
"""


def _channel(engine: sa.Engine, name: str, **kwargs) -> None:
    from monitor.alerts.channel_store import add_channel
    from monitor.storage.engine import session_scope

    with session_scope(engine) as session:
        add_channel(session, name, "webhook", "http://127.0.0.1:9/hook", **kwargs)


def _rules(engine: sa.Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM alert_rules ORDER BY name")).all()
    return {r.name: dict(r._mapping) for r in rows}


def test_apply_yaml_upserts_and_prunes(alerts_env) -> None:
    from monitor.alerts.rules import apply_rules_yaml
    from monitor.storage.engine import session_scope

    engine = alerts_env
    make_model(engine)
    _channel(engine, "ops")
    with session_scope(engine) as session:
        assert apply_rules_yaml(session, RULES_YAML) == {"applied": 2, "deleted": 0}
    rules = _rules(engine)
    share = rules["share-drifted"]
    assert (share["metric"], share["operator"], share["threshold"]) == (
        "dataset_drift.share_drifted",
        ">",
        0.3,
    )
    assert (share["for_windows"], share["of_windows"], share["resolve_after"]) == (2, 3, 2)
    assert share["labels"] == {"team": "risk"} and share["channels"] == ["ops"]
    assert (share["group_wait_seconds"], share["repeat_interval_seconds"]) == (60, 7200)
    assert share["column_selector"] == "" and share["source"] == "file"
    nulls = rules["income-nulls"]
    assert (nulls["metric"], nulls["column_selector"]) == ("quality.null_share", "income,age*")
    # applying again is idempotent; prune removes what the file no longer lists
    changed = RULES_YAML.replace('"> 0.3"', '"> 0.5"').split("  - name: income-nulls")[0]
    with session_scope(engine) as session:
        assert apply_rules_yaml(session, changed, prune=True) == {"applied": 1, "deleted": 1}
    rules = _rules(engine)
    assert list(rules) == ["share-drifted"] and rules["share-drifted"]["threshold"] == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: credit\nrules:\n  - name: x\n    metric: nope.thing\n", "unknown family"),
        ("model: credit\nrules:\n  - name: x\n    metric: drift\n", "family.metric"),
        (
            "model: credit\nrules:\n  - name: x\n    metric: volume\n    condition: '~ 3'\n",
            "condition",
        ),
        (
            "model: credit\nrules:\n  - name: x\n    metric: volume\n    condition: '< 1'\n"
            "    for: 3\n    of: 2\n",
            "for",
        ),
        (
            "model: credit\nrules:\n  - name: x\n    metric: volume\n    condition: '< 1'\n"
            "    severity: loud\n",
            "severity",
        ),
        (
            "model: credit\nrules:\n  - name: x\n    metric: volume\n    colour: red\n",
            "colour: unknown field",
        ),
        (
            "model: credit\nrules:\n  - name: x\n    metric: volume\n    condition: '< 1'\n"
            "    group_wait: soon\n",
            "duration",
        ),
        ("rules: []\n", "model"),
        ("model: [unclosed\n", "YAML"),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_message(
    alerts_env, text: str, message: str
) -> None:
    from monitor.alerts.rules import apply_rules_yaml
    from monitor.storage.engine import session_scope

    make_model(alerts_env)
    with pytest.raises(InputError, match=message), session_scope(alerts_env) as session:
        apply_rules_yaml(session, text)
    assert _rules(alerts_env) == {}


def test_unknown_model_is_not_found(alerts_env) -> None:
    from monitor.alerts.rules import apply_rules_yaml
    from monitor.storage.engine import session_scope

    with (
        pytest.raises(InputError, match="no model named 'credit'"),
        session_scope(alerts_env) as session,
    ):
        apply_rules_yaml(session, RULES_YAML)


def test_default_rules_are_created_once_and_never_overwritten(alerts_env) -> None:
    from monitor.alerts.rules import default_rules, ensure_default_rules
    from monitor.storage.engine import session_scope

    engine = alerts_env
    model = make_model(engine)
    assert ensure_default_rules(engine, model) == len(default_rules())
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alert_rules SET severity = 'info' WHERE name = 'latency-p95'"))
    with session_scope(engine) as session:
        assert ensure_default_rules(session, model) == 0
    rules = _rules(engine)
    assert rules["latency-p95"]["severity"] == "info"
    assert {
        "dataset-drift",
        "prediction-drift",
        "data-quality",
        "null-share",
        "out-of-range",
        "performance-drop",
        "volume-zero",
        "latency-p95",
    } <= set(rules)
    assert rules["prediction-drift"]["column_selector"] == "@prediction,@score"
    assert all(r["channels"] == ["@default"] for r in rules.values())


def test_conditions_and_selectors() -> None:
    from monitor.alerts.conditions import breaches, column_matches, parse_condition

    assert parse_condition("drifted") == ("drifted", None)
    assert parse_condition(">= 0.25") == (">=", 0.25)
    assert parse_condition("<=0") == ("<=", 0.0)
    assert breaches(">", 0.3, 0.31, None) and not breaches(">", 0.3, None, True)
    assert breaches("drifted", None, None, True) and not breaches("drifted", None, 9.0, None)
    assert column_matches("*", "income") and not column_matches("*", "@prediction")
    assert column_matches("", "") and not column_matches("", "income")
    assert column_matches("inc*,age", "income") and not column_matches("inc*,age", "aged")


def test_secret_key_file_is_created_private(tmp_path, monkeypatch) -> None:
    from monitor.settings import get_settings
    from monitor.storage import secrets

    monkeypatch.setenv("MONITOR_HOME", str(tmp_path))
    monkeypatch.delenv("MONITOR_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    try:
        token = secrets.encrypt("https://hooks.slack.com/services/T/B/X")
        assert secrets.decrypt(token) == "https://hooks.slack.com/services/T/B/X"
        key_file = tmp_path / "secret.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        monkeypatch.setenv("MONITOR_SECRET_KEY", "another long operator passphrase")
        get_settings.cache_clear()
        from monitor.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="MONITOR_SECRET_KEY"):
            secrets.decrypt(token)
        assert secrets.decrypt(secrets.encrypt("x")) == "x"
    finally:
        get_settings.cache_clear()


def test_example_rules_file_is_valid() -> None:
    from pathlib import Path

    import yaml

    from monitor.alerts.rules import parse_rules_documents

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- rules-example -->")[1].split("<!-- /rules-example -->")[0]
    text = block.split("```yaml\n")[1].split("```")[0]
    [(model, specs)] = parse_rules_documents(yaml.safe_load_all(text))
    assert model == "credit-default"
    assert [s.name for s in specs] == ["income-drift", "half-the-features", "auc-floor", "slow"]
    assert specs[2].metric == "performance.roc_auc" and specs[2].columns == ""
