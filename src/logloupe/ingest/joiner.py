"""A small per-file multiline joiner: stack traces become one event. Pure: lines in, events out.

Which line continues the event before it is the pipeline's rule (``parse.multiline.continues``
and ``next_mode``: indented frames, ``Caused by:``, ``... N more``, exception headers, Python
tracebacks and Go panics), or a source's ``start`` pattern. Offsets travel with the lines so the
caller can checkpoint at the end of the last complete event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from logloupe.parse.multiline import continues, next_mode


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
    _mode: str = ""  # inside a Python traceback or a Go panic (parse.multiline.next_mode)

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
            self._mode = next_mode(line.text, self._mode)
            return out
        out.extend(self.flush())
        self._pending = [line]
        self._chars = len(line.text)
        self._mode = next_mode(line.text, "")
        return out

    def _continues(self, text: str) -> bool:
        if self.start is not None:
            return self.start.search(text) is None
        return continues(text, self._mode, not text.strip())

    def flush(self) -> list[Joined]:
        if not self._pending:
            return []
        lines = self._pending
        self._pending = []
        self._chars = 0
        self._mode = ""
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
        self._mode = ""
