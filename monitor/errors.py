"""Errors of monitor, as one shallow hierarchy.

::

    MonitorError                    root: catch this to catch everything we raise
    +-- ConfigurationError          bad settings or init() arguments (raised early, never later)
    +-- DatabaseError               the database is unreachable or refused an operation
    |   +-- SchemaOutOfDateError    the schema is not at the code's Alembic head
    +-- InputError                  user data we cannot use (bad file, unknown column, bad record)
    +-- NotFoundError               a model, baseline, rule or channel that does not exist
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error monitor raises on purpose."""


class ConfigurationError(MonitorError):
    """A setting or an ``init()`` argument is invalid."""


class DatabaseError(MonitorError):
    """The database could not be reached or refused an operation."""


class SchemaOutOfDateError(DatabaseError):
    """The database schema is not at the revision this code expects."""


class InputError(MonitorError):
    """Input data that cannot be used, with a message that says why."""


class NotFoundError(MonitorError):
    """A named object does not exist."""
