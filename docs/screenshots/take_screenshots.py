"""Screenshots of the ZenML dashboard for the README, from a real run. Rerun it any time:

    apt-get install -y chromium        # Debian's headless browser (once)
    .venv/bin/python docs/screenshots/take_screenshots.py

It starts the dashboard (``stacks/dashboard.sh``: local ZenML server on 127.0.0.1:$PORT, default
8237, with the ``local`` stack), runs the pipeline once if the server has no completed
``nizami_training`` run yet (``CONFIG``, default ``pipelines/configs/demo.yaml`` as in
``make demo``; ``CONFIG=pipelines/configs/tiny.yaml`` takes a minute), marks the dashboard's
first-login survey as done for the local default user (``PUT /api/v1/current-user``), and
drives headless Chromium over the DevTools protocol to write
``docs/screenshots/{runs,dag,eval_report}.png``.

Chromium's one-shot ``--screenshot`` mode is not used: with ``--virtual-time-budget`` it never
finishes on some dashboard pages, and without it the DAG is still being laid out. Outside
hosts are mapped to "not found" (``--host-resolver-rules``) so that the dashboard's cosmetic
fetches (CDN, avatars, changelog) fail at once on an offline machine.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
PORT = int(os.environ.get("PORT", "8237"))
BASE = f"http://127.0.0.1:{PORT}"
WIDTH, HEIGHT = 1440, 900
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    f"--window-size={WIDTH},{HEIGHT}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def api(path: str, method: str = "GET", body: dict | None = None, **params) -> dict:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(
        f"{BASE}/api/v1{path}{query}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def latest_run() -> dict | None:
    runs = api("/runs", sort_by="desc:created", size=20)["items"]
    done = [r for r in runs if r["name"].startswith("nizami_training")
            and r["body"]["status"] == "completed"]
    return done[0] if done else None


class Browser:
    """A headless Chromium and one page, driven over the DevTools protocol."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="nizami-chromium-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
             f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as r:
                    tabs = json.load(r)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("chromium did not open its DevTools port")
        page = next(t for t in tabs if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=100_000_000).__enter__()
        self.n = 0
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == self.n:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.js(expression):
                return True
            time.sleep(0.5)
        return False

    def goto(self, url: str, ready: str, settle: float = 2.0) -> None:
        self.call("Page.navigate", url=url)
        if not self.wait_for(ready):
            print(f"warning: {url}: page not ready ({ready})", file=sys.stderr)
        time.sleep(settle)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")

    def click(self, element: str, timeout: float = 30) -> bool:
        """Click (real mouse events) the centre of the element the JS ``element`` finds."""
        where = (f"(() => {{ const e = {element}; if (!e) return null;"
                 " const r = e.getBoundingClientRect(); return [r.x + r.width / 2,"
                 " r.y + r.height / 2]; })()")
        if not self.wait_for(where, timeout):
            return False
        x, y = self.js(where)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)
        time.sleep(2)  # let the sheet or tab open (it animates in)
        return True

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            shutil.rmtree(self.profile, ignore_errors=True)


def text_on_page(text: str) -> str:
    return f"document.body && document.body.innerText.includes({json.dumps(text)})"


def find_text(text: str, scope: str = "body") -> str:
    """JS: the innermost element under ``scope`` whose whole text is ``text``."""
    return (
        f"[...document.querySelectorAll({json.dumps(scope + ' *')})].reverse()"
        f".find(e => e.innerText && e.innerText.trim() === {json.dumps(text)})"
    )


def main() -> int:
    env = os.environ | {"ZENML_AUTO_OPEN_DASHBOARD": "false", "PORT": str(PORT)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    subprocess.run(["bash", "stacks/dashboard.sh"], cwd=ROOT, env=env, check=True)
    if latest_run() is None:
        config = os.environ.get("CONFIG", "pipelines/configs/demo.yaml")
        subprocess.run([sys.executable, "-m", "pipelines.run", "--config", config,
                        "--run-config", "stacks/run-configs/local.yaml"],
                       cwd=ROOT, env=env | {"HF_HUB_OFFLINE": "1"}, check=True)
    run = latest_run()
    assert run is not None, "no completed nizami_training run on the server"
    # The dashboard sends a fresh user to a first-login survey; the local server's only user
    # is the NO_AUTH default one: record the survey as done (and no e-mail updates).
    api("/current-user", "PUT",
        {"email_opted_in": False, "user_metadata": {"finished_onboarding_survey": True}})

    run_url = f"{BASE}/projects/default/runs/{run['id']}"
    browser = Browser()
    try:
        browser.goto(f"{BASE}/projects/default/runs", text_on_page(run["name"]))
        browser.screenshot(OUT / "runs.png")

        browser.goto(run_url, f"{text_on_page('eval_report')}"
                     " && !document.body.innerText.includes('Calculating DAG')", settle=3)
        browser.screenshot(OUT / "dag.png")

        # The eval report: the evaluate step's `eval_report` artifact, Visualization tab.
        shown = (browser.click(find_text("eval_report"))
                 and browser.click(find_text("Visualization", "[role=dialog]"))
                 # HTML previews wait behind a "may contain harmful code" notice: our report.
                 and browser.click(find_text("Load Preview", "[role=dialog]"))
                 and browser.wait_for(
                     "[...document.querySelectorAll('[role=dialog] iframe')].some(f => f.srcdoc"
                     " && f.srcdoc.includes('<table>'))"
                     f" || {text_on_page('held-out evaluation')}", 60))
        if shown:
            time.sleep(3)
            browser.screenshot(OUT / "eval_report.png")
        else:
            print("warning: could not open the eval report in the dashboard", file=sys.stderr)
            return 1
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
