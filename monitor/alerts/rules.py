"""Alert rules: ONE pydantic model for YAML files, the API and the CLI, and their storage.

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
        channels: [ops-webhook]               # names; "*" = every channel; "@default" (default)
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h

Several models (or several files' worth of one model): YAML documents separated by ``---``.
:class:`RuleSpec` is what YAML, ``POST /api/v1/rules`` and the default rules all go through,
so a rule has the same fields, defaults, limits and error messages everywhere. Rules that
need the database to be judged (the model exists, the channels exist, a name is not used
twice) are checked by :func:`check_against_database`; :func:`apply_documents` checks
everything first and writes nothing unless every rule of every document is valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from monitor.alerts.catalogue import check_metric
from monitor.alerts.conditions import DRIFTED, parse_condition, parse_metric, resolve_metric
from monitor.errors import InputError, NotFoundError
from monitor.settings import get_settings
from monitor.storage.tables import AlertRule, Channel, Model

SEVERITIES = ("info", "warning", "critical")
ALL_CHANNELS = "*"
DEFAULT_CHANNELS = "@default"
"""Route to the channels marked default (``monitor channel add --default``)."""
CHANNEL_TOKENS = (ALL_CHANNELS, DEFAULT_CHANNELS)
MAX_WINDOWS = 100
MAX_DURATION = 90 * 86400
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> int:
    """``30``, ``"30s"``, ``"5m"``, ``"4h"``, ``"1d"`` -> seconds."""
    if isinstance(value, bool):
        raise InputError(f"duration {value!r}: expected e.g. 30s, 5m, 4h")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InputError(f"duration {value!r}: expected e.g. 30s, 5m, 4h")
        return int(value)
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise InputError(f"duration {value!r}: expected e.g. 30s, 5m, 4h")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _duration(value: Any) -> int:
    try:
        return parse_duration(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _text_value(value: Any) -> Any:
    """Label and annotation values: text, or a number/boolean written without quotes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _column_list(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return ",".join(value)
    return value


def _channel_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
_DURATION_TEXT = r"^\s*\d+(\.\d+)?\s*[smhd]?\s*$"
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _NO_CONTROL}
# The JSON schemas below state what the validators accept (the API publishes them): numbers
# and booleans as label values, a string or a list for columns and channels, "5m" durations.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_CONTROL)]
LabelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
LabelValue = Annotated[
    str,
    BeforeValidator(_text_value),
    StringConstraints(max_length=1000),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": 1000}, {"type": "number"},
                   {"type": "boolean"}]}
    ),
]  # fmt: skip
AnnotationValue = Annotated[
    str,
    BeforeValidator(_text_value),
    StringConstraints(max_length=4000, pattern=r"^[^\x00]*$"),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": 4000, "pattern": r"^[^\x00]*$"},
                   {"type": "number"}, {"type": "boolean"}]}
    ),
]  # fmt: skip
MetricText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Columns = Annotated[
    str | None,
    BeforeValidator(_column_list),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": 2000},
                   {"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
    ),
]  # fmt: skip
Channels = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_CONTROL)]],
    BeforeValidator(_channel_list),
    WithJsonSchema({"anyOf": [{"type": "array", "items": _NAME, "maxItems": 50}, _NAME]}),
]
Windows = Annotated[StrictInt, Field(ge=1, le=MAX_WINDOWS)]
Duration = Annotated[
    int,
    BeforeValidator(_duration),
    Field(ge=0, le=MAX_DURATION),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_DURATION},
                   {"type": "string", "pattern": _DURATION_TEXT}]}
    ),
]  # fmt: skip


class RuleSpec(BaseModel):
    """One rule as users write it. After validation ``metric`` is canonical (``family.metric``),
    ``columns`` is a selector string and ``condition`` is normalised (``"> 0.3"``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Name = Field(description="Unique per model.")
    metric: MetricText = Field(
        description="family.metric (drift.*, quality.null_share, performance.roc_auc ...) or "
        "an alias: feature_drift, prediction_drift, dataset_drift, null_share, volume ..."
    )
    condition: str = Field(
        DRIFTED, description="'drifted' (the job's own verdict) or '<op> <number>'."
    )
    columns: Columns = Field(
        None,
        max_length=2000,
        description="'*' every feature, '' the whole window, or names/globs (comma-separated "
        "or a list). Default: the metric's own (features for drift/quality, else '').",
    )
    for_: Windows = Field(1, alias="for", description="Breaching windows needed ...")
    of: Windows | None = Field(None, description="... of the last `of` windows (default: for).")
    resolve_after: Windows = Field(1, description="Clean windows before an alert resolves.")
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict, max_length=50)
    annotations: dict[LabelName, AnnotationValue] = Field(default_factory=dict, max_length=50)
    channels: Channels = Field(
        default_factory=lambda: [DEFAULT_CHANNELS],
        max_length=50,
        description="Channel names; '*' every enabled channel; '@default' the channels "
        "marked default (the default); [] none.",
    )
    group_wait: Duration = Field(30, description="Seconds (or 30s, 5m, 4h, 1d).")
    group_interval: Duration = Field(300, description="Seconds (or 30s, 5m, 4h, 1d).")
    repeat_interval: Duration = Field(4 * 3600, description="Seconds (or 30s, 5m, 4h, 1d).")
    enabled: StrictBool = True
    operator: Literal["drifted", ">", ">=", "<", "<=", "==", "!="] | None = Field(
        None, description="With threshold: another way to give condition (as rules are listed)."
    )
    threshold: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _structured_condition(cls, raw: Any) -> Any:
        """``operator`` + ``threshold`` may stand for ``condition`` (the form the API lists)."""
        if not isinstance(raw, Mapping) or (
            raw.get("operator") is None and raw.get("threshold") is None
        ):
            return raw
        data = dict(raw)
        if "condition" in data:
            raise ValueError("give either condition or operator (+ threshold), not both")
        operator, threshold = data.pop("operator", None), data.pop("threshold", None)
        if operator is None:
            raise ValueError("threshold needs an operator")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float | None):
            raise ValueError(f"threshold must be a number, got {threshold!r}")
        if not isinstance(operator, str):
            raise ValueError(f"operator must be text, got {operator!r}")
        if operator == DRIFTED:
            if threshold is not None:
                raise ValueError("condition 'drifted' takes no threshold")
            data["condition"] = DRIFTED
        elif threshold is None:
            raise ValueError(f"operator {operator!r} needs a threshold")
        else:
            data["condition"] = f"{operator} {threshold}"
        return data

    @model_validator(mode="after")
    def _normalise(self) -> RuleSpec:
        try:
            metric, selector = resolve_metric(self.metric, self.columns)
            ref = parse_metric(metric)
            problem = check_metric(ref.family, ref.metric)
            if problem:
                raise InputError(problem)
            operator, threshold = parse_condition(self.condition)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if self.of is None:
            self.of = self.for_
        if self.for_ > self.of:
            raise ValueError(f"for ({self.for_}) cannot exceed of ({self.of})")
        tokens = [c for c in self.channels if c.startswith("@") and c != DEFAULT_CHANNELS]
        if tokens:
            raise ValueError(f"unknown channel token(s) {tokens}: '*' or '@default'")
        self.metric, self.columns = metric, selector
        self.condition = DRIFTED if operator == DRIFTED else f"{operator} {threshold:g}"
        self.operator, self.threshold = operator, threshold  # type: ignore[assignment]
        return self

    def to_columns(self) -> dict[str, Any]:
        """The ``alert_rules`` columns (everything but model and source)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "column_selector": self.columns if self.columns is not None else "",
            "operator": parse_condition(self.condition)[0],
            "threshold": parse_condition(self.condition)[1],
            "for_windows": self.for_,
            "of_windows": self.of,
            "resolve_after": self.resolve_after,
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "channels": list(self.channels),
            "group_wait_seconds": self.group_wait,
            "group_interval_seconds": self.group_interval,
            "repeat_interval_seconds": self.repeat_interval,
            "enabled": self.enabled,
        }

    def to_yaml_dict(self) -> dict[str, Any]:
        """The rule as a rules file (or the API) writes it."""
        return {
            "name": self.name,
            "metric": self.metric,
            "columns": self.columns,
            "condition": self.condition,
            "for": self.for_,
            "of": self.of,
            "resolve_after": self.resolve_after,
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "channels": list(self.channels),
            "group_wait": self.group_wait,
            "group_interval": self.group_interval,
            "repeat_interval": self.repeat_interval,
            "enabled": self.enabled,
        }

    @classmethod
    def from_row(cls, rule: AlertRule) -> RuleSpec:
        """Validate a stored rule (rows written before validation existed may be invalid:
        the evaluator marks such a rule errored with this message)."""
        condition = (
            DRIFTED
            if rule.operator == DRIFTED
            else f"{rule.operator} {'' if rule.threshold is None else repr(rule.threshold)}"
        )
        return cls.model_validate(
            {
                "name": rule.name,
                "metric": rule.metric,
                "columns": rule.column_selector,
                "condition": condition.strip(),
                "for": rule.for_windows,
                "of": rule.of_windows,
                "resolve_after": rule.resolve_after,
                "severity": rule.severity,
                "labels": rule.labels or {},
                "annotations": rule.annotations or {},
                "channels": list(rule.channels or []),
                "group_wait": rule.group_wait_seconds,
                "group_interval": rule.group_interval_seconds,
                "repeat_interval": rule.repeat_interval_seconds,
                "enabled": rule.enabled,
            }
        )


def describe_errors(exc: ValidationError, where: str) -> list[str]:
    """One line per problem: ``<where>: <field>: <message>``, in the user's field names."""
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p != "for_") or ""
        if err["loc"] and err["loc"][0] == "for_":
            loc = "for" + loc
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (fields: " + ", ".join(_FIELDS) + ")"
        given = err.get("input")
        if err["type"] not in ("missing", "extra_forbidden") and (
            loc or not isinstance(given, dict)
        ):
            message += f" (got {given!r})" if len(repr(given)) < 80 else ""
        out.append(f"{where}: {loc + ': ' if loc else ''}{message}")
    return out


_FIELDS = ("name", "metric", "condition", "columns", "for", "of", "resolve_after", "severity",
           "labels", "annotations", "channels", "group_wait", "group_interval",
           "repeat_interval", "enabled")  # fmt: skip


def validate_rule(raw: Any, where: str) -> tuple[RuleSpec | None, list[str]]:
    """A rule from YAML/JSON, or the problems with it (never raises for bad input)."""
    if not isinstance(raw, Mapping):
        kind = type(raw).__name__ if raw is not None else "nothing"
        return None, [f"{where}: expected a mapping (name: ..., metric: ...), got {kind}"]
    name = raw.get("name")
    label = f"{where} {name!r}" if isinstance(name, str) and name.strip() else where
    try:
        return RuleSpec.model_validate(dict(raw)), []
    except ValidationError as exc:
        return None, describe_errors(exc, label)


def default_rules() -> list[RuleSpec]:
    """The rules every model gets (unless ``MONITOR_DEFAULT_RULES=off``), routed to the channels
    marked default. Drift rules use the jobs' verdicts (each method's threshold, multiple-testing
    control); dataset drift uses Evidently's default share (half the features); quality and
    operational rules use absolute limits users are expected to tune. Drift rules resolve only
    after 4 clean windows, so a feature hovering at its threshold stays one episode instead of
    a message every few windows. Realised performance needs 3 of 4 windows: a window tests
    several metrics against the baseline, each at 2.5% one-sided, so one bad window is routine
    noise on a healthy model (seen in the demo's clean days), three of four is not."""
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
    return [RuleSpec.model_validate({**r, "channels": [DEFAULT_CHANNELS]}) for r in raw]


def _session_of(session_or_engine: Session | sa.Engine) -> tuple[Session, bool]:
    if isinstance(session_or_engine, Session):
        return session_or_engine, False
    return Session(session_or_engine, expire_on_commit=False), True


def upsert_rule(session: Session, model_id: int, spec: RuleSpec, *, source: str) -> AlertRule:
    """Insert or update the rule (model, name); returns the stored row. A changed rule loses
    its error: the evaluator judges it afresh on the next tick."""
    rule = session.scalar(
        sa.select(AlertRule).where(AlertRule.model_id == model_id, AlertRule.name == spec.name)
    )
    if rule is None:
        rule = AlertRule(model_id=model_id, name=spec.name)
        session.add(rule)
    for key, value in spec.to_columns().items():
        setattr(rule, key, value)
    rule.source = source
    rule.error = None
    rule.error_at = None
    rule.updated_at = sa.func.now()
    session.flush()
    return rule


def ensure_default_rules(session_or_engine: Session | sa.Engine, model_id: int) -> int:
    """Create the default rules a model lacks (idempotent; never overwrites). Returns how many.
    Nothing when ``MONITOR_DEFAULT_RULES=off``."""
    if not get_settings().default_rules:
        return 0
    session, owned = _session_of(session_or_engine)
    try:
        existing = set(
            session.scalars(sa.select(AlertRule.name).where(AlertRule.model_id == model_id))
        )
        created = 0
        for spec in default_rules():
            if spec.name in existing:
                continue
            values = {k: val for k, val in spec.to_columns().items() if k != "name"}
            stmt = (
                pg_insert(AlertRule)
                .values(model_id=model_id, name=spec.name, source="default", **values)
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


@dataclass
class RulesDocument:
    """The rules of one YAML document (several documents may name the same model)."""

    model: str
    rules: list[RuleSpec]
    where: str
    rule_where: list[str]


def parse_rules_documents(
    documents: Iterable[Any],
) -> list[tuple[str, list[RuleSpec]]]:
    """YAML documents -> [(model name, rules)]; InputError listing every problem found."""
    docs, problems = _parse_documents(documents)
    if problems:
        raise InputError(_summary(problems))
    return [(d.model, d.rules) for d in docs]


def _parse_documents(documents: Iterable[Any]) -> tuple[list[RulesDocument], list[str]]:
    docs: list[RulesDocument] = []
    problems: list[str] = []
    for number, doc in enumerate(documents, start=1):
        where = f"document {number}"
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            problems.append(f"{where}: expected 'model:' and 'rules:', got {type(doc).__name__}")
            continue
        unknown = sorted(set(map(str, doc)) - {"model", "rules"})
        if unknown:
            problems.append(f"{where}: unknown keys {unknown} (a document has model and rules)")
        model = doc.get("model")
        if not isinstance(model, str) or not model.strip():
            problems.append(f"{where}: 'model:' must name a model")
            continue
        where = f"{where} (model {model})"
        rules = doc.get("rules")
        if rules is None:
            rules = []
        if not isinstance(rules, list):
            problems.append(f"{where}: 'rules:' must be a list of rules")
            continue
        specs, wheres = [], []
        for i, raw in enumerate(rules, start=1):
            spec, errors = validate_rule(raw, f"{where}, rule {i}")
            problems += errors
            if spec is not None:
                specs.append(spec)
                wheres.append(f"{where}, rule {i}")
        docs.append(RulesDocument(model.strip(), specs, where, wheres))
    seen: dict[tuple[str, str], str] = {}
    for d in docs:
        for spec in d.rules:
            key = (d.model, spec.name)
            if key in seen:
                problems.append(
                    f"{d.where}: rule {spec.name!r} is defined twice for model {d.model!r} "
                    f"(also in {seen[key]})"
                )
            else:
                seen[key] = d.where
    return docs, problems


def check_against_database(
    session: Session, models: Iterable[str], checks: Sequence[tuple[str, RuleSpec]]
) -> tuple[dict[str, int], list[str]]:
    """(model ids by name, problems): every model exists, and every channel a rule (given as
    (where, spec)) names exists (``*`` and ``@default`` always do)."""
    names = sorted(set(models))
    ids = {
        str(name): int(model_id)
        for name, model_id in session.execute(
            sa.select(Model.name, Model.id).where(Model.name.in_(names))
        ).all()
    }
    channels = set(session.scalars(sa.select(Channel.name)))
    problems = []
    for model in names:
        if model not in ids:
            problems.append(f"no model named {model!r} (models appear when the SDK first logs)")
    for where, spec in checks:
        missing = [c for c in spec.channels if c not in CHANNEL_TOKENS and c not in channels]
        if missing:
            known = ", ".join(sorted(channels)) or "none yet: monitor channel add ..."
            problems.append(
                f"{where} {spec.name!r}: unknown channel(s) {', '.join(map(repr, missing))} "
                f"(channels: {known})"
            )
    return ids, problems


def _summary(problems: list[str]) -> str:
    head = f"{len(problems)} problem(s), nothing applied:" if len(problems) > 1 else ""
    return "\n".join([head, *problems]) if head else f"{problems[0]}; nothing applied"


def apply_documents(
    session: Session, documents: Iterable[Any], *, prune: bool = False, source: str = "file"
) -> dict[str, int]:
    """Validate every document, then apply them all (or nothing: InputError lists every
    problem). ``prune`` deletes a model's rules from ``source`` that no document lists (their
    alerts resolve, and receivers told they fired are told so); the names of all documents of
    a model count, so a model split over several documents keeps every rule of every one."""
    docs, problems = _parse_documents(documents)
    checks = [(w, s) for d in docs for w, s in zip(d.rule_where, d.rules, strict=True)]
    ids, db_problems = check_against_database(session, (d.model for d in docs), checks)
    problems += db_problems
    if problems:
        raise InputError(_summary(problems))
    counts = {"applied": 0, "deleted": 0}
    listed: dict[int, set[str]] = {}
    for d in docs:
        model_id = ids[d.model]
        listed.setdefault(model_id, set())
        for spec in d.rules:
            upsert_rule(session, model_id, spec, source=source)
            listed[model_id].add(spec.name)
            counts["applied"] += 1
    if prune:
        from monitor.alerts.evaluate import delete_rule

        for model_id, names in listed.items():
            stale = session.scalars(
                sa.select(AlertRule).where(
                    AlertRule.model_id == model_id,
                    AlertRule.source == source,
                    AlertRule.name.not_in(sorted(names)) if names else sa.true(),
                )
            ).all()
            for rule in stale:
                delete_rule(session, rule)
                counts["deleted"] += 1
    return counts


def apply_rules_yaml(session: Session, text: str, *, prune: bool = False) -> dict[str, int]:
    """Apply a rules file (see :func:`apply_documents`)."""
    import yaml

    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise InputError(f"rules file is not valid YAML: {exc}") from exc
    return apply_documents(session, documents, prune=prune, source="file")


def create_rule(session: Session, model: str, spec: RuleSpec, *, source: str = "api") -> int:
    """Create one rule (the API's path): the same checks as a rules file; InputError if the
    model already has a rule of that name."""
    ids, problems = check_against_database(session, [model], [("rule", spec)])
    if model not in ids:
        raise NotFoundError(problems[0])
    if problems:
        raise InputError("; ".join(problems))
    exists = session.scalar(
        sa.select(AlertRule.id).where(AlertRule.model_id == ids[model], AlertRule.name == spec.name)
    )
    if exists is not None:
        raise InputError(f"model {model!r} already has a rule named {spec.name!r}")
    return upsert_rule(session, ids[model], spec, source=source).id


def describe_rule(rule: AlertRule) -> str:
    """One line: ``name: metric[columns] condition for k/n -> channels``."""
    threshold = "?" if rule.threshold is None else f"{rule.threshold:g}"
    cond = rule.operator if rule.operator == DRIFTED else f"{rule.operator} {threshold}"
    cols = f"[{rule.column_selector}]" if rule.column_selector else ""
    state = "" if rule.enabled else " (disabled)"
    if rule.error:
        state += f" ERRORED: {rule.error}"
    return (
        f"{rule.name}: {rule.metric}{cols} {cond} for {rule.for_windows}/{rule.of_windows}, "
        f"resolve after {rule.resolve_after}, {rule.severity} -> {','.join(rule.channels) or '-'}"
        f"{state}"
    )
