"""The quarantine through the real app: paging, filters, totals, and its bounds (age and size)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.serve.services import Services
from logloupe.settings import Settings
from logloupe.store.search import now_us

DAY_US = 86_400_000_000


def _pruned(client: TestClient, reason: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'logloupe_quarantine_pruned_total{{reason="{reason}",tenant="default"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def _reject(client: TestClient, *lines: bytes, path: str = "/api/v1/logs") -> None:
    r = client.post(path, content=b"\n".join(lines), headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 400 and r.json()["error"]["rejected"] == len(lines), r.text


def test_quarantine_pages_newest_first_with_totals_and_a_source_filter(client: TestClient) -> None:
    for i in range(5):
        _reject(client, b"{broken %d" % i)
    r = client.post("/v1/logs", content=b"{not otlp", headers={"content-type": "application/json"})
    assert r.status_code == 400
    first = client.get("/api/v1/quarantine", params={"limit": 2, "source": "http"}).json()
    assert first["total"] == 5
    assert [i["raw"] for i in first["items"]] == ["{broken 4", "{broken 3"]
    rest = client.get("/api/v1/quarantine", params={"limit": 2, "source": "http", "before": first["next_before"]})
    second = rest.json()
    assert [i["raw"] for i in second["items"]] == ["{broken 2", "{broken 1"]
    last = client.get("/api/v1/quarantine", params={"limit": 2, "source": "http", "before": second["next_before"]})
    assert [i["raw"] for i in last.json()["items"]] == ["{broken 0"] and last.json()["next_before"] is None
    everything = client.get("/api/v1/quarantine").json()
    assert everything["total"] == 6 and everything["items"][0]["source"] == "otlp"
    assert client.get("/api/v1/quarantine", params={"source": "loki"}).json() == {
        "items": [],
        "total": 0,
        "next_before": None,
    }


def test_a_flood_of_bad_input_is_cut_back_to_the_size_cap_oldest_first_and_counted(settings: Settings) -> None:
    cap = 65536
    with TestClient(create_app(settings.model_copy(update={"quarantine_max_bytes": cap}))) as c:
        before = _pruned(c, "size")
        for i in range(40):  # 40 × ~4 KiB: two and a half times the cap
            _reject(c, b"{bad %02d " % i + b"x" * 4000)
        page = c.get("/api/v1/quarantine", params={"limit": 1000}).json()
        kept = page["items"]
        size = sum(len(i["raw"]) + len(i["reason"]) for i in kept)
        assert size <= cap + cap // 8
        assert kept[0]["raw"].startswith("{bad 39")  # the newest stays
        assert not any(i["raw"].startswith("{bad 00") for i in kept)  # the oldest went
        assert page["total"] == len(kept) < 40
        assert _pruned(c, "size") - before == 40 - len(kept)


def test_the_retention_sweep_deletes_quarantined_input_past_the_tenants_retention(client: TestClient) -> None:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    _reject(client, b"{old and broken")
    sweeper = services.extras["retention_sweeper"]
    before = _pruned(client, "age")
    sweeper.run_once(now=now_us() + DAY_US)  # well within the default 30 days: kept
    assert client.get("/api/v1/quarantine").json()["total"] == 1
    sweeper.run_once(now=now_us() + 31 * DAY_US)
    assert client.get("/api/v1/quarantine").json()["total"] == 0
    assert _pruned(client, "age") - before == 1
