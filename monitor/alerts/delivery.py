"""Send outbox rows: claim due deliveries, send them, record attempts, schedule retries.

At-least-once: a claim (``FOR UPDATE SKIP LOCKED``, so replicas never take the same row) marks
rows ``sending`` with a lease and commits before any HTTP; the result is written afterwards,
fenced by the attempt number. A sender that dies mid-send leaves a lease that expires and the
row is claimed again, with the same event id, so receivers deduplicate on ``webhook-id``.
Per channel and group, deliveries go out in creation order (a newer one waits for an older
undelivered one), so a "resolved" never overtakes its "firing".

Every answer but a 2xx is a failed attempt (as Standard Webhooks says: a 404 or a 400 is retried
like a 503), and so is a network error or a timeout. Retries follow the Standard Webhooks
schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h) with +-20 % jitter, or the
receiver's Retry-After (capped at one hour); after the last one the delivery is ``failed`` and
can be replayed. Only a 410 Gone stops at once: it disables the channel. A target the SSRF
policy refuses fails at once too.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.alerts.channel_store import get_channel, target_of
from monitor.alerts.channels import Outcome, get_kind
from monitor.alerts.channels.http import make_client
from monitor.alerts.payloads import test_event
from monitor.errors import InputError, NotFoundError
from monitor.storage.tables import Channel, Delivery, DeliveryAttempt

log = logging.getLogger(__name__)

RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
RETRY_AFTER_CAP = 3600.0
LEASE_SECONDS = 120

_last_sent: dict[int, float] = {}
_last_sent_lock = threading.Lock()


@dataclass
class DeliverySummary:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    channels_disabled: list[str] = field(default_factory=list)


_CLAIM = sa.text("""
WITH due AS (
    SELECT d.id FROM deliveries d
    WHERE ((d.status = 'pending' AND d.next_attempt_at <= :now)
           OR (d.status = 'sending' AND d.lease_expires_at < :now))
      AND NOT EXISTS (
          SELECT 1 FROM deliveries e
          WHERE e.channel_id = d.channel_id
            AND e.group_key IS NOT DISTINCT FROM d.group_key
            AND e.status IN ('pending', 'sending')
            AND (e.created_at, e.id) < (d.created_at, d.id))
    ORDER BY d.next_attempt_at, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries SET status = 'sending', attempts = deliveries.attempts + 1,
       lease_expires_at = :lease_until
FROM due WHERE deliveries.id = due.id
RETURNING deliveries.id, deliveries.channel_id, deliveries.event_id, deliveries.payload,
          deliveries.attempts
""")


def backoff(attempts: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds until the next try after ``attempts`` failed tries."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), RETRY_AFTER_CAP)
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]
    return base * (rng or random).uniform(0.8, 1.2)


def _pace(channel_id: int, min_interval: float) -> None:
    """Keep messages to one target at least ``min_interval`` apart (in this process)."""
    if min_interval <= 0:
        return
    with _last_sent_lock:
        wait = _last_sent.get(channel_id, 0.0) + min_interval - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    with _last_sent_lock:
        _last_sent[channel_id] = time.monotonic()


def send_one(channel: Channel, event: dict[str, Any], client: Any) -> tuple[Outcome, float]:
    if not channel.enabled:
        return Outcome(ok=False, error=f"channel disabled: {channel.disabled_reason}"), 0.0
    kind = get_kind(channel.kind)
    target = target_of(channel)
    _pace(channel.id, kind.min_interval)
    started = time.monotonic()
    try:
        outcome = kind.send(client, target, event)
    except Exception as exc:  # a channel bug must not kill the sender loop
        log.exception("channel %s raised while sending", channel.name)
        outcome = Outcome(ok=False, retryable=True, error=f"internal error: {exc}")
    return outcome, (time.monotonic() - started) * 1000


def _finish(
    session: Session,
    row: Any,
    channel: Channel,
    outcome: Outcome,
    ms: float,
    now: datetime,
    summary: DeliverySummary,
) -> None:
    session.add(
        DeliveryAttempt(
            delivery_id=row.id,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=ms,
        )
    )
    values: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "lease_expires_at": None,
    }
    if outcome.ok:
        values.update(status="delivered", delivered_at=now, last_error=None)
        summary.delivered += 1
    elif outcome.retryable and row.attempts < MAX_ATTEMPTS:
        delay = backoff(row.attempts, outcome.retry_after)
        retry_at = now + timedelta(seconds=delay)
        values.update(status="pending", next_attempt_at=retry_at)
        summary.retrying += 1
        if outcome.status_code == 429:  # the whole target is throttled, not just this event
            session.execute(
                sa.update(Delivery)
                .where(
                    Delivery.channel_id == channel.id,
                    Delivery.status == "pending",
                    Delivery.next_attempt_at < retry_at,
                    Delivery.id != row.id,
                )
                .values(next_attempt_at=retry_at)
            )
    else:
        values.update(status="failed")
        summary.failed += 1
        if outcome.disable and channel.enabled:
            channel.enabled = False
            channel.disabled_reason = outcome.error
            summary.channels_disabled.append(channel.name)
    updated = session.execute(
        sa.update(Delivery)
        .where(
            Delivery.id == row.id, Delivery.status == "sending", Delivery.attempts == row.attempts
        )
        .values(**values)
    )
    if getattr(updated, "rowcount", 1) == 0:
        log.warning("delivery %s was re-claimed while attempt %s ran", row.id, row.attempts)


def _release(engine: sa.Engine, row: Any, not_before: datetime) -> None:
    """Give a claimed row back untouched (no attempt made), due no earlier than ``not_before``."""
    with Session(engine) as session, session.begin():
        session.execute(
            sa.update(Delivery)
            .where(
                Delivery.id == row.id,
                Delivery.status == "sending",
                Delivery.attempts == row.attempts,
            )
            .values(
                status="pending",
                attempts=row.attempts - 1,
                lease_expires_at=None,
                next_attempt_at=sa.func.greatest(Delivery.next_attempt_at, not_before),
            )
        )


def _claim(engine: sa.Engine, moment: datetime, limit: int) -> list[Any]:
    with Session(engine) as session, session.begin():
        return list(
            session.execute(
                _CLAIM,
                {
                    "now": moment,
                    "limit": limit,
                    "lease_until": moment + timedelta(seconds=LEASE_SECONDS),
                },
            ).all()
        )


def deliver_due(
    engine: sa.Engine, *, limit: int = 100, now: datetime | None = None
) -> DeliverySummary:
    """Claim up to ``limit`` due deliveries, send them and record the outcome.

    Claims go in rounds: a delivery queued behind an older one of its group becomes claimable
    once that one is delivered, so a firing and its resolved both go out in one call.
    """
    moment = now or datetime.now(UTC)
    summary = DeliverySummary()
    throttled: dict[int, datetime] = {}
    with make_client() as client:
        while summary.claimed < limit:
            rows = _claim(engine, moment, limit - summary.claimed)
            if not rows:
                break
            summary.claimed += len(rows)
            delivered_before = summary.delivered
            for row in rows:
                if row.channel_id in throttled:  # the target said 429 in this run: hand back
                    _release(engine, row, throttled[row.channel_id])
                    summary.claimed -= 1
                    continue
                _deliver_row(engine, client, row, moment, summary, throttled)
            if summary.delivered == delivered_before:
                break
    return summary


def _deliver_row(
    engine: sa.Engine,
    client: Any,
    row: Any,
    moment: datetime,
    summary: DeliverySummary,
    throttled: dict[int, datetime],
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        channel = session.get(Channel, row.channel_id)
    if channel is None:
        return
    outcome, ms = send_one(channel, row.payload, client)
    log.info(
        "delivery %s (%s) to %s: %s",
        row.id,
        row.event_id,
        channel.name,
        "ok" if outcome.ok else outcome.error,
    )
    with Session(engine, expire_on_commit=False) as session, session.begin():
        locked = session.get(Channel, row.channel_id, with_for_update=True)
        if locked is not None:
            _finish(session, row, locked, outcome, ms, moment, summary)
    if outcome.status_code == 429:
        throttled[row.channel_id] = moment + timedelta(
            seconds=backoff(row.attempts, outcome.retry_after)
        )


def send_test(engine: sa.Engine, channel_name: str) -> tuple[Outcome, str]:
    """Send a ``drift.alert.test`` event to a channel now; the outcome and the event id. The
    attempt is recorded as a delivery so it shows in the delivery log."""
    event = test_event(channel_name)
    with Session(engine, expire_on_commit=False) as session:
        channel = get_channel(session, channel_name)
    with make_client() as client:
        outcome, ms = send_one(channel, event, client)
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        delivery = Delivery(
            channel_id=channel.id,
            event_id=event["data"]["id"],
            event_type=event["type"],
            group_key=event["data"]["group_key"],
            payload=event,
            attempts=1,
            status="delivered" if outcome.ok else "failed",
            next_attempt_at=now,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            delivered_at=now if outcome.ok else None,
        )
        session.add(delivery)
        session.flush()
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=ms,
            )
        )
        if outcome.disable:
            stored = session.get(Channel, channel.id)
            if stored is not None:
                stored.enabled, stored.disabled_reason = False, outcome.error
    return outcome, event["data"]["id"]


def replay_delivery(session: Session, delivery_id: int, *, now: datetime | None = None) -> Delivery:
    """Queue a failed (or delivered) delivery again, same event id, fresh retry budget. A
    delivery to a disabled channel is refused (it would fail at once): enable the channel."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery with id {delivery_id}")
    if delivery.status in ("pending", "sending"):
        raise InputError(f"delivery {delivery_id} is {delivery.status} already")
    channel = session.get(Channel, delivery.channel_id)
    if channel is not None and not channel.enabled:
        raise InputError(
            f"delivery {delivery_id} goes to channel {channel.name!r}, which is disabled "
            f"({channel.disabled_reason or 'no reason given'}); nothing queued. Enable it "
            f"first: monitor channel enable {channel.name}"
        )
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now or datetime.now(UTC)
    delivery.lease_expires_at = None
    session.flush()
    return delivery


def list_deliveries(
    session: Session, *, status: str | None = None, limit: int = 50
) -> list[Delivery]:
    stmt = sa.select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Delivery.status == status)
    return list(session.scalars(stmt))
