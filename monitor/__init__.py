"""monitor: watch ML models in production for drift, data-quality and performance problems.

``import monitor`` is cheap and safe in serving code: it imports no scipy, pandas, numpy,
fastapi, plotly, apscheduler, alembic or evidently (a test enforces it), and starts no thread
until the first record is logged.

    import monitor
    monitor.init(model="fraud", version="2026-11", dsn="postgresql://...")  # or url=, token=
    monitor.log(features={"amount": 12.5, "country": "DE"}, prediction=0.91, id=request_id)
    monitor.log_actual(id=request_id, actual=1)

Before :func:`init` every call is a no-op (counted in :func:`stats`). For several models in one
process use :class:`Monitor` objects, which have the same methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.sdk.client import Monitor

__version__ = "0.1.0"

__all__ = [
    "Monitor",
    "__version__",
    "flush",
    "init",
    "log",
    "log_actual",
    "log_batch",
    "register_baseline",
    "shutdown",
    "stats",
]

_default: Monitor | None = None
_noop_calls = 0


def init(model: str, version: str, **options: Any) -> Monitor:
    """Start logging for ``model``/``version``; configuration errors raise here, not in log().

    Options: ``dsn`` (Postgres) or ``url`` + ``token`` (HTTP collector), ``queue_size``,
    ``batch_size``, ``interval``, ``spool_dir``, ``spool_max_bytes``, ``exit_timeout``,
    ``timeout`` (one network operation), ``synchronous_commit``, ``bulk_connections`` (2, the
    default: ``log_batch`` streams over two connections; 1: one), ``max_features`` (the
    model's feature cap), ``flush_on_signals`` (flush on SIGTERM, then the previous handler),
    ``strict`` (raise what would be counted: for your tests).
    A second ``init`` shuts the previous default client down first.
    """
    global _default, log
    client = Monitor(model, version, **options)
    previous, _default = _default, client
    # The hot path: ``monitor.log`` becomes the client's ``log`` closure (no forwarding wrapper,
    # ~0.2 us less per call); ``from monitor import log`` keeps the forwarding function.
    log = client.log
    if previous is not None:
        previous.shutdown(previous.exit_timeout)
    return client


def _log(
    features: Mapping[str, Any],
    prediction: Any,
    *,
    id: str | None = None,
    timestamp: datetime | None = None,
    latency_ms: float | None = None,
    segment: Mapping[str, str] | None = None,
    proba: Mapping[Any, Any] | Sequence[Any] | None = None,
) -> None:
    """Log one prediction; returns in microseconds, never raises, never blocks."""
    client = _default
    if client is None:
        _noop()
        return
    client.log(
        features,
        prediction,
        id=id,
        timestamp=timestamp,
        latency_ms=latency_ms,
        segment=segment,
        proba=proba,
    )


def log_actual(id: str, actual: Any, *, timestamp: datetime | None = None) -> None:
    """Log the ground truth for the prediction ``id`` (before or after it lands)."""
    client = _default
    if client is None:
        _noop()
        return
    client.log_actual(id, actual, timestamp=timestamp)


def log_batch(records: Any, **options: Any) -> int:
    """Bulk path (DataFrame or iterable of dicts); see :meth:`Monitor.log_batch`."""
    client = _default
    if client is None:
        _noop()
        return 0
    return client.log_batch(records, **options)


def flush(timeout: float = 5.0) -> bool:
    client = _default
    return True if client is None else client.flush(timeout)


log = _log


def shutdown(timeout: float = 5.0) -> bool:
    global _default, log
    client, _default = _default, None
    log = _log
    return True if client is None else client.shutdown(timeout)


def stats() -> dict[str, Any]:
    client = _default
    if client is None:
        return {"initialized": False, "dropped": {"not_initialized": _noop_calls}}
    result = client.stats()
    result["initialized"] = True
    if _noop_calls:
        result["dropped"]["not_initialized"] = _noop_calls
    return result


def register_baseline(df: Any, *args: Any, **kwargs: Any) -> Any:
    """Register a training baseline (imports the server-side job code only when called)."""
    from monitor.jobs.baselines import register_baseline as _register

    return _register(df, *args, **kwargs)


def _noop() -> None:
    global _noop_calls
    _noop_calls += 1
