"""The database schema as SQLAlchemy 2 typed models. Alembic migrations must match it exactly.

Storage shape, chosen for ingest speed (see DESIGN.md, "Database"): a prediction row keeps its
features in two typed arrays, ``num float8[]`` and ``cat text[]``, indexed by the position that
the model's append-only feature schema (:class:`Feature`) gives each feature; values that do not
fit their feature's kind go to ``extra`` (JSONB) so nothing is lost and type errors can be
counted. Typed arrays COPY in binary several times faster than JSONB and take half the space.

Every large table carries ``model_id`` in its primary key so it can be distributed by model
(Citus) without schema changes. ``predictions`` is range-partitioned by day on ``event_ts``;
partitions are managed by :mod:`monitor.storage.partitions`, not by these models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)
# Record ids are opaque keys compared bytewise: no locale-aware strcoll on every primary-key
# comparison while ingesting (migration ingest_0001); equality is the same in any collation.
RECORD_ID = Text(collation="C")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: TZ,
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        float: Double,
        str: Text,
    }


def _now() -> Any:
    return mapped_column(TZ, server_default=func.now(), nullable=False)


# --- models ------------------------------------------------------------------------------------


class Model(Base):
    """A monitored model. Window length, baseline choice and costs are per model."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint("task IN ('binary', 'multiclass', 'regression')", name="task"),
        CheckConstraint("baseline_mode IN ('training', 'rolling')", name="baseline_mode"),
        CheckConstraint("window_seconds > 0", name="window_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str | None]
    task: Mapped[str | None]
    positive_class: Mapped[str | None]
    window_seconds: Mapped[int] = mapped_column(server_default=text("3600"))
    allowed_lateness_seconds: Mapped[int] = mapped_column(server_default=text("300"))
    baseline_mode: Mapped[str] = mapped_column(server_default=text("'training'"))
    rolling_baseline_days: Mapped[int] = mapped_column(server_default=text("7"))
    cost_per_1k_predictions: Mapped[float | None]
    cost_per_compute_second: Mapped[float | None]
    created_at: Mapped[datetime] = _now()


class ModelVersion(Base):
    """A version of a model, registered the first time the SDK or a baseline names it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str]
    classes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = _now()


class Feature(Base):
    """Append-only feature schema of a model: a feature's slot in ``num`` or ``cat`` never moves."""

    __tablename__ = "features"
    __table_args__ = (
        UniqueConstraint("model_id", "kind", "position"),
        CheckConstraint("kind IN ('numeric', 'categorical')", name="kind"),
    )

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]
    position: Mapped[int]
    created_at: Mapped[datetime] = _now()


# --- raw data ----------------------------------------------------------------------------------


class Prediction(Base):
    """One logged prediction. Partitioned by day on ``event_ts``; no foreign keys (ingest speed).

    The key ``(model_id, event_ts, record_id)`` makes replays idempotent: the SDK COPYs into a
    staging table and inserts with ``ON CONFLICT DO NOTHING``.
    """

    __tablename__ = "predictions"
    __table_args__ = ({"postgresql_partition_by": "RANGE (event_ts)"},)

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_ts: Mapped[datetime] = mapped_column(primary_key=True)
    record_id: Mapped[str] = mapped_column(RECORD_ID, primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = _now()
    num: Mapped[list[float | None] | None] = mapped_column(ARRAY(Double))
    cat: Mapped[list[str | None] | None] = mapped_column(ARRAY(Text))
    extra: Mapped[dict[str, Any] | None]
    prediction_num: Mapped[float | None]
    prediction_cat: Mapped[str | None]
    proba: Mapped[list[float | None] | None] = mapped_column(ARRAY(Double))
    latency_ms: Mapped[float | None] = mapped_column(REAL)
    segment: Mapped[dict[str, Any] | None]


class Actual(Base):
    """Ground truth for a prediction, joined by ``record_id`` (it may arrive first)."""

    __tablename__ = "actuals"

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[str] = mapped_column(RECORD_ID, primary_key=True)
    event_ts: Mapped[datetime]
    received_at: Mapped[datetime] = _now()
    actual_num: Mapped[float | None]
    actual_cat: Mapped[str | None]


Index("ix_actuals_model_id_received_at", Actual.model_id, Actual.received_at)


class DeadLetter(Base):
    """Records the database refused even alone (after a failing batch was bisected)."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    model_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str]
    record: Mapped[str]
    error: Mapped[str]
    received_at: Mapped[datetime] = _now()


class SdkReport(Base):
    """Latest counters an SDK instance reported (enqueued, exported, dropped by reason, spool)."""

    __tablename__ = "sdk_reports"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    instance: Mapped[str] = mapped_column(primary_key=True)
    reported_at: Mapped[datetime] = _now()
    stats: Mapped[dict[str, Any]]


# --- baselines ---------------------------------------------------------------------------------


class Baseline(Base):
    """The reference (training) data of a model version, reduced to what drift needs."""

    __tablename__ = "baselines"
    __table_args__ = (UniqueConstraint("model_id", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    n_rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[Any]]
    prediction_column: Mapped[str | None]
    target_column: Mapped[str | None]
    proba_columns: Mapped[list[Any] | None]
    task: Mapped[str | None]
    performance: Mapped[dict[str, Any] | None]
    source: Mapped[str | None]
    created_at: Mapped[datetime] = _now()


class BaselineProfile(Base):
    """Per-column profile of a baseline: bin edges and counts or category table, moments, sample."""

    __tablename__ = "baseline_profiles"

    baseline_id: Mapped[int] = mapped_column(
        ForeignKey("baselines.id", ondelete="CASCADE"), primary_key=True
    )
    column_name: Mapped[str] = mapped_column(primary_key=True)
    role: Mapped[str]
    kind: Mapped[str]
    profile: Mapped[dict[str, Any]]
    sample_num: Mapped[list[float | None] | None] = mapped_column(ARRAY(Double))
    sample_cat: Mapped[list[str | None] | None] = mapped_column(ARRAY(Text))


# --- computed ----------------------------------------------------------------------------------


class WindowProfile(Base):
    """Mergeable profile of one column in one window (and segment; ``''`` is all traffic)."""

    __tablename__ = "window_profiles"

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    segment: Mapped[str] = mapped_column(primary_key=True, server_default=text("''"))
    column_name: Mapped[str] = mapped_column(primary_key=True)
    window_end: Mapped[datetime]
    kind: Mapped[str]
    n: Mapped[int] = mapped_column(BigInteger)
    profile: Mapped[dict[str, Any]]
    sample_num: Mapped[list[float | None] | None] = mapped_column(ARRAY(Double))
    sample_cat: Mapped[list[str | None] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = _now()


class Result(Base):
    """One computed number for a window: what it is, its value, its threshold and its verdict."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("model_id", "window_start", "segment", "family", "column_name", "metric"),
        Index("ix_results_model_id_family_window_start", "model_id", "family", "window_start"),
        Index(  # a column's series over a period (incidents, migration dash_0001)
            "ix_results_model_id_family_column_name_window_start",
            "model_id",
            "family",
            "column_name",
            "window_start",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    segment: Mapped[str] = mapped_column(server_default=text("''"))
    family: Mapped[str]
    column_name: Mapped[str] = mapped_column(server_default=text("''"))
    metric: Mapped[str]
    value: Mapped[float | None]
    p_value: Mapped[float | None]
    threshold: Mapped[float | None]
    effect_size: Mapped[float | None]
    ci_low: Mapped[float | None]
    ci_high: Mapped[float | None]
    drifted: Mapped[bool | None]
    status: Mapped[str] = mapped_column(server_default=text("'ok'"))
    n_reference: Mapped[int | None] = mapped_column(BigInteger)
    n_current: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any] | None]
    computed_at: Mapped[datetime] = _now()


class Run(Base):
    """The truth about a job's window: claimed with SKIP LOCKED and a lease, fenced by attempt."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'stale')",
            name="status",
        ),
        CheckConstraint("source IN ('predictions', 'spark')", name="source"),
        Index("ix_runs_status_window_start", "status", "window_start"),
    )

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    job: Mapped[str] = mapped_column(primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    window_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    attempt: Mapped[int] = mapped_column(server_default=text("0"))
    lease_owner: Mapped[str | None]
    lease_expires_at: Mapped[datetime | None]
    data_watermark: Mapped[datetime | None]
    rows: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None]
    error: Mapped[str | None]
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # where the window's rows were profiled: "predictions" (this database) or "spark"
    # (monitor.spark stored it whole; never recomputed from predictions)
    source: Mapped[str] = mapped_column(server_default=text("'predictions'"))


class StreamState(Base):
    """A Spark Structured Streaming sink's progress: its last applied micro-batch (a batch
    re-run after a failure is applied once), event-time high-water mark, rows that came late."""

    __tablename__ = "stream_states"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(primary_key=True)
    last_batch_id: Mapped[int | None] = mapped_column(BigInteger)
    high_water: Mapped[datetime | None]
    late_rows: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[datetime] = _now()


class StreamWindow(Base):
    """An open window of a Spark stream: the merge of its micro-batches' partial profiles."""

    __tablename__ = "stream_windows"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    window_end: Mapped[datetime]
    rows: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = _now()


class ResultsVersion(Base):
    """A model's results version: set to a fresh ``results_version_seq`` value by triggers
    (migration web3_0001) in every transaction that writes the model's runs, results, baselines
    or model row. The web's view cache keys on it."""

    __tablename__ = "results_versions"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)


# --- alerts ------------------------------------------------------------------------------------


class AlertRule(Base):
    """A condition over results, held for k of the last n windows, routed to channels."""

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str]
    metric: Mapped[str]
    column_selector: Mapped[str] = mapped_column(server_default=text("'*'"))
    operator: Mapped[str]
    threshold: Mapped[float | None]
    for_windows: Mapped[int] = mapped_column(server_default=text("1"))
    of_windows: Mapped[int] = mapped_column(server_default=text("1"))
    resolve_after: Mapped[int] = mapped_column(server_default=text("1"))
    severity: Mapped[str] = mapped_column(server_default=text("'warning'"))
    labels: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    annotations: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    channels: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    group_wait_seconds: Mapped[int] = mapped_column(server_default=text("30"))
    group_interval_seconds: Mapped[int] = mapped_column(server_default=text("300"))
    repeat_interval_seconds: Mapped[int] = mapped_column(server_default=text("14400"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    source: Mapped[str] = mapped_column(server_default=text("'api'"))
    # newest window_start this rule has been evaluated at: evaluation steps through every newer
    # window in order, so a catch-up after downtime replays episodes instead of skipping them
    evaluated_through: Mapped[datetime | None]
    # the last evaluation failed (message, when); cleared by the next good one. errors_total
    # counts failed evaluations for /metrics (monitor_rule_evaluation_errors_total)
    error: Mapped[str | None]
    error_at: Mapped[datetime | None]
    errors_total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Alert(Base):
    """One firing episode of a fingerprint (rule, model, column, segment)."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'firing', 'resolved')", name="state"),
        # one live episode per fingerprint; an episode whose data cleared but whose "firing"
        # was not yet sent (``cleared_window`` set, still firing) may overlap a newer one
        Index(
            "uq_alerts_fingerprint_open",
            "fingerprint",
            unique=True,
            postgresql_where=text("state <> 'resolved' AND cleared_window IS NULL"),
        ),
        Index("ix_alerts_model_id_state", "model_id", "state"),
        Index("ix_alerts_rule_id_state", "rule_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    fingerprint: Mapped[str]
    state: Mapped[str]
    column_name: Mapped[str] = mapped_column(server_default=text("''"))
    segment: Mapped[str] = mapped_column(server_default=text("''"))
    labels: Mapped[dict[str, Any]]
    annotations: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    value: Mapped[float | None]
    # the window of ``value``: the newest breaching one while firing, the clean one once
    # resolved; ``threshold`` is structured: {"operator", "value", "applies_to"}
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    threshold: Mapped[dict[str, Any] | None]
    fired_window: Mapped[datetime | None]  # the window where the episode fired
    cleared_window: Mapped[datetime | None]  # where its data cleared (no data: last checked)
    resolve_reason: Mapped[str | None]  # clean, no_data, rule_disabled
    notified: Mapped[str | None]  # what receivers were last told: firing, resolved (or none)
    started_at: Mapped[datetime] = _now()
    resolved_at: Mapped[datetime | None]
    last_notified_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = _now()


class ResultCompletion(Base):
    """A window's results of one family were (re)written: set by a trigger on ``results``
    (migration alerts_0003) to a fresh ``result_completion_seq`` value in the writing
    transaction. Alert rules evaluate every completion they have not seen, in whatever order
    windows complete (a catch-up computes the newest first)."""

    __tablename__ = "result_completions"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    family: Mapped[str] = mapped_column(primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    completed_at: Mapped[datetime] = _now()


class AlertRuleWindow(Base):
    """A completion a rule has evaluated (the completion's ``seq``): what is not here is new."""

    __tablename__ = "alert_rule_windows"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class AlertEvent(Base):
    """Every state change of an alert, for the audit trail and the UI."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = _now()
    from_state: Mapped[str | None]
    to_state: Mapped[str]
    window_start: Mapped[datetime | None]
    value: Mapped[float | None]
    details: Mapped[dict[str, Any] | None]


class Silence(Base):
    """Mutes alerts whose labels match every matcher until ``ends_at``."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    matchers: Mapped[list[Any]]
    starts_at: Mapped[datetime] = _now()
    ends_at: Mapped[datetime]
    created_by: Mapped[str | None]
    comment: Mapped[str | None]
    created_at: Mapped[datetime] = _now()


class Channel(Base):
    """Where notifications go. Target URL and signing secret are encrypted at rest."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    kind: Mapped[str]
    target_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    target_display: Mapped[str]
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    options: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None]
    # rules whose channels are "@default" (the default rules, and rules naming no channels)
    # notify the channels marked default
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _now()


class Delivery(Base):
    """Outbox row: one event for one channel, committed with the alert state change."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("channel_id", "event_id"),
        CheckConstraint("status IN ('pending', 'sending', 'delivered', 'failed')", name="status"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    event_id: Mapped[str]
    event_type: Mapped[str]
    group_key: Mapped[str | None]
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[datetime] = _now()
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None]
    created_at: Mapped[datetime] = _now()
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """One HTTP attempt of a delivery, shown in the UI."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = _now()
    status_code: Mapped[int | None]
    error: Mapped[str | None]
    duration_ms: Mapped[float | None]


# --- auth --------------------------------------------------------------------------------------


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("scope IN ('read', 'ingest', 'admin')", name="scope"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str]
    token_hash: Mapped[str] = mapped_column(unique=True)
    prefix: Mapped[str]
    scope: Mapped[str]
    created_at: Mapped[datetime] = _now()
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # ingest tokens only: the models it may write to (NULL: any)
    models: Mapped[list[str] | None] = mapped_column(ARRAY(Text))


class WebSession(Base):
    """A browser session opened with a token; only the cookie value's SHA-256 is stored."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    csrf_token: Mapped[str]
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime]


class LoginCode(Base):
    """A one-time login code (``monitor login-link``): only its SHA-256 is stored; it opens
    one browser session for its token, once, before ``expires_at``."""

    __tablename__ = "login_codes"

    code_hash: Mapped[str] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


metadata = Base.metadata
