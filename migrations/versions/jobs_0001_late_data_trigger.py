"""late data marks computed windows stale

Revision ID: jobs_0001
Revises: 0001
Create Date: 2026-11-29 13:40:00

Rows inserted into a window that was already computed (an SDK spool replay, a late batch) mark
that window's run ``stale`` so a worker recomputes it. A statement-level trigger with a
transition table sees exactly the rows each INSERT added (``ON CONFLICT DO NOTHING`` duplicates
excluded), whichever writer inserted them. A run still being computed is also marked stale, so
its completion is rejected by the fencing check and the window is recomputed with the new rows.
Run rows are locked in key order first, so concurrent ingest batches cannot deadlock.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "jobs_0001"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION monitor_mark_late_windows() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM 1 FROM runs r
          JOIN (SELECT DISTINCT n.model_id,
                  to_timestamp(floor(extract(epoch FROM n.event_ts) / m.window_seconds)
                               * m.window_seconds) AS window_start
                FROM new_rows n JOIN models m ON m.id = n.model_id) w
            ON r.model_id = w.model_id AND r.window_start = w.window_start
          WHERE r.job = 'window' AND r.status IN ('succeeded', 'running')
          ORDER BY r.model_id, r.window_start
          FOR UPDATE OF r;
          UPDATE runs r SET status = 'stale', reason = 'late data'
          FROM (SELECT DISTINCT n.model_id,
                  to_timestamp(floor(extract(epoch FROM n.event_ts) / m.window_seconds)
                               * m.window_seconds) AS window_start
                FROM new_rows n JOIN models m ON m.id = n.model_id) w
          WHERE r.model_id = w.model_id AND r.window_start = w.window_start
            AND r.job = 'window' AND r.status IN ('succeeded', 'running');
          RETURN NULL;
        END $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER predictions_late_data AFTER INSERT ON predictions
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION monitor_mark_late_windows()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS predictions_late_data ON predictions")
    op.execute("DROP FUNCTION IF EXISTS monitor_mark_late_windows()")
