"""Multiline assembly: stack traces and continuation lines join the record they belong to.

One ``MultilineAssembler`` per stream (file, container, connection). Lines go in already parsed
(``ParsedLine``); complete records come out. A line continues the open record when it has no header
of its own (no timestamp, plain format) and looks like part of a trace:

* indented lines: Java/Node/.NET ``at ...`` frames, Python ``File ...`` frames, Go ``\\t/path.go:12``;
* ``Caused by:``, ``Suppressed:``, ``... 12 more``, .NET ``--->`` and ``--- End of ... ---``;
* an exception header without a log header (``java.lang.IllegalStateException: boom``,
  ``System.InvalidOperationException: ...``, ``ValueError: bad``, ``Error: boom``);
* inside a Python traceback or a Go panic, every header-less line (blank ones included).

Container lines (Kubernetes CRI, Docker's json-file driver) are tested by the program's own text
inside them (``ParsedLine.headerless``): every such line has the runtime's timestamp, so a stack
trace written to stderr would otherwise never join. A line the runtime cut (CRI ``P``, a Docker
``log`` without a trailing newline) is completed by the next line of the same stream, with no
newline between the parts (``ParsedLine.partial``).

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
        self._glue = False  # the open record's last line was cut by a container runtime

    def feed(self, line: ParsedLine, *, now_us: int) -> list[ParsedLine]:
        """Add one parsed line; returns the records it completed (zero, one or two)."""
        out = self.flush_expired(now_us)
        text = line.message
        head = self._head
        if head is not None and self._glue and line.inner and same_stream(head.attributes, line.attributes):
            # the rest of a line the container runtime cut: appended as it was written, no newline
            self._chars = glue_capped(self._parts, self._chars, text, head.flags, self.max_chars)
            self._glue = line.partial
            if not self._glue:
                head.attributes = {k: v for k, v in head.attributes.items() if k != "partial"}
            self._updated_us = now_us
            return out
        if (
            head is not None
            and line.headerless
            and (not line.inner or same_stream(head.attributes, line.attributes))
            and self._continues(text, not text.strip())
        ):
            self._chars = append_capped(self._parts, self._chars, text, head.flags, self.max_lines, self.max_chars)
            self._updated_us = now_us
            self._glue = line.partial
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
        self._glue = line.partial
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
        message = "\n".join(parts)
        record = self._head if message == self._head.message else replace(self._head, message=message)
        if len(parts) > 1:
            record.attributes = {**record.attributes, "lines": str(len(parts))}
        self._head = None
        self._parts = []
        self._chars = 0
        self._mode = ""
        self._glue = False
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


def glue_capped(parts: list[str], chars: int, text: str, flags: list[str], max_chars: int) -> int:
    """Appends the rest of a cut container line to the record's last line, within ``max_chars``
    (past it the record is flagged truncated). Returns the record's new length in characters."""
    if chars + len(text) > max_chars:
        if FLAG_TRUNCATED not in flags:
            flags.append(FLAG_TRUNCATED)
        return chars
    parts[-1] += text
    return chars + len(text)


def same_stream(a: dict[str, str], b: dict[str, str]) -> bool:
    """Two container lines (their attributes) from the same output, stdout or stderr."""
    return a.get("stream") == b.get("stream")


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
