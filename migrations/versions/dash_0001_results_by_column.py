"""results by column over time: an index for a feature's (or the model's) series over a period

Revision ID: dash_0001
Revises: collector_0001
Create Date: 2026-12-06 10:00:00

An incident reads each of its columns' drift results over the whole incident, and the model's
own performance rows (``column_name = ''``) over the same period. With only
``(model_id, family, window_start)`` Postgres scanned every column's rows of those weeks (a
parallel sequential scan, ~25 ms for an 84-day incident of a 50-feature model, while results
churn invalidates the cached numbers every few seconds): ~2 ms with this index.

Not built ``CONCURRENTLY``: ``monitor db upgrade`` runs every migration in one transaction.
Window jobs that write results wait for the build (seconds per million results rows).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "dash_0001"
down_revision: str | None = "collector_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_results_model_id_family_column_name_window_start"


def upgrade() -> None:
    op.create_index(NAME, "results", ["model_id", "family", "column_name", "window_start"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="results")
