"""The UI in Debian's Firefox ESR, driven over WebDriver BiDi (tests/ui/bidi.py), against a real server.

Playwright drives Chromium (test_browser.py); Playwright cannot drive a stock Firefox, and no
browser is ever downloaded, so this test speaks the browser's own W3C protocol instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.ui.bidi import FIREFOX, Tab, firefox
from tests.ui.conftest import ARTIFACTS, Served

pytestmark = pytest.mark.skipif(
    not Path(FIREFOX).exists(),
    reason=f"Debian's firefox-esr is not installed at {FIREFOX} (scripts/test.sh installs it)",
)

READY = "document.querySelector('.page[data-ready=\"1\"]') !== null"

# Each page and the element that shows it rendered (with data, where the page has any).
PAGES = {
    "dashboard": f"{READY} && document.querySelectorAll('[data-testid=dashboard] .kpi, [data-testid=dashboard] svg').length > 0",
    "tail": "document.querySelector('[data-testid=tail-state]')?.textContent.includes('live')",
    "patterns": f"{READY} && document.querySelectorAll('[data-testid=patterns] tbody tr').length > 0",
    "anomalies": f"{READY} && document.querySelector('[data-testid=anomalies] [data-testid=anomaly-list]') !== null",
    "insights": f"{READY} && document.querySelector('[data-testid=insights]') !== null",
    "alerts": "document.querySelector('[data-testid=alerts-body]')?.children.length > 0",
    "sources": f"{READY} && document.querySelector('[data-testid=sources] [data-testid=push-help]') !== null",
    "settings": f"{READY} && document.querySelector('[data-testid=settings] [data-testid=local-mode]') !== null",
}


def _discover_state(tab: Tab) -> dict[str, Any]:
    return dict(
        tab.js(
            """({
              q: new URLSearchParams(location.search).get('q'),
              ready: document.querySelector('.discover')?.dataset.ready,
              hits: document.querySelector('[data-testid=hits]')?.textContent,
              rows: document.querySelectorAll('tr.ev').length,
              levels: [...document.querySelectorAll('tr.ev .c-lv')].map((td) => td.textContent.trim()),
              histogram: document.querySelectorAll('svg.tbars rect').length,
            })"""
        )
    )


def test_every_page_works_in_firefox(server: Served) -> None:
    with firefox() as tab:
        # Discover: rows and the histogram render.
        tab.goto(f"{server.url}/app/discover?from=now-2h")
        tab.wait_for(
            f"{READY} && document.querySelectorAll('tr.ev').length > 0 && document.querySelector('svg.tbars') !== null",
            what="Discover rows and histogram",
        )
        before = _discover_state(tab)
        assert before["rows"] and before["histogram"], before
        tab.screenshot(ARTIFACTS / "firefox-discover.png")

        # A query typed into the bar and run with a real Enter key press.
        tab.js(
            "(() => { const i = document.querySelector('[data-testid=query]'); i.focus(); i.value = 'level:ERROR'; "
            "i.dispatchEvent(new Event('input', {bubbles: true})); return true; })()"
        )
        tab.press("\ue007")
        tab.wait_for(
            f"new URLSearchParams(location.search).get('q') === 'level:ERROR' && {READY}"
            f" && document.querySelector('[data-testid=hits]').textContent !== {json.dumps(before['hits'])}",
            what="the level:ERROR results",
        )
        after = _discover_state(tab)
        assert after["rows"], after
        assert set(after["levels"]) == {"ERROR"}, after["levels"]
        assert after["levels"] != before["levels"]
        tab.screenshot(ARTIFACTS / "firefox-discover-errors.png")

        # Every other page renders its main element.
        for slug, rendered in PAGES.items():
            tab.goto(f"{server.url}/app/{slug}")
            tab.wait_for(rendered, what=f"the {slug} page")
            tab.screenshot(ARTIFACTS / f"firefox-{slug}.png")

        # Nothing ignored: the browser logged no error on any page.
        assert tab.console_errors() == []
