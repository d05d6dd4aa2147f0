"""Profile a model's windows on Apache Spark (``pip install 'monitor[spark]'``).

For predictions that live in lake tables or streams rather than in the SDK's Postgres table:
Spark executors reduce each partition to mergeable profiles, the profiles merge (a shuffle of
profiles, never of rows), and the driver stores each window exactly as the window job would
(``runs``, ``window_profiles``, ``results``), so drift, quality, performance, alerts and the
dashboard work unchanged. Raw rows never reach the driver or Postgres.

* :func:`profile_windows` -- a DataFrame of predictions -> completed windows (batch);
* :func:`register_baseline` -- a baseline from a Spark DataFrame;
* :func:`log_actuals` -- labels: into Postgres for SDK-logged predictions, or joined in Spark
  to predictions that live there, with realised performance per window;
* :class:`WindowSink` -- a Structured Streaming ``foreachBatch`` sink that merges micro-batches
  into open windows and closes them after the allowed lateness.

The rule for windows the SDK also logged (one window, one source)
    A window stored from Spark is the profile of exactly the DataFrame's rows in it, and it
    replaces whatever the window held before (``runs.source = 'spark'``). Rows logged through
    the SDK or the collector for the same model and window stay in ``predictions`` but are
    never added to it: when a batch job both logs and writes its table, adding them would count
    every prediction twice. The worker does not recompute a Spark window from ``predictions``
    (late SDK rows do not make it stale); it counts them on the run instead ("profiled on
    Spark; N rows logged to this database for the window are not counted"), so nothing is
    dropped silently. Running ``profile_windows`` again over the range replaces the windows
    again (idempotent). Traffic that should be monitored from both paths belongs to two model
    names.

Nothing in ``monitor``'s SDK or server imports this package (a test enforces it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["WindowSink", "log_actuals", "profile_windows", "register_baseline"]

_EXPORTS = {
    "profile_windows": "monitor.spark.windows",
    "register_baseline": "monitor.spark.baselines",
    "log_actuals": "monitor.spark.labels",
    "WindowSink": "monitor.spark.streaming",
}


def __getattr__(name: str) -> Any:
    # imported on first use, so that the executor-side modules (partials) load without pyspark
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
