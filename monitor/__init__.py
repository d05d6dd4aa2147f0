"""monitor: watch ML models in production for drift, data-quality and performance problems.

``import monitor`` is cheap and safe in serving code: it imports no scipy, pandas, numpy,
fastapi, plotly, apscheduler, alembic or evidently (a test enforces it).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
