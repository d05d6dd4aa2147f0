"""Peak memory of one collector worker under concurrent maximum-size bodies, against the
collector as it was before (``--baseline-ref``) in the same run.

Setup: a fresh database; for each configuration, a server process (``uvicorn
monitor.web.app:app_from_settings --factory``, one worker, as ``monitor serve --workers 1``)
on 127.0.0.1. After a small warm-up request the process's peak RSS is reset
(``/proc/PID/clear_refs``), then ``--bodies`` clients (default 8) each POST one body just under
``MONITOR_MAX_INGEST_BODY_BYTES`` (default 16 MiB: about 26k records of 12 numbers and 8
strings) at once, retrying a 429 after its Retry-After (as the SDK does). Printed per
configuration: peak RSS (``VmHWM``), its rise over the warm process, the rise per body held at
once (the per-request multiple, in bodies), wall time, and that every record landed.

Configurations:
* ``before``: the code of ``--baseline-ref`` (default: the last commit before the collector
  rework), from ``git archive``; every body in flight at once.
* ``after, unbounded``: ``--ref`` (default HEAD, the committed code) with a budget of all
  bodies at once: the per-request multiple.
* ``after, default``: ``--ref`` as shipped (``MONITOR_INGEST_MAX_INFLIGHT_BYTES`` default): the
  worker's bound.

    /work/.venv/bin/python benchmarks/collector_memory.py [--dsn postgresql://...]
        [--bodies 8] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._db import DEFAULT_DSN, bench_database  # noqa: E402
from tests.http import free_port  # noqa: E402

BASELINE_REF = "4491452"  # main before the collector rework (issue 13)
TOKEN = "mon_collector_memory_benchmark_token"
DEFAULT_BUDGET = 64 * 1024 * 1024  # monitor.settings.Settings.ingest_max_inflight_bytes


def make_body(k: int, limit: int) -> bytes:
    """A JSON array of SDK-shaped records just under ``limit`` bytes; ids unique per body."""
    parts: list[bytes] = []
    size = 2
    i = 0
    ts = 1_790_000_000
    while True:
        record = {
            "id": f"b{k}-{i:07d}",
            "timestamp": ts + i % 3600,
            "features": {
                **{f"num_{j:02d}": round((i * 7 + j * 13) % 1000 / 7.0, 4) for j in range(12)},
                **{f"cat_{j}": ("DE", "FR", "US", "GB")[(i + j) % 4] for j in range(8)},
            },
            "prediction": round(i % 100 / 100, 2),
            "latency_ms": 3.25,
            "segment": {"region": "eu"},
        }
        data = json.dumps(record, separators=(",", ":")).encode()
        if size + len(data) + 1 > limit:
            break
        parts.append(data)
        size += len(data) + 1
        i += 1
    return b"[" + b",".join(parts) + b"]"


@dataclass
class Run:
    name: str
    rss_warm_mib: float
    peak_mib: float
    held_at_once: int
    seconds: float
    inserted: int
    retries_429: int

    @property
    def rise(self) -> float:
        return self.peak_mib - self.rss_warm_mib


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _tree(ref: str, into: Path) -> Path:
    """The ``monitor`` package of ``ref`` with its C extension built in place (``setup.py
    build_ext``; without a compiler the pure-Python encoder, as the package itself does)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "monitor", "setup.py"],
        check=True,
        capture_output=True,
    ).stdout
    tar_path = into / "baseline.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    built = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=into,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        print(f"baseline C extension not built ({built.stderr.strip()[-200:]})")
    return into


def _serve(
    dsn: str, pythonpath: Path, env_extra: dict[str, str], body_limit: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    url = (
        f"postgresql+psycopg://{params.get('user') or 'postgres'}@"
        f"{params.get('host') or '127.0.0.1'}:{params.get('port') or 5432}/{params['dbname']}"
    )
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": url,
        "MONITOR_MAX_INGEST_BODY_BYTES": str(body_limit),
        "PYTHONPATH": str(pythonpath),
        **env_extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "monitor.web.app:app_from_settings", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=pythonpath,
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def measure(
    name: str, dsn: str, pythonpath: Path, bodies: list[bytes], env: dict[str, str], limit: int
) -> Run:
    proc, base = _serve(dsn, pythonpath, env, limit)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"{base}/v1/models/bench/predictions?version=v1"
    try:
        warm = httpx.post(url, content=bodies[0][:0] + b"[]", headers=headers, timeout=60)
        assert warm.status_code == 200, warm.text
        small = json.dumps([json.loads(bodies[0][1 : bodies[0].index(b"},{") + 1])]).encode()
        # (the first record of body 0, so the model, version and features exist)
        r = httpx.post(url, content=small, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        time.sleep(0.5)
        rss_warm = _status_kib(proc.pid, "VmRSS") / 1024
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        inserted: list[int] = []
        retries = [0]
        in_flight = [0, 0]  # now, most at once (client side: requests sent and not answered)
        lock = threading.Lock()
        start = threading.Barrier(len(bodies))

        def client(body: bytes) -> None:
            start.wait()
            with httpx.Client(timeout=600) as http:
                for _ in range(200):  # bounded retries of 429
                    with lock:
                        in_flight[0] += 1
                        in_flight[1] = max(in_flight)
                    resp = http.post(url, content=body, headers=headers)
                    with lock:
                        in_flight[0] -= 1
                    if resp.status_code == 429:
                        with lock:
                            retries[0] += 1
                        time.sleep(float(resp.headers.get("retry-after", "1")))
                        continue
                    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
                    with lock:
                        inserted.append(resp.json()["inserted"])
                    return
                raise RuntimeError("gave up after 200 answers of 429")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        peak = _status_kib(proc.pid, "VmHWM") / 1024
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    budget = int(env.get("MONITOR_INGEST_MAX_INFLIGHT_BYTES", str(10**12)))
    held = min(len(bodies), max(1, budget // len(bodies[0])))
    return Run(name, rss_warm, peak, held, seconds, sum(inserted), retries[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("MONITOR_TEST_DATABASE_URL", DEFAULT_DSN))
    parser.add_argument("--bodies", type=int, default=8)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--ref", default="HEAD", help="the code measured as 'after'")
    parser.add_argument(
        "--body-mib", type=float, default=16, help="body limit (MONITOR_MAX_INGEST_BODY_BYTES)"
    )
    args = parser.parse_args()

    limit = int(args.body_mib * 2**20)
    bodies = [make_body(k, limit - 1024) for k in range(args.bodies)]
    per_body = bodies[0].count(b'"id"')
    print(f"{args.bodies} bodies of {len(bodies[0]) / 2**20:.1f} MiB, {per_body} records each")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="collector-memory-") as tmp:
        baseline = _tree(args.baseline_ref, Path(tmp) / "before")
        after = _tree(args.ref, Path(tmp) / "after")  # committed code, not the work tree
        configs = [
            (f"before ({args.baseline_ref})", baseline, {}),
            (
                "after, unbounded",
                after,
                {"MONITOR_INGEST_MAX_INFLIGHT_BYTES": str(len(bodies[0]) * args.bodies)},
            ),
            (
                "after, default budget",
                after,
                {"MONITOR_INGEST_MAX_INFLIGHT_BYTES": str(DEFAULT_BUDGET)},
            ),
        ]
        for name, tree, env in configs:
            with bench_database(args.dsn) as dsn:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(
                        "INSERT INTO api_tokens (name, token_hash, prefix, scope) "
                        "VALUES ('bench', %s, %s, 'admin')",
                        (hashlib.sha256(TOKEN.encode()).hexdigest(), TOKEN[:10]),
                    )
                run = measure(name, dsn, tree, bodies, env, limit)
                with psycopg.connect(dsn) as conn:
                    rows = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]  # type: ignore[index]
            assert rows == per_body * args.bodies, (
                name,
                rows,
            )  # the warm-up record is body 0's first
            runs.append(run)
            print(f"  {name}: done ({rows} rows)", flush=True)

    body_mib = len(bodies[0]) / 2**20
    print()
    print(f"{'configuration':<26} {'warm MiB':>9} {'peak MiB':>9} {'rise MiB':>9} "
          f"{'at once':>8} {'x body':>7} {'429s':>5} {'seconds':>8}")  # fmt: skip
    for run in runs:
        multiple = run.rise / (run.held_at_once * body_mib)
        print(
            f"{run.name:<26} {run.rss_warm_mib:>9.0f} {run.peak_mib:>9.0f} {run.rise:>9.0f} "
            f"{run.held_at_once:>8} {multiple:>7.2f} {run.retries_429:>5} {run.seconds:>8.1f}"
        )
    print(
        "\n'at once': bodies the worker holds at once (all for 'before' and 'unbounded'; the "
        "budget's share otherwise); 'x body': rise / (at once x body size)."
    )


if __name__ == "__main__":
    main()
