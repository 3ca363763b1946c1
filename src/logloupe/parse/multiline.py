"""Multiline assembly: stack traces and continuation lines join the record they belong to.

One ``MultilineAssembler`` per stream (file, container, connection). Lines go in already parsed
(``ParsedLine``); complete records come out. A line continues the open record when it has no header
of its own (no timestamp, plain format) and looks like part of a trace:

* indented lines: Java/Node/.NET ``at ...`` frames, Python ``File ...`` frames, Go ``\\t/path.go:12``;
* ``Caused by:``, ``Suppressed:``, ``... 12 more``, .NET ``--->`` and ``--- End of ... ---``;
* an exception header without a log header (``java.lang.IllegalStateException: boom``,
  ``System.InvalidOperationException: ...``, ``ValueError: bad``, ``Error: boom``);
* inside a Python traceback or a Go panic, every header-less line (blank ones included).

The clock is passed in: ``feed(line, now_us=...)`` and ``flush_expired(now_us)`` emit a record
that has waited ``timeout_us`` for more lines. Records are capped at ``max_lines``/``max_chars``.
"""

from __future__ import annotations

import re
from dataclasses import replace

from logloupe.model import FLAG_TRUNCATED
from logloupe.parse.line import ParsedLine

_CONTINUATION = re.compile(
    r"^(?:\s+\S|\s*(?:Caused by:|Suppressed:|\.\.\. \d+ (?:more|common frames omitted)|--- End of |---> |"
    r"Traceback \(most recent call last\):|During handling of the above exception|"
    r"The above exception was the direct cause))"
)
_EXCEPTION_HEAD = re.compile(
    r"^(?:Exception in thread \"[^\"]*\" |Unhandled [Ee]xception[.:]? ?)?"
    r"(?:[A-Za-z_][\w$]*\.)*[A-Z][\w$]*(?:Exception|Error|Throwable|Failure|Exit|Interrupt|Warning)(?::|$)"
)
_PY_START = "Traceback (most recent call last):"
_GO_START = re.compile(r"^(?:panic: |fatal error: |goroutine \d+ \[)")


class MultilineAssembler:
    def __init__(self, *, timeout_us: int = 1_000_000, max_lines: int = 1000, max_chars: int = 262_144) -> None:
        self.timeout_us = timeout_us
        self.max_lines = max_lines
        self.max_chars = max_chars
        self._head: ParsedLine | None = None
        self._parts: list[str] = []
        self._chars = 0
        self._updated_us = 0
        self._mode = ""  # "", "python" or "go": inside those traces every header-less line continues

    def feed(self, line: ParsedLine, *, now_us: int) -> list[ParsedLine]:
        """Add one parsed line; returns the records it completed (zero, one or two)."""
        out = self.flush_expired(now_us)
        text = line.message
        headerless = line.ts_us is None and line.format in ("plain", "empty")
        if self._head is not None and headerless and self._continues(text, line.format == "empty"):
            self._chars = append_capped(
                self._parts, self._chars, text, self._head.flags, self.max_lines, self.max_chars
            )
            self._updated_us = now_us
            self._update_mode(text)
            return out
        if line.format == "empty":
            return out  # a blank line outside a trace carries nothing
        out.extend(self.flush())
        self._head = line
        self._parts = [text]
        self._chars = len(text)
        self._updated_us = now_us
        self._mode = ""
        self._update_mode(text)
        return out

    def flush_expired(self, now_us: int) -> list[ParsedLine]:
        """Emit the open record if it has waited ``timeout_us`` without a continuation."""
        if self._head is not None and now_us - self._updated_us >= self.timeout_us:
            return self.flush()
        return []

    def flush(self) -> list[ParsedLine]:
        """Emit the open record now (end of input, shutdown)."""
        if self._head is None:
            return []
        parts = self._parts
        while len(parts) > 1 and not parts[-1].strip():
            parts.pop()
        record = self._head if len(parts) == 1 else replace(self._head, message="\n".join(parts))
        if len(parts) > 1:
            record.attributes = {**record.attributes, "lines": str(len(parts))}
        self._head = None
        self._parts = []
        self._chars = 0
        self._mode = ""
        return [record]

    def pending(self) -> bool:
        return self._head is not None

    def _continues(self, text: str, blank: bool) -> bool:
        return continues(text, self._mode, blank)

    def _update_mode(self, text: str) -> None:
        self._mode = next_mode(text, self._mode)


def append_capped(parts: list[str], chars: int, text: str, flags: list[str], max_lines: int, max_chars: int) -> int:
    """Adds a continuation line to a record's ``parts`` within its caps; past them the record is
    flagged truncated instead (the line is dropped from the record, the flag says so). Returns the
    record's new length in characters."""
    if len(parts) >= max_lines or chars + len(text) > max_chars:
        if FLAG_TRUNCATED not in flags:
            flags.append(FLAG_TRUNCATED)
        return chars
    parts.append(text)
    return chars + len(text) + 1


def continues(text: str, mode: str, blank: bool) -> bool:
    """Whether a header-less line continues the open record (``mode``: "", "python" or "go")."""
    if mode:
        return True
    if blank:
        return False
    return _CONTINUATION.match(text) is not None or _EXCEPTION_HEAD.match(text) is not None


def next_mode(text: str, mode: str) -> str:
    """The trace mode after ``text`` joined the record: inside a Python traceback or a Go panic."""
    if (
        not mode
        and "Traceback" not in text
        and "panic: " not in text
        and "fatal error: " not in text
        and ("goroutine " not in text)
    ):
        return ""  # the common case, without the regular expressions
    stripped = text.strip()
    if stripped.startswith(_PY_START):
        return "python"
    if _GO_START.match(stripped):
        return "go"
    if (
        mode == "python"
        and text[:1] not in (" ", "\t", "")
        and ":" in text
        and not stripped.startswith(("During handling", "The above exception"))
    ):
        return ""  # "ValueError: bad" ends a Python traceback; a chained one may follow
    return mode
