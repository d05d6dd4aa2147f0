"""runs remember where a window's rows were profiled; open windows of Spark streams

Revision ID: spark_0001
Revises: web4_0001
Create Date: 2026-12-06 12:00:00

``runs.source`` says where a window's profiles came from: ``predictions`` (the window job read
the rows logged through the SDK or the collector) or ``spark`` (``monitor.spark`` profiled a
DataFrame on Spark executors and stored the window whole). A Spark window is never recomputed
from ``predictions``: rows the SDK logs into it later are not counted, and the window job says
so on the run instead (see ``monitor.spark``'s module docstring for the rule).

``stream_windows`` keeps the merged partial profiles of each window a Structured Streaming
query still has open (one row per model, stream and window, replaced per micro-batch);
``stream_states`` keeps each stream's last committed micro-batch, so a batch Spark re-runs
after a failure is applied once, and its event-time high-water mark and late-row count.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "spark_0001"
down_revision: str | None = "web4_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "runs",
        sa.Column("source", sa.Text(), server_default=sa.text("'predictions'"), nullable=False),
    )
    op.create_check_constraint("source", "runs", "source IN ('predictions', 'spark')")
    op.create_table(
        "stream_states",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("last_batch_id", sa.BigInteger(), nullable=True),
        sa.Column("high_water", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late_rows", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_stream_states_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "stream", name=op.f("pk_stream_states")),
    )
    op.create_table(
        "stream_windows",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("state", postgresql.BYTEA(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_stream_windows_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_id", "stream", "window_start", name=op.f("pk_stream_windows")
        ),
    )


def downgrade() -> None:
    op.drop_table("stream_windows")
    op.drop_table("stream_states")
    op.drop_constraint(op.f("ck_runs_source"), "runs", type_="check")
    op.drop_column("runs", "source")
