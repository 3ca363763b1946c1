"""The pure decoders: syslog framing and headers, ES bulk, Loki labels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logloupe.errors import InvalidInput
from logloupe.ingest.bulk import parse_bulk
from logloupe.ingest.loki import decode_json, parse_labels
from logloupe.ingest.syslog import Framer, parse_message, split_datagram

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        (
            b"<165>1 2026-11-21T10:00:00.123Z web-1 nginx 42 ID47 "
            b'[exampleSDID@32473 iut="3" eventSource="App"] request failed',
            {"level": "notice", "host": "web-1", "service": "nginx", "message": "request failed",
             "timestamp": "2026-11-21T10:00:00.123Z"},
        ),
        (
            b"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
            {"level": "crit", "host": "mymachine", "service": "su", "message": "'su root' failed for lonvick on /dev/pts/8"},
        ),
        (b"<11>myapp: something broke\x00", {"level": "err", "service": "myapp", "message": "something broke"}),
        (b"no header at all", {"message": "no header at all"}),
        (b"<13>1 - - - - - -", {"level": "notice", "message": ""}),
    ],
)  # fmt: skip
def test_syslog_headers(raw: bytes, expect: dict[str, str]) -> None:
    record = parse_message(raw, NOW)
    for key, value in expect.items():
        assert record[key] == value, (key, record)


def test_rfc5424_structured_data_and_rfc3164_year() -> None:
    r = parse_message(b'<14>1 - h app - - [a@1 k="v \\"q\\""][b@2 x="y"] m', NOW)
    assert r["attributes"]["sd.a@1.k"] == 'v "q"'
    assert r["attributes"]["sd.b@2.x"] == "y"
    assert parse_message(b"<14>Dec 31 23:59:59 h t: m", NOW)["timestamp"].startswith("2025-12-31")


def test_tcp_framing_octet_counting_newlines_and_nul() -> None:
    f = Framer()
    assert f.feed(b"11 <13>hello a12 <13>hello") == [b"<13>hello a"]
    assert f.feed(b" bb<13>line\n<13>nul\x00<13>par") == [b"<13>hello bb", b"<13>line", b"<13>nul"]
    assert f.feed(b"tial\r\n") == [b"<13>partial"]
    assert split_datagram(b"<13>one\x00") == [b"<13>one"]


@given(st.lists(st.binary(min_size=1, max_size=50).filter(lambda b: b"\n" not in b and b"\x00" not in b), max_size=10))
def test_octet_counted_frames_survive_any_chunking(frames: list[bytes]) -> None:
    stream = b"".join(b"%d %s" % (len(x), x) for x in frames)
    f = Framer()
    got: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += f.feed(stream[i : i + 7])
    assert [g for g in got if g.strip()] == [x for x in frames if x.strip()]


def test_bulk_items_report_each_problem() -> None:
    body = (
        b'{"index":{"_index":"a","_id":"1"}}\n{"message":"ok","host":{"name":"h1","os":{"name":"linux"}}}\n'
        b'{"create":{}}\n{"message":"no index"}\n'
        b'{"update":{"_index":"a"}}\n{"doc":{"message":"upd"}}\n'
        b"[1]\n"
    )
    items = parse_bulk(body)
    assert items[0].record == {"message": "ok", "host": "h1", "host_info": {"os": {"name": "linux"}}}
    assert items[1].error == "no index named for this document"
    assert items[2].record == {"message": "upd"}
    assert items[3].error == "malformed action line"


def test_loki_json_and_labels() -> None:
    records = decode_json(
        b'{"streams":[{"stream":{"app":"x","level":"warn"},"values":[["1700000000000000000","hi",{"t":"1"}]]}]}'
    )
    assert records == [
        {"timestamp": 1700000000000000000, "message": "hi", "attributes": {"app": "x", "level": "warn", "t": "1"},
         "service": "x", "level": "warn"}
    ]  # fmt: skip
    assert parse_labels('{a="1", b="x\\"y"}') == {"a": "1", "b": 'x"y'}
    with pytest.raises(InvalidInput):
        decode_json(b'{"streams":[{"values":[["nope","x"]]}]}')
