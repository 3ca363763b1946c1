"""A small per-file multiline joiner: stack traces become one event. Pure: lines in, events out.

A line continues the previous event when it starts with whitespace, ``Caused by:``, ``at ``,
``... N more``, a qualified exception name (``java.io.IOException: ...``), or sits inside a
Python traceback (``Traceback (most recent call last):`` up to and including the first
unindented line after it: the exception line). Offsets travel with the
lines so the caller can checkpoint at the end of the last complete event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CONTINUATION = re.compile(
    r"^(?:[ \t]+\S|Caused by:|at |\.\.\. \d+ (?:more|common frames omitted)|"
    r"During handling of the above exception|The above exception was the direct cause|"
    # A Java-style exception header (``java.lang.IllegalStateException: boom``) after the log line.
    r"(?:[A-Za-z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)\b)"
)
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):")


@dataclass
class Line:
    text: str
    start: int  # byte offset of the line's first byte
    end: int  # byte offset just after its newline
    truncated: bool = False


@dataclass
class Joined:
    text: str
    start: int
    end: int
    lines: int = 1
    truncated: bool = False


@dataclass
class MultilineJoiner:
    """``push`` lines; get back the events that are complete. ``flush`` ends the pending one."""

    enabled: bool = True
    max_lines: int = 500
    max_chars: int = 1 << 20
    # A parsing source's multiline_start: a line matching it starts an event, any other continues
    # the one before (Filebeat's negate/after); None: stack-trace rules.
    start: re.Pattern[str] | None = None
    _pending: list[Line] = field(default_factory=list)
    _chars: int = 0
    _in_traceback: bool = False

    @property
    def pending_start(self) -> int | None:
        return self._pending[0].start if self._pending else None

    def push(self, line: Line) -> list[Joined]:
        if not self.enabled:
            return [Joined(line.text, line.start, line.end, 1, line.truncated)]
        out: list[Joined] = []
        if self._pending and self._continues(line.text):
            if len(self._pending) >= self.max_lines or self._chars + len(line.text) > self.max_chars:
                out.extend(self.flush())
                self._pending = [line]
                self._chars = len(line.text)
                return out
            self._pending.append(line)
            self._chars += len(line.text) + 1
            self._after_continuation(line.text)
            return out
        out.extend(self.flush())
        self._pending = [line]
        self._chars = len(line.text)
        self._in_traceback = bool(_TRACEBACK.match(line.text))
        return out

    def _continues(self, text: str) -> bool:
        if self.start is not None:
            return self.start.search(text) is None
        if _TRACEBACK.match(text) or _CONTINUATION.match(text):
            return True
        # The unindented exception line closes a Python traceback.
        return self._in_traceback

    def _after_continuation(self, text: str) -> None:
        if _TRACEBACK.match(text):
            self._in_traceback = True
        elif self._in_traceback and not text[:1].isspace() and not _CONTINUATION.match(text):
            self._in_traceback = False

    def flush(self) -> list[Joined]:
        if not self._pending:
            return []
        lines = self._pending
        self._pending = []
        self._chars = 0
        self._in_traceback = False
        return [
            Joined(
                "\n".join(ln.text for ln in lines),
                lines[0].start,
                lines[-1].end,
                len(lines),
                any(ln.truncated for ln in lines),
            )
        ]

    def reset(self) -> None:
        self._pending = []
        self._chars = 0
        self._in_traceback = False
