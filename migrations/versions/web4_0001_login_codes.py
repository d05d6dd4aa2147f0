"""one-time login codes: short-lived, single-use, stored hashed (no tokens in login URLs)

Revision ID: web4_0001
Revises: ingest_0002
Create Date: 2026-12-01 10:00:00

The demo's login link carried the admin API token, which a browser keeps in its history.
``monitor login-link`` and ``monitor demo`` now print a link with a one-time code instead: its
SHA-256 is stored with the token it opens a session for, it expires after ten minutes, and
redeeming it stamps ``used_at`` in the same statement that checks it, so it works once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "web4_0001"
down_revision: str | None = "ingest_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_codes",
        sa.Column("code_hash", sa.Text(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_login_codes_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_login_codes")),
    )


def downgrade() -> None:
    op.drop_table("login_codes")
