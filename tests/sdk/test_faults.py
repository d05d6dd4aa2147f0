"""Fault tests against real processes: a Postgres killed mid-stream, SIGTERM during flush, exit
with an unreachable sink, raw fork, a pre-fork server, and a spool that is unwritable or full."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from monitor import Monitor
from tests.http import free_port

ROOT = Path(__file__).resolve().parents[2]


def _where(model: str) -> str:
    return (
        "SELECT count(*), count(DISTINCT record_id) FROM predictions "
        f"WHERE model_id = (SELECT id FROM models WHERE name = '{model}')"
    )


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def _spawn(script: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _flush_until(client: Monitor, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.flush(5):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_postgres_killed_mid_stream_loses_and_duplicates_nothing(
    killable_pg: Any, tmp_path: Path
) -> None:
    client = Monitor(
        "killed", "1", dsn=killable_pg.dsn, spool_dir=tmp_path, interval=0.2, timeout=3
    )

    def outage() -> None:
        time.sleep(1.5)
        killable_pg.stop("immediate")
        time.sleep(1.5)
        killable_pg.start()

    chaos = threading.Thread(target=outage)
    chaos.start()
    logged = 0
    worst = 0.0
    start = time.monotonic()
    while time.monotonic() - start < 5.0:  # ~1k records/s, bounded in time
        for _ in range(10):
            t0 = time.perf_counter()
            client.log({"x": float(logged), "c": "a"}, 0.5, id=f"k{logged}")
            worst = max(worst, time.perf_counter() - t0)
            logged += 1
        time.sleep(0.01)
    chaos.join()
    assert _flush_until(client, 40), client.stats()
    stats = client.stats()
    client.shutdown(5)
    rows, distinct = killable_pg.count(_where("killed"))
    assert rows == distinct == logged, stats
    assert stats["dropped_total"] == 0 and stats["spooled_records"] == 0
    assert stats["export_failures"] >= 1 and stats["replayed_records"] > 0  # it did spool
    assert worst < 0.05  # the caller never waited on the outage


@pytest.mark.slow
def test_postgres_killed_during_log_batch_loses_and_duplicates_nothing(
    killable_pg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of id-less rows: the ids (UUIDv7) and times fixed per block survive the spool."""
    from monitor.sdk import batch as batch_module

    monkeypatch.setattr(batch_module, "BULK_BATCH", 2_000)
    client = Monitor("bulk-killed", "1", dsn=killable_pg.dsn, spool_dir=tmp_path, timeout=3)
    stopped = threading.Event()

    def rows() -> Any:
        for i in range(30_000):
            if i == 8_000:
                killable_pg.stop("immediate")
            if i == 20_000:
                killable_pg.start()
                stopped.set()
            yield {"x": float(i), "c": "a", "prediction": 0.5}

    assert client.log_batch(rows()) == 30_000
    assert stopped.is_set()
    assert _flush_until(client, 40), client.stats()
    stats = client.stats()
    client.shutdown(5)
    rows_in, distinct = killable_pg.count(_where("bulk-killed"))
    assert rows_in == distinct == 30_000, stats
    assert stats["dropped_total"] == 0 and stats["spooled_records"] == 0
    assert stats["export_failures"] >= 1 and stats["replayed_records"] > 0  # it did spool


@pytest.mark.slow
def test_sigterm_during_flush_exits_bounded_and_loses_nothing(
    killable_pg: Any, tmp_path: Path
) -> None:
    script = _script(
        tmp_path,
        "term",
        """
        import signal, sys, time
        import monitor
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        monitor.init(model="term", version="1", dsn=sys.argv[1], spool_dir=sys.argv[2],
                     queue_size=50_000, batch_size=500, interval=3600, exit_timeout=5)
        for i in range(20_000):
            monitor.log({"x": float(i)}, 0, id=f"t{i}")
        print("flushing", flush=True)
        monitor.flush(30)
        time.sleep(30)
        """,
    )
    proc = _spawn(script, killable_pg.dsn, str(tmp_path / "spool"))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "flushing"
    time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert time.monotonic() - t0 < 5 + 1
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    rows, distinct = killable_pg.count(_where("term"))
    assert rows == distinct == 20_000


@pytest.mark.slow
def test_exit_with_unreachable_sink_is_bounded_and_spool_is_adopted(
    killable_pg: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    script = _script(
        tmp_path,
        "dead_sink",
        """
        import sys, time
        import monitor
        monitor.init(model="orphan", version="1", dsn=sys.argv[1], spool_dir=sys.argv[2],
                     exit_timeout=2, timeout=2)
        for i in range(3_000):
            monitor.log({"x": float(i)}, 0, id=f"o{i}")
        print("exiting", flush=True)
        """,
    )
    killable_pg.stop("immediate")
    try:
        proc = _spawn(script, killable_pg.dsn, str(spool))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "exiting"
        t0 = time.monotonic()
        proc.wait(timeout=20)
        assert time.monotonic() - t0 < 2 + 1  # exit_timeout + 1 s
        assert proc.returncode == 0
    finally:
        killable_pg.start()
    segments = list(spool.rglob("*.seg"))
    assert segments, "the records should have been spooled"
    # The next process with the same sink adopts the dead process's spool and replays it.
    heir = Monitor("orphan", "1", dsn=killable_pg.dsn, spool_dir=spool)
    assert _flush_until(heir, 20)
    heir.shutdown()
    rows, distinct = killable_pg.count(_where("orphan"))
    assert rows == distinct == 3_000
    assert not list(spool.rglob("*.seg"))


def test_raw_fork_child_gets_fresh_state_and_parent_records_land_once(
    killable_pg: Any, tmp_path: Path
) -> None:
    client = Monitor("forked", "1", dsn=killable_pg.dsn, spool_dir=tmp_path, interval=3600)
    for i in range(100):
        client.log({"x": float(i)}, 0, id=f"p{i}")
    assert client._worker.thread is not None  # a running worker and queued records at fork time
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            fresh = client.stats()["enqueued"] == 0 and len(client._worker.queue) == 0
            for i in range(50):
                client.log({"x": float(i)}, 0, id=f"c{i}")
            code = 0 if fresh and client.flush(10) and client.stats()["exported"] == 50 else 1
        finally:
            os._exit(code)
    for i in range(100, 150):
        client.log({"x": float(i)}, 0, id=f"p{i}")
    assert client.flush(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.shutdown()
    rows, distinct = killable_pg.count(_where("forked"))
    assert rows == distinct == 200


@pytest.mark.slow
def test_prefork_server_workers_each_log_exactly_once(killable_pg: Any, tmp_path: Path) -> None:
    """The gunicorn --preload model: init and log in the master, fork workers, SIGTERM."""
    port = free_port()
    script = _script(
        tmp_path,
        "prefork",
        """
        import os, signal, socket, sys
        import monitor
        monitor.init(model="prefork", version="1", dsn=sys.argv[1], spool_dir=sys.argv[2])
        for i in range(10):
            monitor.log({"x": float(i)}, 0, id=f"master{i}")
        listener = socket.create_server(("127.0.0.1", int(sys.argv[3])), backlog=64)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the master sigwaits
        workers = []
        for w in range(3):
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
                while True:
                    conn, _ = listener.accept()
                    with conn:
                        rid = conn.recv(100).decode().strip()
                        monitor.log({"x": 1.0, "worker": str(w)}, 1, id=rid)
                        conn.sendall(b"ok")
            workers.append(pid)
        print("ready", flush=True)
        signal.sigwait({signal.SIGTERM})
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in workers]
        print("workers", codes, flush=True)
        """,
    )
    proc = _spawn(script, killable_pg.dsn, str(tmp_path / "spool"), str(port))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    for i in range(300):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"req{i}".encode())
            assert sock.recv(10) == b"ok"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert "workers [0, 0, 0]" in out, err
    assert proc.returncode == 0
    rows, distinct = killable_pg.count(_where("prefork"))
    assert rows == distinct == 310


def test_unwritable_spool_directory_keeps_serving_and_counts_loss(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    client = Monitor("ro", "1", dsn=dead, spool_dir=blocker / "spool", timeout=1)
    for i in range(500):
        client.log({"x": float(i)}, 0)
    assert client.flush(3) is False
    stats = client.stats()
    client.shutdown(2)
    assert stats["enqueued"] == 500
    assert stats["dropped"].get("spool_error", 0) == 500


def test_full_spool_evicts_oldest_and_counts(tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    client = Monitor(
        "full", "1", dsn=dead, spool_dir=tmp_path, spool_max_bytes=64 * 1024, batch_size=100,
        timeout=1,
    )  # fmt: skip
    for i in range(3_000):
        client.log({"x": float(i), "pad": "y" * 50}, 0)
    client.flush(3)
    stats = client.stats()
    client.shutdown(2)
    assert stats["dropped"].get("spool_full", 0) > 0
    assert stats["spooled_bytes"] <= 64 * 1024
    # Nothing vanished: every record is exported, spooled or counted as dropped.
    assert stats["spooled_records"] + stats["dropped_total"] == 3_000


def test_disk_full_while_spooling_keeps_serving_and_counts_loss(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past a size, as a full disk would."""
    script = _script(
        tmp_path,
        "diskfull",
        """
        import json, resource, signal, sys
        import monitor
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        monitor.init(model="df", version="1", dsn=sys.argv[1], spool_dir=sys.argv[2],
                     batch_size=100, timeout=1)
        for i in range(2_000):
            monitor.log({"x": float(i), "pad": "z" * 40}, 0)
        ok = monitor.flush(3)
        print(json.dumps(monitor.stats()), flush=True)
        """,
    )
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    proc = _spawn(script, dead, str(tmp_path / "spool"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    import json

    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["enqueued"] == 2_000
    assert stats["dropped"].get("spool_error", 0) > 0
    assert stats["spooled_records"] + stats["dropped_total"] == 2_000
