"""The query language evaluated in Python against one event (live tail, detectors).

``compile_query`` turns the AST into SQL for the store; ``compile_matcher`` turns the same AST
into a predicate with the same meaning, for events that never touch SQL (a stream of new
events). The two agree on: case-insensitive token/substring matching on the message, exact
field values, ordered levels, numeric comparisons on attributes when the values are numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from logloupe.errors import QuerySyntaxError
from logloupe.model import Level, LogEvent, parse_event_id, parse_pattern_id
from logloupe.store.query import (
    _ALNUM_TOKEN,
    _TOKEN_SPLIT,
    All,
    And,
    Match,
    Node,
    Not,
    Or,
    _all_numeric,
    normalise_level_name,
    parse_query,
    resolve_field,
)
from logloupe.store.timerange import parse_time

Predicate = Callable[[LogEvent], bool]
T = TypeVar("T")  # what a field test reads from: an event, or one of its values


def compile_matcher(
    q: str,
    *,
    now_us: int,
    regex_max: int = 256,
    pattern_groups: dict[int, tuple[int, ...]] | None = None,
) -> Predicate:
    """User query text → a predicate over events. Raises QuerySyntaxError like ``compile_query``."""
    return _Builder(q, now_us, pattern_groups or {}).node(parse_query(q, regex_max))


def _wildcard_regex(text: str, *, anchored: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(f"^{body}$" if anchored else body, re.S | (0 if anchored else re.I))


def _cmp(op: str, a: float | str, b: float | str) -> bool:
    if op == ">=":
        return a >= b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == "<":
        return a < b  # type: ignore[operator]
    return a == b


def _in_range(value: float | str, m: Match, convert: Callable[[str], float | str]) -> bool:
    if m.low is not None and not _cmp(">=" if m.low_inclusive else ">", value, convert(m.low)):
        return False
    return not (m.high is not None and not _cmp("<=" if m.high_inclusive else "<", value, convert(m.high)))


class _Builder:
    def __init__(self, q: str, now_us: int, groups: dict[int, tuple[int, ...]]) -> None:
        self.q = q
        self.now_us = now_us
        self.groups = groups

    def error(self, message: str, m: Match) -> QuerySyntaxError:
        return QuerySyntaxError(message, m.pos, self.q)

    def node(self, node: Node) -> Predicate:
        if isinstance(node, All):
            return lambda e: True
        if isinstance(node, And):
            parts = [self.node(n) for n in node.items]
            return lambda e: all(p(e) for p in parts)
        if isinstance(node, Or):
            parts = [self.node(n) for n in node.items]
            return lambda e: any(p(e) for p in parts)
        if isinstance(node, Not):
            inner = self.node(node.item)
            return lambda e: not inner(e)
        return self.match(node)

    def match(self, m: Match) -> Predicate:
        try:
            kind, key = resolve_field(m.field)
        except ValueError as exc:
            raise self.error(str(exc), m) from None
        if kind == "message":
            return self.message(m)
        if kind == "time":
            return self.time(m)
        if kind == "level":
            return self.level(m)
        if kind == "pattern":
            return self.pattern(m)
        if kind == "id":
            try:
                ts_us, uid = parse_event_id(m.value)
            except ValueError:
                raise self.error(f"'{m.value}' is not an event id", m) from None
            return lambda e: e.ts_us == ts_us and e.uid == uid
        if kind == "anomaly_score":
            return self.numeric(lambda e: e.anomaly_score, m)
        if kind == "flags":
            return lambda e: m.value in e.flags
        if kind == "var":
            return self.variable(key, m)
        if kind == "column":
            return self.string(lambda e: str(getattr(e, key)), m)
        if m.op == "exists":
            return lambda e: key in e.attributes
        if m.op in ("cmp", "range") and _all_numeric(m):

            def attr_number(e: LogEvent) -> float | None:
                try:
                    return float(e.attributes.get(key, ""))
                except ValueError:
                    return None

            return self.numeric(attr_number, m)
        return self.string(lambda e: e.attributes.get(key, ""), m)

    def variable(self, position: str, m: Match) -> Predicate:
        """``var.N`` is the pattern's N-th variable (0-based; past the end reads ''), ``var`` any of
        them — as ``compile_query`` has it."""

        def one(get: Callable[[T], str]) -> Callable[[T], bool]:
            if m.op in ("cmp", "range") and _all_numeric(m):

                def number(x: T) -> float | None:
                    try:
                        return float(get(x))
                    except ValueError:
                        return None

                return self.numeric(number, m)
            return self.string(get, m)

        if position:
            n = int(position)
            return one(lambda e: e.pattern_vars[n] if n < len(e.pattern_vars) else "")
        if m.op == "exists":
            return lambda e: bool(e.pattern_vars)
        test: Callable[[str], bool] = one(lambda value: value)
        return lambda e: any(test(value) for value in e.pattern_vars)

    def message(self, m: Match) -> Predicate:
        if m.op in ("term", "phrase"):
            needle = m.value.lower()
            if _ALNUM_TOKEN.match(m.value):
                return lambda e: needle in {t.lower() for t in _TOKEN_SPLIT.split(e.message) if t}
            return lambda e: needle in e.message.lower()
        if m.op == "wildcard":
            rx = _wildcard_regex(m.value, anchored=False)
            return lambda e: rx.search(e.message) is not None
        if m.op == "regex":
            rx = re.compile(m.value)
            return lambda e: rx.search(e.message) is not None
        if m.op == "exists":
            return lambda e: e.message != ""
        raise self.error("comparisons are not supported on the message", m)

    def string(self, get: Callable[[T], str], m: Match) -> Callable[[T], bool]:
        if m.op in ("term", "phrase"):
            return lambda e: get(e) == m.value
        if m.op == "wildcard":
            rx = _wildcard_regex(m.value, anchored=True)
            return lambda e: rx.match(get(e)) is not None
        if m.op == "regex":
            rx = re.compile(m.value)
            return lambda e: rx.search(get(e)) is not None
        if m.op == "exists":
            return lambda e: get(e) != ""
        if m.op == "cmp":
            return lambda e: _cmp(m.cmp, get(e), m.value)
        return lambda e: _in_range(get(e), m, str)

    def numeric(self, get: Callable[[T], float | None], m: Match) -> Callable[[T], bool]:
        def num(text: str) -> float:
            try:
                return float(text)
            except ValueError:
                raise self.error(f"'{text}' is not a number", m) from None

        if m.op in ("cmp", "term"):
            target = num(m.value)
            op = m.cmp if m.op == "cmp" else "="

            def compare(e: T) -> bool:
                value = get(e)
                return value is not None and _cmp(op, value, target)

            return compare
        if m.op == "range":
            for bound in (m.low, m.high):
                if bound is not None:
                    num(bound)

            def within(e: T) -> bool:
                value = get(e)
                return value is not None and _in_range(value, m, num)

            return within
        raise self.error("this field takes numbers", m)

    def level(self, m: Match) -> Predicate:
        def named(text: str) -> int:
            level = normalise_level_name(text)
            if level is None:
                raise self.error(f"unknown level '{text}' (use TRACE DEBUG INFO WARN ERROR FATAL)", m)
            return int(level)

        if m.op in ("term", "phrase", "cmp"):
            target = named(m.value)
            op = m.cmp if m.op == "cmp" else "="
            return lambda e: _cmp(op, int(e.level), target)
        if m.op == "range":
            low = named(m.low) if m.low is not None else int(Level.TRACE)
            high = named(m.high) if m.high is not None else int(Level.FATAL)
            lo_op = ">=" if m.low_inclusive or m.low is None else ">"
            hi_op = "<=" if m.high_inclusive or m.high is None else "<"
            return lambda e: _cmp(lo_op, int(e.level), low) and _cmp(hi_op, int(e.level), high)
        if m.op == "exists":
            return lambda e: True
        raise self.error("level takes a name such as ERROR, or a comparison such as >=WARN", m)

    def pattern(self, m: Match) -> Predicate:
        if m.op not in ("term", "phrase"):
            raise self.error("pattern takes a pattern id", m)
        try:
            pid = parse_pattern_id(m.value)
        except ValueError:
            raise self.error(f"'{m.value}' is not a pattern id", m) from None
        ids = {pid, *self.groups.get(pid, ())}
        return lambda e: e.pattern_id in ids

    def time(self, m: Match) -> Predicate:
        def us(text: str) -> int:
            try:
                return parse_time(text, self.now_us)
            except ValueError as exc:
                raise self.error(str(exc), m) from None

        if m.op in ("cmp", "term", "phrase"):
            target = us(m.value)
            op = m.cmp if m.op == "cmp" else "="
            return lambda e: _cmp(op, e.ts_us, target)
        if m.op == "range":
            low = us(m.low) if m.low is not None else None
            high = us(m.high) if m.high is not None else None

            def within(e: LogEvent) -> bool:
                if low is not None and not _cmp(">=" if m.low_inclusive else ">", e.ts_us, low):
                    return False
                return not (high is not None and not _cmp("<=" if m.high_inclusive else "<", e.ts_us, high))

            return within
        raise self.error("time takes a comparison or a range, e.g. ts:>=now-1h", m)
