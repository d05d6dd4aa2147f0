"""day partitions mark late windows from the batch the writer declares (no transition table)

Revision ID: ingest_0002
Revises: ingest_0001
Create Date: 2026-11-29 16:40:00

The late-data trigger of jobs_0001 keeps a transition table: Postgres copies every inserted row
into a tuplestore (spilling to a temporary file past ``work_mem``) so that the trigger can read
the rows' models and times. On the SDK's direct COPY into a day partition (sdk2_0001) that copy
was ~0.4-0.6 us of the ~3.3-4 us of server time per row. The writer knows its batch already
(one model, one day, its first and last event time), so it declares it in the transaction
(``set_config('monitor.ingest_batch', 'model_id,first_us,last_us', true)``, microseconds since
the Unix epoch) and the day partitions get a statement trigger without a transition table that
marks exactly those windows stale: the windows of that model from the first time's window to
the last's (a superset when the batch leaves windows between them empty: recomputed once, never
missed). A writer that declares nothing (any other client inserting into a day partition
directly) gets every model's windows of the partition's day marked stale: wider, never wrong.

The parent ``predictions`` (and the default partition) keep the transition-table trigger: rows
routed through the parent are marked exactly as before. The new trigger has its own name
(``predictions_late_batch``) so a writer of an older version, which looks for
``predictions_late_data`` on a partition before writing to it directly, goes through the parent.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0002"
down_revision: str | None = "ingest_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAYS = (
    "SELECT inhrelid::regclass::text FROM pg_inherits "
    "WHERE inhparent = 'predictions'::regclass "
    "AND inhrelid::regclass::text ~ '^predictions_p[0-9]{8}$'"
)

FUNCTION = r"""
CREATE OR REPLACE FUNCTION monitor_mark_late_batch() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  batch text := current_setting('monitor.ingest_batch', true);
  parts text[];
  mid integer;
  lo timestamptz;
  hi timestamptz;
BEGIN
  IF coalesce(batch, '') <> '' THEN
    parts := string_to_array(batch, ',');
    mid := parts[1]::integer;
    lo := 'epoch'::timestamptz + parts[2]::bigint * interval '1 microsecond';
    hi := 'epoch'::timestamptz + parts[3]::bigint * interval '1 microsecond';
  ELSE  -- not declared: every model, this partition's whole day
    lo := to_date(substring(TG_TABLE_NAME FROM '([0-9]{8})$'), 'YYYYMMDD')::timestamp
          AT TIME ZONE 'UTC';
    hi := lo + interval '1 day' - interval '1 microsecond';
  END IF;
  PERFORM 1 FROM runs r JOIN models m ON m.id = r.model_id
  WHERE r.job = 'window' AND r.status IN ('succeeded', 'running')
    AND (mid IS NULL OR r.model_id = mid)
    AND r.window_start >= to_timestamp(floor(extract(epoch FROM lo) / m.window_seconds)
                                       * m.window_seconds)
    AND r.window_start <= to_timestamp(floor(extract(epoch FROM hi) / m.window_seconds)
                                       * m.window_seconds)
  ORDER BY r.model_id, r.window_start
  FOR UPDATE OF r;
  UPDATE runs r SET status = 'stale', reason = 'late data'
  FROM models m
  WHERE m.id = r.model_id AND r.job = 'window' AND r.status IN ('succeeded', 'running')
    AND (mid IS NULL OR r.model_id = mid)
    AND r.window_start >= to_timestamp(floor(extract(epoch FROM lo) / m.window_seconds)
                                       * m.window_seconds)
    AND r.window_start <= to_timestamp(floor(extract(epoch FROM hi) / m.window_seconds)
                                       * m.window_seconds);
  RETURN NULL;
END $$;
"""


def _each_day(statement: str) -> None:
    op.execute(
        f"""
        DO $$
        DECLARE child text;
        BEGIN
          FOR child IN {_DAYS} LOOP
            {statement}
          END LOOP;
        END $$;
        """
    )


def upgrade() -> None:
    op.execute(FUNCTION)
    _each_day(
        "EXECUTE format('CREATE OR REPLACE TRIGGER predictions_late_batch AFTER INSERT ON %s "
        "FOR EACH STATEMENT EXECUTE FUNCTION monitor_mark_late_batch()', child); "
        "EXECUTE format('DROP TRIGGER IF EXISTS predictions_late_data ON %s', child);"
    )


def downgrade() -> None:
    _each_day(
        "EXECUTE format('CREATE OR REPLACE TRIGGER predictions_late_data AFTER INSERT ON %s "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION monitor_mark_late_windows()', child); "
        "EXECUTE format('DROP TRIGGER IF EXISTS predictions_late_batch ON %s', child);"
    )
    op.execute("DROP FUNCTION IF EXISTS monitor_mark_late_batch()")
