"""Server side: with ``llm_classify_new_patterns`` an LLM labels new patterns in the background,
within the tenant's LLM policy; later events of a labelled pattern carry its label."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from logloupe.analyse.classify import Classifier
from logloupe.model import format_pattern_id
from logloupe.parse.patterns import PatternMiner
from logloupe.serve.app import create_app
from logloupe.serve.deps import Principal
from logloupe.serve.services import Services
from logloupe.settings import Settings
from logloupe.store.accounts import Accounts

from .conftest import ScriptedLLM

FIRST = "quota check found volume {} at its usual size"
SECOND = "nightly report for volume {} mailed to ops@example.com"


def _post(c: TestClient, message: str) -> None:
    body = [{"message": message, "service": "storage", "level": "info"}]
    r = c.post("/api/v1/logs?sync=true", content=orjson.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code in (200, 202), r.text


def _classes(c: TestClient, word: str) -> list[str]:
    r = c.post("/api/v1/search", json={"q": word, "from": "now-1h", "sort": "ts:asc", "fields": "all"})
    assert r.status_code == 200, r.text
    return [e["classification"] for e in r.json()["events"]]


def test_new_patterns_get_llm_labels_within_the_tenant_policy(
    tmp_path: Path, llm_server: tuple[ScriptedLLM, str]
) -> None:
    llm, url = llm_server
    settings = Settings(
        data_dir=tmp_path / "data",
        writer_flush_ms=5,
        anomaly_tick_s=3600,
        ingest_wait_stored=True,
        pipeline_decode_processes=0,
        llm_provider="openai",
        llm_model="tiny",
        llm_base_url=url + "/v1",
        llm_classify_new_patterns=True,
    )
    services = Services.open(settings)
    accounts = Accounts(services.meta)
    tenant = accounts.create_tenant("Acme", 30)
    # Auth on, as the auth module installs it: the tenant's stored LLM policy applies.
    services.extras["principal_resolver"] = lambda request: Principal(tenant=tenant, user="u", role="admin")
    first = PatternMiner().add(FIRST.format(1), tenant=tenant, service="storage").pattern_id
    pid = PatternMiner().add(SECOND.format(1), tenant=tenant, service="storage").pattern_id
    for message in (FIRST, SECOND):
        assert Classifier.default().classify(message.format(1), "INFO").label == "normal"
    reply = {
        "labels": [
            {"pattern_id": format_pattern_id(pid), "label": "preventive_action", "confidence": 0.97},
            {"pattern_id": "ffffffffffffffff", "label": "incident", "confidence": 0.99},  # not sent: ignored
        ]
    }
    llm.script((200, orjson.dumps(reply).decode()))
    try:
        with TestClient(create_app(settings, services)) as c:
            labeller = services.extras["pattern_labeller"]
            # The tenant allows no provider yet: nothing is sent, the offline label stays.
            _post(c, FIRST.format(1))
            assert labeller.wait_idle(10)
            assert llm.requests == [] and labeller.skipped == 1
            assert c.get("/api/v1/pattern-labels").json()["labels"] == []

            # Allowed now (strict masking): the next new pattern is sent, masked, and labelled.
            accounts.set_policy(tenant, llm_allowed_providers=["openai"], llm_masking_mode="strict")
            _post(c, SECOND.format(1))
            assert labeller.wait_idle(10)
            assert len(llm.requests) == 1
            sent = llm.requests[0]["messages"][1]["content"]
            assert format_pattern_id(pid) in sent and format_pattern_id(first) not in sent
            # The miner masks e-mail addresses as variables (the same rules as redaction), so the
            # template holds <*> there; the redaction would make it <EMAIL>.
            assert "ops@example.com" not in sent and ("<EMAIL>" in sent or "mailed to <*>" in sent)
            listed = c.get("/api/v1/pattern-labels").json()
            assert listed["enabled"] is True and len(listed["labels"]) == 1
            label = listed["labels"][0]
            assert label["pattern_id"] == format_pattern_id(pid) and label["label"] == "preventive_action"
            assert label["offline_label"] == "normal" and label["source"] == "openai:tiny"

            # Later events of the pattern carry the LLM's label; the one stored before keeps its own.
            _post(c, SECOND.format(2))
            assert _classes(c, "nightly") == ["normal", "preventive_action"]
            assert _classes(c, "quota") == ["normal"]
    finally:
        services.close()


def test_off_by_default_and_the_route_says_so(client: TestClient) -> None:
    r = client.get("/api/v1/pattern-labels")
    assert r.status_code == 200 and r.json() == {"enabled": False, "labels": [], "queued": 0, "dropped": 0}


def test_requests_are_capped_per_hour_and_counted(tmp_path: Path, llm_server: tuple[ScriptedLLM, str]) -> None:
    from logloupe.analyse.llm_patterns import BATCH, NewPattern, PatternLabeller
    from logloupe.metrics import REGISTRY
    from logloupe.store.meta import MetaStore

    llm, url = llm_server
    settings = Settings(data_dir=tmp_path / "data", llm_provider="openai", llm_model="tiny", llm_base_url=url + "/v1")
    meta = MetaStore(tmp_path / "meta.db")

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("logloupe_llm_pattern_labels_total", {"outcome": outcome}) or 0.0

    before = count("over_rate"), count("kept")
    try:
        labeller = PatternLabeller(settings, meta, max_requests_per_hour=1)
        items = [
            NewPattern("default", k + 1, f"shape {k} of a pattern", "info", "normal", 0.9) for k in range(BATCH + 5)
        ]
        assert labeller.run_batch(items) == 0  # the scripted reply labels nothing
        assert len(llm.requests) == 1 and labeller.over_rate == 5
        assert count("over_rate") - before[0] == 5 and count("kept") - before[1] == BATCH
    finally:
        meta.close()
