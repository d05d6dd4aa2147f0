"""A model whose every name is hostile, written through the real SDK and baseline paths.

Its name holds a ``/`` (names like ``team/fraud`` must work in pages and the API) and markup; its
feature names and category values try to close a ``<script>`` block, open an element with an
event handler, or split a JavaScript string with U+2028. The report, pages and API must show them
as text and never run them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from monitor import Monitor
from monitor.jobs.baselines import register_baseline
from monitor.storage.engine import libpq_url
from monitor.storage.partitions import ensure_partitions

MODEL = "</script><img src=x onerror=alert('model')>"
NUM = "</script><script>alert('feature')</script>"
CAT = "</script><img src=x onerror=alert('cat')>"
SEP = "line\u2028sep\u2029<!--"
VALUES = ["</script><script>alert('value')</script>", "<img src=x onerror=alert('v')>", "plain"]


@dataclass(frozen=True)
class Hostile:
    model: str
    window_start: datetime
    features: tuple[str, ...]


def _frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    p = [0.2, 0.3, 0.5] if shift == 0 else [0.6, 0.3, 0.1]
    return pd.DataFrame(
        {
            NUM: rng.normal(shift, 1.0, n),
            "amount": rng.exponential(2.0 + shift, n),
            CAT: rng.choice(VALUES, n, p=p),
            SEP: rng.choice(["a", "b"], n),
        }
    )


def seed_hostile(
    engine: sa.Engine, database_url: str, spool_dir: Path, model: str = MODEL
) -> Hostile:
    """Baseline plus one closed hour of shifted traffic for ``model``."""
    rng = np.random.default_rng(11)
    register_baseline(
        _frame(rng, 1_000, 0.0), model=model, version="v1", categorical=[CAT, SEP], engine=engine
    )
    window = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    with engine.begin() as conn:
        ensure_partitions(conn, first=window.date(), last=window.date())
    current = _frame(rng, 300, 1.5)
    client = Monitor(
        model, "v1", dsn=libpq_url(database_url), spool_dir=spool_dir, report_interval=3600
    )
    try:
        for i, row in enumerate(current.to_dict("records")):
            client.log(
                features=row,
                prediction=0.5,
                id=f"h{i}",
                timestamp=window + timedelta(seconds=10 * i),
            )
        assert client.flush(30), "the SDK did not flush the hostile model's rows"
    finally:
        client.shutdown(10)
    return Hostile(model, window, (NUM, "amount", CAT, SEP))
