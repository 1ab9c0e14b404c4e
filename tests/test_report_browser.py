"""The backtest report in a real headless browser: it renders, has no console errors and fetches nothing.

Chromium is driven over the DevTools protocol (websocket-client): console messages, exceptions and
every network request come from the browser itself. Debian's ``chromium`` package is used where
it is installed (``.ci/run`` installs it); the test is skipped only where there is no Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadscore.plugins import PluginManager

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0"]
HOSTILE_SOURCE = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


class DevTools:
    """One page of a headless Chromium, over the DevTools protocol."""

    def __init__(self, url: str) -> None:
        import websocket

        # Without an Origin header Chromium accepts the connection (it refuses unknown origins).
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {seconds} s")
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[str]:
    binary = _chromium()
    if binary is None:
        pytest.skip("Chromium is not installed here (apt-get install chromium; .ci/run installs it when it can)")
    process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline() if process.stderr else ""
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = found.group(1)
            elif not line and process.poll() is not None:
                break
        if port is None:
            pytest.fail("Chromium started but did not report a DevTools port")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    from leadscore.outcomes import backtest
    from leadscore.outcomes.synthetic import STARTING_PACK, write_funnel

    leads, outcomes = write_funnel(tmp_path, leads=600, seed=3)
    # A source with markup in it: the report must show it as text, not run it.
    rows = [json.loads(line) for line in leads.read_text().splitlines()]
    for row in rows[:40]:
        row["source"] = HOSTILE_SOURCE
    leads.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    start = tmp_path / "start.toml"
    start.write_text(STARTING_PACK, encoding="utf-8")
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(STARTING_PACK.replace('name = "synthetic-start"', 'name = "synthetic-candidate"')
                         .replace("points = 10\nreason = \"Student", "points = -30\nreason = \"Student")
                         .replace("name = \"hot\"\nmin = 40", "name = \"hot\"\nmin = 40\nobserved_conversion = 0.6"),
                         encoding="utf-8")
    result = backtest(leads, outcomes, rulepacks=[start], candidate=[candidate], plugins=PluginManager(entry_points=False),
                      score_at="created+7d", within_days=90, bootstrap=100)
    path = tmp_path / "report.html"
    path.write_text(result.html(), encoding="utf-8")
    return path


def test_report_renders_offline_without_console_errors(browser: str, report: Path) -> None:
    with urllib.request.urlopen(f"{browser}/json/list", timeout=30) as response:
        pages = [t for t in json.load(response) if t.get("type") == "page"]
    page = DevTools(pages[0]["webSocketDebuggerUrl"])
    for domain in ("Page", "Runtime", "Log", "Network"):
        page.call(f"{domain}.enable")
    page.call("Page.navigate", url=report.as_uri())
    page.wait_for("Page.loadEventFired")
    # Images decode asynchronously: wait until every chart is decoded (or has failed).
    deadline = time.monotonic() + 30
    while not page.evaluate("[...document.images].every(i => i.complete)"):
        assert time.monotonic() < deadline, "charts did not finish loading"
        time.sleep(0.2)
    state = page.evaluate("""({
        title: document.title,
        headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
        charts: document.images.length,
        drawn: [...document.images].filter(i => i.naturalWidth > 0 && i.naturalHeight > 0).length,
        tables: document.querySelectorAll('table').length,
        scripts: document.scripts.length,
        pwned: window.pwned === undefined ? null : window.pwned,
        hostileShownAsText: document.body.innerText.includes('<script>window.pwned=1</script>'),
        width: document.documentElement.scrollWidth,
    })""")
    page.call("Runtime.evaluate", expression="1")  # flush events that arrived while the page settled
    errors = [e for e in page.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning"))]
    requests = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    page.ws.close()

    assert errors == []
    # The file itself, then nothing but its own inline charts.
    assert requests[0] == report.as_uri()
    assert all(url.startswith("data:image/svg+xml") for url in requests[1:]), requests
    assert state["title"].startswith("leadscore backtest: synthetic-start")
    assert state["headings"] == ["Charts", "Bands", "Rules", "Channels", "Funnel by band", "Current vs candidate"]
    assert state["charts"] == state["drawn"] == 4  # lift, capture, calibration, channel funnel: all decoded
    assert state["tables"] >= 10
    assert state["scripts"] == 0 and state["pwned"] is None and state["hostileShownAsText"]
