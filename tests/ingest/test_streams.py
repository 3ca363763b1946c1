"""The cross-entry multiline joiner (pipeline/streams.py) on real buffer entries: deterministic decisions,
state that survives a restart with the same ids, timeouts read from the entries, per-source options."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from logloupe.model import LogEvent
from logloupe.parse.records import Limits
from logloupe.parse.sources import SourceRules, rule_from_spec
from logloupe.pipeline.decode import decode_payload, encode_entry
from logloupe.pipeline.streams import StreamJoiner, flush_entry
from logloupe.pipeline.workers import IngestPipeline

LIMITS = Limits()
T0 = 1_780_000_000_000_000
PART1 = [
    b"2026-03-01 10:00:01 ERROR [main] app.Worker: job failed",
    b"java.lang.IllegalStateException: boom",
    b"\tat app.Worker.run(Worker.java:10)",
]
PART2 = [b"\tat java.lang.Thread.run(Thread.java:829)", b"2026-03-01 10:00:02 INFO [main] app.Worker: next"]


def text(lines: list[bytes], observed: int, service: str = "svc", host: str = "h") -> bytes:
    return encode_entry("t1", "http", [], lines, service=service, host=host, observed_us=observed)


def run(entries: list[tuple[int, bytes]], joiner: StreamJoiner, rules: SourceRules | None = None) -> list[LogEvent]:
    out: list[LogEvent] = []
    for pos, payload in entries:
        out.extend(decode_payload(pos, payload, LIMITS, T0, rules, joiner))
    return out


def test_a_restart_between_entries_gives_the_same_events_and_ids() -> None:
    entries = [(100, text(PART1, T0)), (200, text(PART2, T0 + 500_000))]
    whole = run(entries, StreamJoiner())
    assert [e.message.count("\n") for e in whole] == [3, 0]

    first = StreamJoiner()
    before = run(entries[:1], first)
    assert before == []  # the ERROR record with its trace is held
    saved = orjson.loads(orjson.dumps(first.export()))  # as the checkpoint keeps it
    second = StreamJoiner()
    second.restore(saved)
    after = run(entries[1:], second)
    assert [(e.uid, e.message, e.ts_us, e.level) for e in after] == [
        (e.uid, e.message, e.ts_us, e.level) for e in whole
    ]
    assert [e.uid for e in run(entries, StreamJoiner())] == [e.uid for e in whole]  # a replay: the same ids


def test_the_timeout_is_read_from_the_entries_not_the_clock() -> None:
    late = [(100, text(PART1, T0)), (200, text(PART2, T0 + 2_000_000))]
    events = run(late, StreamJoiner(timeout_us=2_000_000))
    assert [e.message.count("\n") for e in events] == [2, 0, 0]
    assert events[1].message.startswith("\tat java.lang.Thread")


def test_a_flush_marker_emits_only_expired_records() -> None:
    joiner = StreamJoiner(timeout_us=1_000_000)
    assert run([(100, text(PART1, T0)), (200, text(PART1, T0 + 900_000, service="other"))], joiner) == []
    assert joiner.held_from() == 100
    flushed = run([(300, flush_entry(T0 + 1_500_000))], joiner)
    assert [e.service for e in flushed] == ["svc"]
    assert joiner.held_from() == 200
    assert [e.service for e in run([(400, flush_entry(T0 + 1_900_000))], joiner)] == ["other"]
    assert joiner.next_expiry_us() is None


def test_a_bare_exception_header_waits_for_its_frames() -> None:
    joiner = StreamJoiner()
    head = b'Exception in thread "main" java.lang.IllegalStateException: boom'
    assert run([(100, text([head], T0))], joiner) == []
    (event,) = run(
        [(200, text([b"\tat app.Main.main(Main.java:5)", b"2026-03-01 10:00:00 INFO next"], T0 + 10))], joiner
    )[:1]
    assert event.message.endswith("\tat app.Main.main(Main.java:5)")


def test_plain_info_lines_are_not_held() -> None:
    joiner = StreamJoiner()
    events = run([(100, text([b"2026-03-01 10:00:00 INFO ready", b"GET /health 200"], T0))], joiner)
    assert len(events) == 2
    assert joiner.open_count == 0


def test_source_options_start_pattern_off_and_records_on() -> None:
    rules = SourceRules(
        [
            rule_from_spec({"name": "starts", "match": {"service": "starts"}, "multiline_start": r"^\d{4}-"}),
            rule_from_spec({"name": "off", "match": {"service": "flat"}, "multiline": "off"}),
            rule_from_spec({"name": "loki", "match": {"source": "loki"}, "multiline": True}),
        ]
    )
    lines = [b"2026-03-01 10:00:00 INFO a", b"unindented detail", b"more", b"2026-03-01 10:00:01 INFO b"]
    joiner = StreamJoiner()
    events = run([(1, text(lines, T0, service="starts")), (2, flush_entry(T0 + 10_000_000))], joiner, rules)
    assert [e.message for e in events] == ["a\nunindented detail\nmore", "b"]

    events = run([(3, text(PART1, T0, service="flat"))], StreamJoiner(), rules)
    assert len(events) == 3

    records = [
        orjson.dumps({"message": "ERROR request failed", "service": "api", "timestamp": T0 * 1000}),
        orjson.dumps({"message": "java.lang.RuntimeException: x", "service": "api", "timestamp": T0 * 1000}),
    ]
    joiner = StreamJoiner()
    loki1 = encode_entry("t1", "loki", records[:1], observed_us=T0)
    loki2 = encode_entry("t1", "loki", records[1:], observed_us=T0 + 100)
    events = run([(10, loki1), (20, loki2), (30, flush_entry(T0 + 10_000_000))], joiner, rules)
    assert [e.message for e in events] == ["ERROR request failed\njava.lang.RuntimeException: x"]
    # without the rule, records are events as sent
    events = run([(10, loki1), (20, loki2)], StreamJoiner(), None)
    assert len(events) == 2


def test_open_streams_are_bounded() -> None:
    joiner = StreamJoiner(max_open=2)
    entries = [(i, text(PART1, T0, service=f"s{i}")) for i in range(3)]
    events = run(entries, joiner)
    assert [e.service for e in events] == ["s0"]
    assert joiner.evicted == 1
    assert joiner.open_count == 2


def test_an_acknowledgement_waits_only_for_records_holding_its_own_lines() -> None:
    ready = IngestPipeline._ready
    held = ((100, 300),)  # a record started in the entry at 100 and got lines from the one at 300
    assert not ready(400, 400, held, since=300)  # the request whose lines continued it waits
    assert not ready(200, 400, held, since=100)  # so does the one that started it
    assert ready(250, 400, ((100, 100),), since=200)  # another request's record: no wait
    assert ready(500, 500, held, since=400)  # later requests do not wait
    assert ready(400, 400, held, since=None)  # "checkpointed" (shutdown) ignores open records
    assert not ready(400, 300, (), since=0)  # nothing is ready before it is stored


def test_an_exported_state_does_not_change_as_feeding_goes_on() -> None:
    joiner = StreamJoiner()
    run([(100, text(PART1, T0))], joiner)
    saved = joiner.export()
    frozen = orjson.dumps(saved)
    run([(200, text(PART2[:1], T0 + 100))], joiner)  # joins the open record
    assert orjson.dumps(saved) == frozen


LINE = st.sampled_from(
    [
        "2026-03-01 10:00:00 ERROR [main] app.Worker: failed",
        "2026-03-01 10:00:01 INFO [main] app.Worker: ok",
        "java.lang.IllegalStateException: boom",
        "\tat app.Worker.run(Worker.java:10)",
        "Caused by: java.io.IOException: disk",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "ValueError: bad",
        "",
        "plain words",
        "panic: oh no",
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(LINE, min_size=1, max_size=6), min_size=1, max_size=6),
    st.lists(st.integers(0, 3_000_000), min_size=6, max_size=6),
    st.integers(0, 6),
)
def test_any_split_and_any_restart_point_give_the_same_events(
    chunks: list[list[str]], gaps: list[int], restart_at: int
) -> None:
    entries = []
    observed = T0
    for n, chunk in enumerate(chunks):
        observed += gaps[n]
        entries.append(((n + 1) * 1000, text([ln.encode() for ln in chunk], observed)))
    entries.append((99_000, flush_entry(observed + 10_000_000)))
    whole = run(entries, StreamJoiner())
    first = StreamJoiner()
    part = run(entries[:restart_at], first)
    second = StreamJoiner()
    second.restore(orjson.loads(orjson.dumps(first.export())))
    part += run(entries[restart_at:], second)
    assert [(e.uid, e.message) for e in part] == [(e.uid, e.message) for e in whole]
    assert len({e.uid for e in whole}) == len(whole)
    # every line with text is in exactly one event, in order
    sent = [ln for chunk in chunks for ln in chunk if ln.strip()]
    stored = [ln for e in whole for ln in e.message.split("\n") if ln.strip()]
    assert sorted(stored) == sorted(_messages(sent))
    assert second.open_count == 0


def _messages(lines: list[str]) -> list[str]:
    """What each line contributes to a message: a headed line its message part, others the line."""
    from logloupe.parse.line import parse_line

    return [parse_line(ln, now_us=T0).message for ln in lines]


def test_flags_found_at_ingest_reach_the_record_through_the_joiner_too() -> None:
    # records and text lines in one entry: it goes through the joiner (join_entry)
    records = [orjson.dumps({"message": "fine"}), orjson.dumps({"message": "read with \ufffd"})]
    payload = encode_entry("t1", "http", records, [b"a text line"], observed_us=T0, flags={1: ["invalid_utf8"]})
    for joiner in (StreamJoiner(), None):
        events = decode_payload(100, payload, LIMITS, T0, None, joiner)
        if joiner is not None:  # the text line is held for a continuation until a flush
            events += run([(200, flush_entry(T0 + 10**12))], joiner)
        assert {e.message: e.flags for e in events} == {
            "fine": [],
            "read with \ufffd": ["invalid_utf8"],
            "a text line": [],
        }
