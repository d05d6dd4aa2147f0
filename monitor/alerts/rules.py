"""Alert rules: parse them (YAML or API), store them, and create the defaults of every model.

A rules file (versioned by users in git) names a model and its rules::

    model: credit-default
    rules:
      - name: dataset-drift
        metric: dataset_drift.share_drifted   # or an alias: feature_drift, volume, ...
        condition: "> 0.3"                    # or "drifted": the job's own verdict
        for: 2                                # k breaching windows ...
        of: 3                                 # ... of the last n
        resolve_after: 2                      # clean windows before resolved
        severity: critical
        columns: "*"                          # features; '' = whole window; names/globs
        labels: {team: risk}
        channels: [ops-webhook]               # channel names; "*" = every enabled channel
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h

Several models: YAML documents separated by ``---``. ``apply`` upserts by (model, name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from monitor.alerts.conditions import (
    DRIFTED,
    parse_condition,
    parse_metric,
    resolve_metric,
)
from monitor.errors import InputError, NotFoundError
from monitor.storage.tables import AlertRule, Model

SEVERITIES = ("info", "warning", "critical")
ALL_CHANNELS = "*"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> int:
    """``30``, ``"30s"``, ``"5m"``, ``"4h"``, ``"1d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _DURATION.match(str(value))
    if not match:
        raise InputError(f"duration {value!r}: expected e.g. 30s, 5m, 4h")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


@dataclass
class RuleSpec:
    """One rule as users write it, validated."""

    name: str
    metric: str
    operator: str
    threshold: float | None = None
    columns: str = "*"
    for_windows: int = 1
    of_windows: int = 1
    resolve_after: int = 1
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    channels: list[str] = field(default_factory=lambda: [ALL_CHANNELS])
    group_wait_seconds: int = 30
    group_interval_seconds: int = 300
    repeat_interval_seconds: int = 4 * 3600
    enabled: bool = True

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if not self.name or not str(self.name).strip():
            raise InputError("a rule needs a name")
        parse_metric(self.metric)
        if self.operator != DRIFTED and self.threshold is None:
            raise InputError(f"{where}: condition {self.operator!r} needs a number")
        if not 1 <= self.for_windows <= self.of_windows <= 100:
            raise InputError(
                f"{where}: need 1 <= for ({self.for_windows}) <= of ({self.of_windows}) <= 100"
            )
        if not 1 <= self.resolve_after <= 100:
            raise InputError(f"{where}: resolve_after must be between 1 and 100")
        if self.severity not in SEVERITIES:
            raise InputError(f"{where}: severity must be one of {SEVERITIES}")
        for name in ("group_wait_seconds", "group_interval_seconds", "repeat_interval_seconds"):
            if getattr(self, name) < 0:
                raise InputError(f"{where}: {name} must not be negative")
        self.labels = {str(k): str(val) for k, val in (self.labels or {}).items()}
        self.annotations = {str(k): str(val) for k, val in (self.annotations or {}).items()}
        self.channels = [str(c) for c in (self.channels or [])]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RuleSpec:
        """Build from the YAML/API shape (``metric``, ``condition``, ``for``, ``of`` ...)."""
        known = {
            "name",
            "metric",
            "condition",
            "columns",
            "for",
            "of",
            "resolve_after",
            "severity",
            "labels",
            "annotations",
            "channels",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "enabled",
        }
        unknown = set(raw) - known
        name = str(raw.get("name", ""))
        if unknown:
            raise InputError(f"rule {name!r}: unknown keys {sorted(unknown)}")
        if "metric" not in raw:
            raise InputError(f"rule {name!r}: 'metric' is required")
        columns = raw.get("columns")
        metric, selector = resolve_metric(
            str(raw["metric"]), None if columns is None else str(columns)
        )
        operator, threshold = parse_condition(raw.get("condition", DRIFTED))
        channels = raw.get("channels", [ALL_CHANNELS])
        if isinstance(channels, str):
            channels = [channels]
        n_for = int(raw.get("for", 1))
        return cls(
            name=name,
            metric=metric,
            operator=operator,
            threshold=threshold,
            columns=selector,
            for_windows=n_for,
            of_windows=int(raw.get("of", n_for)),
            resolve_after=int(raw.get("resolve_after", 1)),
            severity=str(raw.get("severity", "warning")),
            labels=dict(raw.get("labels") or {}),
            annotations=dict(raw.get("annotations") or {}),
            channels=list(channels),
            group_wait_seconds=parse_duration(raw.get("group_wait", 30)),
            group_interval_seconds=parse_duration(raw.get("group_interval", 300)),
            repeat_interval_seconds=parse_duration(raw.get("repeat_interval", 4 * 3600)),
            enabled=bool(raw.get("enabled", True)),
        )

    def columns_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["column_selector"] = data.pop("columns")
        return data


def default_rules() -> list[RuleSpec]:
    """The rules every model gets. Drift rules use the jobs' verdicts (each method's threshold,
    multiple-testing control); dataset drift uses Evidently's default share (half the features);
    quality and operational rules use absolute limits users are expected to tune. Drift rules
    resolve only after 4 clean windows, so a feature hovering at its threshold stays one episode
    instead of a message every few windows. Realised performance needs 3 of 4 windows: a window
    tests several metrics against the baseline, each at 2.5% one-sided, so one bad window is
    routine noise on a healthy model (seen in the demo's clean days), three of four is not."""
    raw: list[dict[str, Any]] = [
        {"name": "dataset-drift", "metric": "dataset_drift.share_drifted", "condition": ">= 0.5",
         "severity": "critical", "for": 2, "of": 3, "resolve_after": 4,
         "annotations": {"summary": "Half or more of the features drifted"}},
        {"name": "prediction-drift", "metric": "prediction_drift", "condition": "drifted",
         "severity": "critical", "for": 2, "of": 3, "resolve_after": 4,
         "annotations": {"summary": "The model's outputs drifted"}},
        {"name": "feature-drift", "metric": "feature_drift", "condition": "drifted",
         "severity": "warning", "for": 2, "of": 3, "resolve_after": 4,
         "annotations": {"summary": "Feature distributions drifted"}},
        {"name": "null-share", "metric": "null_share", "condition": "> 0.1",
         "severity": "warning", "for": 2, "of": 3, "resolve_after": 2,
         "annotations": {"summary": "More than 10% missing values"}},
        {"name": "out-of-range", "metric": "out_of_range_share", "condition": "> 0.05",
         "severity": "warning", "for": 2, "of": 3, "resolve_after": 2,
         "annotations": {"summary": "More than 5% of values outside the baseline's range"}},
        {"name": "data-quality", "metric": "data_quality", "condition": "drifted",
         "severity": "warning", "for": 2, "of": 3, "resolve_after": 4,
         "annotations": {"summary": "Data-quality checks breached (columns, nulls, unseen "
                                    "categories, type errors)"}},
        {"name": "performance-drop", "metric": "performance", "condition": "drifted",
         "severity": "critical", "for": 3, "of": 4, "resolve_after": 4,
         "annotations": {"summary": "Realised performance dropped"}},
        {"name": "estimated-performance-drop", "metric": "estimated_performance",
         "condition": "drifted", "severity": "warning", "for": 2, "of": 3, "resolve_after": 4,
         "annotations": {"summary": "Estimated performance dropped (no labels yet)"}},
        {"name": "volume-zero", "metric": "volume", "condition": "<= 0",
         "severity": "critical", "for": 2, "of": 2, "resolve_after": 1,
         "annotations": {"summary": "No predictions logged"}},
        {"name": "latency-p95", "metric": "latency_p95", "condition": "> 1000",
         "severity": "warning", "for": 3, "of": 3, "resolve_after": 2,
         "annotations": {"summary": "p95 latency above 1 s"}},
    ]  # fmt: skip
    return [RuleSpec.from_mapping(r) for r in raw]


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _session_of(session_or_engine: Session | sa.Engine) -> tuple[Session, bool]:
    if isinstance(session_or_engine, Session):
        return session_or_engine, False
    return Session(session_or_engine, expire_on_commit=False), True


def upsert_rule(session: Session, model_id: int, spec: RuleSpec, *, source: str) -> AlertRule:
    """Insert or update the rule (model, name); returns the stored row."""
    rule = session.scalar(
        sa.select(AlertRule).where(AlertRule.model_id == model_id, AlertRule.name == spec.name)
    )
    if rule is None:
        rule = AlertRule(model_id=model_id, name=spec.name)
        session.add(rule)
    values = spec.columns_dict()
    values.pop("name")
    for key, value in values.items():
        setattr(rule, key, value)
    rule.source = source
    rule.updated_at = sa.func.now()
    session.flush()
    return rule


def ensure_default_rules(session_or_engine: Session | sa.Engine, model_id: int) -> int:
    """Create the default rules a model lacks (idempotent; never overwrites). Returns how many."""
    session, owned = _session_of(session_or_engine)
    try:
        existing = set(
            session.scalars(sa.select(AlertRule.name).where(AlertRule.model_id == model_id))
        )
        created = 0
        for spec in default_rules():
            if spec.name in existing:
                continue
            stmt = (
                pg_insert(AlertRule)
                .values(
                    model_id=model_id,
                    name=spec.name,
                    source="default",
                    **{k: val for k, val in spec.columns_dict().items() if k != "name"},
                )
                .on_conflict_do_nothing(index_elements=["model_id", "name"])
                .returning(AlertRule.id)
            )
            created += len(session.execute(stmt).all())
        if owned:
            session.commit()
        return created
    finally:
        if owned:
            session.close()


def model_id_by_name(session: Session, name: str) -> int:
    model_id = session.scalar(sa.select(Model.id).where(Model.name == name))
    if model_id is None:
        raise NotFoundError(f"no model named {name!r}")
    return int(model_id)


def parse_rules_documents(documents: Iterable[Any]) -> list[tuple[str, list[RuleSpec]]]:
    """YAML documents -> [(model name, rules)], validating everything before anything is stored."""
    parsed = []
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, Mapping) or "model" not in doc:
            raise InputError("each rules document needs 'model:' and 'rules:'")
        rules = doc.get("rules") or []
        if not isinstance(rules, list):
            raise InputError(f"model {doc['model']!r}: 'rules' must be a list")
        specs = [RuleSpec.from_mapping(r) for r in rules]
        names = [s.name for s in specs]
        if len(names) != len(set(names)):
            raise InputError(f"model {doc['model']!r}: rule names must be unique")
        parsed.append((str(doc["model"]), specs))
    return parsed


def apply_rules_yaml(session: Session, text: str, *, prune: bool = False) -> dict[str, int]:
    """Apply a rules file; ``prune`` deletes the model's file-sourced rules no longer listed."""
    import yaml

    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise InputError(f"rules file is not valid YAML: {exc}") from exc
    counts = {"applied": 0, "deleted": 0}
    for model_name, specs in parse_rules_documents(documents):
        model_id = model_id_by_name(session, model_name)
        for spec in specs:
            upsert_rule(session, model_id, spec, source="file")
            counts["applied"] += 1
        if prune:
            result = session.execute(
                sa.delete(AlertRule).where(
                    AlertRule.model_id == model_id,
                    AlertRule.source == "file",
                    AlertRule.name.not_in([s.name for s in specs]),
                )
            )
            counts["deleted"] += _rowcount(result)
    return counts


def describe_rule(rule: AlertRule) -> str:
    """One line: ``name: metric[columns] condition for k/n -> channels``."""
    cond = rule.operator if rule.operator == DRIFTED else f"{rule.operator} {rule.threshold:g}"
    cols = f"[{rule.column_selector}]" if rule.column_selector else ""
    return (
        f"{rule.name}: {rule.metric}{cols} {cond} for {rule.for_windows}/{rule.of_windows}, "
        f"resolve after {rule.resolve_after}, {rule.severity} -> {','.join(rule.channels) or '-'}"
        f"{'' if rule.enabled else ' (disabled)'}"
    )
