"""record ids compare bytewise (COLLATE "C")

Revision ID: ingest_0001
Revises: sdk2_0001
Create Date: 2026-11-29 16:30:00

Every row the SDK writes goes into the primary key ``(model_id, event_ts, record_id)`` of
``predictions``; with the database's default collation each key comparison of ``record_id``
goes through the C library's locale-aware ``strcoll`` (and a ``strcmp`` tie-break), measured at
~8% of the server's COPY time into a day partition with the 'C.UTF-8' locale (more under
locales such as 'en_US.UTF-8', whose rules are costlier). Ids are opaque keys: nothing sorts
them for people, only equality matters, and equality is the same in every deterministic
collation. ``actuals.record_id`` gets the same collation, so the two still join (two different
implicit collations in one comparison are an error).

The column keeps its type; Postgres rebuilds the indexes on it (the primary keys of every
partition of ``predictions`` and of ``actuals``), holding an exclusive lock meanwhile: on a large
existing database, run the upgrade in a quiet moment.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0001"
down_revision: str | None = "web3_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("predictions", "actuals")


def upgrade() -> None:
    for table in _TABLES:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN record_id TYPE text COLLATE "C"')


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN record_id TYPE text COLLATE "default"')
