"""``monitor spark profile`` / ``baseline``: Parquet in, windows stored, a line per window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.cli import main
from tests.spark.data import baseline, closed_hours_start, predictions, table


def test_profile_a_parquet_source_with_progress(
    spark: Any,
    db: sa.Engine,
    settings_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start = closed_hours_start(2)
    baseline(3_000).to_parquet(tmp_path / "train.parquet")
    scored = predictions(start, 2, 1_500, seed=41)
    # Spark reads microsecond timestamps (pandas writes nanoseconds unless told)
    scored.to_parquet(tmp_path / "scored.parquet", coerce_timestamps="us")
    assert (
        main(
            [
                "spark",
                "baseline",
                "m",
                "--version",
                "v1",
                "--source",
                str(tmp_path / "train.parquet"),
                "--prediction",
                "prediction",
                "--proba",
                "proba",
                "--target",
                "target",
            ]
        )
        == 0
    )
    assert "baseline m v1: 3,000 rows" in capsys.readouterr().out
    code = main(
        [
            "spark",
            "profile",
            "m",
            "--version",
            "v1",
            "--source",
            str(tmp_path / "scored.parquet"),
            "--proba",
            "proba",
            "--id",
            "id",
            "--segment",
            "region",
            "--latency",
            "latency_ms",
            "--conf",
            "spark.sql.shuffle.partitions=2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if "rows" in line and "segments" in line]
    assert len(lines) == 2 and "1,500 rows" in lines[0] and lines[1].endswith("drifted: x")
    assert "2 windows, 3,000 rows" in out
    runs = table(db, "SELECT job, source, status FROM runs ORDER BY job, window_start")
    assert runs == [
        {"job": job, "source": "spark", "status": "succeeded"}
        for job in ("performance", "performance", "window", "window")
    ]
    # an empty range is missing data: its own exit code
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "spark",
                "profile",
                "m",
                "--version",
                "v1",
                "--source",
                str(tmp_path / "scored.parquet"),
                "--from",
                "2020-01-01",
                "--to",
                "2020-01-02",
            ]
        )
    assert exited.value.code == 3
    assert "no rows to profile" in capsys.readouterr().err


def test_unreadable_sources_and_columns_are_one_line_errors(
    spark: Any,
    db: sa.Engine,
    settings_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["spark", "profile", "m", "--version", "v1", "--source", str(tmp_path / "nope")])
    assert code == 2 and "cannot read" in capsys.readouterr().err
    predictions(closed_hours_start(1), 1, 10).to_parquet(tmp_path / "nanos.parquet")
    code = main(
        ["spark", "profile", "m", "--version", "v1", "--source", str(tmp_path / "nanos.parquet")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Illegal Parquet type" in err and len(err.strip().splitlines()) == 1
    code = main(["spark", "profile", "m", "--version", "v1", "--source", "x", "--format", "delta"])
    assert code == 2 and "delta" in capsys.readouterr().err.lower()
