"""``monitor token create --scope ingest --models ...`` as users run it."""

from __future__ import annotations

import sqlalchemy as sa

from tests.cli.test_cli import run


def test_token_limited_to_models(database_url: str, clean_db: sa.Engine) -> None:
    env = {"MONITOR_DATABASE_URL": database_url}
    made = run(
        "token",
        "create",
        "--name",
        "serving",
        "--scope",
        "ingest",
        "--models",
        "fraud,credit",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith("mon_") and "models fraud, credit" in made.stderr
    listed = run("token", "list", env=env)
    assert "serving\tingest\tfraud,credit\t" in listed.stdout
    refused = run("token", "create", "--name", "r", "--scope", "read", "--models", "fraud", env=env)
    assert refused.returncode == 2 and "only ingest tokens" in refused.stderr
    assert "Traceback" not in refused.stderr
    with clean_db.connect() as conn:
        stored = conn.execute(sa.text("SELECT models FROM api_tokens")).scalar_one()
    assert stored == ["fraud", "credit"]
