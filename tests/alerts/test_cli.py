"""``monitor alerts`` and ``monitor channel`` as users run them (subprocesses, real receiver)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.alerts.conftest import make_model
from tests.http import free_port

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_channel_rules_test_send_and_silences_from_the_command_line(
    alerts_env, database_url, tmp_path
) -> None:
    env = {"MONITOR_DATABASE_URL": database_url, "MONITOR_WEBHOOK_ALLOW_PRIVATE": '["127.0.0.1"]'}
    make_model(alerts_env, "credit")
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    port = free_port()
    receiver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "alerts",
            "receiver",
            "--port",
            str(port),
            "--secret",
            secret,
            "--max-requests",
            "1",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = run(
            "channel",
            "add",
            "ops",
            "--url",
            f"http://127.0.0.1:{port}/hook",
            "--secret",
            secret,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        assert "ops (webhook)" in out.stdout
        listed = run("channel", "list", env=env)
        assert "ops\twebhook\thttp://127.0.0.1:" in listed.stdout
        deadline = time.monotonic() + 20
        while True:  # wait for the receiver to listen
            sent = run("alerts", "test", "ops", env=env)
            if sent.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert sent.returncode == 0, sent.stderr
        assert "HTTP 200" in sent.stdout and "ok" in sent.stdout
        printed, _ = receiver.communicate(timeout=20)
        assert "signature verified" in printed
        assert '"type": "drift.alert.test"' in printed
    finally:
        receiver.kill()
        receiver.wait()

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "model: credit\nrules:\n  - name: nulls\n    metric: null_share\n"
        "    condition: '> 0.1'\n    channels: [ops]\n"
    )
    out = run("alerts", "apply", str(rules), env=env)
    assert out.returncode == 0, out.stderr
    assert "1 rule(s) applied" in out.stdout
    out = run("alerts", "rules", "credit", "--defaults", env=env)
    assert "credit\tnulls: quality.null_share[*] > 0.1 for 1/1" in out.stdout
    assert "credit\tdataset-drift:" in out.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: credit\nrules:\n  - name: x\n    metric: nope.x\n")
    out = run("alerts", "apply", str(bad), env=env)
    assert out.returncode == 2 and "unknown family" in out.stderr and "Traceback" not in out.stderr

    out = run(
        "alerts",
        "silence",
        "add",
        "-m",
        "model=credit",
        "-m",
        "column=~inc.*",
        "--duration",
        "1h",
        "--comment",
        "deploy",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    silence_id = out.stdout.split()[1]
    listed = run("alerts", "silence", "list", env=env)
    assert "model=credit,column=~inc.*" in listed.stdout
    assert run("alerts", "silence", "end", silence_id, env=env).returncode == 0
    assert "model=credit" not in run("alerts", "silence", "list", env=env).stdout

    deliveries = run("alerts", "deliveries", env=env)
    assert "delivered\tops\tdrift.alert.test" in deliveries.stdout


def test_deliveries_show_the_next_try_and_replay_refuses_a_disabled_channel(
    alerts_env, receiver_factory, capsys
) -> None:
    """In-process (the real command and database): a pending delivery says when it is tried
    next; replaying a delivery to a channel a 410 disabled says so and queues nothing."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from monitor.alerts.delivery import deliver_due
    from monitor.alerts.evaluate import evaluate_alerts
    from monitor.cli import main
    from tests.alerts.conftest import T0, add_rule, add_webhook, drift_rows, put_results

    engine = alerts_env
    add_webhook(engine, "flaky", receiver_factory(script=[(503, {})]))
    add_webhook(engine, "gone", receiver_factory(script=[(410, {})]))
    model = make_model(engine)
    add_rule(engine, model, {"name": "d", "metric": "feature_drift", "group_wait": 0,
                             "channels": "*"})  # fmt: skip
    put_results(engine, model, T0, drift_rows(["income"], True))
    now = datetime.now(UTC)
    evaluate_alerts(engine, now=now)
    deliver_due(engine, now=now)
    assert main(["alerts", "deliveries"]) == 0
    lines = {line.split("\t")[2]: line for line in capsys.readouterr().out.splitlines()}
    assert "\tpending\t" in lines["flaky"] and "\tnext try " in lines["flaky"]
    assert "(in " in lines["flaky"] or "(due now)" in lines["flaky"]
    assert "\tfailed\t" in lines["gone"] and "HTTP 410" in lines["gone"]
    gone_id = lines["gone"].split("\t")[0]
    assert main(["alerts", "replay", gone_id]) == 2
    err = capsys.readouterr().err
    assert "channel 'gone', which is disabled" in err and "monitor channel enable gone" in err
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM deliveries WHERE id = :i"), {"i": int(gone_id)}
        ).scalar_one()
    assert status == "failed"
