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
from monitor.demo.seed import baseline_file

BASELINE_FILE = baseline_file(MODEL)


def has_baseline(engine: sa.Engine, model: str = MODEL) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT 1 FROM baselines b JOIN models m ON m.id = b.model_id WHERE m.name = :n"
                ),
                {"n": model},
            ).first()
        )


def register_demo_baseline(
    engine: sa.Engine,
    home: Path,
    baseline: pd.DataFrame | None = None,
    *,
    model: str = MODEL,
    version: str = VERSION_1,
) -> None:
    """Register a demo model's training set (from the seed's Parquet file unless given)."""
    from monitor.jobs.baselines import register_baseline

    if baseline is None:
        path = home / baseline_file(model)
        if path.exists():
            baseline = pd.read_parquet(path)
        else:
            from monitor.demo.data import generate, generate_healthy

            baseline = (generate() if model == MODEL else generate_healthy()).baseline
    register_baseline(
        baseline,
        model=model,
        version=version,
        prediction="prediction",
        proba="proba",
        target="target",
        source=baseline_file(model),
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


def default_rules(engine: sa.Engine, model: str) -> None:
    """The default alert rules for a demo model (the one in trouble gets them with its
    receiver, :func:`monitor.alerts.demo.setup_demo_alerts`)."""
    from monitor.alerts.rules import ensure_default_rules, model_id_by_name
    from monitor.storage.engine import session_scope

    with session_scope(engine) as session:
        ensure_default_rules(session, model_id_by_name(session, model))
