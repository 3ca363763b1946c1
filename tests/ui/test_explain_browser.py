"""Explain in a real browser against a real server: the insight streams in, citations open Discover."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from tests.ui.conftest import Page, Served, shot


def test_explain_a_pattern_streams_an_insight_with_citation_links(server: Served, page: Page) -> None:
    pg = page.page
    pg.goto(f"{server.url}/app/patterns?from=now-3h&filter=fraud")
    pg.wait_for_selector('.page[data-ready="1"]')
    row = pg.locator("tr.prow").first
    pid = row.get_attribute("data-id")
    assert pid and re.fullmatch(r"[0-9a-f]{16}", pid)
    row.locator('[data-act="explain"]').click()
    panel = pg.get_by_test_id("explain")
    panel.wait_for()
    insight = panel.get_by_test_id("insight")
    insight.wait_for()
    text = insight.inner_text().lower()
    assert "probable cause" in text and "fixes" in text
    assert pid in text
    cites = insight.get_by_test_id("citation")
    assert cites.count() >= 1
    shot(pg, "explain-pattern")

    # Feedback is stored.
    insight.get_by_test_id("fb-helpful").click()
    insight.get_by_test_id("feedback-status").filter(has_text="helpful").wait_for()

    # A citation opens Discover on exactly the cited events.
    href = cites.first.get_attribute("href") or ""
    cited = re.findall(r"id:([0-9a-f]+)", parse_qs(urlparse(href).query)["q"][0])
    assert cited
    cites.first.click()
    pg.wait_for_url(re.compile(r"/app/discover"))
    pg.wait_for_selector('.page[data-ready="1"]')
    assert pg.locator("tr.ev").count() == len(cited)
    assert all("fraud check unreachable" in m for m in pg.locator("tr.ev .c-msg").all_inner_texts())

    # The Insights page lists it.
    pg.goto(f"{server.url}/app/insights")
    pg.wait_for_selector('.page[data-ready="1"]')
    card = pg.locator(".ins-card").first
    assert "helpful" in card.inner_text()
    shot(pg, "insights")

    # Explain on an event opened in Discover.
    pg.goto(f"{server.url}/app/discover?from=now-3h&q=pattern:{pid}")
    pg.wait_for_selector('.page[data-ready="1"]')
    pg.locator("tr.ev").first.click()
    pg.get_by_test_id("explain-event").click()
    insight = pg.get_by_test_id("explain").get_by_test_id("insight")
    insight.wait_for()
    assert "event " in insight.inner_text() and insight.get_by_test_id("citation").count() >= 1
    shot(pg, "explain-event")
    assert not page.errors, page.errors
