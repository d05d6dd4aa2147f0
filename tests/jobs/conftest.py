from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from monitor.settings import Settings


@pytest.fixture()
def db(clean_db: sa.Engine) -> Iterator[sa.Engine]:
    yield clean_db


@pytest.fixture()
def job_settings() -> Settings:
    return Settings(
        lease_seconds=30,
        min_segment_rows=20,
        catchup_max_age_days=14,
        multivariate_methods=["pca_reconstruction"],
    )
