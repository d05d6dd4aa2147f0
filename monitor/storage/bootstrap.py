"""Get a database ready for a process that is about to use it.

An embedded database is ours to manage, so it is migrated automatically. A configured server
belongs to its operators: we refuse to run on an out-of-date schema and name the command to run.
"""

from __future__ import annotations

import sqlalchemy as sa

from monitor.settings import get_settings
from monitor.storage import migrate
from monitor.storage.engine import get_engine


def prepare_database() -> sa.Engine:
    engine = get_engine()
    if get_settings().database_url is None:
        migrate.upgrade(engine)
    else:
        migrate.check_schema(engine)
    return engine
