"""Events as column lists (``EventColumns``): what the decoder-process path hands the event stage and
the after-store hooks instead of one ``LogEvent`` per event. Each consumer must do exactly what it
does with the events themselves, and a server decoding in processes must store, mine, detect and
alert exactly like one decoding in its own thread."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from logloupe.alert.rules import AnomalyParams, ClassificationParams, Rule, match_anomaly_events, match_classification
from logloupe.analyse.anomaly.live import LiveDetection
from logloupe.analyse.anomaly.tracker import TrackerSettings
from logloupe.ingest.bodies import object_lines, split_json
from logloupe.metrics import REGISTRY
from logloupe.model import EventColumns, Level, LogEvent
from logloupe.parse.patterns import PatternMatch
from logloupe.parse.records import Limits
from logloupe.pipeline.buffer import WriteAheadBuffer
from logloupe.pipeline.decode import decode_packed, encode_entry, unpack_columns, unpack_events
from logloupe.pipeline.enrich import Enricher
from logloupe.pipeline.workers import IngestPipeline
from logloupe.serve.api.logs import _entry, _plain, encode_items, store_items
from logloupe.serve.app import create_app
from logloupe.serve.deps import Principal
from logloupe.serve.services import Services
from logloupe.settings import Settings
from logloupe.store.events import EventStore


def _records(n: int, base: float = 1_700_000_000.0) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": base + i / 10,
            "service": ["api", "db", "auth"][i % 3],
            "host": f"h{i % 4}",
            "level": ["info", "info", "warn", "error", "fatal"][i % 5],
            "message": (
                f"request {i} took {i % 90} ms"
                if i % 7
                else f"connection refused to db-{i % 3} after {5000 + i}ms"
                if i % 2
                else f"disk {i % 4} full on volume /data{i % 2}"
            ),
            "meta": {"trace": f"{i:08x}"} if i % 4 else {},
            "trace_id": f"{i % 9:032x}" if i % 3 == 0 else "",
        }
        for i in range(n)
    ]


def _packed(n: int = 400) -> list[bytes]:
    records = _records(n)
    chunks = [
        [(pos, encode_entry("default", "http", [orjson.dumps(r) for r in records[pos : pos + 100]]))]
        for pos in range(0, n, 100)
    ]
    return [decode_packed(chunk, Limits(), 1000)[0] for chunk in chunks]


def test_columns_read_as_the_events_they_hold() -> None:
    blobs = _packed()
    events = [e for blob in blobs for e in unpack_events(blob)]
    columns = unpack_columns(blobs)
    assert len(columns) == len(events) == 400
    assert columns[0] == events[0] and columns[-1] == events[-1] and columns[123] == events[123]
    assert type(columns[5].level) is Level
    assert columns.take([3, 1, 399]) == [events[3], events[1], events[399]]
    assert [columns.event_id(i) for i in range(400)] == [e.id for e in events]
    assert list(columns) == events and columns[10:20] == events[10:20]
    assert columns.take([2]) == [events[2]]  # also once the events are built
    assert list(EventColumns.of(events)) == events


def test_cold_columns_load_at_their_first_read() -> None:
    """Host, raw level, attributes, source, span id and flags come from the decoder processes as a blob
    of their own: the stage and the usual hooks never read them, so most batches never load them."""
    blobs = _packed()
    events = [e for blob in blobs for e in unpack_events(blob)]
    columns = unpack_columns(blobs)
    assert columns._cold is not None  # the hot columns read without loading them
    assert columns.message == [e.message for e in events] and columns.trace_id == [e.trace_id for e in events]
    assert columns._cold is not None
    part = columns.subset([5, 1, 300])  # stays unloaded, and so does the batch it came from
    assert part._cold is not None and columns._cold is not None
    assert list(part) == [events[5], events[1], events[300]]
    assert columns._cold is None  # reading the part's cold columns loaded the batch's
    assert list(columns) == events
    assert columns.attributes == [e.attributes for e in events] and columns.flags == [e.flags for e in events]
    fresh = unpack_columns(blobs[:1])  # one chunk
    assert fresh[7] == events[7] and fresh.source == [e.source for e in events[:100]]


def test_enrich_columns_is_enrich() -> None:
    """Same pattern ids, variables, classes, miner state and new-pattern calls as ``Enricher.enrich``."""
    blobs = _packed()
    heard: list[list[tuple[LogEvent, int, str]]] = [[], []]
    results = []
    for i, by_columns in enumerate((False, True)):
        enricher = Enricher()

        def listen(event: LogEvent, match: PatternMatch, into: list[tuple[LogEvent, int, str]] = heard[i]) -> None:
            into.append((event, match.pattern_id, match.template))

        enricher.listeners.append(listen)
        # Two batches: the second meets the shapes the first taught the miner.
        for half in (blobs[:2], blobs[2:]):
            if by_columns:
                columns = unpack_columns(half)
                enricher.enrich_columns(columns)
                results += [list(columns)]
            else:
                events = [e for blob in half for e in unpack_events(blob)]
                enricher.enrich(events)
                results += [events]
        results.append(enricher.miner.export_state())
    assert results[:3] == results[3:]
    assert heard[0] == heard[1] and heard[0]
    assert all(e.pattern_id == pid for e, pid, _ in heard[1])
    assert len({e.pattern_id for e in results[1]}) > 1 and all(e.classification for e in results[1])


@pytest.mark.parametrize("windows", [0, 7])
@pytest.mark.parametrize("mined", [150, 400])
@pytest.mark.parametrize("session_key", ["trace_id", "trace", ""])
def test_live_detection_reads_columns_like_events(session_key: str, mined: int, windows: int) -> None:
    """Same anomalies, session queue, examples and counts for column lists, whether every event has a
    pattern id (the batch path) or some are fingerprinted, with and without scored windows."""
    blobs = _packed()
    events = [e for blob in blobs for e in unpack_events(blob)]
    Enricher().enrich(events[:mined])  # the rest keep pattern id 0: fingerprinted
    outs = []
    for by_columns in (False, True):
        live = LiveDetection(None, session_key=session_key, tracker=TrackerSettings(window_events=windows))  # type: ignore[arg-type]
        found = []
        for half in (events[:200], events[200:]):
            found += live._observe(EventColumns.of(half) if by_columns else half)
        outs.append((found, list(live._sessions), list(live._examples.items()), live.observed, live._event_us))
    assert outs[0] == outs[1]
    assert outs[0][3] == 400 and outs[0][2] and (outs[0][1] or not (session_key or windows))


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _served(data_dir: Path, processes: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Ingest ``records`` over HTTP into a fresh server; what it derived from them."""
    settings = Settings(
        data_dir=data_dir,
        writer_flush_ms=5,
        ingest_wait_stored=True,
        anomaly_tick_s=3600,
        pipeline_decode_processes=processes,
    )
    tenant = "default"  # single-user mode; the class counts are compared as this run's increments
    services_ = ("api", "db", "auth")
    before = [_value("log_incident_total", {"tenant": tenant, "service": s}) for s in services_]
    with TestClient(create_app(settings)) as client:
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        tailed: list[LogEvent] = []
        services.writer.after_store.append(tailed.extend)
        headers = {"content-type": "application/x-ndjson"}
        for i in range(0, len(records), 300):
            body = b"\n".join(orjson.dumps(r) for r in records[i : i + 300])
            r = client.post("/api/v1/logs", content=body, headers=headers)
            assert r.status_code == 200 and r.json()["accepted"] == len(records[i : i + 300]), r.text
        assert (services.extras["pipeline"]._pool is not None) == (processes > 0)
        live: LiveDetection = services.extras["anomaly_detection"]
        live.flush()
        rows = services.store.rows(
            "SELECT message, pattern_id, pattern_variables AS pattern_vars, classification FROM events WHERE tenant = {t:String}",
            {"t": tenant},
        )
        patterns = client.get("/api/v1/patterns", params={"from": "2000-01-01T00:00:00Z"}, headers=headers).json()
        return {
            "events": sorted(
                (r["message"], r["pattern_id"], list(r["pattern_vars"]), r["classification"]) for r in rows
            ),
            "tailed": sorted(e.message for e in tailed),
            "patterns": sorted((p["id"], p["template"], p["service"], p["count"]) for p in patterns["patterns"]),
            "observed": live.observed,
            "detector": sorted(
                (service, svc.total.count, svc.errors, sorted((pid, s.count) for pid, s in svc.patterns.items()))
                for (t, service), svc in live.online._services.items()
                if t == tenant
            ),
            "incidents": [
                _value("log_incident_total", {"tenant": tenant, "service": s}) - n
                for s, n in zip(services_, before, strict=True)
            ],
        }


def test_a_server_decoding_in_processes_mines_detects_and_alerts_like_one_decoding_in_its_thread(
    tmp_path: Path,
) -> None:
    """Everything the server derives from the events — pattern ids and variables, classes, the
    patterns list, the detectors' counts, the alert engine's class counts, a live-tail hook — is the
    same whether the events came back from decoder processes as column lists or were decoded in it."""
    records = _records(900, base=time.time() - 600)
    in_thread = _served(tmp_path / "p0", 0, records)
    in_processes = _served(tmp_path / "p2", 2, records)
    assert in_thread == in_processes
    assert len(in_thread["events"]) == 900 and all(pid for _, pid, _, _ in in_thread["events"])
    assert in_thread["tailed"] == sorted(r["message"] for r in records) and in_thread["observed"] == 900
    assert in_thread["patterns"] and in_thread["detector"] and sum(in_thread["incidents"]) > 0


@pytest.mark.parametrize("group_by", ["pattern", "service"])
def test_alert_matchers_read_columns_like_events(group_by: str) -> None:
    """The streaming alert rules give the same signals (groups, counts, sample lines) for column lists."""
    events = unpack_events(_packed()[0]) + unpack_events(_packed()[1])
    Enricher().enrich(events)
    for i, e in enumerate(events):
        e.classification = ["incident", "preventive_action", "normal", ""][i % 4]
        e.anomaly_score = (i % 10) / 10
        if i % 50 == 0:
            e.tenant = "other"
    classes = ClassificationParams(classes=["incident", "preventive_action"], group_by=group_by)  # type: ignore[arg-type]
    by_class = Rule("r1", "default", "classes", "classification", classes, [])
    scored = Rule("r2", "default", "scores", "anomaly", AnomalyParams(threshold=0.75), [])
    got = []
    for batch in (events, EventColumns.of(events)):
        got.append(
            (
                [
                    (s.key, s.matches, s.observed_us, s.samples, s.title)
                    for s in match_classification(by_class, batch, 3)
                ],
                [(s.key, s.matches, s.value, s.samples) for s in match_anomaly_events(scored, batch, 0.7, 3)],
            )
        )
    assert got[0] == got[1]
    assert got[0][0] and got[0][1] and any(len(s[3]) == 3 for s in got[0][0])


def _split_slowly(body: bytes) -> list[tuple[Any, ...]]:
    """``split_json``'s line-by-line loop, as it was before the C-level path for all-object bodies."""
    out: list[tuple[Any, ...]] = []
    for i, line in enumerate(body.strip().split(b"\n")):
        line = line.strip()
        if not line:
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            out.append((i, None, None, True, line, False))
            continue
        if isinstance(value, dict):
            out.append((i, value, None, False, line, True))
        elif isinstance(value, str):
            out.append((i, {"message": value}, None, False, line, False))
        else:
            out.append((i, None, None, True, line, False))
    return out


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1}\n{"message": "x", "meta": {"k": [1, 2]}}\n{"b": "\\u00e9"}',
        b'{"a": 1}\r\n  {"b": 2}  \r\n{"c": 3}\n',
        b'{"a": 1}\n\n{"b": 2}',  # a blank line: skipped, the indexes keep the line numbers
        b'{"a": 1}\n{"b": \n{"c": 3}',  # a bad line
        b'{"a": 1}\n"just text"\n[1, 2]\n{"c": 3}',  # a string and an array
        b'"only text"\n"more"',
    ],
)
def test_split_json_fast_path_gives_what_the_line_loop_gives(body: bytes) -> None:
    got = [(it.index, it.record, it.line, it.error is not None, it.raw, it.raw_is_record) for it in split_json(body)]
    assert got == _split_slowly(body)


# Lines where simdjson (the validating fast path) and orjson (the decoders) might disagree: every
# body must split as orjson reads it, line by line, whichever path it takes.
_EDGE_LINES = [
    b'\xef\xbb\xbf{"a": 1}',  # a byte-order mark: simdjson takes it, orjson does not
    b'{"a": "\\ud800"}',  # a lone surrogate escape
    b'{"a": "\\udc00\\ud800"}',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": 1e400}',
    b'{"a": 1e-400}',
    b'{"a": 1' + b"0" * 30 + b"}",  # beyond 64 bits: orjson takes it, simdjson does not
    b'{"a": 18446744073709551615}',
    b'{"a": -9223372036854775809}',
    b'{"a": "\x01"}',  # a raw control character
    b'{"a": "\x7f"}',
    b'{"a": 1,}',
    b'{"a": 1}}',
    b'{"a": 1} x',
    b'{"a": 1}\x00',
    b'{"a": 01}',
    b'{"a": .5}',
    b"{'a': 1}",
    b'{"a": "\\x41"}',
    b'{"a": 1, "a": 2}',
    b"{}",
    b'{"a": "\\u0000"}',
    b'{"a":' * 1023 + b"1" + b"}" * 1023,  # orjson's deepest; simdjson refuses it
    b'{"a":' * 1030 + b"1" + b"}" * 1030,
    b'{"a": "' + b"x" * 70_000 + b'"}',  # longer than the validated lines
    b'{"a": [1, 2, {"b": null}], "c": true, "d": -0.5e3}',
]


@pytest.mark.parametrize("line", _EDGE_LINES, ids=range(len(_EDGE_LINES)))
def test_split_json_validates_lines_as_orjson_reads_them(line: bytes) -> None:
    body = b'{"message": "before"}\n' + line + b'\n{"message": "after"}'
    got = [(it.index, it.record, it.line, it.error is not None, it.raw, it.raw_is_record) for it in split_json(body)]
    assert [(*g[:1], _shape(g[1]), *g[2:]) for g in got] == [
        (*w[:1], _shape(w[1]), *w[2:]) for w in _split_slowly(body)
    ]


def _shape(record: dict[str, Any] | None) -> bytes | tuple[str, ...] | None:
    """A record as JSON; for the 1,023-level one (beyond what ``==`` and ``orjson.dumps`` recurse
    into), its keys: that it was read at all is what the case checks."""
    if record is None:
        return None
    try:
        return orjson.dumps(record)
    except TypeError:
        return tuple(record)


def test_validated_lines_are_parsed_only_when_read() -> None:
    body = b"\n".join(orjson.dumps(r) for r in _records(50))
    items = split_json(body)
    assert all(it.has_record and it.raw_is_record and not it.error for it in items)
    assert [it.record for it in items] == [orjson.loads(line) for line in body.split(b"\n")]
    assert items == split_json(body) and items != split_json(body)[:-1]
    items[0].record = {"message": "replaced"}  # the ingest paths that rewrite a record still can
    assert items[0].record == {"message": "replaced"} and items[0].has_record


def test_object_lines_store_what_their_items_store(tmp_path: Path) -> None:
    """The usual NDJSON body skips the item-by-item walk (``ObjectLines``): the same report and the
    same buffer entry as its items, so a body sent both ways is stored once."""
    body = b"\n".join(orjson.dumps(r) for r in _records(200))
    fast = object_lines(body)
    assert fast is not None and fast.items() == split_json(body)
    assert object_lines(b'{"a": 1}') is None and object_lines(b'{"a": 1}\n[1]') is None
    settings = Settings(data_dir=tmp_path, writer_flush_ms=5, anomaly_tick_s=3600)
    with TestClient(create_app(settings)) as client:
        services_: Services = client.app.state.services  # type: ignore[attr-defined]
        principal = Principal(tenant="default")
        by_lines = asyncio.run(store_items(services_, principal, fast, source="http", wait=True))
        by_items = asyncio.run(store_items(services_, principal, fast.items(), source="http", wait=True))
        assert by_lines == by_items == {"accepted": 200, "rejected": 0, "errors": []}
        assert services_.store.rows("SELECT count() AS n FROM events")[0]["n"] == 200
    a = orjson.loads(_entry("t", "http", fast.lines, [], "", "").partition(b"\n")[0])
    b = orjson.loads(encode_items("t", "http", fast.items())[0].partition(b"\n")[0])
    assert {**a, "observed_us": 0} == {**b, "observed_us": 0}
    # A line over the message limit, a record past the nesting or attribute limit: the walk that warns.
    assert _plain(fast.lines, Limits())
    assert not _plain(fast.lines, Limits(max_message_bytes=100))
    assert not _plain(fast.lines, Limits(max_attributes=5))
    deep = orjson.dumps({"message": "m", "a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}})
    odd = object_lines(body + b"\n" + deep)
    assert odd is not None and not _plain(odd.lines, Limits())
    assert object_lines(body + b"\n" + orjson.dumps({"message": "x" * 70_000})) is None  # split_json reads it


def test_a_column_stage_that_fails_loses_no_events(tmp_path: Path) -> None:
    """A stage whose ``columns`` raises: the batch is stored without its analysis, and the hooks see it."""

    class Failing:
        def __call__(self, events: list[LogEvent]) -> list[LogEvent]:
            return events

        def columns(self, events: EventColumns) -> None:
            events.classification[0] = "half-done"
            raise RuntimeError("stage broke")

    buf = WriteAheadBuffer(tmp_path / "wal")
    records = _records(300)
    for i in range(0, 300, 100):
        buf.append(encode_entry("default", "http", [orjson.dumps(r) for r in records[i : i + 100]]), 100)
    buf.close()
    seen: list[LogEvent] = []
    store = EventStore(tmp_path)
    settings = Settings(data_dir=tmp_path, writer_flush_ms=5, pipeline_decode_processes=2)
    pipeline = IngestPipeline(settings, store, after_store=[seen.extend], extras={"event_stage": Failing()})
    try:
        assert pipeline.flush(60)
        assert pipeline._pool is not None
    finally:
        pipeline.close()
    rows = store.rows("SELECT uid, pattern_id FROM events ORDER BY uid")
    store.close()
    assert len(rows) == 300 and sorted(e.uid for e in seen) == [r["uid"] for r in rows]
    assert {r["pattern_id"] for r in rows} == {0}
