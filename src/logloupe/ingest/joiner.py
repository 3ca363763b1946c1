"""A small per-file multiline joiner: stack traces become one event. Pure: lines in, events out.

Which line continues the event before it is the pipeline's rule (``parse.multiline.continues``
and ``next_mode``: indented frames, ``Caused by:``, ``... N more``, exception headers, Python
tracebacks and Go panics), or a source's ``start`` pattern. Offsets travel with the lines so the
caller can checkpoint at the end of the last complete event.

Container log files (Kubernetes CRI, Docker's json-file driver) put the runtime's timestamp on every
line: the rule is applied to the program's own text inside, and a continuation line joins as that
text alone. A line the runtime cut (CRI ``P``, a Docker ``log`` without a newline) is completed by
the next line of its stream, rewritten as the runtime writes a whole line (``formats.container_glue``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from logloupe.parse.formats import ContainerLine, container_glue, container_line
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
    _stream: str | None = None  # the pending event's container stream (None: not a container line)
    _glue: bool = False  # its last line was cut by the container runtime

    @property
    def pending_start(self) -> int | None:
        return self._pending[0].start if self._pending else None

    def push(self, line: Line) -> list[Joined]:
        if not self.enabled:
            return [Joined(line.text, line.start, line.end, 1, line.truncated)]
        out: list[Joined] = []
        box = container_line(line.text) if self.start is None else None
        if (
            box is not None
            and self._pending
            and self._glue
            and box.stream == self._stream
            and self._chars + len(box.inner) <= self.max_chars
        ):
            self._glue_onto(box, line)
            return out
        text = line.text if box is None else box.inner
        same = (box.stream if box is not None else None) == self._stream
        if self._pending and same and self._continues(text):
            if len(self._pending) >= self.max_lines or self._chars + len(text) > self.max_chars:
                out.extend(self.flush())
                self._start(line, box)
                return out
            self._pending.append(line if box is None else Line(text, line.start, line.end, line.truncated))
            self._chars += len(text) + 1
            self._mode = next_mode(text, self._mode)
            self._glue = box is not None and box.partial
            return out
        out.extend(self.flush())
        self._start(line, box)
        return out

    def _start(self, line: Line, box: ContainerLine | None) -> None:
        self._pending = [line]
        self._chars = len(line.text)
        self._mode = next_mode(line.text if box is None else box.inner, "")
        self._stream = box.stream if box is not None else None
        self._glue = box is not None and box.partial

    def _glue_onto(self, box: ContainerLine, line: Line) -> None:
        last = self._pending[-1]
        # the first line is kept as the runtime wrote it; later ones are the program's text alone
        text = container_glue(last.text, box.inner, box.partial) if len(self._pending) == 1 else last.text + box.inner
        self._pending[-1] = Line(text, last.start, line.end, last.truncated or line.truncated)
        self._chars += len(box.inner)
        self._glue = box.partial

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
        self._stream = None
        self._glue = False
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
        self._stream = None
        self._glue = False
