"""A real Spark standalone cluster on 127.0.0.1, from pyspark's own launcher (spark-class).

For the cluster test and ``benchmarks/spark_profile.py``: a master and N workers as separate
JVMs, each started in the background with its PID kept, and exactly those stopped at the end
(SIGTERM, then SIGKILL after a grace period). Readiness is read from the master's JSON status
page on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class Cluster:
    master_url: str
    status_url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def alive_workers(self) -> int:
        with urllib.request.urlopen(self.status_url, timeout=5) as reply:  # 127.0.0.1 only
            status = json.load(reply)
        return sum(1 for w in status.get("workers", []) if w.get("state") == "ALIVE")


def cluster_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_WORKER_DIR=str(workdir / "work"),
        SPARK_LOG_DIR=str(workdir / "logs"),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    return env


@contextmanager
def standalone_cluster(
    workdir: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g", timeout: float = 120
) -> Iterator[Cluster]:
    """Start a master and ``workers`` workers on loopback; stop exactly them on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = cluster_env(workdir)
    launcher = str(spark_home() / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}/json/")

    def start(name: str, *args: str) -> None:
        log = (workdir / f"{name}.log").open("wb")
        cluster.procs.append(
            subprocess.Popen(
                [launcher, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        start(
            "master", "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui),
        )  # fmt: skip
        for i in range(workers):
            start(
                f"worker{i}", "org.apache.spark.deploy.worker.Worker", cluster.master_url,
                "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                "--webui-port", str(free_port()),
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                if cluster.alive_workers() == workers:
                    break
            except OSError:
                pass  # the master is not listening yet
            if any(p.poll() is not None for p in cluster.procs) or time.monotonic() > deadline:
                logs = {p.name: p.read_text()[-2000:] for p in workdir.glob("*.log")}
                raise RuntimeError(f"the standalone cluster did not come up: {logs}")
            time.sleep(0.5)
        yield cluster
    finally:
        stop(cluster.procs)


def stop(procs: list[subprocess.Popen[bytes]], grace: float = 20) -> None:
    """SIGTERM each process we started (its session: spark-class execs java), then SIGKILL."""
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
