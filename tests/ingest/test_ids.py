"""The pipeline's id hash gives exactly ``event_uid``'s digest: ids stay stable across versions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logloupe.model import event_uid, event_uid_of

text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF))  # lone surrogates too


@given(text, text, text, text, st.integers(-(2**63), 2**63 - 1), text, text, st.integers(0, 10**9))
def test_event_uid_of_equals_event_uid(
    tenant: str, source: str, service: str, host: str, ts_us: int, message: str, position: str, index: int
) -> None:
    parts = (tenant, source, service, host, ts_us, message, position, index)
    assert event_uid_of(*parts) == event_uid(*parts)


def test_a_known_id_is_unchanged() -> None:
    # Pinned: a replay after an upgrade must produce the ids the first attempt stored.
    parts = ("default", "http", "checkout", "node-1", 1763700000123456, "request 1 took 1 ms", "wal:12345", 17)
    assert event_uid_of(*parts) == event_uid(*parts) == 0x1313C7CC6ABB4189
