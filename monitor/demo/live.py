"""Live traffic while the demo serves: the open incident stays open, new windows keep coming.

Without it the demo's data would stop at the moment it was seeded: an hour later the newest
windows would be empty and the incident would fade into "no data". :class:`LiveTraffic` logs
each model's requests as they arrive, through the SDK (``monitor.Monitor``, as serving code
does), at the demo's hourly volume: ``credit-default`` still in its incident (the new channel's
applicants), ``churn`` as healthy as ever. The background worker computes their windows as they
close, so the dashboard stays live.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import numpy as np
import sqlalchemy as sa

from monitor.demo.data import HEALTHY_MODEL, HEALTHY_VERSION, MODEL, VERSION_2, live_rows
from monitor.storage.engine import libpq_url

log = logging.getLogger(__name__)

RATES = {MODEL: 300.0, HEALTHY_MODEL: 120.0}
"""Requests per hour, as in the seeded traffic."""
VERSIONS = {MODEL: VERSION_2, HEALTHY_MODEL: HEALTHY_VERSION}


class LiveTraffic:
    """Logs the demo models' live requests through the SDK; :meth:`tick` logs what arrived
    since the last tick (a Poisson count at each model's hourly rate)."""

    def __init__(self, engine: sa.Engine, *, seed: int = 23, clients: dict[str, Any] | None = None):
        from monitor import Monitor

        dsn = libpq_url(engine.url.render_as_string(hide_password=False))
        self.clients = clients or {
            name: Monitor(name, VERSIONS[name], dsn=dsn, report_interval=300.0) for name in RATES
        }
        self.rng = np.random.default_rng(seed)
        self._last = time.monotonic()

    def tick(self, seconds: float | None = None) -> dict[str, int]:
        """Log the requests of the last ``seconds`` (default: since the previous tick)."""
        now = time.monotonic()
        span = now - self._last if seconds is None else seconds
        self._last = now
        logged: dict[str, int] = {}
        for name, client in self.clients.items():
            n = int(self.rng.poisson(RATES[name] * span / 3600))
            rows = live_rows(name, self.rng, n)
            features = [c for c in rows.columns if c not in ("proba", "prediction",
                                                              "latency_ms", "region")]  # fmt: skip
            for rec in rows.to_dict("records"):
                client.log(
                    {k: rec[k] for k in features},
                    int(rec["prediction"]),
                    id=f"live-{uuid.uuid4().hex[:16]}",
                    proba={"0": 1 - rec["proba"], "1": rec["proba"]},
                    latency_ms=float(rec["latency_ms"]),
                    segment={"region": str(rec["region"])},
                )
            logged[name] = n
        return logged

    def run(self, stop: threading.Event, interval: float = 10.0) -> None:
        while not stop.wait(interval):
            try:
                self.tick()
            except Exception:  # the demo keeps serving; the SDK itself never raises
                log.exception("demo: live traffic failed; retrying")

    def close(self, timeout: float = 5.0) -> None:
        for client in self.clients.values():
            client.shutdown(timeout)


def start_live_traffic(
    engine: sa.Engine, interval: float = 10.0
) -> tuple[LiveTraffic, threading.Event]:
    """Start logging live demo traffic in a daemon thread; set the event, then ``close()``."""
    traffic = LiveTraffic(engine)
    stop = threading.Event()
    threading.Thread(
        target=traffic.run, args=(stop, interval), name="demo-traffic", daemon=True
    ).start()
    return traffic, stop
