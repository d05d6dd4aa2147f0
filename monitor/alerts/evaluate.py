"""Evaluate rules over the latest windows' results and move alert state, Alertmanager-style.

Called by the scheduler every tick. Per model, in ONE transaction (so a crash leaves either
everything or nothing): evaluate each enabled rule per series (column, segment), open or
resolve alerts (one row per firing episode of a fingerprint), record every state change in
``alert_events``, then decide per group (model, rule) whether a notification is due
(group_wait for a new group, group_interval when alerts were added or the whole group
resolved, repeat_interval otherwise) and write one outbox row per channel. Silenced alerts
change state but are left out of notifications. A transaction-level advisory lock per model
lets replicas share the work.

Decisions, for one series over the model's latest windows of the rule's family (newest first,
windows with ``insufficient_data`` skipped; a missing result counts as clean):
- fire when at least ``for`` of the last ``of`` windows breach and the last ``resolve_after``
  windows are not all clean (so an episode never fires and resolves on the same data);
- resolve an open alert when the last ``resolve_after`` windows are clean.
Re-evaluating the same windows changes nothing, so ticks are idempotent.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from monitor.alerts.conditions import (
    DRIFTED,
    MetricRef,
    breaches,
    column_matches,
    metric_matches,
    parse_metric,
)
from monitor.alerts.payloads import build_event, iso, new_event_id
from monitor.alerts.rules import ALL_CHANNELS, DEFAULT_CHANNELS, RuleSpec, describe_errors
from monitor.alerts.silences import active_matchers, silenced_by
from monitor.errors import InputError
from monitor.settings import get_settings
from monitor.storage import vocabulary as v
from monitor.storage.tables import Alert, AlertEvent, AlertRule, Channel, Delivery, Model, Result

log = logging.getLogger(__name__)
MAX_STEPS = 1000  # windows one rule steps through per tick (the rest next tick)
LOCK_CLASS = 0x616C7274  # "alrt": advisory-lock namespace for per-model evaluation


@dataclass
class EvaluationSummary:
    models: int = 0
    rules: int = 0
    fired: int = 0
    resolved: int = 0
    notifications: int = 0
    deliveries: int = 0
    skipped_locked: int = 0
    rule_errors: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: EvaluationSummary) -> None:
        for name in ("rules", "fired", "resolved", "notifications", "deliveries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Point:
    """The result that represents one series in one window."""

    window_start: datetime
    window_end: datetime
    metric: str
    value: float | None
    threshold: float | None
    p_value: float | None
    breach: bool


def fingerprint(rule_id: int, model_id: int, column: str, segment: str) -> str:
    raw = f"{rule_id}\x1f{model_id}\x1f{column}\x1f{segment}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _windows(
    session: Session,
    model_id: int,
    ref: MetricRef,
    *,
    after: datetime | None,
    before_or_at: datetime | None,
    newest_first: bool,
    limit: int,
) -> list[datetime]:
    """Distinct window starts of the rule's family that have usable (``ok``) results."""
    stmt = (
        sa.select(Result.window_start)
        .where(Result.model_id == model_id, Result.family == ref.family, Result.status == v.OK)
        .group_by(Result.window_start)
        .limit(limit)
    )
    if "*" not in ref.metric and "?" not in ref.metric:
        stmt = stmt.where(Result.metric == ref.metric)
    if after is not None:
        stmt = stmt.where(Result.window_start > after)
    if before_or_at is not None:
        stmt = stmt.where(Result.window_start <= before_or_at)
    order = Result.window_start.desc() if newest_first else Result.window_start.asc()
    return list(session.scalars(stmt.order_by(order)))


def steps_to_evaluate(
    session: Session, model_id: int, rule: AlertRule, now: datetime
) -> tuple[list[datetime], list[datetime]]:
    """(new windows to step through, oldest first; the history windows before them, newest
    first) for a rule. A rule never evaluated starts ``catchup_max_age_days`` back."""
    ref = parse_metric(rule.metric)
    after = rule.evaluated_through
    if after is None:
        after = now - timedelta(days=get_settings().catchup_max_age_days)
    new = _windows(
        session, model_id, ref, after=after, before_or_at=None, newest_first=False, limit=MAX_STEPS
    )
    if not new:
        return [], []
    history = _windows(
        session,
        model_id,
        ref,
        after=None,
        before_or_at=after,
        newest_first=True,
        limit=max(rule.of_windows, rule.resolve_after),
    )
    return new, history


def load_series(
    session: Session, model_id: int, rule: AlertRule, windows: list[datetime]
) -> dict[tuple[str, str], dict[datetime, Point]]:
    """Per (column, segment), the point representing it in each of ``windows``."""
    ref = parse_metric(rule.metric)
    series: dict[tuple[str, str], dict[datetime, Point]] = defaultdict(dict)
    if not windows:
        return series
    rows = session.execute(
        sa.select(
            Result.window_start,
            Result.window_end,
            Result.segment,
            Result.column_name,
            Result.metric,
            Result.value,
            Result.threshold,
            Result.p_value,
            Result.drifted,
        ).where(
            Result.model_id == model_id,
            Result.family == ref.family,
            Result.status == v.OK,
            Result.window_start.in_(windows),
        )
    )
    threshold = rule.threshold
    for ws, we, segment, column, metric, value, res_threshold, p_value, drifted in rows:
        if not metric_matches(ref, ref.family, metric) or not column_matches(
            rule.column_selector, column
        ):
            continue
        breach = breaches(rule.operator, threshold, value, drifted)
        point = Point(
            ws,
            we,
            metric,
            value,
            res_threshold if rule.operator == DRIFTED else threshold,
            p_value,
            breach,
        )
        current = series[(column, segment)].get(ws)
        # several methods for one column: a breaching one represents the window
        if current is None or (breach and not current.breach):
            series[(column, segment)][ws] = point
    return series


def _labels(rule: AlertRule, model_name: str, column: str, segment: str) -> dict[str, str]:
    labels = {str(k): str(val) for k, val in (rule.labels or {}).items()}
    labels.update(
        {
            "alertname": rule.name,
            "model": model_name,
            "severity": rule.severity,
            "metric": rule.metric,
        }
    )
    if column:
        labels["column"] = column
    if segment:
        labels["segment"] = segment
    return labels


def _describe(rule: AlertRule, column: str, point: Point, hits: int) -> str:
    what = column or rule.metric
    number = "n/a" if point.value is None else f"{point.value:.4g}"
    if point.p_value is not None:  # a test: its threshold is on the p-value, not the statistic
        bound = "" if point.threshold is None else f" (threshold {point.threshold:.4g})"
        limit = f", p = {point.p_value:.3g}{bound}"
    else:
        limit = "" if point.threshold is None else f" (threshold {point.threshold:.4g})"
    return (
        f"{what}: {point.metric} = {number}{limit}; breached in {hits} of the last "
        f"{rule.of_windows} window(s), latest {iso(point.window_start)}"
    )


def _record(
    session: Session,
    alert: Alert,
    from_state: str | None,
    to_state: str,
    now: datetime,
    point: Point | None,
    details: dict[str, Any],
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id,
            at=now,
            from_state=from_state,
            to_state=to_state,
            window_start=point.window_start if point else None,
            value=point.value if point else None,
            details=details,
        )
    )


def _drifted_columns(session: Session, model_id: int, window: datetime, segment: str) -> list[str]:
    rows = session.execute(
        sa.select(Result.column_name, sa.func.max(Result.value))
        .where(
            Result.model_id == model_id,
            Result.family == v.DRIFT,
            Result.drifted.is_(True),
            Result.window_start == window,
            Result.segment == segment,
        )
        .group_by(Result.column_name)
        .order_by(sa.func.max(Result.value).desc().nulls_last())
        .limit(20)
    )
    return [r[0] for r in rows]


def evaluate_rule(
    session: Session,
    model: Model,
    rule: AlertRule,
    now: datetime,
    silences: list[Any],
    summary: EvaluationSummary,
) -> None:
    """Step through every window that is new for this rule (oldest first): move alert state as
    of that window, then let the group decide on a notification at that window's time."""
    new, history = steps_to_evaluate(session, model.id, rule, now)
    if new:
        depth = max(rule.of_windows, rule.resolve_after)
        series = load_series(session, model.id, rule, history + new)
        ends = {w: p.window_end for pts in series.values() for w, p in pts.items()}
        known = list(reversed(history))
        waiting = True  # an earlier tick may have left a notification waiting for its time
        for i, window in enumerate(new):
            known.append(window)
            windows = list(reversed(known[-depth:]))
            live = i == len(new) - 1
            step_time = now if live else min(now, ends.get(window, window))
            before = summary.fired + summary.resolved
            step_rule(session, model, rule, windows, series, step_time, summary)
            changed = summary.fired + summary.resolved != before
            if not live and (changed or waiting):  # nothing new, nothing waiting: no query
                waiting = notify_group(
                    session, model, rule, step_time, silences, summary, repeat=False
                )
        rule.evaluated_through = new[-1]
    notify_group(session, model, rule, now, silences, summary, repeat=True)


def step_rule(
    session: Session,
    model: Model,
    rule: AlertRule,
    windows: list[datetime],
    series: dict[tuple[str, str], dict[datetime, Point]],
    now: datetime,
    summary: EvaluationSummary,
) -> None:
    """Move the state of every series of one rule as of ``windows`` (newest first)."""
    open_alerts = {
        a.fingerprint: a
        for a in session.scalars(
            sa.select(Alert).where(Alert.rule_id == rule.id, Alert.state != "resolved")
        )
    }
    keys = {k for k, pts in series.items() if any(w in pts for w in windows)}
    keys |= {(a.column_name, a.segment) for a in open_alerts.values()}
    for column, segment in sorted(keys):
        points = series.get((column, segment), {})
        recent = [points.get(w) for w in windows]
        hits = sum(1 for p in recent[: rule.of_windows] if p is not None and p.breach)
        clean = len(windows) >= rule.resolve_after and not any(
            p is not None and p.breach for p in recent[: rule.resolve_after]
        )
        latest = next((p for p in recent if p is not None), None)
        fp = fingerprint(rule.id, model.id, column, segment)
        alert = open_alerts.get(fp)
        if alert is not None:
            if clean:
                alert.state, alert.resolved_at, alert.updated_at = "resolved", now, now
                recovered = (
                    f"{column or rule.metric}: within limits for the last "
                    f"{rule.resolve_after} window(s)"
                )
                if latest is not None:
                    recovered += (
                        f"; {latest.metric} = "
                        + ("n/a" if latest.value is None else f"{latest.value:.4g}")
                        + f" at {iso(latest.window_start)}"
                    )
                alert.annotations = {**alert.annotations, "description": recovered}
                session.flush()
                _record(
                    session,
                    alert,
                    "firing",
                    "resolved",
                    now,
                    latest,
                    {"clean_windows": rule.resolve_after},
                )
                summary.resolved += 1
            elif latest is not None and latest.breach and latest.window_start != alert.window_start:
                alert.value, alert.window_start, alert.updated_at = (
                    latest.value,
                    latest.window_start,
                    now,
                )
                alert.annotations = {
                    **alert.annotations,
                    "description": _describe(rule, column, latest, hits),
                }
            continue
        if hits < rule.for_windows or clean or latest is None:
            continue
        breaching = next(p for p in recent if p is not None and p.breach)
        annotations = {str(k): str(val) for k, val in (rule.annotations or {}).items()}
        annotations["description"] = _describe(rule, column, breaching, hits)
        if rule.metric.startswith(f"{v.DATASET_DRIFT}."):
            drifted = _drifted_columns(session, model.id, breaching.window_start, segment)
            if drifted:
                annotations["drifted_columns"] = ", ".join(drifted)
        alert = Alert(
            rule_id=rule.id,
            model_id=model.id,
            fingerprint=fp,
            state="firing",
            column_name=column,
            segment=segment,
            labels=_labels(rule, model.name, column, segment),
            annotations=annotations,
            value=breaching.value,
            window_start=breaching.window_start,
            started_at=now,
            updated_at=now,
        )
        session.add(alert)
        session.flush()
        _record(
            session,
            alert,
            None,
            "firing",
            now,
            breaching,
            {
                "hits": hits,
                "of": rule.of_windows,
                "threshold": breaching.threshold,
                "metric": breaching.metric,
            },
        )
        summary.fired += 1


def _alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.state,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "column": alert.column_name,
        "segment": alert.segment,
        "value": alert.value,
        "window_start": iso(alert.window_start),
        "started_at": iso(alert.started_at),
        "resolved_at": iso(alert.resolved_at),
    }


def _channels_for(session: Session, rule: AlertRule) -> list[Channel]:
    """The enabled channels a rule notifies: named ones, ``*`` (all), ``@default`` (those
    marked default)."""
    enabled = list(session.scalars(sa.select(Channel).where(Channel.enabled.is_(True))))
    wanted = set(rule.channels or [])
    if ALL_CHANNELS in wanted:
        return enabled
    missing = wanted - {c.name for c in enabled} - {DEFAULT_CHANNELS}
    if missing:
        log.warning("rule %s: channels %s do not exist or are disabled", rule.name, sorted(missing))
    return [c for c in enabled if c.name in wanted or (DEFAULT_CHANNELS in wanted and c.is_default)]


def notify_group(
    session: Session,
    model: Model,
    rule: AlertRule,
    now: datetime,
    silences: list[Any],
    summary: EvaluationSummary,
    *,
    repeat: bool = True,
) -> bool:
    """Alertmanager's group timing for the group (model, rule): write outbox rows when due.
    Returns whether a change is still waiting to be notified (group_wait/interval not over)."""
    group = list(
        session.scalars(
            sa.select(Alert).where(
                Alert.rule_id == rule.id,
                sa.or_(
                    Alert.state == "firing",
                    sa.and_(
                        Alert.state == "resolved",
                        Alert.last_notified_at.is_not(None),
                        Alert.last_notified_at < Alert.resolved_at,
                    ),
                ),
            )
        )
    )
    audible = []
    for alert in group:
        if silenced_by(alert.labels, silences) is None:
            audible.append(alert)
        elif alert.state == "resolved":  # silenced while resolving: nothing left to say
            alert.last_notified_at = now
    new = [a for a in audible if a.state == "firing" and a.last_notified_at is None]
    resolved = [a for a in audible if a.state == "resolved"]
    notified = [a for a in audible if a.state == "firing" and a.last_notified_at is not None]
    if not (new or resolved or notified):
        return False
    if not notified and not resolved:
        first = min(a.started_at for a in new)
        due = now >= first + timedelta(seconds=rule.group_wait_seconds)
    else:
        last = max(a.last_notified_at for a in notified + resolved if a.last_notified_at)
        # what changed: new alerts, or the whole group resolved. One member recovering while
        # others still fire is reported with the next message (not a message of its own):
        # flapping features would otherwise turn every window into a notification.
        changed = bool(new) or (bool(resolved) and not notified)
        if changed:
            due = now >= last + timedelta(seconds=rule.group_interval_seconds)
        elif repeat:
            due = now >= last + timedelta(seconds=rule.repeat_interval_seconds)
        else:  # no repeats while catching up on history
            return False
    if not due:
        return bool(new or resolved)
    event_id = new_event_id(now)
    event = build_event(
        event_id=event_id,
        now=now,
        model={"id": model.id, "name": model.name},
        rule={
            "id": rule.id,
            "name": rule.name,
            "metric": rule.metric,
            "condition": rule.operator
            if rule.operator == DRIFTED
            else f"{rule.operator} {rule.threshold:g}",
            "severity": rule.severity,
            "columns": rule.column_selector,
        },
        alerts=[_alert_json(a) for a in audible],
    )
    channels = _channels_for(session, rule)
    for channel in channels:
        session.add(
            Delivery(
                channel_id=channel.id,
                event_id=event_id,
                event_type=event["type"],
                group_key=event["data"]["group_key"],
                payload=event,
                status="pending",
                next_attempt_at=now,
                created_at=now,
            )
        )
    for alert in audible:
        alert.last_notified_at = now
    summary.notifications += 1
    summary.deliveries += len(channels)
    return False


def evaluate_model(
    session: Session, model: Model, now: datetime, summary: EvaluationSummary
) -> bool:
    """Evaluate one model inside the caller's transaction; False if another worker holds it."""
    locked = session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(LOCK_CLASS, model.id)))
    if not locked:
        summary.skipped_locked += 1
        return False
    rules = list(
        session.scalars(
            sa.select(AlertRule)
            .where(AlertRule.model_id == model.id, AlertRule.enabled.is_(True))
            .order_by(AlertRule.id)
        )
    )
    silences = active_matchers(session, now)
    for rule in rules:
        evaluate_isolated(session, model, rule, now, silences, summary)
    _close_alerts_of_disabled_rules(session, model, now, summary)
    return True


def evaluate_isolated(
    session: Session,
    model: Model,
    rule: AlertRule,
    now: datetime,
    silences: list[Any],
    summary: EvaluationSummary,
) -> bool:
    """Evaluate one rule in a savepoint: a rule that fails (invalid as stored, a query error,
    a bug) is rolled back alone and marked errored with its message and counted (page, API,
    ``monitor_rule_evaluation_errors_total``); the model's other rules go on. True if it ran."""
    own = EvaluationSummary()
    try:
        with session.begin_nested():
            try:
                RuleSpec.from_row(rule)
            except ValidationError as exc:
                raise InputError("; ".join(describe_errors(exc, "stored rule"))) from None
            evaluate_rule(session, model, rule, now, silences, own)
            if rule.error is not None:
                rule.error, rule.error_at = None, None
                session.flush()
    except Exception as exc:  # the rule is marked errored, counted and logged; others go on
        message = str(exc).strip().splitlines()[0][:1000] if str(exc).strip() else repr(exc)
        if not isinstance(exc, InputError):
            message = f"{type(exc).__name__}: {message}"
        log.warning(
            "alert rule %s of model %s failed: %s",
            rule.name,
            model.name,
            message,
            exc_info=not isinstance(exc, InputError),
        )
        session.execute(
            sa.update(AlertRule)
            .where(AlertRule.id == rule.id)
            .values(error=message, error_at=now, errors_total=AlertRule.errors_total + 1)
            .execution_options(synchronize_session=False)
        )
        summary.rule_errors += 1
        summary.errors.append(f"model {model.name} rule {rule.name}: {message}")
        return False
    own.rules = 1
    summary.add(own)
    return True


def _close_alerts_of_disabled_rules(
    session: Session, model: Model, now: datetime, summary: EvaluationSummary
) -> None:
    """A disabled rule no longer watches anything: its open alerts resolve (quietly)."""
    stale = session.scalars(
        sa.select(Alert)
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .where(Alert.model_id == model.id, Alert.state != "resolved", AlertRule.enabled.is_(False))
    )
    for alert in stale:
        alert.state, alert.resolved_at, alert.updated_at = "resolved", now, now
        alert.last_notified_at = now  # no resolved message for a rule someone switched off
        session.flush()
        _record(session, alert, "firing", "resolved", now, None, {"reason": "rule disabled"})
        summary.resolved += 1


def evaluate_alerts(engine: sa.Engine, *, now: datetime | None = None) -> EvaluationSummary:
    """Evaluate every enabled rule of every model (one transaction per model). Never raises for
    one model's failure: it is logged, counted in ``errors``, and the other models still run."""
    moment = now or datetime.now(UTC)
    summary = EvaluationSummary()
    with Session(engine) as session:
        model_ids = list(session.scalars(sa.select(Model.id).order_by(Model.id)))
    for model_id in model_ids:
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                model = session.get(Model, model_id)
                if model is not None and evaluate_model(session, model, moment, summary):
                    summary.models += 1
        except Exception as exc:  # one model's failure must not stop the others
            log.exception("alert evaluation failed for model %s", model_id)
            summary.errors.append(f"model {model_id}: {exc}")
    return summary
