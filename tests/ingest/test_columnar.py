"""Entries read by Arrow's JSON reader (``pipeline/columnar.py``) give what the row path gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logloupe.parse.records import Limits
from logloupe.pipeline.columnar import plain_entry
from logloupe.pipeline.decode import PackedResult, _packed_lists, decode_packed, encode_entry

NOW_US = 1_750_000_000_000_000  # the observed time of every entry here (mid 2025)


def _both(entries: list[tuple[int, bytes]], limits: Limits = Limits()) -> tuple[PackedResult, PackedResult]:
    retention = {"default": 30, "other": 7}
    return tuple(  # type: ignore[return-value]
        decode_packed(entries, limits, NOW_US, None, retention, 14, columnar=columnar) for columnar in (True, False)
    )


def _assert_same(got: PackedResult, want: PackedResult) -> None:
    """The same events, counts, errors and Arrow columns; the attributes' keys may be in another order."""
    (blob, arrow, errors, counts), (want_blob, want_arrow, want_errors, want_counts) = got, want
    assert _packed_lists(blob) == _packed_lists(want_blob)  # attributes as dicts: order-blind
    assert errors == want_errors and counts == want_counts
    if not want_arrow:
        assert not arrow
        return
    table = pa.ipc.open_stream(arrow).read_all()
    expected = pa.ipc.open_stream(want_arrow).read_all()
    assert table.schema.equals(expected.schema)
    for name in table.column_names:
        if name == "attributes":
            assert [dict(m) for m in table[name].to_pylist()] == [dict(m) for m in expected[name].to_pylist()]
        else:
            assert table[name].combine_chunks().equals(expected[name].combine_chunks()), name


def _entry(records: list[Any], pos: int = 0, **header: Any) -> tuple[int, bytes]:
    return pos, encode_entry(
        header.pop("tenant", "default"), "http", [orjson.dumps(r) for r in records], observed_us=NOW_US, **header
    )


def _usual(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": 1_749_990_000 + i / 100,
            "service": ["checkout", "auth", "search"][i % 3],
            "host": f"node-{i % 7}",
            "level": ["INFO", "WARN", "ERROR", "debug"][i % 4],
            "message": f"request {i} took {i % 900} ms",
            "meta": {"trace": f"{i:016x}", "region": "eu-west-1"},
        }
        for i in range(start, start + n)
    ]


def test_the_usual_entry_is_read_as_columns_with_the_same_result() -> None:
    entries = [_entry(_usual(500), 0), _entry(_usual(300, 500), 9_000, tenant="other", key="body-2")]
    assert all(plain_entry(pos, payload, Limits(), NOW_US) is not None for pos, payload in entries)
    _assert_same(*_both(entries))


def test_escaped_text_reads_alike() -> None:
    """``\\u`` escapes as Python's ``json.dumps`` writes them (ASCII only); a surrogate pair goes to the rows."""
    body = [b'{"message": "caf\\u00e9 \\u2028 tab\\t", "level": "warn", "meta": {"k\\u00e9": "v\\u00e9"}}']
    payload = encode_entry("default", "http", body, observed_us=NOW_US)
    assert plain_entry(0, payload, Limits(), NOW_US) is not None
    _assert_same(*_both([(0, payload)]))
    emoji = encode_entry("default", "http", [b'{"message": "\\ud83d\\ude00"}'], observed_us=NOW_US)
    assert plain_entry(0, emoji, Limits(), NOW_US) is None
    _assert_same(*_both([(0, emoji)]))


def test_mixed_runs_keep_their_order() -> None:
    """Entries the reader takes, and entries it leaves to the row path, in one chunk, in order."""
    entries = [
        _entry(_usual(10), 0),
        _entry([{"message": "a", "meta": {"deep": {"x": 1}}}], 100),  # nested: the row path
        _entry([{"message": "b", "level": None}], 200),  # a null: the row path
        _entry(_usual(5, 10), 300),
        (400, b"not an entry"),
        _entry(_usual(3, 15), 500, service="default-svc", host="default-host"),
    ]
    assert [plain_entry(pos, payload, Limits(), NOW_US) is not None for pos, payload in entries[:4]] == [
        True,
        False,
        False,
        True,
    ]
    got, want = _both(entries)
    _assert_same(got, want)
    assert [pos for pos, _ in got[2]] == [400]


def test_the_reader_declines_what_a_column_would_blur() -> None:
    declined = [
        [{"message": "x", "meta": {"a": None}}],  # null and missing read alike in a column
        [{"message": "x\u0000y"}],  # a NUL is flagged by the row path
        [{"message": "x", "timestamp": 1.5}, {"message": "y", "timestamp": 2**60}],  # rounded in a float column
        [{"message": "x", "level": "INFO"}, {"message": "y", "level": 3}],  # text and number in one column
        [{"message": "x", "msg": "y"}],  # two keys of one role
        [{"message": "x", "other": "y"}],  # a key of no role (an attribute by the general path)
        [{"message": "x", "timestamp": "yesterday-ish"}],  # a time that does not read
        [{"message": "x", "timestamp": 1_000}],  # before 1990: replaced, with a reason
        [{"message": "x", "service": "s" * 300}],  # cut at 256 characters by the row path
        [{"message": "x", "source": "tail:/var/log/a.log"}],  # a record's own source
        [{"message": 5}],
    ]
    for records in declined:
        pos, payload = _entry(records)
        assert plain_entry(pos, payload, Limits(), NOW_US) is None, records
        _assert_same(*_both([(pos, payload)]))
    # A text line in the entry, or flags from the ingest side: the row path.
    payload = encode_entry("default", "http", [b'{"message":"x"}'], [b"a text line"], observed_us=NOW_US)
    assert plain_entry(0, payload, Limits(), NOW_US) is None
    payload = encode_entry("default", "http", [b'{"message":"x"}'], observed_us=NOW_US, flags={0: ["invalid_utf8"]})
    assert plain_entry(0, payload, Limits(), NOW_US) is None


def test_attribute_keys_follow_the_entrys_first_order() -> None:
    """The one difference kept: a JSON object's members have no order (RFC 8259 §4)."""
    pos, payload = _entry(
        [{"message": "a", "meta": {"b": "1", "a": "2"}}, {"message": "b", "meta": {"a": "3", "b": "4"}}]
    )
    got, want = _both([(pos, payload)])
    _assert_same(got, want)
    table = pa.ipc.open_stream(got[1]).read_all()
    assert table["attributes"].to_pylist() == [[("b", "1"), ("a", "2")], [("b", "4"), ("a", "3")]]


def _iso(offset_s: float, style: int) -> str:
    t = datetime(2025, 6, 15, tzinfo=UTC) + timedelta(seconds=offset_s)
    forms = [
        t.isoformat(),
        t.isoformat().replace("+00:00", "Z"),
        t.strftime("%Y-%m-%d %H:%M:%S"),
        t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
        t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).isoformat(),
        t.strftime("%Y-%m-%d"),
        str(int(t.timestamp())),
        t.strftime("%d/%b/%Y:%H:%M:%S +0000"),
    ]
    return forms[style % len(forms)]


_seconds = st.floats(-86_400 * 300, 86_400 * 3, allow_nan=False)
times = st.one_of(
    _seconds.map(lambda s: 1_750_000_000 + s),  # seconds, as a float
    _seconds.map(lambda s: int((1_750_000_000 + s) * 1000)),  # ms
    _seconds.map(lambda s: int((1_750_000_000 + s) * 1_000_000)),  # µs
    _seconds.map(lambda s: int((1_750_000_000 + s) * 1_000_000_000)),  # ns
    st.integers(0, 2**63 - 1),
    st.builds(_iso, _seconds, st.integers(0, 7)),
)
text = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x10FFFF, exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["", "ERROR in x", "warn", "null", "n" * 70, "é" * 40]),
)
levels = st.one_of(st.sampled_from(["INFO", "warn", "Error", "fatal", "3", "x", "", "²"]), st.integers(-3, 30))
ROLE_KEYS = {
    "message": ["message", "msg"],
    "time": ["timestamp", "ts", "@timestamp"],
    "level": ["level", "severity"],
    "service": ["service"],
    "host": ["host", "hostname"],
    "trace_id": ["trace_id"],
    "span_id": ["span_id"],
    "attributes": ["meta", "attributes"],
}
VALUES = {
    "message": text,
    "time": times,
    "level": levels,
    "service": text,
    "host": text,
    "trace_id": text,
    "span_id": text,
    "attributes": st.dictionaries(st.sampled_from(["a", "b", "region", "é", ""]), text, max_size=3),
}


@st.composite
def entries(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """Entries whose records mostly share one plain shape (so the reader takes many of them), with
    now and then a record of another shape, a missing key or a value of another type."""
    out = []
    for pos in range(draw(st.integers(1, 3))):
        roles = draw(st.lists(st.sampled_from(sorted(ROLE_KEYS)), unique=True, min_size=1))
        keys = {role: draw(st.sampled_from(ROLE_KEYS[role])) for role in roles}
        records: list[Any] = []
        for _ in range(draw(st.integers(1, 6))):
            record = {keys[role]: draw(VALUES[role]) for role in roles if draw(st.integers(0, 9))}
            if not draw(st.integers(0, 15)):
                record[draw(st.sampled_from(["other", "message", "level"]))] = draw(st.one_of(st.none(), times, text))
            records.append(record)
        header = draw(st.sampled_from([{}, {"service": "svc"}, {"host": "h", "key": "k"}, {"tenant": "other"}]))
        out.append(_entry(records, pos * 1_000, **header))
    return out


@settings(max_examples=400, deadline=None)
@given(entries(), st.sampled_from([Limits(), Limits(10, 1, 5, 1), Limits(64, 3, 16, 2)]))
def test_columns_equal_rows(drawn: list[tuple[int, bytes]], limits: Limits) -> None:
    _assert_same(*_both(drawn, limits))
