"""Delivery guarantees against real processes and a disposable Postgres: no record lost without a
trace, a spool that drains itself, exit and SIGTERM behaviour (issue 13, "Silent loss")."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor import Monitor
from monitor.sdk.spool import HEADER, scan_segment
from monitor.sdk.wire import decode_batch
from tests.http import free_port
from tests.sdk.conftest import count

ROOT = Path(__file__).resolve().parents[2]


def _where(model: str) -> str:
    return (
        "SELECT count(*), count(DISTINCT record_id) FROM predictions "
        f"WHERE model_id = (SELECT id FROM models WHERE name = '{model}')"
    )


def _run(tmp_path: Path, name: str, body: str, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _frames(root: Path) -> list[tuple[int, list[str]]]:
    """(records, ids) of every frame spooled under ``root``."""
    out = []
    for path in sorted(root.rglob("*.seg")):
        seg = scan_segment(path)
        data = path.read_bytes()
        for offset, length, records, _ in seg.frames or []:
            payload = data[offset + HEADER.size : offset + HEADER.size + length]
            _, _, preds, acts = decode_batch(payload)
            out.append((records, [str(r[0]) for r in [*preds, *acts]]))
    return out


def _until(predicate: Any, seconds: float = 30.0) -> bool:
    """Poll a condition (bounded); for waiting on another thread's work, never for timing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_a_nul_in_a_feature_name_costs_only_its_own_record(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    """999 good records and one whose feature name holds a NUL: the database refuses that
    name while the schema grows. 999 rows, 1 dead letter, counted."""
    client = Monitor("nul", "1", dsn=dsn, spool_dir=spool_dir)
    for i in range(999):
        client.log({"a": float(i), "b": "x"}, 0.5, id=f"n{i}")
    client.log({"a\x00z": 1.0, "b": "x"}, 0.5, id="bad")
    client.log({"ok": 1.0, "@prediction": 2.0}, 0.5, id="reserved")  # a result column's name
    assert client.flush(10)
    stats = client.stats()
    client.shutdown()
    assert count(pg, "predictions") == 999
    letters = pg.execute("SELECT record, error FROM dead_letters ORDER BY id").fetchall()
    assert len(letters) == 2 and all("feature name" in e for _, e in letters)
    assert {json.loads(r)["id"] for r, _ in letters} == {"bad", "reserved"}
    assert stats["dead_letters"] == 2 and stats["exported"] == 999
    assert stats["dropped_total"] == 0
    names = {r[0] for r in pg.execute("SELECT name FROM features").fetchall()}
    assert names == {"a", "b"}  # neither bad name registered, nor "ok" of the refused record


def test_a_database_refusal_while_registering_is_isolated(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    """Any exception in the export of a batch ends as rows or dead letters: a name the database
    itself refuses (here: a CHECK the test adds) is found by registering names one by one."""
    pg.execute(
        "ALTER TABLE features ADD CONSTRAINT no_forbidden CHECK (name <> 'forbidden')"
    )
    try:
        client = Monitor("refusal", "1", dsn=dsn, spool_dir=spool_dir)
        for i in range(20):
            client.log({"a": float(i), "fresh": "y"}, 0.5, id=f"g{i}")
        client.log({"a": 1.0, "forbidden": 2.0}, 0.5, id="refused")
        assert client.flush(10)
        stats = client.stats()
        client.shutdown()
    finally:
        pg.execute("ALTER TABLE features DROP CONSTRAINT no_forbidden")
    assert count(pg, "predictions") == 20
    assert stats["dead_letters"] == 1 and stats["dropped_total"] == 0
    (error,) = pg.execute("SELECT error FROM dead_letters").fetchone() or ("",)
    assert "forbidden" in error and "CheckViolation" in error


def test_the_model_feature_cap_counts_what_it_does_not_store(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = Monitor("capped", "1", dsn=dsn, spool_dir=spool_dir, max_features=3)
    for i in range(10):
        client.log({f"f{k}": float(k) for k in range(5)}, 0.5, id=f"c{i}")
    assert client.flush(10)
    stats = client.stats()
    client.shutdown()
    assert count(pg, "predictions") == 10
    assert count(pg, "features") == 3
    assert stats["cleaned"]["features_over_cap"] == 20  # 2 values of each of 10 records
    assert count(pg, "predictions", "extra IS NOT NULL") == 0


@pytest.mark.slow
def test_flush_replays_the_whole_spool_within_its_timeout(
    killable_pg: Any, tmp_path: Path
) -> None:
    """30,000 records spooled during an outage; the database back; one flush(60) replays them
    all (it used to give up after one replay round, ~20 frames)."""
    killable_pg.stop("immediate")
    try:
        client = Monitor(
            "replay", "1", dsn=killable_pg.dsn, spool_dir=tmp_path, queue_size=40_000,
            interval=3600, timeout=2,
        )  # fmt: skip
        for i in range(30_000):
            client.log({"x": float(i), "c": "k"}, 0.5, id=f"s{i}")
        assert client.flush(1) is False  # the sink is down
        assert _until(lambda: client.stats()["spooled_records"] == 30_000), client.stats()
    finally:
        killable_pg.start()
    assert client.flush(60), client.stats()
    stats = client.stats()
    client.shutdown()
    assert killable_pg.count(_where("replay")) == (30_000, 30_000)
    assert stats["spooled_records"] == 0 and stats["replayed_records"] == 30_000
    assert stats["enqueued"] == stats["exported"] == 30_000 and stats["dropped_total"] == 0


def test_an_outage_spools_full_frames_not_one_per_flush(tmp_path: Path) -> None:
    """Flushes during an outage do not cut frames short: records are held and spooled in
    frames of batch_size (the rest at shutdown). One fsync'd frame per flush made replay crawl."""
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    client = Monitor(
        "frames", "1", dsn=dead, spool_dir=tmp_path, batch_size=500, interval=3600, timeout=1
    )
    for burst in range(25):
        for i in range(50):
            client.log({"x": float(i)}, 0, id=f"f{burst}-{i}")
        assert client.flush(0.02) is False
    client.shutdown(5)
    frames = _frames(client.spool_root)
    assert sorted(n for n, _ in frames) == [250, 500, 500], [n for n, _ in frames]
    ids = [i for _, batch in frames for i in batch]
    assert len(ids) == len(set(ids)) == 1_250


def _orphan_spool(root: Path, model: str, frames: int, per_frame: int) -> None:
    """A real process spools ``frames`` batches under ``root`` and dies without replaying."""
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from monitor.sdk.records import PredictionRecord
        from monitor.sdk.spool import Spool
        from monitor.sdk.wire import encode_batch
        spool = Spool(Path(sys.argv[1]))
        ns = time.time_ns()
        for f in range({frames}):
            recs = [PredictionRecord(f"o{{f}}-{{i}}", ns, {{"x": float(i)}}, 0.5)
                    for i in range({per_frame})]
            spool.append(encode_batch({model!r}, "1", recs, [])[0], len(recs))
        os._exit(0)
        """
    )
    subprocess.run(
        [sys.executable, "-c", code, str(root)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def test_taking_over_a_dead_process_spool_does_not_starve_own_records(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    """The heir's own records go straight to the sink while the adopted backlog replays in
    between (they used to queue behind it in the spool); both land exactly once."""
    root = Monitor("heir", "1", dsn=dsn, spool_dir=spool_dir).spool_root
    _orphan_spool(root, "heir", frames=20, per_frame=1_000)
    client = Monitor("heir", "1", dsn=dsn, spool_dir=spool_dir, batch_size=100)
    for i in range(2_000):
        client.log({"x": float(i)}, 0.5, id=f"own{i}")
    assert client.flush(60), client.stats()
    stats = client.stats()
    spooled_own = client._worker.counters.spooled_records
    client.shutdown()
    assert spooled_own == 0  # never queued behind the adopted frames
    assert stats["adopted_records"] == 20_000 and stats["exported"] == 2_000
    assert count(pg, "predictions") == 22_000
    assert not list(root.rglob("*.seg"))


@pytest.fixture()
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield int(server.getsockname()[1])


def test_exit_with_a_black_holed_database_spools_what_it_could_not_export(
    black_hole: int, tmp_path: Path
) -> None:
    """The sink accepts connections and never answers: the worker is stuck in I/O, so the exit
    hook writes the queued and in-flight records to the spool itself within exit_timeout."""
    spool = tmp_path / "spool"
    proc = _run(
        tmp_path,
        "black_hole",
        """
        import sys
        import monitor
        monitor.init(model="bh", version="1", dsn=sys.argv[1], spool_dir=sys.argv[2],
                     exit_timeout=2, timeout=60)
        for i in range(3_000):
            monitor.log({"x": float(i)}, 0, id=f"b{i}")
        print("exiting", flush=True)
        """,
        f"postgresql://postgres@127.0.0.1:{black_hole}/none",
        str(spool),
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "exiting"
    ids = [i for _, batch in _frames(spool) for i in batch]
    assert set(ids) == {f"b{i}" for i in range(3_000)}


SIGTERM_SCRIPT = """
    import signal, sys, time
    import monitor
    if sys.argv[3] == "handler":
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
    monitor.init(model=sys.argv[4], version="1", dsn=sys.argv[1], spool_dir=sys.argv[2],
                 interval=3600, batch_size=10_000, queue_size=20_000,
                 flush_on_signals=sys.argv[3] != "default")
    for i in range(5_000):
        monitor.log({"x": float(i)}, 0, id=f"t{i}")
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "returncode", "landed"),
    [
        ("opt-in", -signal.SIGTERM, 5_000),  # flushed, then died of the signal as before
        ("handler", 7, 5_000),  # flushed, then the host's own handler ran
        ("default", -signal.SIGTERM, 0),  # not opted in: the queue dies with the process
    ],
)
def test_sigterm_flushes_only_when_opted_in_and_chains_to_the_previous_handler(
    killable_pg: Any, tmp_path: Path, mode: str, returncode: int, landed: int
) -> None:
    model = f"term-{mode}"
    proc = _run(
        tmp_path, "term", SIGTERM_SCRIPT, killable_pg.dsn, str(tmp_path / "spool"), mode, model
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == returncode, proc.stderr.read() if proc.stderr else ""
    if landed:
        assert killable_pg.count(_where(model)) == (landed, landed)
    else:
        assert killable_pg.count(_where(model))[0] == 0
        assert not list((tmp_path / "spool").rglob("*.seg"))


def test_a_database_that_stops_answering_mid_export_does_not_stall_the_worker(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    """The server accepts the COPY and then waits forever (here: on a table lock another
    session holds). After ``timeout`` the watchdog cuts the connection: the batch is spooled
    and retried, and lands once the database answers again."""
    client = Monitor("stuck", "1", dsn=dsn, spool_dir=spool_dir, timeout=1, interval=0.2)
    client.log({"x": 0.0}, 0.5, id="warm")  # registers model, version and features first
    assert client.flush(10)
    with psycopg.connect(dsn) as holder:  # a transaction: the lock is held until rollback
        holder.execute("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
        for i in range(100):
            client.log({"x": float(i)}, 0.5, id=f"s{i}")
        assert _until(lambda: client.stats()["spooled_records"] == 100), client.stats()
        stats = client.stats()
        assert stats["export_failures"] >= 1
        assert "no answer from the database within 1 s" in (stats["last_error"] or "")
        holder.rollback()
    assert client.flush(30), client.stats()
    client.shutdown()
    assert count(pg, "predictions") == 101


def test_a_record_over_a_database_limit_is_a_dead_letter_not_an_outage(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    """An id too long for the primary-key index fails with SQLSTATE class 54 (an
    OperationalError, like an outage): it is the data's fault, so the record is isolated and
    dead-lettered instead of being spooled and retried forever. A feature name too long for
    the features index is refused before it reaches the database."""
    client = Monitor("limits", "1", dsn=dsn, spool_dir=spool_dir)
    for i in range(50):
        client.log({"x": float(i)}, 0.5, id=f"ok{i}")
    client.log({"x": 1.0}, 0.5, id=base64.b64encode(os.urandom(15_000)).decode())
    client.log({"x": 1.0, "n" * 600: 2.0}, 0.5, id="long-name")
    assert client.flush(20), client.stats()
    stats = client.stats()
    client.shutdown()
    assert count(pg, "predictions") == 50
    assert stats["dead_letters"] == 2 and stats["spooled_records"] == 0
    assert stats["export_failures"] == 0 and stats["dropped_total"] == 0
    errors = [e for (e,) in pg.execute("SELECT error FROM dead_letters ORDER BY id")]
    assert any("ProgramLimitExceeded" in e or "index row" in e for e in errors), errors
    assert any("longer than 500 characters" in e for e in errors), errors
