"""per-model results version, bumped by triggers: the key of the web's view cache

Revision ID: web3_0001
Revises: sdk2_0001
Create Date: 2026-11-29 16:30:00

The dashboard caches views computed from stored results per web process, keyed by the model's
results version. The previous key, ``max(runs.finished_at)``, is a transaction *start* time:
two overlapping completions can commit in the opposite order, and the later commit then leaves
the maximum unchanged, so a cached page stayed stale until the next window. Here every writing
transaction sets its model's row to a fresh value of a sequence, committed with the write: a
reader that sees a value has never seen it with other data, and any later commit changes it.
The sequence belongs to no column, so ``TRUNCATE ... RESTART IDENTITY`` (tests) does not reset
it and a value is never reused for other data. One primary-key read replaces a scan of the
model's runs.

What sets it (statement-level triggers with transition tables, one upsert per model and
statement, models in id order so concurrent writers cannot deadlock on the rows):
``runs`` that are succeeded (completions: results and window profiles are written in the
transaction that completes the run; claims, renewals and stale marks do not touch it),
``results`` (any other writer), ``baselines`` (the reference side of distributions, the
baseline shown with a model), ``features`` and ``model_versions`` (listed with a model) and
``models`` (name, task, description, window length). An ``INSERT ... ON CONFLICT DO NOTHING``
that adds nothing bumps nothing. Two completions of one model wait for each other only from
the completing UPDATE to commit (the results write), never while computing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "web3_0001"
down_revision: str | None = "sdk2_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, model id column, events); one trigger per event: a trigger with transition tables
# may have only one event
_SOURCES = (
    ("runs", "model_id", ("INSERT", "UPDATE", "DELETE")),  # succeeded rows only, see _FILTER
    ("results", "model_id", ("INSERT", "UPDATE", "DELETE")),
    ("baselines", "model_id", ("INSERT", "UPDATE", "DELETE")),
    ("features", "model_id", ("INSERT", "UPDATE", "DELETE")),
    ("model_versions", "model_id", ("INSERT", "UPDATE", "DELETE")),
    ("models", "id", ("UPDATE",)),
)


_FILTER = {"runs": "c.status = 'succeeded'"}
"""Which rows bump. Runs only when succeeded: a completion (with its results and profiles), or a
succeeded run inserted or deleted. Claims, lease renewals, stale marks and skips leave the stored
results as they are, and must not lock the counter row: claims are ``SKIP LOCKED`` so workers
never wait for each other, and late data marks runs stale from the ingest transaction."""


def _side(event: str) -> str:
    """The transition table a trigger reads: deleted rows for DELETE, else the new rows."""
    return "old" if event == "DELETE" else "new"


def _functions() -> list[tuple[str, str, str]]:
    """(table, model id column, side): one trigger function per transition table used."""
    return sorted({(t, c, _side(e)) for t, c, events in _SOURCES for e in events})


def upgrade() -> None:
    op.execute("CREATE SEQUENCE results_version_seq")
    op.create_table(
        "results_versions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_results_versions_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_results_versions")),
    )
    for table, column, side in _functions():
        op.execute(
            f"""
            CREATE FUNCTION monitor_bump_results_version_{table}_{side}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO results_versions AS v (model_id, version)
              SELECT id, nextval('results_version_seq') FROM (
                SELECT DISTINCT c.{column} AS id FROM {side}_rows c
                WHERE {_FILTER.get(table, "true")}
                  AND EXISTS (SELECT 1 FROM models m WHERE m.id = c.{column})
                ORDER BY 1) changed
              ON CONFLICT (model_id) DO UPDATE SET version = EXCLUDED.version;
              RETURN NULL;
            END $$
            """
        )
    for table, _, events in _SOURCES:
        for event in events:
            side = _side(event)
            op.execute(
                f"CREATE TRIGGER {table}_results_version_{event.lower()} AFTER {event} "
                f"ON {table} REFERENCING {side.upper()} TABLE AS {side}_rows "
                "FOR EACH STATEMENT "
                f"EXECUTE FUNCTION monitor_bump_results_version_{table}_{side}()"
            )
    # models with runs or results already: start their counter (else they would not be cached
    # until their next write)
    op.execute(
        "INSERT INTO results_versions (model_id, version) "
        "SELECT model_id, nextval('results_version_seq') FROM (SELECT DISTINCT model_id FROM runs) r"
    )


def downgrade() -> None:
    for table, _, events in _SOURCES:
        for event in events:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_results_version_{event.lower()} ON {table}")
    for table, _, side in _functions():
        op.execute(f"DROP FUNCTION IF EXISTS monitor_bump_results_version_{table}_{side}()")
    op.drop_table("results_versions")
    op.execute("DROP SEQUENCE IF EXISTS results_version_seq")
