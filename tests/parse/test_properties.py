"""Nothing in parse/ raises on arbitrary input."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logloupe.parse.formats import detect
from logloupe.parse.line import MAX_LINE_CHARS, parse_line
from logloupe.parse.masking import mask_for_mining, redact, value_type
from logloupe.parse.multiline import MultilineAssembler
from logloupe.parse.patterns import PatternMiner
from logloupe.parse.timestamps import parse_timestamp

NOW = 1_763_726_400_000_000
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text that looks a bit like logs, so the parsers get past their first checks
log_text = st.lists(
    st.sampled_from(
        [*"aZ09 .:-_/=[](){}\"'@,<>*\\\t|#+x", "Jan ", "ERROR", "2023-01-02T", "\x1b[31m", "\ufffd", "é", "12", "0x1f"]
    ),
    max_size=80,
).map("".join)


@FAST
@given(st.binary(max_size=400))
def test_parse_line_survives_any_bytes(raw: bytes) -> None:
    p = parse_line(raw, now_us=NOW)
    assert isinstance(p.message, str)
    assert len(p.message) <= MAX_LINE_CHARS


@FAST
@given(st.one_of(st.text(max_size=400), log_text))
def test_parse_line_survives_any_text(text: str) -> None:
    p = parse_line(text, now_us=NOW, hint="logfmt")
    assert p.ts_us is None or p.ts_us <= NOW + 86_400_000_000
    detect(text)


@FAST
@given(st.one_of(st.text(max_size=300), log_text))
def test_masks_and_timestamps_survive(text: str) -> None:
    mask_for_mining(text)
    for mode in ("mask", "hash", "keep"):
        redact(text, mode)  # type: ignore[arg-type]
    value_type(text)
    parse_timestamp(text, now_us=NOW)


@FAST
@given(st.lists(st.one_of(st.text(max_size=120), log_text), max_size=30))
def test_miner_survives_and_matches_what_it_learned(lines: list[str]) -> None:
    miner = PatternMiner()
    for line in lines:
        miner.add(line, tenant="t", service="s")
    for line in lines:
        m = miner.match(line, tenant="t", service="s")
        assert m is not None
        assert len(m.variables) == len(m.variable_types)
    PatternMiner.from_state(miner.export_state())


@FAST
@given(st.lists(st.binary(max_size=80), max_size=30))
def test_multiline_survives(raws: list[bytes]) -> None:
    asm = MultilineAssembler()
    out = []
    for i, raw in enumerate(raws):
        out += asm.feed(parse_line(raw, now_us=NOW), now_us=NOW + i)
    out += asm.flush()
    assert all(isinstance(r.message, str) for r in out)
