"""Dashboard and API latency under concurrent clients, against a static file in the same run.

Setup: a fresh database with 90 days of hourly windows x 50 features (results of every family,
window profiles, runs, alerts), the server run as ``monitor serve`` runs it (its default worker
processes unless ``--workers``) on 127.0.0.1, and 8 client
threads that each request every URL in a shuffled round-robin. Prints p50/p95/max per URL and
the static file's figures beside them; target: p95 <= 150 ms for every page and API call.

The server caches views per results version (see README), so a run of repeats alone would
measure cache hits. While the clients run, a writer rewrites one of the model's results every
``--churn`` seconds (default 2: a real UPDATE, as a recomputed window makes; far more often
than hourly windows, pessimistic but real), so every server process keeps recomputing its views
(in the background, answering the previous version meanwhile, for at most
``MONITOR_WEB_MAX_STALE_SECONDS``): the figures include what a live deployment sees.

    MONITOR_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        /work/.venv/bin/python benchmarks/dashboard_latency.py [--rounds 20] [--clients 8] \\
            [--workers N] [--churn 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.storage import migrate  # noqa: E402
from monitor.storage.engine import session_scope  # noqa: E402
from monitor.storage.tokens import create_token  # noqa: E402
from tests.http import free_port  # noqa: E402
from tests.pg import fresh_database  # noqa: E402
from tests.web.fixtures import seed_results  # noqa: E402

TARGET_MS = 150.0


def urls(model: str, feature: str) -> dict[str, str]:
    return {
        "page /": "/",
        "page model": f"/models/{model}",
        "page model 90d": f"/models/{model}?range=90d",
        "page feature": f"/models/{model}/features/{feature}",
        "page feature 90d": f"/models/{model}/features/{feature}?range=90d",
        "page alerts": "/alerts",
        "page runs": "/runs",
        "page baselines": "/baselines",
        "page settings": "/settings",
        "api models": "/api/v1/models",
        "api model": f"/api/v1/models/{model}",
        "api heatmap": f"/api/v1/models/{model}/heatmap",
        "api heatmap 90d": f"/api/v1/models/{model}/heatmap?range=90d",
        "api dashboard": f"/api/v1/models/{model}/dashboard",
        "api feature": f"/api/v1/models/{model}/features/{feature}",
        "api results": f"/api/v1/models/{model}/results?family=drift&limit=100",
        "api runs health": "/api/v1/runs/health",
        "api alerts": "/api/v1/alerts",
        "metrics": "/metrics",
        "static file": "/static/app.css",
    }


class Churn(threading.Thread):
    """Rewrites one result of ``model`` every ``interval`` seconds until stopped."""

    def __init__(self, url: str, model: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.model, self.interval = url, model, interval
        self.stopped = threading.Event()
        self.writes = 0

    def run(self) -> None:
        if self.interval <= 0:
            return
        engine = sa.create_engine(self.url)
        try:
            while not self.stopped.wait(self.interval):
                with engine.begin() as conn:
                    conn.execute(
                        sa.text(
                            "UPDATE results SET computed_at = now() WHERE id = ("
                            " SELECT r.id FROM results r JOIN models m ON m.id = r.model_id"
                            " WHERE m.name = :m ORDER BY r.id DESC LIMIT 1)"
                        ),
                        {"m": self.model},
                    )
                self.writes += 1
        finally:
            engine.dispose()


def run(base: str, token: str, targets: dict[str, str], clients: int, rounds: int) -> dict:
    timings: dict[str, list[float]] = {name: [] for name in targets}
    errors: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            for _ in range(rounds):
                names = list(targets)
                rng.shuffle(names)
                for name in names:
                    t0 = time.perf_counter()
                    r = c.get(targets[name])
                    ms = (time.perf_counter() - t0) * 1000
                    with lock:
                        timings[name].append(ms)
                        if r.status_code != 200:
                            errors.append(f"{name}: {r.status_code}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"timings": timings, "errors": errors}


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=None, help="default: monitor serve's")
    parser.add_argument(
        "--churn", type=float, default=2.0, help="seconds between result rewrites (0: none)"
    )
    args = parser.parse_args()
    admin = os.environ.get(
        "MONITOR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    admin = admin.replace("postgresql://", "postgresql+psycopg://", 1)
    with fresh_database(admin, prefix="monitor_bench") as url:
        engine = sa.create_engine(url)
        migrate.upgrade(engine)
        t0 = time.perf_counter()
        data = seed_results(
            engine,
            model="bench",
            days=args.days,
            n_features=args.features,
            hostile=False,
            segments=(),
        )
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
            n = conn.execute(sa.text("SELECT count(*) FROM results")).scalar()
        with session_scope(engine) as s:
            token, _ = create_token(s, "bench", "admin")
        engine.dispose()
        print(
            f"seeded {args.days} days x {args.features} features: {n:,} results rows "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        port = free_port()
        command = [sys.executable, "-m", "monitor", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        if args.workers:
            command += ["--workers", str(args.workers)]
        env = {**os.environ, "MONITOR_DATABASE_URL": url}
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.2)
            targets = urls("bench", data.drifted[0])
            # warm up caches and pools (each server process has its own: as many clients)
            run(base, token, targets, clients=args.clients, rounds=1)
            churn = Churn(url, "bench", args.churn)
            started = time.perf_counter()
            churn.start()
            out = run(base, token, targets, args.clients, args.rounds)
            wall = time.perf_counter() - started
            churn.stopped.set()
            churn.join()
        finally:
            server.terminate()
            server.wait(10)
    timings = out["timings"]
    static = timings["static file"]
    print(
        f"\n{args.clients} clients x {args.rounds} rounds x {len(targets)} URLs in {wall:.1f} s "
        f"({sum(map(len, timings.values())) / wall:.0f} req/s); load average "
        f"{os.getloadavg()[0]:.1f}; {churn.writes} result rewrites during the run (views "
        f"refreshed after each)\n"
    )
    print(f"{'URL':<18}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'p95/static':>12}  target")
    worst = 0.0
    for name, values in timings.items():
        q95 = p95(values)
        ok = "ok" if q95 <= TARGET_MS else "OVER"
        if name != "static file":
            worst = max(worst, q95)
        print(
            f"{name:<18}{len(values):>5}{statistics.median(values):>9.1f}{q95:>9.1f}"
            f"{max(values):>9.1f}{q95 / p95(static):>12.1f}  {ok if name != 'static file' else ''}"
        )
    print(
        f"\nworst page/API p95: {worst:.1f} ms (target {TARGET_MS:.0f} ms); "
        f"static file p95 {p95(static):.1f} ms"
    )
    if out["errors"]:
        print(f"errors: {out['errors'][:10]}")
        return 1
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
