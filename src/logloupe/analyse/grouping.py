"""Group log lines into patterns through a tiny protocol, so any template miner fits.

A *grouper* is any callable ``message -> (pattern_id, template)``. ``FallbackMiner`` is the
built-in one (mask variable parts, group by the masked text); ``miner_adapter`` wraps a
miner with ``add(message, tenant=, service=) -> PatternMatch`` such as
``logloupe.parse.patterns.PatternMiner`` once it exists.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

Grouper = Callable[[str], tuple[int, str]]


class _MinerLike(Protocol):
    def add(self, message: str, tenant: str = ..., service: str = ...) -> Any: ...


_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<TS>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<UUID>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<IP>"),
    (re.compile(r"\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b", re.I), "<MAC>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<HEX>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b", re.I), "<HEX>"),
    (re.compile(r"[-+]?\d+(?:\.\d+)?"), "<NUM>"),
)
_VAR = re.compile(r"<(?:TS|UUID|IP|MAC|HEX|NUM)>")


def mask(text: str) -> str:
    """The line with timestamps, ids, addresses and numbers replaced by placeholders."""
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return re.sub(r"(?:<NUM>[-:./]?){2,}", "<NUM>", text)


def pattern_id_of(template: str) -> int:
    digest = hashlib.blake2b(template.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1 or 1  # positive and never 0 (0 means "none")


class FallbackMiner:
    """Mask variables and group by the masked text; bounded by ``max_patterns``."""

    def __init__(self, max_patterns: int = 100_000) -> None:
        self.max_patterns = max_patterns
        self._ids: dict[str, int] = {}

    def __call__(self, message: str) -> tuple[int, str]:
        template = mask(message.strip())
        pid = self._ids.get(template)
        if pid is None:
            if len(self._ids) >= self.max_patterns:
                template = "<overflow>"
            pid = pattern_id_of(template)
            self._ids[template] = pid
        return pid, template


def variables_of(template: str, message: str) -> list[str]:
    """The values the placeholders of ``template`` took in ``message`` (best effort)."""
    parts = _VAR.split(template)
    if len(parts) == 1:
        return []
    regex = "(.*?)".join(re.escape(p) for p in parts)
    m = re.fullmatch(regex, message.strip(), re.S)
    return list(m.groups()) if m else []


def miner_adapter(miner: _MinerLike, tenant: str = "default", service: str = "") -> Grouper:
    """A grouper over a template miner returning objects with ``pattern_id`` and ``template``."""

    def group(message: str) -> tuple[int, str]:
        match = miner.add(message, tenant=tenant, service=service)
        return int(match.pattern_id), str(match.template)

    return group


def default_grouper(tenant: str = "default") -> Grouper:
    """The project's miner when installed, else the fallback."""
    try:
        from logloupe.parse.patterns import PatternMiner  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return FallbackMiner()
    try:
        return miner_adapter(PatternMiner(), tenant=tenant)
    except TypeError:  # a constructor that needs arguments we do not know about
        return FallbackMiner()


def open_lines(path: str) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` from a plain or gzip file, or stdin for ``-``; streamed."""
    if path == "-":
        stream: io.TextIOBase | Any = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        close = False
    else:
        with open(path, "rb") as probe:
            magic = probe.read(2)
        if magic == b"\x1f\x8b":
            stream = gzip.open(path, "rt", encoding="utf-8", errors="replace")  # noqa: SIM115
        else:
            stream = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
        close = True
    try:
        for number, line in enumerate(stream, 1):
            yield number, line.rstrip("\r\n")
    finally:
        if close:
            stream.close()
