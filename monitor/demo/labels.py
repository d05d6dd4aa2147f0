"""Late labels for the demo, landing while it runs, on an accelerated clock.

The demo's loans default (or not) days after they were scored, so when the demo starts the
latest windows have estimates but no realised performance yet. A :class:`LabelFeeder` writes
those pending labels through the SDK's write path as their (simulated) arrival time comes: at
the default speed a day of labels lands every minute, so within minutes the dashboard shows
each window's realised performance appearing beside the estimate that came before it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import sqlalchemy as sa

from monitor.demo.data import DAYS, MODEL, generate
from monitor.sdk.postgres.writer import PostgresWriter
from monitor.sdk.records import ActualRecord
from monitor.storage.engine import libpq_url

log = logging.getLogger(__name__)

SPEED = 1440.0
"""Simulated seconds per real second: one day of labels per minute."""


def pending_labels(engine: sa.Engine) -> pd.DataFrame:
    """The demo's labels still to come: regenerated from the seed, minus those already landed.

    The seed is deterministic given its ``now`` (the hour after the two weeks of traffic), which
    the first logged prediction gives back.
    """
    with engine.connect() as conn:
        first = conn.execute(
            sa.text(
                "SELECT min(p.event_ts) FROM predictions p JOIN models m ON m.id = p.model_id"
                " WHERE m.name = :n"
            ),
            {"n": MODEL},
        ).scalar()
        if first is None:
            return pd.DataFrame(columns=["id", "actual", "timestamp"])
        landed = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT a.record_id FROM actuals a JOIN models m ON m.id = a.model_id"
                    " WHERE m.name = :n"
                ),
                {"n": MODEL},
            )
        }
    seeded_at = first.replace(minute=0, second=0, microsecond=0) + timedelta(days=DAYS)
    pending = generate(now=seeded_at).pending_actuals
    return pending[~pending["id"].isin(landed)].reset_index(drop=True)


class LabelFeeder:
    """Writes pending labels whose simulated arrival time has come."""

    def __init__(
        self,
        engine: sa.Engine,
        pending: pd.DataFrame,
        *,
        speed: float = SPEED,
        start: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.pending = pending.sort_values("timestamp", ignore_index=True)
        self.speed = speed
        self.start = start or datetime.now(UTC)
        self._t0 = time.monotonic()
        self._next = 0

    @property
    def simulated_now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    @property
    def done(self) -> bool:
        return self._next >= len(self.pending)

    def land(self) -> int:
        """Write every pending label due by the simulated clock; returns how many."""
        due = int(
            self.pending["timestamp"].searchsorted(pd.Timestamp(self.simulated_now), side="right")
        )
        batch = self.pending.iloc[self._next : due]
        if batch.empty:
            return 0
        records = [
            ActualRecord(r.id, r.timestamp.to_pydatetime(), int(r.actual))
            for r in batch.itertuples(index=False)
        ]
        url = libpq_url(self.engine.url.render_as_string(hide_password=False))
        with psycopg.connect(url, autocommit=True) as conn:
            PostgresWriter(conn).write_actuals(MODEL, records)
        self._next = due
        log.info("demo: %d late labels landed (simulated time %s)", len(records), due)
        return len(records)

    def run(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Land labels every ``interval`` seconds until all landed or ``stop`` is set."""
        while not stop.is_set() and not self.done:
            try:
                self.land()
            except Exception:  # the demo keeps serving if the database hiccups
                log.exception("demo: landing labels failed; retrying")
            stop.wait(interval)


def start_label_feeder(
    engine: sa.Engine, *, speed: float = SPEED, interval: float = 5.0
) -> tuple[threading.Thread, threading.Event]:
    """Start landing the demo's pending labels in a daemon thread; set the event to stop."""
    feeder = LabelFeeder(engine, pending_labels(engine), speed=speed)
    stop = threading.Event()
    thread = threading.Thread(
        target=feeder.run, args=(stop, interval), name="demo-labels", daemon=True
    )
    thread.start()
    return thread, stop
