"""API tokens are stored hashed, verified, scoped and revocable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from monitor.errors import InputError
from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token, list_tokens, revoke_token, verify_token


def test_token_is_stored_hashed_and_verifies(clean_db: sa.Engine) -> None:
    with session_scope(clean_db) as s:
        token, info = create_token(s, "ci", "read")
    with clean_db.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash, prefix FROM api_tokens")).one()
    assert token not in stored.token_hash
    assert len(stored.token_hash) == 64
    assert token.startswith(stored.prefix)
    with session_scope(clean_db) as s:
        got = verify_token(s, token)
        assert got is not None and got.id == info.id
        assert got.allows("read") and not got.allows("admin")
        assert verify_token(s, token + "x") is None
        assert [t.name for t in list_tokens(s)] == ["ci"]


def test_revoked_token_no_longer_verifies(clean_db: sa.Engine) -> None:
    with session_scope(clean_db) as s:
        token, info = create_token(s, "old", "admin")
        assert revoke_token(s, info.id)
        assert verify_token(s, token) is None
        assert not revoke_token(s, info.id)


def test_bad_scope_is_refused(clean_db: sa.Engine) -> None:
    with session_scope(clean_db) as s, pytest.raises(InputError, match="unknown scope"):
        create_token(s, "x", "root")
