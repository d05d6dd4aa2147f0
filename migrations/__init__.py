"""Alembic migrations of monitor (shipped in the wheel as ``monitor._migrations``)."""
