"""``monitor token create --scope ingest --models ...`` as users run it."""

from __future__ import annotations

import sqlalchemy as sa

from tests.cli.test_cli import run


def test_token_limited_to_models(database_url: str, engine: sa.Engine) -> None:
    env = {"MONITOR_DATABASE_URL": database_url}
    name = "cli-serving-limited"
    made = run(
        "token", "create", "--name", name, "--scope", "ingest", "--models", "fraud,credit", env=env
    )
    try:
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip().startswith("mon_") and "models fraud, credit" in made.stderr
        listed = run("token", "list", env=env)
        assert f"{name}\tingest\tfraud,credit\t" in listed.stdout
        refused = run(
            "token", "create", "--name", name, "--scope", "read", "--models", "fraud", env=env
        )
        assert refused.returncode == 2 and "only ingest tokens" in refused.stderr
        assert "Traceback" not in refused.stderr
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT models FROM api_tokens WHERE name = :n"), {"n": name}
            ).scalar_one()
        assert stored == ["fraud", "credit"]
    finally:  # only this test's token: a full truncation costs seconds
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM api_tokens WHERE name = :n"), {"n": name})
