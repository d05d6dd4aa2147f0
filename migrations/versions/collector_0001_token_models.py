"""api_tokens.models: an ingest token may be limited to named models

Revision ID: collector_0001
Revises: alerts_0003
Create Date: 2026-12-06 08:00:00

``monitor token create --scope ingest --models fraud,credit``: the token may write only to
those models (NULL: any model, as every token before this revision). The scope change of the
same release (ingest tokens no longer read) needs no schema change: what a scope grants is in
``monitor.storage.tokens.SCOPE_GRANTS``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "collector_0001"
down_revision: str | None = "alerts_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("models", ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("api_tokens", "models")
