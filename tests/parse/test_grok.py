from __future__ import annotations

import pytest

from logloupe.errors import InvalidInput
from logloupe.model import Level
from logloupe.parse.grok import CustomFormat
from logloupe.parse.line import parse_line

NOW = 1_763_726_400_000_000


def test_named_grok_format_is_tried_first() -> None:
    fmt = CustomFormat.grok(
        "myapp", r"%{TIMESTAMP_ISO8601:ts} <%{LOGLEVEL:level}> %{WORD:service}#%{INT:worker} %{GREEDYDATA:msg}"
    )
    p = parse_line("2023-01-02T03:04:05Z <warn> billing#7 invoice 12 late", now_us=NOW, custom=[fmt])
    assert (p.format, p.service, p.level, p.message) == ("myapp", "billing", Level.WARN, "invoice 12 late")
    assert p.attributes == {"worker": "7"}
    assert p.ts_us == 1_672_628_645_000_000
    assert parse_line("something else", now_us=NOW, custom=[fmt]).format == "plain"


def test_bad_patterns_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        CustomFormat.grok("x", "%{NOPE:a}")
    with pytest.raises(InvalidInput):
        CustomFormat.from_regex("x", "(unclosed")
