"""The HTTP sink's wire contract: NDJSON, the ApiKey header, retries until a 2xx, batch lookup."""

from __future__ import annotations

import httpx
import orjson
import pytest

from logloupe.ingest.sinks import BATCH_ATTRIBUTE, Batch, HttpSink, SinkError, send_with_retry


def test_http_sink_posts_ndjson_with_the_api_key_and_retries_until_acknowledged() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(503, json={"error": {"code": "unavailable"}}), httpx.Response(200, json={"accepted": 2})]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    client = httpx.Client(base_url="http://logloupe.test", transport=httpx.MockTransport(handler))
    sink = HttpSink("http://logloupe.test", "k-123", client=client)
    batch = Batch("b1", "tail:x", [{"message": "one"}, {"message": "two", "attributes": {"a": "1"}}])
    errors: list[SinkError] = []
    assert send_with_retry(sink, batch, on_error=errors.append, initial_s=0.01) == 2
    assert len(seen) == 2 and len(errors) == 1 and errors[0].retryable
    req = seen[-1]
    assert req.url.path == "/api/v1/logs"
    assert req.headers["authorization"] == "ApiKey k-123"
    assert req.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in req.content.split(b"\n")]
    assert [r["message"] for r in lines] == ["one", "two"]
    assert all(r["attributes"][BATCH_ATTRIBUTE] == "b1" and r["source"] == "tail:x" for r in lines)
    assert lines[1]["attributes"]["a"] == "1"


def test_http_sink_stops_waiting_when_asked_and_reports_client_errors() -> None:
    client = httpx.Client(
        base_url="http://logloupe.test",
        transport=httpx.MockTransport(lambda r: httpx.Response(401, json={"error": {"code": "unauthorized"}})),
    )
    sink = HttpSink("http://logloupe.test", client=client)
    with pytest.raises(SinkError) as info:
        sink.send(Batch("b2", "s", [{"message": "x"}]))
    assert not info.value.retryable and "401" in info.value.message
    assert send_with_retry(sink, Batch("b2", "s", [{"message": "x"}]), stopping=lambda: True) is None


def test_has_batch_asks_the_search_api() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["q"] == f'attr.{BATCH_ATTRIBUTE}:"abc"'
        return httpx.Response(200, json={"total": 3, "events": []})

    client = httpx.Client(base_url="http://logloupe.test", transport=httpx.MockTransport(handler))
    assert HttpSink("http://logloupe.test", client=client).has_batch("abc")


def test_has_batch_with_an_ingest_only_key_resends() -> None:
    client = httpx.Client(
        base_url="http://logloupe.test", transport=httpx.MockTransport(lambda r: httpx.Response(403, json={}))
    )
    assert HttpSink("http://logloupe.test", "ingest-only", client=client).has_batch("abc") is False
