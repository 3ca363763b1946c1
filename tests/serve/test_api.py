"""The HTTP API through the real app: ingest, search, histogram, facets, context, errors."""

from __future__ import annotations

import gzip

import orjson
import zstandard
from fastapi.testclient import TestClient

from logloupe.errors import error_body


def _ingest(client: TestClient, lines: list[dict[str, object]]) -> dict[str, object]:
    body = b"\n".join(orjson.dumps(x) for x in lines)
    r = client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_error_body_shape_is_pinned() -> None:
    assert error_body("query_syntax", "bad", position=3) == {
        "error": {"code": "query_syntax", "message": "bad", "position": 3}
    }


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


def test_ingest_shapes_and_search(client: TestClient) -> None:
    _ingest(
        client,
        [{"service": "auth", "level": "error", "message": "login failed", "meta": {"user": {"id": 7}}}],
    )
    assert client.post("/api/v1/logs", json=[{"message": "array one"}, {"message": "array two"}]).status_code == 200
    assert client.post("/ingest", json={"message": "simplest curl"}).json()["accepted"] == 1
    plain = client.post(
        "/api/v1/logs", content=b"WARN disk almost full\nplain two\n", headers={"content-type": "text/plain"}
    )
    assert plain.json()["accepted"] == 2
    gz = client.post(
        "/api/v1/logs",
        content=gzip.compress(b'{"message":"zipped gz"}'),
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert gz.json()["accepted"] == 1
    zs = client.post(
        "/api/v1/logs",
        content=zstandard.ZstdCompressor().compress(b'{"message":"zipped zstd"}'),
        headers={"content-encoding": "zstd"},
    )
    assert zs.json()["accepted"] == 1
    r = client.get("/api/v1/search", params={"q": "login", "limit": 10}).json()
    assert r["total"] == 1
    event = r["events"][0]
    for key in ("id", "ts", "service", "host", "level", "message", "pattern_id", "attributes"):
        assert key in event
    assert event["attributes"] == {"user.id": "7"}
    assert event["level"] == "ERROR"
    assert client.get("/api/v1/search", params={"q": "level:WARN"}).json()["total"] == 1
    assert client.post("/api/v1/search", json={"q": "zipped", "limit": 5}).json()["total"] == 2


def test_search_fields_default_added_and_all(client: TestClient) -> None:
    _ingest(
        client,
        [{"service": "auth", "level": "warn", "message": "login slow", "trace_id": "t-1", "meta": {"user": 7}}],
    )
    default = {"id", "ts", "tenant", "service", "host", "level", "message", "pattern_id", "attributes"}
    for params in ({"q": "login"}, {"q": "login", "from": "now-1h"}, {}):
        event = client.get("/api/v1/search", params=params).json()["events"][0]
        assert event.keys() == default
        assert event["attributes"] == {"user": "7"} and event["level"] == "WARN"
    more = client.post("/api/v1/search", json={"q": "login", "fields": "trace_id, level_raw"}).json()["events"][0]
    assert more.keys() == default | {"trace_id", "level_raw"}
    assert (more["trace_id"], more["level_raw"]) == ("t-1", "warn")
    listed = client.post("/api/v1/search", json={"q": "login", "fields": ["trace_id", "level_raw"]}).json()
    assert listed["events"][0] == more
    whole = client.get("/api/v1/search", params={"q": "login", "fields": "all"}).json()["events"][0]
    assert whole == client.get(f"/api/v1/events/{whole['id']}").json()
    bad = client.get("/api/v1/search", params={"fields": "message,secret"})
    assert bad.status_code == 400
    assert "secret" in bad.json()["error"]["message"] and "trace_id" in bad.json()["error"]["message"]


def test_meta_shape_reads_the_same_as_json_and_as_text(client: TestClient) -> None:
    line = {
        "service": "auth",
        "level": "warn",
        "message": "{via} login slow",
        "meta": {"user_id": 7, "req": {"path": "/login"}, "service": "inner"},
        "region": "eu",
    }
    for via, ctype in (("json", "application/json"), ("text", "text/plain")):
        body = orjson.dumps({**line, "message": f"{via} login slow"})
        r = client.post("/api/v1/logs", content=body, headers={"content-type": ctype})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    events = client.get("/api/v1/search", params={"q": "attr.user_id:7", "limit": 10}).json()["events"]
    by_path = {e["message"].split()[0]: e for e in events}
    assert set(by_path) == {"json", "text"}
    # meta's members are attributes of their own on both paths; only the top level names the service
    expected = {"user_id": "7", "req.path": "/login", "service": "inner", "region": "eu"}
    assert by_path["json"]["attributes"] == by_path["text"]["attributes"] == expected
    assert {e["service"] for e in events} == {"auth"}
    assert {e["level"] for e in events} == {"WARN"}


def test_partly_bad_batch_keeps_good_items_and_quarantines_bad(client: TestClient) -> None:
    body = b'{"message":"good one"}\n{broken json\n42\n{"message":"good two"}\n'
    r = client.post("/api/v1/logs", content=body)
    report = r.json()
    assert r.status_code == 200
    assert report["accepted"] == 2
    assert report["rejected"] == 2
    assert {e["index"] for e in report["errors"]} == {1, 2}
    q = client.get("/api/v1/quarantine").json()["items"]
    assert {item["raw"] for item in q} == {"{broken json", "42"}


def test_bad_input_gets_clear_4xx(client: TestClient) -> None:
    r = client.post("/api/v1/logs", content=b"not json at all")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_input"
    r = client.post("/api/v1/logs", content=b"\x1f\x8b garbage", headers={"content-encoding": "gzip"})
    assert r.status_code == 400
    r = client.post("/api/v1/logs", content=b"{}", headers={"content-encoding": "brotli-ish"})
    assert r.status_code == 415
    r = client.get("/api/v1/search", params={"q": "(unclosed"})
    assert r.status_code == 400
    assert r.json()["error"]["position"] == 9
    assert client.get("/api/v1/search", params={"from": "yesterday-ish"}).status_code == 400
    assert client.get("/api/v1/search", params={"limit": 10**9}).status_code == 400
    assert client.get("/api/v1/search", params={"cursor": "!!"}).status_code == 400
    assert client.get("/api/v1/events/nothex/context").status_code == 404
    assert client.get("/api/v1/histogram", params={"interval": "1s", "from": "now-30d"}).status_code == 400


def test_oversize_body_is_413_and_leaves_a_stub_in_the_quarantine(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import cramjam

    from logloupe.serve.app import create_app

    small = settings.model_copy(update={"max_body_bytes": 2048, "upload_max_bytes": 4096})
    big = b'{"message":"' + b"x" * 40_000 + b'"}'
    with TestClient(create_app(small)) as c:
        r = c.post("/api/v1/logs", content=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        assert "head" not in r.json()["error"]
        bomb = gzip.compress(b'{"message":"' + b"y" * 100_000 + b'"}')
        r = c.post("/api/v1/logs", content=bomb, headers={"content-encoding": "gzip"})
        assert r.status_code == 413
        sent = {
            "elasticsearch": [
                c.post("/_bulk", content=b'{"index":{"_index":"a"}}\n' + big),
                c.post("/a/_doc", content=big),
            ],
            "otlp": [c.post("/v1/logs", content=big, headers={"content-type": "application/json"})],
            "loki": [
                c.post("/loki/api/v1/push", content=big, headers={"content-type": "application/json"}),
                c.post(  # a snappy block that inflates past the limit
                    "/loki/api/v1/push",
                    content=bytes(cramjam.snappy.compress_raw(big)),
                    headers={"content-type": "application/x-protobuf"},
                ),
            ],
            "upload": [c.post("/api/v1/upload", files={"file": ("big.log", b"z\n" * 5000)})],
        }
        for responses in sent.values():
            assert [x.status_code for x in responses] == [413] * len(responses)
        items = c.get("/api/v1/quarantine").json()["items"][::-1]  # oldest first
        got = [(i["source"], i["reason"], len(i["raw"]), i["raw"][:12]) for i in items]
        assert got == [
            ("http", "request body larger than 2048 bytes", 16384, '{"message":"'),
            ("http", "decompressed body larger than 2048 bytes", 2049, '{"message":"'),  # inflated up to the limit
            ("elasticsearch", "request body larger than 2048 bytes", 16384, '{"index":{"_'),
            ("elasticsearch", "request body larger than 2048 bytes", 16384, '{"message":"'),
            ("otlp", "request body larger than 2048 bytes", 16384, '{"message":"'),
            ("loki", "request body larger than 2048 bytes", 16384, '{"message":"'),
            ("loki", "decompressed body larger than 2048 bytes", got[6][2], got[6][3]),  # still snappy
            ("upload", "upload larger than 4096 bytes", got[7][2], got[7][3]),
        ]
        assert got[7][2] > 10_000 and got[7][3].startswith("--")  # the whole multipart body: under 16 KiB
        assert 'filename="big.log"' in items[7]["raw"] and "z\nz\nz\n" in items[7]["raw"]
        metrics = c.get("/metrics").text
        assert (
            'logloupe_rejected_events_total{reason="payload_too_large",source="otlp",tenant="default"} 1.0' in metrics
        )


def test_flags_for_unclean_input(client: TestClient) -> None:
    huge = "z" * 70000
    report = _ingest(client, [{"message": "fine"}, {"message": huge}, {"message": "nul\u0000inside"}])
    assert report["accepted"] == 3 and report["errors"] == []
    assert report["warnings"] == [
        {"index": 1, "reason": "70014 bytes: the message is cut to 65536 bytes and flagged truncated"}
    ]
    client.post("/api/v1/logs", content=b"bad utf8 \xff\xfe here", headers={"content-type": "text/plain"})
    events = client.get("/api/v1/search", params={"limit": 10, "fields": "all"}).json()["events"]
    flags = {e["message"][:8]: e["flags"] for e in events}
    assert flags["z" * 8] == ["truncated"]
    assert flags["nul\u0000insi"] == ["nul_bytes"]
    assert flags["bad utf8"] == ["invalid_utf8"]


def test_warnings_name_items_with_attributes_dropped_or_nesting_flattened(client: TestClient) -> None:
    deep: dict[str, object] = {"leaf": 1}
    for level in range(10):
        deep = {f"l{level}": deep}
    many = {f"k{i}": i for i in range(300)}
    long_and_many = {"message": "z" * 70000, "attributes": many}
    report = _ingest(
        client,
        [
            {"message": "shape fine", "meta": {"user": {"id": 7}}},
            {"message": "shape many", "meta": many},
            {"message": "shape deep", "meta": deep},
            long_and_many,
        ],
    )
    assert report["accepted"] == 4 and report["errors"] == []
    dropped = "more than 256 attributes: the rest are dropped and the event flagged attributes_dropped"
    assert report["warnings"] == [
        {"index": 1, "reason": dropped},
        {"index": 2, "reason": "objects nested deeper than 8 levels are kept as JSON text, flagged nesting_flattened"},
        {
            "index": 3,
            "reason": f"{len(orjson.dumps(long_and_many))} bytes: the message is cut to 65536 bytes and flagged truncated",
        },
        {"index": 3, "reason": dropped},
    ]
    # the same names as the stored events' flags
    events = client.get("/api/v1/search", params={"q": "shape", "limit": 10, "fields": "all"}).json()["events"]
    assert {e["message"]: e["flags"] for e in events} == {
        "shape fine": [],
        "shape many": ["attributes_dropped"],
        "shape deep": ["nesting_flattened"],
    }
    # a JSON line sent as text: the text path's limits (parse/formats.py), named the same way
    line = orjson.dumps({"message": "text many", **{f"t{i}": i for i in range(70)}})
    r = client.post("/api/v1/logs", content=b"plain first\n" + line, headers={"content-type": "text/plain"})
    assert r.json()["warnings"] == [
        {"index": 1, "reason": "more than 64 attributes: the rest are dropped and the event flagged attributes_dropped"}
    ]
    text = client.get("/api/v1/search", params={"q": "text many", "fields": "all"}).json()["events"][0]
    assert text["flags"] == ["attributes_dropped"] and len(text["attributes"]) < 70
    plain = client.post("/api/v1/logs", content=b"{no json} here", headers={"content-type": "text/plain"})
    assert plain.status_code == 200 and "warnings" not in plain.json()


def test_invalid_utf8_inside_json_is_stored_replaced_and_flagged(client: TestClient) -> None:
    ndjson = (
        b'{"message":"utf8 line fine"}\n'
        b'{"message":"utf8 line bad \xff\xfe","level":"error","meta":{"user":"b\xe9a"}}\n'
        b'{"message":"utf8 line broken \xff"\n'  # not JSON even read with U+FFFD: rejected as before
    )
    r = client.post("/api/v1/logs", content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["accepted"], report["rejected"], [e["index"] for e in report["errors"]]) == (2, 1, [2])
    quarantined = client.get("/api/v1/quarantine").json()["items"]
    assert [q["raw"] for q in quarantined] == ['{"message":"utf8 line broken \ufffd"']
    one = client.post("/api/v1/logs", content=b'{"message":"utf8 object \xc3"}')
    array = client.post("/api/v1/logs", content=b'[{"message":"utf8 array ok"},{"message":"utf8 array \xc3("}]')
    assert one.json()["accepted"] == 1 and array.json()["accepted"] == 2
    events = client.get("/api/v1/search", params={"q": "utf8", "limit": 10, "fields": "all"}).json()["events"]
    got = {e["message"]: (e["flags"], e["level"], e["attributes"]) for e in events}
    assert got == {
        "utf8 line fine": ([], "INFO", {}),
        "utf8 line bad \ufffd\ufffd": (["invalid_utf8"], "ERROR", {"user": "b\ufffda"}),
        "utf8 object \ufffd": (["invalid_utf8"], "INFO", {}),
        "utf8 array ok": ([], "INFO", {}),
        "utf8 array \ufffd(": (["invalid_utf8"], "INFO", {}),
    }


def test_histogram_facets_context(client: TestClient) -> None:
    _ingest(
        client,
        [
            {"service": "s", "host": "h", "level": lvl, "message": f"line {i}"}
            for i, lvl in enumerate(["INFO", "ERROR"] * 5)
        ],
    )
    h = client.get("/api/v1/histogram", params={"from": "now-1h", "to": "now"}).json()
    assert h["total"] == 10 and h["interval_seconds"] == 60
    assert sum(b["counts"].get("ERROR", 0) for b in h["buckets"]) == 5
    f = client.get("/api/v1/facets", params={"fields": "level,service"}).json()
    assert f["fields"]["level"][0]["count"] == 5
    events = client.get("/api/v1/search", params={"limit": 10, "sort": "ts:asc"}).json()["events"]
    ctx = client.get(f"/api/v1/events/{events[5]['id']}/context", params={"before": 2, "after": 2}).json()
    assert len(ctx["before"]) == 2 and len(ctx["after"]) == 2
    assert client.get(f"/api/v1/events/{events[0]['id']}").json()["id"] == events[0]["id"]


def test_saved_searches(client: TestClient) -> None:
    saved = client.post("/api/v1/saved-searches", json={"name": "errors", "query": "level:ERROR"}).json()
    assert client.get("/api/v1/saved-searches").json()["items"][0]["query"] == "level:ERROR"
    assert client.post("/api/v1/saved-searches", json={"name": "bad", "query": "(x"}).status_code == 400
    assert client.delete(f"/api/v1/saved-searches/{saved['id']}").status_code == 200
    assert client.delete(f"/api/v1/saved-searches/{saved['id']}").status_code == 404


def test_search_by_pattern_variable(client: TestClient) -> None:
    """The miner's variables are kept with each event; var.N / var filter on them."""
    codes = ["51", "54", "61"]
    lines = [{"service": "pay", "message": f"payment {1000 + i} declined with code {codes[i % 3]}"} for i in range(12)]
    _ingest(client, lines)
    events = client.get("/api/v1/search", params={"q": "declined", "limit": 100, "fields": "all"}).json()["events"]
    assert len(events) == 12
    event = next(e for e in events if e["message"] == "payment 1004 declined with code 54")
    assert event["pattern_vars"] == ["1004", "54"]
    assert event["pattern_var_types"] == ["int", "int"]  # typed as the miner types them
    r = client.get("/api/v1/search", params={"q": 'var.1:"54"', "limit": 100, "fields": "all"}).json()
    assert r["total"] == 4 and {e["message"][-2:] for e in r["events"]} == {"54"}
    assert client.get("/api/v1/search", params={"q": "var:54"}).json()["total"] == 4
    assert client.get("/api/v1/search", params={"q": "var.0:54"}).json()["total"] == 0
    assert client.get("/api/v1/search", params={"q": "declined -var.1:54"}).json()["total"] == 8
    assert client.get("/api/v1/search", params={"q": "var.0:100*"}).json()["total"] == 10
    assert client.get("/api/v1/search", params={"q": "var.0:>=1010"}).json()["total"] == 2
    bad = client.get("/api/v1/search", params={"q": "var.x:54"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "query_syntax"
