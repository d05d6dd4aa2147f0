"""alert rules record their evaluation errors; channels can be marked default

Revision ID: alerts_0002
Revises: spark_0001

A rule whose evaluation fails is marked errored (message, time) and counted, instead of
stopping its model's other rules; the count feeds ``monitor_rule_evaluation_errors_total``.

Default rules (and rules naming no channel) notify the channels marked default instead of
every channel. Existing installations keep their behaviour: every existing channel is marked
default, and the default rules that routed to every channel ("*") now route to the default
channels ("@default"). Channels added from now on are not default unless asked for.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "alerts_0002"
down_revision: str | None = "spark_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alert_rules", sa.Column("error", sa.Text(), nullable=True))
    op.add_column("alert_rules", sa.Column("error_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "alert_rules",
        sa.Column("errors_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "channels",
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute("UPDATE channels SET is_default = true")
    op.execute(
        "UPDATE alert_rules SET channels = ARRAY['@default'] "
        "WHERE source = 'default' AND channels = ARRAY['*']"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE alert_rules SET channels = ARRAY['*'] "
        "WHERE source = 'default' AND channels = ARRAY['@default']"
    )
    op.drop_column("channels", "is_default")
    op.drop_column("alert_rules", "errors_total")
    op.drop_column("alert_rules", "error_at")
    op.drop_column("alert_rules", "error")
