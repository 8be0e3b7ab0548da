"""`tppbench report` opened in a real headless Chromium (Debian's `chromium`), driven over the
Chrome DevTools Protocol on `--remote-debugging-pipe` (no extra Python package, no download).

Asserted: the page renders with no console error, no exception and no dialog; no request other
than the report file itself (data: images are not requests); the map image and the verdict table
are there and the images decode; a `<script>` in a host name stays text. A screenshot is saved to
test-artifacts/. Without chromium these tests FAIL (CI installs it in .ci/run); deselect them
locally with `-m "not browser"`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
import synth  # noqa: E402

from bench.cli import main  # noqa: E402
from results.files import store  # noqa: E402

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-pipe",
)

pytestmark = pytest.mark.browser


def chromium_path() -> str:
    for candidate in (os.environ.get("TPPBENCH_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)  # type: ignore[return-value]
    pytest.fail("chromium not found: install Debian's chromium (apt-get install chromium; CI does "
                "in .ci/run) or set TPPBENCH_CHROMIUM; deselect with -m 'not browser'", pytrace=False)


class DevTools:
    """A minimal CDP client over the --remote-debugging-pipe file descriptors 3 (in) and 4 (out)."""

    def __init__(self, executable: str, profile: Path) -> None:
        import fcntl

        def high(fd: int) -> int:  # a close-on-exec copy at fd >= 10, so dup2 to 3/4 can't collide
            copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            return copy

        cmd_r, cmd_w = (high(fd) for fd in os.pipe())
        res_r, res_w = (high(fd) for fd in os.pipe())

        def onto_3_and_4() -> None:  # in the child: Chromium reads fd 3 and writes fd 4
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        profile.mkdir(parents=True, exist_ok=True)
        self._log = profile.parent / f"{profile.name}-chromium.log"
        with open(self._log, "wb") as log:  # a file, not a pipe: a chatty browser never blocks
            self.proc = subprocess.Popen(
                [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                preexec_fn=onto_3_and_4, close_fds=False,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        os.close(cmd_r)
        os.close(res_w)
        self._cmd_w, self._res_r = cmd_w, res_r
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout_s: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                log = self._log.read_text(errors="replace")[-800:]
                raise TimeoutError(f"no answer from chromium (exit {self.proc.poll()}); its log: {log}")
            ready, _, _ = select.select([self._res_r], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk:
                    raise EOFError(f"chromium closed the DevTools pipe; its log: "
                                   f"{self._log.read_text(errors='replace')[-800:]}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout_s=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass


REPORT_FACTS = """(() => {
            const map = document.getElementById('tpp-pd-map');
            const dramMap = document.getElementById('tpp-dram-map');
            const imgs = [...document.images];
            const verdicts = document.getElementById('verdict-table');
            return {
              title: document.title,
              scripts: document.querySelectorAll('script').length,
              mapLoaded: !!map && map.complete && map.naturalWidth > 100,
              dramMapLoaded: !!dramMap && dramMap.complete && dramMap.naturalWidth > 100,
              historyStrips: document.querySelectorAll('table.strip').length,
              stripCells: [...document.querySelectorAll('table.strip td[class]')].map(td => td.className),
              imagesDecoded: imgs.every(i => i.complete && i.naturalWidth > 0),
              images: imgs.length,
              verdictRows: verdicts ? verdicts.querySelectorAll('tbody tr').length : -1,
              nearRows: document.querySelectorAll('#verdict-table tr.near').length,
              bodyText: document.body.innerText,
              hostInjected: typeof window.alert !== 'function' || document.querySelector('img[src=x]') !== null,
              sections: [...document.querySelectorAll('section')].map(s => s.id),
              height: document.documentElement.scrollHeight,
            };
        })()"""


def open_page(html_path: Path, profile: Path, screenshot: Path, expression: str) -> dict:
    """Load the file, collect what the page did, evaluate `expression` (returning a value), save a
    full-page screenshot. Shared by the report and the lot page tests."""
    tools = DevTools(chromium_path(), profile)
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.send(f"{domain}.enable", session=session)
        tools.send("Emulation.setDeviceMetricsOverride",
                   {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        url = html_path.resolve().as_uri()
        tools.send("Page.navigate", {"url": url}, session=session)
        tools.wait_for("Page.loadEventFired", timeout_s=60)
        time.sleep(0.5)  # let late console messages or requests arrive
        facts = tools.send("Runtime.evaluate", {"returnByValue": True, "expression": expression},
                           session=session)["result"]["value"]
        metrics = tools.send("Page.getLayoutMetrics", session=session)
        height = int(metrics["cssContentSize"]["height"])
        shot = tools.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 16000), "scale": 1},
        }, session=session, timeout_s=60)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        events = [e for e in tools.events if e.get("sessionId") in (session, None)]
        return {"facts": facts, "events": events, "url": url}
    finally:
        tools.close()


def open_in_browser(html_path: Path, profile: Path, screenshot: Path) -> dict:
    """The report's page facts (REPORT_FACTS), events and screenshot."""
    return open_page(html_path, profile, screenshot, REPORT_FACTS)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    files = [store.save(synth.evil_run(), folder / "in"), store.save(synth.h20_run(), folder / "in")]
    html_path = folder / "report.html"
    assert main(["report", *map(str, files), "-o", str(html_path), "--as-of", "2026-01-15"]) == 0
    return open_in_browser(html_path, folder / "profile", ARTIFACTS / "report-browser.png")


def test_renders_without_console_errors_or_exceptions(rendered):
    problems = []
    for e in rendered["events"]:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            problems.append(params)
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            problems.append(params)
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            problems.append(params["entry"])
        elif method == "Page.javascriptDialogOpening":
            problems.append(params)
    assert problems == []


def test_no_request_other_than_the_file_itself(rendered):
    requested = [e["params"]["request"]["url"] for e in rendered["events"]
                 if e.get("method") == "Network.requestWillBeSent"]
    network = [u for u in requested if u != rendered["url"] and not u.startswith("data:")]
    assert rendered["url"] in requested
    assert network == []
    failed = [e for e in rendered["events"] if e.get("method") == "Network.loadingFailed"]
    assert failed == []


def test_map_and_verdict_table_are_shown(rendered):
    facts = rendered["facts"]
    assert facts["mapLoaded"] and facts["imagesDecoded"] and facts["images"] >= 5  # 2 maps, peak, bw, p2p
    assert facts["verdictRows"] > 0 and facts["nearRows"] >= 1  # the H20's 1.3 % margin
    assert facts["sections"] == ["map", "precision", "bandwidth", "verdicts", "telemetry"]
    assert "3A090.b.1" in facts["bodyText"] and "near limit" in facts["bodyText"]


def test_the_2026_map_and_the_history_strips_are_shown(rendered):
    facts = rendered["facts"]
    assert facts["dramMapLoaded"]  # TPP x DRAM bandwidth with the 2026 band, decoded by the browser
    assert facts["historyStrips"] == 3  # one strip per measured device (2 H100 + 1 H20)
    assert {"s-controlled", "s-not_controlled", "s-inside", "s-none"} <= set(facts["stripCells"])
    assert "TPP versus DRAM bandwidth" in facts["bodyText"] and "Status through time" in facts["bodyText"]


def test_script_in_a_host_name_stays_inert(rendered):
    facts = rendered["facts"]
    assert facts["scripts"] == 0 and not facts["hostInjected"]
    assert synth.EVIL_HOST in facts["bodyText"]  # shown literally, as text
    assert "<script>alert('reason')</script>" in facts["bodyText"] or "alert('reason')" not in facts["bodyText"]
    assert not any(e.get("method") == "Page.javascriptDialogOpening" for e in rendered["events"])


def test_screenshot_saved_as_artifact(rendered):
    shot = ARTIFACTS / "report-browser.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_harness_would_see_a_request_and_a_console_error(tmp_path):
    """Negative control: the checks above are not vacuous."""
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("control")</script></body></html>')
    seen = open_in_browser(page, tmp_path / "profile", tmp_path / "control.png")
    urls = [e["params"]["request"]["url"] for e in seen["events"] if e.get("method") == "Network.requestWillBeSent"]
    assert "http://127.0.0.1:9/x.png" in urls
    errors = [e for e in seen["events"] if e.get("method") == "Runtime.consoleAPICalled"
              and e["params"].get("type") == "error"]
    assert errors and seen["facts"]["scripts"] == 1


def test_report_of_imported_files_renders(tmp_path):
    """Files made by `tppbench import` from real published outputs render like measured ones."""
    from results.importers.command import import_text
    from results.importers.source import Source

    data = Path(__file__).parent / "data" / "imported"
    files = []
    for name in ("nvbandwidth/1gpu_v0.5_verbose.json", "mamf-finder/gfx1151_v2_interrupted.txt",
                 "nccl-tests/gb10_2node_all_reduce_cut.txt"):  # the smallest of each tool: kept cheap
        source = Source.of(name, (data / name).read_bytes())
        files.append(store.save(import_text(source).result, tmp_path / "in"))
    html_path = tmp_path / "imported.html"
    assert main(["report", *map(str, files), "-o", str(html_path), "--as-of", "2026-01-15"]) == 0
    seen = open_in_browser(html_path, tmp_path / "profile", tmp_path / "imported.png")
    bad = [e for e in seen["events"] if e.get("method") in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")
           or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))]
    requested = [e["params"]["request"]["url"] for e in seen["events"] if e.get("method") == "Network.requestWillBeSent"]
    assert bad == [] and [u for u in requested if u != seen["url"] and not u.startswith("data:")] == []
    text = seen["facts"]["bodyText"]
    assert "AMD Radeon Graphics" in text and "NVIDIA GB10" in text
    assert all(f"imported from {tool} output" in text for tool in ("nvbandwidth", "mamf-finder", "nccl-tests"))
    assert seen["facts"]["imagesDecoded"] and seen["facts"]["verdictRows"] > 0
