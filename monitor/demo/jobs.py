"""The demo's jobs: register the generated baseline, compute every window, keep ticking.

The demo goes through the same paths as a user: ``register_baseline`` for the training data,
the worker's tick until nothing is due (so the dashboard has results when it opens), then a
background scheduler that keeps computing new windows while the demo serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from monitor.demo.data import MODEL, VERSION_1

BASELINE_FILE = "credit-default-baseline.parquet"


def has_baseline(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT 1 FROM baselines b JOIN models m ON m.id = b.model_id WHERE m.name = :n"
                ),
                {"n": MODEL},
            ).first()
        )


def register_demo_baseline(
    engine: sa.Engine, home: Path, baseline: pd.DataFrame | None = None
) -> None:
    """Register the training set (from the seed's Parquet file unless given) for version 1."""
    from monitor.jobs.baselines import register_baseline

    if baseline is None:
        path = home / BASELINE_FILE
        if path.exists():
            baseline = pd.read_parquet(path)
        else:
            from monitor.demo.data import generate

            baseline = generate().baseline
    register_baseline(
        baseline,
        model=MODEL,
        version=VERSION_1,
        prediction="prediction",
        proba="proba",
        target="target",
        source=BASELINE_FILE,
        engine=engine,
    )


def compute_due_windows(engine: sa.Engine) -> int:
    """Run the worker's tick until nothing is due; returns the windows computed."""
    from monitor.jobs.tick import make_context, run_until_idle
    from monitor.settings import get_settings

    # Two weeks of history at start-up: the domain classifier (seconds a window) is left to
    # the windows computed while the demo serves; the cheap PCA detector covers the history.
    settings = get_settings()
    quick = [m for m in settings.multivariate_methods if m != "domain_classifier"]
    totals: dict[str, int] = {}
    run_until_idle(
        make_context(engine, settings.model_copy(update={"multivariate_methods": quick})),
        totals=totals,
    )
    return totals.get("compute", 0)


def start_background_worker(engine: sa.Engine) -> Any:
    """A background scheduler ticking the jobs while the demo serves (call ``.shutdown()``)."""
    from monitor.jobs.scheduler import make_scheduler
    from monitor.jobs.tick import make_context

    scheduler = make_scheduler(make_context(engine), background=True)
    scheduler.start()
    return scheduler
