"""Named, user-defined line patterns (grok-like), per source, for formats nothing else recognises.

    fmt = CustomFormat.grok("myapp", "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{WORD:service}: %{GREEDYDATA:msg}")
    parse_line(line, now_us=..., custom=[fmt])

``%{NAME}`` matches, ``%{NAME:field}`` matches and captures. Fields named ``ts``, ``level``,
``msg``, ``service``, ``host``, ``trace_id`` and ``span_id`` fill the line's fields; any other
capture becomes an attribute. Plain regular expressions with named groups work too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from logloupe.errors import InvalidInput

GROK_PATTERNS: dict[str, str] = {
    "WORD": r"\w+",
    "NOTSPACE": r"\S+",
    "SPACE": r"\s*",
    "DATA": r".*?",
    "GREEDYDATA": r".*",
    "INT": r"[+-]?\d+",
    "NUMBER": r"[+-]?\d+(?:\.\d+)?",
    "IP": r"(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f:]+:[0-9A-Fa-f:]*",
    "IPV4": r"(?:\d{1,3}\.){3}\d{1,3}",
    "HOSTNAME": r"[A-Za-z0-9][A-Za-z0-9.\-]*",
    "LOGLEVEL": r"(?i:trace|debug|info|notice|warn(?:ing)?|err(?:or)?|crit(?:ical)?|fatal|severe|emerg|alert)",
    "TIMESTAMP_ISO8601": r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
    "SYSLOGTIMESTAMP": r"[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}",
    "HTTPDATE": r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}",
    "QUOTEDSTRING": r"\"(?:[^\"\\]|\\.)*\"",
    "UUID": r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}",
    "PATH": r"(?:/[^/\s]*)+",
}
_GROK = re.compile(r"%\{(\w+)(?::([A-Za-z_][\w]*))?\}")


def grok_to_regex(pattern: str) -> str:
    def expand(m: re.Match[str]) -> str:
        name, field = m.group(1), m.group(2)
        if name not in GROK_PATTERNS:
            raise InvalidInput(f"unknown grok pattern %{{{name}}}")
        body = GROK_PATTERNS[name]
        return f"(?P<{field}>{body})" if field else f"(?:{body})"

    return _GROK.sub(expand, pattern)


@dataclass(frozen=True, slots=True)
class CustomFormat:
    name: str
    regex: re.Pattern[str]

    @classmethod
    def grok(cls, name: str, pattern: str) -> CustomFormat:
        """Compile a grok-like pattern; InvalidInput when it is not valid."""
        return cls.from_regex(name, grok_to_regex(pattern))

    @classmethod
    def from_regex(cls, name: str, pattern: str) -> CustomFormat:
        try:
            return cls(name, re.compile(pattern, re.DOTALL))
        except re.error as exc:
            raise InvalidInput(f"invalid pattern for format {name!r}: {exc}") from exc

    def match(self, line: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(line)
        if m is None:
            return None
        return {k: v for k, v in m.groupdict().items() if v is not None}
