"""late-data trigger on each day partition too

Revision ID: sdk2_0001
Revises: jobs_0001
Create Date: 2026-11-29 15:10:00

The SDK's writer COPYs a batch whose rows all fall on one day straight into that day's
partition (partition routing through the parent costs several microseconds per row of server
time). A statement-level trigger fires only for the table named in the statement, so the
late-data trigger of ``predictions`` (jobs_0001) is added to every partition as well;
``monitor.storage.partitions.create_day`` adds it to new ones. Rows inserted through the parent
still fire only the parent's trigger, so no row is seen twice.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "sdk2_0001"
down_revision: str | None = "jobs_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHILDREN = (
    "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'predictions'::regclass"
)


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        DECLARE child text;
        BEGIN
          FOR child IN {_CHILDREN} LOOP
            EXECUTE format('CREATE OR REPLACE TRIGGER predictions_late_data AFTER INSERT ON %s '
                           'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                           'EXECUTE FUNCTION monitor_mark_late_windows()', child);
          END LOOP;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DO $$
        DECLARE child text;
        BEGIN
          FOR child IN {_CHILDREN} LOOP
            EXECUTE format('DROP TRIGGER IF EXISTS predictions_late_data ON %s', child);
          END LOOP;
        END $$;
        """
    )
