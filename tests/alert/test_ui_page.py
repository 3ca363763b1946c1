"""The alerts page in a real browser (Debian's Chromium): history with deliveries, rules, silences.

It needs the UI shell (``logloupe.serve.api.ui`` and ``serve/ui/index.html``, from the UI branch)
with ``pages/registry.js`` pointing the ``alerts`` slug at ``./alerts.js``; it skips until then.
"""

from __future__ import annotations

import importlib.util
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from logloupe.model import Level, LogEvent
from logloupe.serve.app import ROUTER_MODULES, create_app
from logloupe.settings import Settings
from tests.helpers import free_port, wait_http

CHROMIUM = Path("/usr/bin/chromium")
UI_DIR = Path(__file__).resolve().parents[2] / "src/logloupe/serve/ui"

pytestmark = pytest.mark.skipif(
    not (
        CHROMIUM.exists()
        and importlib.util.find_spec("playwright") is not None
        and "logloupe.serve.api.ui" in ROUTER_MODULES
        and (UI_DIR / "index.html").exists()
    ),
    reason="needs the UI shell (UI branch), playwright and /usr/bin/chromium",
)


@pytest.fixture
def server() -> Iterator[tuple[str, object]]:
    import uvicorn

    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        app = create_app(Settings(data_dir=Path(d), port=port, writer_flush_ms=5))
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        yield base, app
        srv.should_exit = True
        thread.join(10)


def test_alerts_page(server: tuple[str, object]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, app = server
    services = app.state.services  # type: ignore[attr-defined]
    now = time.time_ns() // 1000
    hostile = "<img src=x onerror=alert(1)> payment failed"
    services.writer.write(
        [
            LogEvent(
                "default",
                now,
                now,
                i + 1,
                hostile,
                service="checkout",
                level=Level.ERROR,
                classification="incident",
                pattern_id=42,
            )
            for i in range(5)
        ]
    )
    services.extras["alerts"].dispatcher.drain()
    with httpx.Client(base_url=base) as c:
        [item] = c.get("/api/v1/alerts/history").json()["items"]
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
            page.goto(f"{base}/app/alerts?tab=history&id={item['id']}")
            page.wait_for_selector("[data-testid=alert-history] tbody tr[data-id]")
            text = page.locator("[data-testid=alert-history]").inner_text()
            assert "Incident in checkout" in text and "email: not_configured" in text
            assert hostile in text  # shown as text, never markup
            page.click("button[data-tab=rules]")
            page.wait_for_selector("[data-testid=alert-rules] tbody tr")
            before = page.locator("[data-testid=alert-rules] tbody tr").count()
            page.fill("input[aria-label='Rule name']", "from the ui")
            page.click("[data-testid=rule-form] button[type=submit]")
            expect(page.locator("[data-testid=alert-rules] tbody tr")).to_have_count(before + 1)
            page.goto(f"{base}/app/alerts?tab=silences&rule_id={item['rule_id']}&group_key={item['group_key']}")
            page.wait_for_selector("[data-testid=silence-form]")
            page.click("[data-testid=silence-form] button[type=submit]")
            page.wait_for_selector("[data-testid=alert-silences] tbody tr")
        finally:
            browser.close()
    assert errors == []
    with httpx.Client(base_url=base) as c:
        [silence] = c.get("/api/v1/alerts/silences").json()["items"]
        assert silence["rule_id"] == item["rule_id"] and silence["group_key"] == item["group_key"]
        assert "from the ui" in {r["name"] for r in c.get("/api/v1/alerts/rules").json()["items"]}
