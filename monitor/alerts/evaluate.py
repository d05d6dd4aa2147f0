"""Evaluate alert rules: load state, let the state machine decide, store what it decided.

Called by the scheduler every tick. Per model, in one transaction under a per-model advisory
lock (so replicas share the work and never notify twice), each enabled rule runs in its own
savepoint: a rule that fails (stored invalid, a query error, a bug) is rolled back alone,
marked errored with its message (alerts page, API, ``monitor_rule_evaluation_errors_total``)
and the model's other rules go on.

For one rule (all decisions are :mod:`monitor.alerts.machine`'s):

1. *New windows*: the completions of the rule's family (``result_completions``, written by a
   trigger with the results) the rule has not evaluated (``alert_rule_windows``), whatever
   order they completed in. A rule never evaluated starts ``catchup_max_age_days`` back.
2. *Series*: per (column, segment), the points from a few windows before the oldest new one
   to the newest, walked by :func:`machine.walk`; its decisions become alert rows (one per
   episode of a fingerprint) and ``alert_events``.
3. *No data*: open alerts whose series has had no result for ``alert_no_data_windows``
   finished windows clear with reason ``no_data``.
4. *Notification*: :func:`machine.plan_group` decides whether the group (model, rule) sends a
   message now; if so, one outbox row per channel (``deliveries``), committed with the state.

Every time is the caller's ``now`` (the scheduler's clock; tests inject theirs).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from monitor.alerts import machine
from monitor.alerts.catalogue import producing_job
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
from monitor.storage.tables import (
    Alert,
    AlertEvent,
    AlertRule,
    AlertRuleWindow,
    Channel,
    Delivery,
    Model,
    Result,
    ResultCompletion,
    Run,
)

log = logging.getLogger(__name__)
MAX_STEPS = 1000  # new windows one rule evaluates per tick (the rest next tick)
LOCK_CLASS = 0x616C7274  # "alrt": advisory-lock namespace for per-model evaluation
DONE = ("succeeded", "failed", "skipped")  # a run in one of these will not bring results
Key = tuple[str, str]  # (column, segment)


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


@dataclass(frozen=True)
class Reading:
    """What a point carries for alerts and payloads (``machine.Point.data``)."""

    window_start: datetime
    window_end: datetime
    metric: str
    value: float | None
    threshold: float | None
    p_value: float | None


def fingerprint(rule_id: int, model_id: int, column: str, segment: str) -> str:
    raw = f"{rule_id}\x1f{model_id}\x1f{column}\x1f{segment}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def params_of(rule: AlertRule) -> machine.Params:
    return machine.Params(
        for_windows=rule.for_windows,
        of_windows=rule.of_windows,
        resolve_after=rule.resolve_after,
        group_wait=rule.group_wait_seconds,
        group_interval=rule.group_interval_seconds,
        repeat_interval=rule.repeat_interval_seconds,
    )


def _family_filter(ref: MetricRef) -> list[Any]:
    where = [Result.family == ref.family, Result.status == v.OK]
    if not any(c in ref.metric for c in "*?["):
        where.append(Result.metric == ref.metric)
    return where


# --- 1. new windows ---------------------------------------------------------------------------


def new_completions(
    session: Session, model_id: int, rule: AlertRule, ref: MetricRef, now: datetime
) -> dict[datetime, int]:
    """Windows of the rule's family completed (or recomputed) since the rule last saw them:
    {window_start: completion seq}, the oldest ``MAX_STEPS``."""
    lo = now - timedelta(days=get_settings().catchup_max_age_days)
    seen = sa.exists().where(
        AlertRuleWindow.rule_id == rule.id,
        AlertRuleWindow.window_start == ResultCompletion.window_start,
        AlertRuleWindow.seq >= ResultCompletion.seq,
    )
    rows = session.execute(
        sa.select(ResultCompletion.window_start, ResultCompletion.seq)
        .where(
            ResultCompletion.model_id == model_id,
            ResultCompletion.family == ref.family,
            ResultCompletion.window_start >= lo,
            ~seen,
        )
        .order_by(ResultCompletion.window_start)
        .limit(MAX_STEPS)
    )
    return {ws: int(seq) for ws, seq in rows}


def _mark_seen(session: Session, rule: AlertRule, completions: dict[datetime, int]) -> None:
    stmt = pg_insert(AlertRuleWindow).values(
        [{"rule_id": rule.id, "window_start": w, "seq": s} for w, s in completions.items()]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["rule_id", "window_start"], set_={"seq": stmt.excluded.seq}
        )
    )


# --- 2. series ----------------------------------------------------------------------------------


def _history_start(
    session: Session, model_id: int, ref: MetricRef, oldest: datetime, depth: int
) -> datetime:
    """The start of the ``depth``-th window with usable results before ``oldest``."""
    before = list(
        session.scalars(
            sa.select(Result.window_start)
            .where(Result.model_id == model_id, *_family_filter(ref), Result.window_start < oldest)
            .group_by(Result.window_start)
            .order_by(Result.window_start.desc())
            .limit(depth)
        )
    )
    return min(before) if before else oldest


def load_series(
    session: Session, model_id: int, rule: AlertRule, ref: MetricRef, since: datetime
) -> dict[Key, list[machine.Point]]:
    """Per (column, segment), its points from ``since`` on, oldest first. Several methods for
    one column in one window: a breaching one represents the window."""
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
        ).where(Result.model_id == model_id, *_family_filter(ref), Result.window_start >= since)
    )
    chosen: dict[Key, dict[datetime, machine.Point]] = defaultdict(dict)
    for ws, we, segment, column, metric, value, res_threshold, p_value, drifted in rows:
        if not metric_matches(ref, ref.family, metric) or not column_matches(
            rule.column_selector, column
        ):
            continue
        breach = breaches(rule.operator, rule.threshold, value, drifted)
        threshold = res_threshold if rule.operator == DRIFTED else rule.threshold
        reading = Reading(ws, we, metric, value, threshold, p_value)
        current = chosen[(column, segment)].get(ws)
        if current is None or (breach and not current.breach):
            chosen[(column, segment)][ws] = machine.Point(ws, breach, reading)
    return {k: [pts[w] for w in sorted(pts)] for k, pts in chosen.items()}


def _episode(alert: Alert) -> machine.Episode:
    fired = alert.fired_window or alert.window_start or alert.started_at
    cleared = alert.cleared_window
    if alert.state == machine.RESOLVED and cleared is None:
        cleared = alert.window_start or fired
    return machine.Episode(alert.id, fired, cleared, alert.state)


class RuleRun:
    """One evaluation of one rule: the state it loaded and what it changed."""

    def __init__(
        self,
        session: Session,
        model: Model,
        rule: AlertRule,
        now: datetime,
        silences: list[Any],
        summary: EvaluationSummary,
    ) -> None:
        self.session, self.model, self.rule, self.now = session, model, rule, now
        self.silences, self.summary = silences, summary
        self.ref = parse_metric(rule.metric)
        self.params = params_of(rule)

    # -- helpers

    def silenced(self, alert: Alert) -> bool:
        return silenced_by(alert.labels, self.silences) is not None

    def record(
        self,
        alert: Alert,
        from_state: str | None,
        to_state: str,
        reading: Reading | None,
        details: dict[str, Any],
    ) -> None:
        self.session.add(
            AlertEvent(
                alert_id=alert.id,
                at=self.now,
                from_state=from_state,
                to_state=to_state,
                window_start=reading.window_start if reading else None,
                value=reading.value if reading else None,
                details=details,
            )
        )

    def threshold_json(self, reading: Reading) -> dict[str, Any]:
        if self.rule.operator == DRIFTED:
            applies = "p_value" if reading.p_value is not None else "statistic"
        else:
            applies = "value"
        return {"operator": self.rule.operator, "value": reading.threshold, "applies_to": applies}

    def describe(self, column: str, reading: Reading, hits: int) -> str:
        what = column or self.rule.metric
        number = "n/a" if reading.value is None else f"{reading.value:.4g}"
        bound = "" if reading.threshold is None else f" (threshold {reading.threshold:.4g})"
        limit = f", p = {reading.p_value:.3g}{bound}" if reading.p_value is not None else bound
        return (
            f"{what}: {reading.metric} = {number}{limit}; breached in {hits} of the last "
            f"{self.rule.of_windows} window(s), latest {iso(reading.window_start)}"
        )

    def show(self, alert: Alert, reading: Reading) -> None:
        alert.value, alert.window_start, alert.window_end = (
            reading.value,
            reading.window_start,
            reading.window_end,
        )
        alert.threshold = self.threshold_json(reading)

    # -- 2. series

    def step_series(self, completions: dict[datetime, int]) -> None:
        new = frozenset(completions)
        present = self.rule.evaluated_through
        since = _history_start(self.session, self.model.id, self.ref, min(new), self.params.depth)
        series = load_series(self.session, self.model.id, self.rule, self.ref, since)
        stored: dict[Key, list[Alert]] = defaultdict(list)
        for alert in self.session.scalars(
            sa.select(Alert).where(
                Alert.rule_id == self.rule.id,
                sa.or_(
                    Alert.state != machine.RESOLVED,
                    sa.func.coalesce(Alert.cleared_window, Alert.window_start) >= since,
                ),
            )
        ):
            stored[(alert.column_name, alert.segment)].append(alert)
        for key in sorted(series):
            points = series[key]
            if not any(p.window in new for p in points):
                continue
            alerts = {a.id: a for a in stored.get(key, [])}
            actions = machine.walk(
                points, new, present, [_episode(a) for a in alerts.values()], self.params
            )
            for action in actions:
                self.apply(key, action, alerts)
        newest = max(new)
        self.rule.evaluated_through = newest if present is None else max(present, newest)

    def apply(self, key: Key, action: machine.Action, alerts: dict[Any, Alert]) -> None:
        column, _ = key
        if isinstance(action, machine.Fire):
            self.fire(key, action)
            return
        alert = alerts[action.id]
        reading: Reading = action.point.data
        if isinstance(action, machine.Clear):
            self.clear(alert, reading, machine.CLEAN, self.recovered(column, reading))
        elif isinstance(action, machine.Update):
            self.show(alert, reading)
            alert.updated_at = self.now
            alert.annotations = {
                **alert.annotations,
                "description": self.describe(column, reading, action.hits),
            }
        elif isinstance(action, machine.Extend):
            alert.fired_window = min(alert.fired_window or action.point.window, action.point.window)
            self.session.flush()
        elif isinstance(action, machine.Reopen):
            alert.cleared_window, alert.resolve_reason = None, None
            self.show(alert, reading)
            alert.updated_at = self.now
            self.session.flush()

    def recovered(self, column: str, reading: Reading) -> str:
        number = "n/a" if reading.value is None else f"{reading.value:.4g}"
        return (
            f"{column or self.rule.metric}: within limits for the last "
            f"{self.rule.resolve_after} window(s); {reading.metric} = {number} at "
            f"{iso(reading.window_start)}"
        )

    def fire(self, key: Key, action: machine.Fire) -> None:
        column, segment = key
        reading: Reading = action.breaching.data
        annotations = {str(k): str(val) for k, val in (self.rule.annotations or {}).items()}
        annotations["description"] = self.describe(column, reading, action.hits)
        if action.late:
            annotations["late"] = (
                "reported late: this window's results completed after newer windows'"
            )
        if self.rule.metric.startswith(f"{v.DATASET_DRIFT}."):
            drifted = _drifted_columns(self.session, self.model.id, reading.window_start, segment)
            if drifted:
                annotations["drifted_columns"] = ", ".join(drifted)
        alert = Alert(
            rule_id=self.rule.id,
            model_id=self.model.id,
            fingerprint=fingerprint(self.rule.id, self.model.id, column, segment),
            state=machine.FIRING,
            column_name=column,
            segment=segment,
            labels=_labels(self.rule, self.model.name, column, segment),
            annotations=annotations,
            fired_window=action.point.window,
            started_at=self.now,
            updated_at=self.now,
        )
        self.show(alert, reading)
        if action.cleared is not None:  # set before the insert: it is not a live episode
            alert.cleared_window = action.cleared.window
        self.session.add(alert)
        self.session.flush()
        details = {
            "hits": action.hits,
            "of": self.rule.of_windows,
            "threshold": reading.threshold,
            "metric": reading.metric,
            "fired_window": iso(action.point.window),
        }
        if action.late:
            details["late"] = True
        self.record(alert, None, machine.FIRING, reading, details)
        self.summary.fired += 1
        if action.cleared is not None:
            clean: Reading = action.cleared.data
            self.clear(alert, clean, machine.CLEAN, self.recovered(column, clean))

    def clear(self, alert: Alert, reading: Reading | None, reason: str, text: str) -> None:
        """The alert's data cleared: resolve now, or once receivers were told it fired."""
        if reading is not None:
            self.show(alert, reading)
            alert.cleared_window = reading.window_start
        alert.resolve_reason = reason
        alert.updated_at = self.now
        alert.annotations = {**alert.annotations, "description": text}
        self.session.flush()
        if machine.on_clear(alert.notified, self.silenced(alert)) == "resolve":
            self.resolve(alert, {"reason": reason})

    def resolve(self, alert: Alert, details: dict[str, Any]) -> None:
        alert.state, alert.resolved_at, alert.updated_at = machine.RESOLVED, self.now, self.now
        if alert.cleared_window is None:
            alert.cleared_window = alert.window_start
        self.session.flush()
        reading = (
            Reading(alert.window_start, alert.window_end, "", alert.value, None, None)
            if alert.window_start is not None and alert.window_end is not None
            else None
        )
        self.record(alert, machine.FIRING, machine.RESOLVED, reading, details)
        self.summary.resolved += 1

    # -- 3. no data

    def check_no_data(self) -> None:
        windows = get_settings().alert_no_data_windows
        live = list(
            self.session.scalars(
                sa.select(Alert).where(
                    Alert.rule_id == self.rule.id,
                    Alert.state == machine.FIRING,
                    Alert.cleared_window.is_(None),
                )
            )
        )
        if not live or windows <= 0:
            return
        # a live alert's series has a point at its window: its last point is no older
        lo = min(a.window_start or a.fired_window or self.now for a in live)
        last: dict[Key, datetime] = {}
        for column, segment, metric, newest in self.session.execute(
            sa.select(
                Result.column_name, Result.segment, Result.metric, sa.func.max(Result.window_start)
            )
            .where(Result.model_id == self.model.id, *_family_filter(self.ref))
            .where(
                Result.window_start >= lo,
                Result.column_name.in_(sorted({a.column_name for a in live})),
            )
            .group_by(Result.column_name, Result.segment, Result.metric)
        ):
            if metric_matches(self.ref, self.ref.family, metric) and column_matches(
                self.rule.column_selector, column
            ):
                key = (column, segment)
                last[key] = max(newest, last.get(key, newest))
        job = producing_job(self.ref.family, self.ref.metric)
        since = min(last.get((a.column_name, a.segment), lo) for a in live)
        runs = self.session.execute(
            sa.select(Run.window_start, Run.status)
            .where(Run.model_id == self.model.id, Run.job == job, Run.window_start > since)
            .order_by(Run.window_start)
            .limit(MAX_STEPS)
        ).all()
        for alert in live:
            newest = last.get((alert.column_name, alert.segment), lo)
            after = [(ws, status) for ws, status in runs if ws > newest][:windows]
            if machine.no_data([status in DONE for _, status in after], windows):
                text = (
                    f"{alert.column_name or self.rule.metric}: no data in the {windows} "
                    f"window(s) after {iso(newest)}"
                )
                alert.cleared_window = after[-1][0]
                self.clear(alert, None, machine.NO_DATA, text)

    # -- 4. notification

    def notify(self) -> None:
        group = list(
            self.session.scalars(
                sa.select(Alert)
                .where(
                    Alert.rule_id == self.rule.id,
                    sa.or_(
                        Alert.state == machine.FIRING,
                        sa.and_(Alert.state == machine.RESOLVED, Alert.notified == machine.FIRING),
                    ),
                )
                .order_by(Alert.id)
            )
        )
        if not group:
            return
        by_id: dict[Hashable, Alert] = {a.id: a for a in group}
        views = [
            machine.AlertView(
                key=a.id,
                state=a.state,
                notified=a.notified,
                started_at=a.started_at,
                last_notified_at=a.last_notified_at,
                silenced=self.silenced(a),
                cleared=a.cleared_window is not None,
            )
            for a in group
        ]
        plan = machine.plan_group(views, self.params, self.now)
        if plan.send:
            included = [by_id[k] for k in plan.included]
            self.send([_alert_json(a) for a in included])
            for alert in included:
                alert.notified, alert.last_notified_at = alert.state, self.now
            self.session.flush()
        for key in plan.resolve:
            self.resolve(by_id[key], {"reason": by_id[key].resolve_reason or machine.CLEAN})

    def send(self, alerts: list[dict[str, Any]]) -> None:
        rule = self.rule
        event_id = new_event_id(self.now)
        event = build_event(
            event_id=event_id,
            now=self.now,
            model={"id": self.model.id, "name": self.model.name},
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
            alerts=alerts,
        )
        channels = _channels_for(self.session, rule)
        for channel in channels:
            self.session.add(
                Delivery(
                    channel_id=channel.id,
                    event_id=event_id,
                    event_type=event["type"],
                    group_key=event["data"]["group_key"],
                    payload=event,
                    status="pending",
                    next_attempt_at=self.now,
                    created_at=self.now,
                )
            )
        self.summary.notifications += 1
        self.summary.deliveries += len(channels)


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


def _alert_json(alert: Alert) -> dict[str, Any]:
    """An alert in a notification: what fired, where, the number and its threshold."""
    status = machine.RESOLVED if alert.state == machine.RESOLVED else machine.FIRING
    return {
        "fingerprint": alert.fingerprint,
        "status": status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "column": alert.column_name,
        "segment": alert.segment,
        "value": alert.value,
        "threshold": alert.threshold,
        "window_start": iso(alert.window_start),
        "window_end": iso(alert.window_end),
        "fired_window": iso(alert.fired_window),
        "started_at": iso(alert.started_at),
        "resolved_at": iso(alert.resolved_at),
        "resolve_reason": alert.resolve_reason if status == machine.RESOLVED else None,
        "late": "late" in (alert.annotations or {}),
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


def evaluate_rule(
    session: Session,
    model: Model,
    rule: AlertRule,
    now: datetime,
    silences: list[Any],
    summary: EvaluationSummary,
) -> None:
    """Evaluate one rule (new windows, no data, notification) in the caller's transaction."""
    run = RuleRun(session, model, rule, now, silences, summary)
    completions = new_completions(session, model.id, rule, run.ref, now)
    if completions:
        run.step_series(completions)
        _mark_seen(session, rule, completions)
    run.check_no_data()
    run.notify()


def _rule_failed(
    session: Session,
    model: Model,
    rule: AlertRule,
    now: datetime,
    summary: EvaluationSummary,
    exc: Exception,
) -> None:
    """Mark the rule errored with the exception's message, count it, log it."""
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


def _check_stored(rule: AlertRule) -> None:
    try:
        RuleSpec.from_row(rule)
    except ValidationError as exc:
        raise InputError("; ".join(describe_errors(exc, "stored rule"))) from None


def evaluate_isolated(
    session: Session,
    model: Model,
    rule: AlertRule,
    now: datetime,
    silences: list[Any],
    summary: EvaluationSummary,
    *,
    idle: bool = False,
) -> bool:
    """Evaluate one rule in a savepoint: a rule that fails (invalid as stored, a query error,
    a bug) is rolled back alone and marked errored with its message and counted (page, API,
    ``monitor_rule_evaluation_errors_total``); the model's other rules go on. True if it ran.
    ``idle``: the rule has no new window and no alert; only its stored form is checked."""
    own = EvaluationSummary()
    try:
        if idle:
            _check_stored(rule)
        else:
            with session.begin_nested():
                _check_stored(rule)
                evaluate_rule(session, model, rule, now, silences, own)
        if rule.error is not None:
            rule.error, rule.error_at = None, None
            session.flush()
    except Exception as exc:  # the rule is marked errored, counted and logged; others go on
        _rule_failed(session, model, rule, now, summary, exc)
        return False
    own.rules = 1
    summary.add(own)
    return True


_BUSY = sa.text(
    """
    SELECT r.id FROM alert_rules r
    WHERE r.model_id = :m AND r.enabled AND (
      EXISTS (SELECT 1 FROM alerts a WHERE a.rule_id = r.id
              AND (a.state <> 'resolved' OR a.notified = 'firing'))
      OR EXISTS (
        SELECT 1 FROM result_completions c
        WHERE c.model_id = r.model_id AND c.family = split_part(r.metric, '.', 1)
          AND c.window_start >= :lo
          AND NOT EXISTS (SELECT 1 FROM alert_rule_windows s WHERE s.rule_id = r.id
                          AND s.window_start = c.window_start AND s.seq >= c.seq)))
    """
)


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
    lo = now - timedelta(days=get_settings().catchup_max_age_days)
    busy = set(session.scalars(_BUSY, {"m": model.id, "lo": lo}))
    for rule in rules:  # a rule with no new window and no alert has nothing to decide
        evaluate_isolated(session, model, rule, now, silences, summary, idle=rule.id not in busy)
    _close_alerts_of_disabled_rules(session, model, now, summary)
    return True


def _close_alerts_of_disabled_rules(
    session: Session, model: Model, now: datetime, summary: EvaluationSummary
) -> None:
    """A disabled rule no longer watches anything: its open alerts resolve, and receivers that
    were told they fired are told they resolved (reason ``rule_disabled``)."""
    rules = session.scalars(
        sa.select(AlertRule).where(
            AlertRule.model_id == model.id,
            AlertRule.enabled.is_(False),
            sa.exists().where(
                Alert.rule_id == AlertRule.id,
                sa.or_(
                    Alert.state != machine.RESOLVED,
                    sa.and_(Alert.state == machine.RESOLVED, Alert.notified == machine.FIRING),
                ),
            ),
        )
    ).all()
    for rule in rules:
        summary.resolved += retire_alerts(session, model, rule, now, "rule_disabled")


def retire_alerts(
    session: Session, model: Model, rule: AlertRule, now: datetime, reason: str
) -> int:
    """Resolve the open alerts of a rule that is disabled or about to be deleted, and send one
    "resolved" message now for those receivers were told fired (silences or not: the rule is
    gone, nothing would ever tell them later). Returns how many alerts resolved."""
    run = RuleRun(session, model, rule, now, [], EvaluationSummary())
    alerts = list(
        session.scalars(
            sa.select(Alert)
            .where(
                Alert.rule_id == rule.id,
                sa.or_(
                    Alert.state != machine.RESOLVED,
                    sa.and_(Alert.state == machine.RESOLVED, Alert.notified == machine.FIRING),
                ),
            )
            .order_by(Alert.id)
        )
    )
    resolved = 0
    for alert in alerts:
        if alert.state != machine.RESOLVED:
            alert.resolve_reason = reason
            run.resolve(alert, {"reason": reason})
            resolved += 1
    told = [a for a in alerts if a.notified == machine.FIRING]
    if told:
        run.send([_alert_json(a) for a in told])
        for alert in told:
            alert.notified, alert.last_notified_at = machine.RESOLVED, now
        session.flush()
    return resolved


def delete_rule(session: Session, rule: AlertRule, *, now: datetime | None = None) -> None:
    """Delete a rule (and its alerts), first telling receivers that its alerts they were told
    fired are resolved (reason ``rule_deleted``); waits for an evaluation of the model."""
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_CLASS, rule.model_id)))
    model = session.get(Model, rule.model_id)
    if model is not None:
        retire_alerts(session, model, rule, now or datetime.now(UTC), "rule_deleted")
    session.delete(rule)
    session.flush()


def forget_old_completions(session: Session, now: datetime) -> None:
    """Completions older than the catch-up limit are never evaluated again: drop them (and
    what rules remember of them) so both tables stay small."""
    cutoff = now - timedelta(days=get_settings().catchup_max_age_days + 1)
    session.execute(sa.delete(ResultCompletion).where(ResultCompletion.window_start < cutoff))
    session.execute(sa.delete(AlertRuleWindow).where(AlertRuleWindow.window_start < cutoff))


def evaluate_alerts(engine: sa.Engine, *, now: datetime | None = None) -> EvaluationSummary:
    """Evaluate every enabled rule of every model (one transaction per model). Never raises for
    one model's failure: it is logged, counted in ``errors``, and the other models still run."""
    moment = now or datetime.now(UTC)
    summary = EvaluationSummary()
    with Session(engine) as session, session.begin():
        forget_old_completions(session, moment)
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
