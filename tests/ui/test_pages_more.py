"""The Anomalies and Sources pages in a real browser against a real ``logloupe serve``.

The server has its own data directory: a steady baseline is ingested over HTTP, then a burst of a
new error in ``api`` (as in tests/serve/test_anomalies_api.py), so the detectors raise real
anomalies. It also runs one pull source (a file tail), so the Sources page has a row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import orjson
import pytest

from logloupe.model import iso_micros
from logloupe.store.anomalies import AnomalyRecords
from logloupe.store.meta import MetaStore
from tests.helpers import free_port, wait_http
from tests.ui.conftest import LOGLOUPE, Page, Served, shot

MINUTE_US = 60_000_000
HOUR_US = 3600 * 1_000_000
# Two days ago, on the hour: inside the page's default range (7 days).
T0 = (time.time_ns() // 1000 - 48 * HOUR_US) // HOUR_US * HOUR_US
BASELINE = 150
XSS = '<img src=x onerror="window.__xss=1">'
# A service whose name is a script payload, with its own baseline and burst: its anomalies show it.
XSS_SERVICE = '<svg onload="window.__xss=1">shop'


def _at(minute: int, second: float = 0.0) -> str:
    return iso_micros(T0 + minute * MINUTE_US + int(second * 1_000_000))


def _normal(minute: int, service: str, n: int) -> list[dict[str, Any]]:
    msg = "GET /items/{} 200 in {}ms" if service == "api" else "charged invoice {} amount {}.00 EUR"
    return [
        {
            "timestamp": _at(minute, i * 60 / n),
            "service": service,
            "level": "info",
            "message": msg.format(minute * 1000 + i, 10 + i % 7),
        }
        for i in range(n)
    ]


def _errors(minute: int, n: int, service: str = "api") -> list[dict[str, Any]]:
    return [
        {
            "timestamp": _at(minute, i * 60 / n),
            "service": service,
            "level": "error",
            # Log text is untrusted: the page must show this as text.
            "message": f"database connection refused to db-{i % 3} after {5000 + i}ms {XSS}",
        }
        for i in range(n)
    ]


def _ingest(client: httpx.Client, events: list[dict[str, Any]]) -> None:
    body = b"\n".join(orjson.dumps(e) for e in events)
    r = client.post("/api/v1/logs?sync=true", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("anomalies")
    logs = base / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("".join(f"worker started job-{i}\n" for i in range(40)))
    config = base / "logloupe.toml"
    glob = orjson.dumps(str(logs / "*.log")).decode()
    config.write_text(
        f'[[sources]]\ntype = "tail"\nname = "app-files"\npaths = [{glob}]\nservice = "worker"\nstart_at = "beginning"\n'
    )
    port = free_port()
    env = {**os.environ, "LOGLOUPE_CONFIG": str(config), "LOGLOUPE_ANOMALY_TICK_S": "3600"}
    proc = subprocess.Popen(
        [*LOGLOUPE, "serve", "--port", str(port), "--data-dir", str(base / "data")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        with httpx.Client(base_url=url, timeout=30) as client:
            chunk: list[dict[str, Any]] = []
            for minute in range(BASELINE):
                chunk += _normal(minute, "api", 20) + _normal(minute, "billing", 10) + _normal(minute, XSS_SERVICE, 10)
                if len(chunk) >= 1500:
                    _ingest(client, chunk)
                    chunk = []
            if chunk:
                _ingest(client, chunk)
            # A burst of a message never seen before; the next minutes close its bucket.
            _ingest(
                client,
                _normal(BASELINE, "api", 20)
                + _errors(BASELINE, 200)
                + _normal(BASELINE, XSS_SERVICE, 10)
                + _errors(BASELINE, 100, XSS_SERVICE),
            )
            for minute in range(BASELINE + 1, BASELINE + 4):
                _ingest(client, _normal(minute, "api", 20))
            deadline = time.monotonic() + 20
            kinds: set[str] = set()
            services: set[str] = set()
            while time.monotonic() < deadline and not (
                {"new_pattern", "error_ratio"} <= kinds and XSS_SERVICE in services
            ):
                items = client.get("/api/v1/anomalies").json()["items"]
                kinds = {a["kind"] for a in items}
                services = {a["service"] for a in items}
                time.sleep(0.2)
            assert {"new_pattern", "error_ratio"} <= kinds, kinds
            assert XSS_SERVICE in services, services
        yield Served(url, base / "data", proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _q(pg: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(pg.url).query)


def _ready(pg: Any) -> None:
    pg.wait_for_selector('.page[data-ready="1"]')


def test_anomalies_page_lists_explains_links_and_takes_feedback(incident: Served, page: Page) -> None:
    pg = page.page
    pg.goto(f"{incident.url}/app/anomalies")
    _ready(pg)
    cards = pg.locator(".an-card")
    assert cards.count() >= 2
    kinds = {cards.nth(i).get_attribute("data-kind") for i in range(cards.count())}
    assert {"new_pattern", "error_ratio"} <= kinds
    ratio = pg.locator('.an-card[data-kind="error_ratio"]').filter(has_text="200 of 220").first
    assert "200 of 220 events were errors" in ratio.get_by_test_id("summary").inner_text()
    example = ratio.locator(".an-ex").first.inner_text()
    assert "database connection refused" in example and XSS in example
    assert pg.evaluate("window.__xss") is None
    assert pg.locator(".lanes .dot[data-service='api']").count() >= 1
    # The payload service: its name is text in the cards, the timeline lanes and the service filter.
    assert pg.locator(".an-card .an-svc").filter(has_text=XSS_SERVICE).count() >= 1
    assert pg.get_by_test_id("anomaly-service").locator("option").filter(has_text=XSS_SERVICE).count() == 1
    assert pg.evaluate("document.querySelectorAll('#page svg[onload], #page img[src=x]').length") == 0
    shot(pg, "anomalies")

    # Filters go to the URL and to the list.
    pg.get_by_test_id("anomaly-kind").select_option("error_ratio")
    _ready(pg)
    assert _q(pg)["kind"] == ["error_ratio"]
    assert {cards.nth(i).get_attribute("data-kind") for i in range(cards.count())} == {"error_ratio"}

    # Feedback: posted, shown, stored.
    anomaly_id = ratio.get_attribute("data-id")
    ratio.locator('button[data-verdict="false_positive"]').click()
    pg.wait_for_selector(f'.an-card[data-id="{anomaly_id}"][data-feedback="false_positive"]')
    assert ratio.get_by_test_id("verdict").inner_text() == "False positive"
    stored = httpx.get(f"{incident.url}/api/v1/anomalies/{anomaly_id}").json()
    assert stored["feedback"] == "false_positive"
    ratio.locator('button[data-verdict="real"]').click()
    pg.wait_for_selector(f'.an-card[data-id="{anomaly_id}"][data-feedback="real"]')
    assert ratio.get_by_test_id("verdict").inner_text() == "Confirmed real"
    assert httpx.get(f"{incident.url}/api/v1/anomalies/{anomaly_id}").json()["feedback"] == "real"
    shot(pg, "anomalies-feedback")

    # Explain: the insight for the anomaly streams into the panel, with citations.
    ratio.locator('[data-act="explain"]').click()
    insight = pg.get_by_test_id("explain").get_by_test_id("insight")
    insight.wait_for()
    assert "probable cause" in insight.inner_text().lower()
    assert insight.get_by_test_id("citation").count() >= 1
    shot(pg, "anomalies-explain")
    pg.keyboard.press("Escape")

    # The evidence link opens Discover on exactly those events, around the anomaly's time.
    ratio.get_by_test_id("evidence-link").click()
    pg.wait_for_url("**/app/discover**")
    _ready(pg)
    params = _q(pg)
    ids = stored["event_ids"]
    assert params["q"] == [" OR ".join(f"id:{i}" for i in ids)]
    assert params["from"][0] < stored["ts"] < params["to"][0]
    rows = pg.locator("tr.ev")
    rows.first.wait_for()
    assert rows.count() == len(ids)
    assert all("database connection refused" in m for m in pg.locator("tr.ev .c-msg").all_inner_texts())
    shot(pg, "anomalies-evidence")

    # A pattern link (when the pipeline assigned template ids) opens Discover on pattern:<id>.
    pg.go_back()
    _ready(pg)
    link = pg.get_by_test_id("pattern-link")
    if link.count():
        pid = link.first.inner_text()
        page_link = pg.get_by_test_id("pattern-page-link").first
        assert page_link.get_attribute("href") == f"/app/patterns?focus={pid}&from=now-7d"
        link.first.click()
        pg.wait_for_url("**/app/discover**")
        _ready(pg)
        assert _q(pg)["q"] == [f"pattern:{pid}"]
        pg.go_back()
        _ready(pg)
    pg.keyboard.press("t")  # light theme
    _ready(pg)
    shot(pg, "anomalies-light")
    assert not page.errors, page.errors


def test_sources_page_shows_pull_sources_and_push_snippets(incident: Served, page: Page) -> None:
    pg = page.page
    pg.goto(f"{incident.url}/app/sources")
    _ready(pg)
    row = pg.locator('tr[data-source="app-files"]')
    row.wait_for()
    assert "File tail" in row.inner_text()
    pg.wait_for_selector('tr[data-source="app-files"][data-status="running"]', timeout=15_000)
    help_text = pg.get_by_test_id("push-help").inner_text()
    for needle in ("/api/v1/logs", "/_bulk", "/v1/logs", "/loki/api/v1/push", "5514", "/api/v1/upload"):
        assert needle in help_text
    assert f"{incident.url}/api/v1/logs" in help_text  # snippets use the page's own origin
    pg.get_by_test_id("copy").first.click()
    pg.locator(".toast").first.wait_for()
    shot(pg, "sources")
    assert not page.errors, page.errors


def test_sources_page_lists_the_rejected_input_as_text_filtered_and_paged(incident: Served, page: Page) -> None:
    with httpx.Client(base_url=incident.url, timeout=30) as client:
        bad = b"\n".join(b"{broken line %02d " % i + XSS.encode() for i in range(55))
        r = client.post("/api/v1/logs", content=bad, headers={"content-type": "application/x-ndjson"})
        assert r.status_code == 400
        r = client.post("/v1/logs", content=b"{not otlp " + XSS.encode(), headers={"content-type": "application/json"})
        assert r.status_code == 400
        total = client.get("/api/v1/quarantine").json()["total"]
    pg = page.page
    pg.goto(f"{incident.url}/app/sources")
    _ready(pg)
    table = pg.get_by_test_id("quarantine-table")
    table.wait_for()
    assert pg.get_by_test_id("quarantine-total").inner_text() == f"{total} kept"
    rows = table.locator("tbody tr")
    assert rows.count() == 20  # a page
    first = rows.first.inner_text()
    assert "otlp" in first and XSS in first  # newest first, the input shown as text
    assert pg.evaluate("window.__xss") is None
    pg.get_by_test_id("quarantine").scroll_into_view_if_needed()
    shot(pg, "sources-quarantine")
    pg.get_by_test_id("quarantine-more").click()
    rows.nth(20).wait_for()  # the page's CSP refuses wait_for_function's eval
    assert rows.count() == 40
    assert "{broken line 16 " in rows.last.inner_text()  # the next 20, older (the otlp item came last)
    pg.get_by_test_id("quarantine-source").select_option("otlp")
    pg.wait_for_selector("[data-testid=quarantine-table] tbody tr:nth-child(20)", state="detached")
    assert all("otlp" in t for t in rows.all_inner_texts())
    assert not pg.get_by_test_id("quarantine-more").is_visible()
    assert not page.errors, page.errors


def test_anomalies_page_shows_the_repeats_counted_on_an_anomaly(incident: Served, page: Page) -> None:
    items = httpx.get(f"{incident.url}/api/v1/anomalies").json()["items"]
    first = items[0]
    assert first["repeats"] == 0
    meta = MetaStore(incident.data / "meta.db")  # as the server's detectors count them
    AnomalyRecords(meta.engine).add_repeats({first["id"]: 3})
    meta.close()
    assert httpx.get(f"{incident.url}/api/v1/anomalies/{first['id']}").json()["repeats"] == 3
    pg = page.page
    pg.goto(f"{incident.url}/app/anomalies")
    _ready(pg)
    card = pg.locator(f'.an-card[data-id="{first["id"]}"]')
    assert card.get_by_test_id("repeats").inner_text() == "· +3 more"
    assert pg.get_by_test_id("repeats").count() == 1
