"""``record_fields``' lean path for plain records gives exactly what the general path gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from logloupe.model import Level
from logloupe.parse.records import Limits, _plain_record_fields, _record_fields, level_from, record_fields

KEYS = ["message", "msg", "timestamp", "ts", "level", "severity", "service", "app", "host", "trace_id", "traceId"]
KEYS += ["span_id", "source", "meta", "attributes", "other", "t"]
text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
# JSON input (orjson) holds 64-bit integers at most.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False), text,
    st.sampled_from(["ERROR", "warn", "2024-01-01T00:00:00Z", "1700000000", "", "a" * 300]),
)  # fmt: skip
values = st.one_of(scalars, st.dictionaries(text, scalars, max_size=4), st.lists(scalars, max_size=2))
records = st.dictionaries(st.sampled_from(KEYS), values, max_size=7)
limits = st.sampled_from([Limits(), Limits(10, 1, 5, 1), Limits(64, 3, 16, 2)])


@settings(max_examples=500)
@given(records, limits)
def test_lean_path_equals_general_path(record: dict[str, Any], lim: Limits) -> None:
    general = _record_fields(record, lim)
    got = record_fields(record, lim)
    assert got == general
    assert list(got.attributes.items()) == list(general.attributes.items())  # order too


def test_the_usual_shape_takes_the_lean_path() -> None:
    record = {"timestamp": 1700000000.5, "service": "api", "host": "h1", "level": "WARN", "message": "slow"}
    record["meta"] = {"trace": "abc", "region": "eu"}
    assert _plain_record_fields(record, Limits()) is not None
    assert _plain_record_fields({**record, "unknown": 1}, Limits()) is None  # unknown keys: general path
    assert _plain_record_fields({**record, "msg": "two messages"}, Limits()) is None  # which wins: general


def test_a_digit_that_is_not_a_decimal_is_no_level() -> None:
    """``"²"`` is a digit to ``str.isdigit`` but not to ``int``: it used to raise, and the decoder then
    rejected the whole buffer entry (every event posted with it) as unreadable."""
    assert level_from("²") is None and level_from(" 3 ") is Level.ERROR
    fields = record_fields({"message": "m", "level": "²"}, Limits())
    assert fields.level is Level.INFO and fields.level_raw == "²"
