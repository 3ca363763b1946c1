"""Parsing: pure functions from raw lines to structured fields and pattern ids (no I/O)."""

from logloupe.parse.line import MAX_LINE_CHARS, ParsedLine, parse_line
from logloupe.parse.patterns import MinerConfig, Pattern, PatternMatch, PatternMiner

__all__ = [
    "MAX_LINE_CHARS",
    "MinerConfig",
    "ParsedLine",
    "Pattern",
    "PatternMatch",
    "PatternMiner",
    "parse_line",
]
