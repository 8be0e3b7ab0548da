"""The lot report (`verify -o lot.html`) in a real headless Chromium: it renders with no console
error, no exception and no request beyond the file; the lot table lists every unit with its
determination; a serial carrying markup stays text. Screenshot: test-artifacts/verify-lot.png."""

from __future__ import annotations

import json

import pytest

from test_report_browser import ARTIFACTS, open_page
from test_verify import spec_for, synthetic, tppbench, _faster

pytestmark = pytest.mark.browser


def test_lot_page_renders_the_lot_table(lab_run, tmp_path):
    units = [synthetic(lab_run, tmp_path, f"SYN-{i:04d}") for i in range(1, 4)]
    units.append(synthetic(lab_run, tmp_path, "SYN-FAST", _faster("bf16", 4.0)))
    units.append(synthetic(lab_run, tmp_path, "EVIL", lambda u: u["devices"][0]["identity"].update(
        serial="<img src=x onerror=alert(1)>")))
    page = tmp_path / "lot.html"
    cp = tppbench("verify", *map(str, units), "--declared", str(spec_for(lab_run, tmp_path)), "--lot", "LOT-B",
                  "-o", str(page))
    assert cp.returncode == 3, cp.stderr
    seen = open_page(page, tmp_path / "profile", ARTIFACTS / "verify-lot.png", """(() => {
        const rows = [...document.querySelectorAll('#lot-table tbody tr')];
        return {rows: rows.map(r => [...r.cells].map(c => c.innerText)),
                classes: rows.map(r => r.cells[1].className),
                bars: document.querySelectorAll('svg.bar').length,
                imgs: document.images.length, scripts: document.querySelectorAll('script').length,
                counts: document.getElementById('lot-counts').innerText};
    })()""")
    facts, events = seen["facts"], seen["events"]
    serials = [r[0] for r in facts["rows"]]
    assert serials == ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-FAST", "<img src=x onerror=alert(1)>"]
    assert [r[1] for r in facts["rows"]] == ["verified"] * 3 + ["exceeds declaration", "verified"]
    assert facts["classes"][3] == "d-exceeds-declaration"
    assert facts["imgs"] == 0 and facts["scripts"] == 0 and facts["bars"] >= 5 * 5
    assert "verified: 4" in facts["counts"] and "exceeds declaration: 1" in facts["counts"]
    bad = [e for e in events if e.get("method") in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")
           or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert bad == [], json.dumps(bad)[:500]
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert all(u.startswith("file://") for u in requests), requests
