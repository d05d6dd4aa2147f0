"""Helpers shared by CLI commands: the engine, and checks with one-line errors."""

from __future__ import annotations

import sqlalchemy as sa


def engine_from_settings(*, check_schema: bool = False) -> sa.Engine:
    """The configured engine (embedded Postgres when no URL), optionally schema-checked."""
    from monitor.storage.engine import get_engine
    from monitor.storage.migrate import check_schema as _check

    engine = get_engine()
    if check_schema:
        _check(engine)
    return engine
