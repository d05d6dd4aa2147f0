"""alert rules evaluate windows as they complete; alerts keep their episode's windows

Revision ID: alerts_0003
Revises: alerts_0002

Rules used to step through windows newer than the newest they had evaluated, so a window that
completed after a newer one (the worker computes a catch-up newest first) was never evaluated
and its alerts were lost. Now a statement trigger on ``results`` records, per model, family
and window, a fresh ``result_completion_seq`` value in the transaction that writes the
window's results (``result_completions``); each rule records the completions it evaluated
(``alert_rule_windows``), and evaluates every other one, whatever order they came in.

Alerts gain the windows of their episode (``fired_window``, ``cleared_window``), the window end
and a structured threshold for payloads, why they resolved, and what receivers were last told
(``notified``), so an alert that clears before its "firing" went out is told first. The unique
index on open fingerprints now covers only live episodes (not cleared ones).

Existing data: completions are recorded for the last 30 days of results; rules have seen the
windows up to their old cursor; alerts get their windows and ``notified`` from what they had.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "alerts_0003"
down_revision: str | None = "alerts_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALERT_COLUMNS = (
    ("window_end", sa.DateTime(timezone=True)),
    ("threshold", postgresql.JSONB(astext_type=sa.Text())),
    ("fired_window", sa.DateTime(timezone=True)),
    ("cleared_window", sa.DateTime(timezone=True)),
    ("resolve_reason", sa.Text()),
    ("notified", sa.Text()),
)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE result_completion_seq")
    op.create_table(
        "result_completions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "completed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_result_completions_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_id", "family", "window_start", name=op.f("pk_result_completions")
        ),
    )
    op.create_table(
        "alert_rule_windows",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_rule_windows_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rule_id", "window_start", name=op.f("pk_alert_rule_windows")),
    )
    op.execute(
        """
        CREATE FUNCTION monitor_record_result_completions() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO result_completions AS c (model_id, family, window_start, seq, completed_at)
          SELECT model_id, family, window_start, nextval('result_completion_seq'), now() FROM (
            SELECT DISTINCT n.model_id, n.family, n.window_start FROM new_rows n
            WHERE EXISTS (SELECT 1 FROM models m WHERE m.id = n.model_id)
            ORDER BY 1, 2, 3) changed
          ON CONFLICT (model_id, family, window_start)
          DO UPDATE SET seq = EXCLUDED.seq, completed_at = EXCLUDED.completed_at;
          RETURN NULL;
        END $$
        """
    )
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER results_completion_{event.lower()} AFTER {event} ON results "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION monitor_record_result_completions()"
        )
    op.execute(
        "INSERT INTO result_completions (model_id, family, window_start, seq) "
        "SELECT model_id, family, window_start, nextval('result_completion_seq') FROM ("
        "  SELECT DISTINCT model_id, family, window_start FROM results"
        "  WHERE window_start > now() - interval '30 days' ORDER BY 1, 2, 3) r"
    )
    op.execute(
        "INSERT INTO alert_rule_windows (rule_id, window_start, seq) "
        "SELECT r.id, c.window_start, c.seq FROM alert_rules r JOIN result_completions c "
        "  ON c.model_id = r.model_id AND c.family = split_part(r.metric, '.', 1) "
        "WHERE r.evaluated_through IS NOT NULL AND c.window_start <= r.evaluated_through"
    )

    for name, type_ in _ALERT_COLUMNS:
        op.add_column("alerts", sa.Column(name, type_, nullable=True))
    op.execute(
        "UPDATE alerts SET fired_window = window_start, "
        "  cleared_window = CASE WHEN state = 'resolved' THEN window_start END, "
        "  resolve_reason = CASE WHEN state = 'resolved' THEN 'clean' END, "
        "  notified = CASE WHEN last_notified_at IS NULL THEN NULL "
        "    WHEN state = 'resolved' AND last_notified_at >= resolved_at THEN 'resolved' "
        "    ELSE 'firing' END"
    )
    op.drop_index("uq_alerts_fingerprint_open", table_name="alerts")
    op.create_index(
        "uq_alerts_fingerprint_open",
        "alerts",
        ["fingerprint"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved' AND cleared_window IS NULL"),
    )
    op.create_index("ix_alerts_rule_id_state", "alerts", ["rule_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_alerts_rule_id_state", table_name="alerts")
    op.drop_index("uq_alerts_fingerprint_open", table_name="alerts")
    # a cleared episode still waiting for its "firing" resolves: only one may stay open
    op.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = now() "
        "WHERE state <> 'resolved' AND cleared_window IS NOT NULL"
    )
    op.create_index(
        "uq_alerts_fingerprint_open",
        "alerts",
        ["fingerprint"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved'"),
    )
    for name, _ in reversed(_ALERT_COLUMNS):
        op.drop_column("alerts", name)
    for event in ("INSERT", "UPDATE"):
        op.execute(f"DROP TRIGGER IF EXISTS results_completion_{event.lower()} ON results")
    op.execute("DROP FUNCTION IF EXISTS monitor_record_result_completions()")
    op.drop_table("alert_rule_windows")
    op.drop_table("result_completions")
    op.execute("DROP SEQUENCE IF EXISTS result_completion_seq")
