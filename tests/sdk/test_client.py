"""``log()``'s closure (client._hot_log): it starts the worker, wakes it for a full batch, counts
bad input, and references taken before a fork keep working in the child."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg

from monitor import Monitor
from tests.sdk.conftest import count


def test_the_first_record_starts_the_worker_and_a_full_batch_wakes_it(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    # interval=3600: only the batch-size wake-up can make the worker export within the test
    client = Monitor("hot", "1", dsn=dsn, spool_dir=spool_dir, batch_size=50, interval=3600)
    assert client._worker.thread is None
    client.log({"x": 1.0}, 0, id="first")
    assert client._worker.thread is not None
    deadline = time.monotonic() + 20
    i = 0
    while count(pg, "predictions") < 50 and time.monotonic() < deadline:
        for _ in range(50):  # paced: each batch is a separate wake-up
            i += 1
            client.log({"x": float(i)}, 0, id=f"r{i}")
        time.sleep(0.2)
    assert count(pg, "predictions") >= 50
    assert client.flush(10)
    assert count(pg, "predictions") == i + 1
    client.shutdown()


def test_bad_input_is_counted_and_strict_mode_raises(dsn: str, spool_dir: Path) -> None:
    client = Monitor("hot", "1", dsn=dsn, spool_dir=spool_dir)
    client.log(None, 1)  # type: ignore[arg-type]  # not a mapping: counted, not raised
    client.log([1, 2], 1)  # type: ignore[arg-type]
    assert client.stats()["dropped"]["invalid"] == 2
    assert client.stats()["enqueued"] == 0
    Monitor.log(client, {"x": 1.0}, 0, id="through-the-method")  # the documented method
    assert client.stats()["enqueued"] == 1
    strict = Monitor("hot", "1", dsn=dsn, spool_dir=spool_dir / "strict", strict=True)
    try:
        strict.log(None, 1)  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        raise AssertionError("strict mode must raise")
    for c in (client, strict):
        c.shutdown()


def test_a_reference_to_log_taken_before_a_fork_logs_into_the_childs_queue(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = Monitor("hot", "1", dsn=dsn, spool_dir=spool_dir, interval=3600)
    log = client.log  # as `monitor.log` is after init(): taken once, used for the process life
    for i in range(10):
        log({"x": float(i)}, 0, id=f"p{i}")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            for i in range(20):
                log({"x": float(i)}, 0, id=f"c{i}")
            stats = client.stats()
            fresh = stats["enqueued"] == 20 and client._worker.thread is not None
            code = 0 if fresh and client.flush(10) and client.stats()["exported"] == 20 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(10)
    assert count(pg, "predictions", "record_id LIKE 'c%'") == 20
    assert count(pg, "predictions", "record_id LIKE 'p%'") == 10
    client.shutdown()
