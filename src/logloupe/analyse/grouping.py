"""Group log lines into patterns through a tiny protocol, so any template miner fits.

A *grouper* is any callable ``message -> (pattern_id, template)``. ``FallbackMiner`` is the
built-in one (mask variable parts, group by the masked text); ``miner_adapter`` wraps a
miner with ``add(message, tenant=, service=) -> PatternMatch`` such as
``logloupe.parse.patterns.PatternMiner`` once it exists.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

Grouper = Callable[[str], tuple[int, str]]


class _MinerLike(Protocol):
    def add(self, message: str, *, tenant: str = ..., service: str = ...) -> Any: ...


# Applied per whitespace-separated token, and only to tokens holding a digit: most words have
# none, and the result for a token is cached, which keeps masking cheap on million-line files.
_TOKEN_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?i:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"), "<UUID>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<IP>"),
    (re.compile(r"\b(?i:(?:[0-9a-f]{2}:){5}[0-9a-f]{2})\b"), "<MAC>"),
    (re.compile(r"\b(?i:0x[0-9a-f]+)\b"), "<HEX>"),
    (re.compile(r"\b(?i:(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,})\b"), "<HEX>"),
    (re.compile(r"[-+]?\d+(?:\.\d+)?"), "<NUM>"),
)
_TS = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_RUNS = re.compile(r"(?:<NUM>[-:./,]?){2,}")
_VAR = re.compile(r"<(?:TS|UUID|IP|MAC|HEX|NUM)>")
_DIGITS = frozenset("0123456789")


@functools.lru_cache(maxsize=65536)
def _mask_token(token: str) -> str:
    for pattern, repl in _TOKEN_MASKS:
        token = pattern.sub(repl, token)
    return _RUNS.sub("<NUM>", token) if "<NUM>" in token else token


def mask(text: str) -> str:
    """The line with timestamps, ids, addresses and numbers replaced by placeholders."""
    if "-" in text and ":" in text:
        text = _TS.sub("<TS>", text)
    return " ".join(_mask_token(tok) if not _DIGITS.isdisjoint(tok) else tok for tok in text.split(" "))


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


def template_regex(template: str) -> re.Pattern[str] | None:
    """A regex capturing the values of the template's placeholders; None without placeholders."""
    pieces: list[str] = []
    last = 0
    for m in _VAR.finditer(template):
        pieces.append(re.escape(template[last : m.start()]))
        # Values hold no whitespace (a timestamp may hold one space): keeps backtracking linear.
        pieces.append(r"(\S+?(?:[ T]\S+?)?)" if m.group(0) == "<TS>" else r"(\S+?)")
        last = m.end()
    if not pieces:
        return None
    pieces.append(re.escape(template[last:]))
    return re.compile("".join(pieces))


def variables_of(template: str | re.Pattern[str] | None, message: str) -> list[str]:
    """The values the placeholders of ``template`` took in ``message`` (best effort)."""
    regex = template_regex(template) if isinstance(template, str) else template
    if regex is None:
        return []
    m = regex.fullmatch(message.strip())
    return list(m.groups()) if m else []


def miner_adapter(miner: _MinerLike, tenant: str = "default", service: str = "") -> Grouper:
    """A grouper over a template miner returning objects with ``pattern_id`` and ``template``."""

    def group(message: str) -> tuple[int, str]:
        match = miner.add(message, tenant=tenant, service=service)
        return int(match.pattern_id), str(match.template)

    return group


def default_grouper(tenant: str = "default") -> Grouper:
    """The project's template miner (parse/patterns.py)."""
    from logloupe.parse.patterns import PatternMiner

    return miner_adapter(PatternMiner(), tenant=tenant)


def open_lines(path: str) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` from a plain or gzip file, or stdin for ``-``; streamed.

    Lines end at ``\n`` only (a stray ``\r`` inside a line does not split it), so line numbers
    match ``wc -l`` and the input's own numbering; invalid UTF-8 is replaced, never fatal.
    """
    stream: Any
    if path == "-":
        stream, close = sys.stdin.buffer, False
    else:
        with open(path, "rb") as probe:
            magic = probe.read(2)
        stream = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")  # noqa: SIM115
        close = True
    try:
        for number, raw in enumerate(stream, 1):
            yield number, raw.decode("utf-8", "replace").rstrip("\r\n")
    finally:
        if close:
            stream.close()
