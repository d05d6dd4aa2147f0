"""Regenerate the README's dashboard screenshots from the demo.

Runs ``monitor demo --no-serve`` (seeds and computes the demo once; later runs reuse it), serves
the dashboard with ``monitor serve`` on a free port of 127.0.0.1, and photographs the model page
(with its open incident) and a drifting feature's page in Debian's headless Chromium:

    .venv/bin/python docs/screenshots.py            # embedded database under MONITOR_HOME
    MONITOR_DATABASE_URL=postgresql://... .venv/bin/python docs/screenshots.py

Writes docs/img/model.png and docs/img/feature.png.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
MONITOR = str(Path(sys.executable).parent / "monitor")
SHOTS = {
    # name: (path, clip height in px at 1440 wide)
    "model": ("/models/credit-default", 1500),
    "feature": ("/models/credit-default/features/channel", 1250),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token() -> str:
    done = subprocess.run(
        [MONITOR, "demo", "--no-serve"], capture_output=True, text=True, check=True, timeout=1800
    )
    found = re.search(r"API token: (\S+)", done.stdout)
    if not found:
        raise SystemExit(f"no token in `monitor demo` output:\n{done.stdout}\n{done.stderr}")
    return found.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1440)
    args = parser.parse_args()
    token = _token()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [MONITOR, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.3)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            page.goto(f"{base}/login")  # the login form: a POST with its CSRF token
            page.fill("input[name=token]", token)
            with page.expect_navigation():
                page.click("form.login-token button[type=submit]")
            for name, (path, height) in SHOTS.items():
                page.goto(base + path)
                page.wait_for_selector("[data-figure]:not([data-rendered='1'])", state="detached")
                page.wait_for_timeout(500)
                target = OUT / f"{name}.png"
                page.screenshot(
                    path=str(target),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": args.width, "height": height},
                )
                print(f"{target.relative_to(ROOT)}: {base}{path}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
