"""The query language: Lucene/KQL-style text → AST → a parameterised SQL condition.

Grammar (documented for users in docs/query-language.md):

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*            juxtaposition means AND
    unary    := ("NOT" | "-") unary | primary
    primary  := "(" or_expr ")" | field ":" value | "phrase" | /regex/ | word
    value    := word | "phrase" | /regex/ | ">=" word | "<" word ... | "[" a "TO" b "]" | "(" values ")"

``compile_query`` is the one way from user text to SQL: every literal travels as a typed
ClickHouse query parameter (``{p0:String}``); only names from fixed tables are spliced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from logloupe.errors import QuerySyntaxError
from logloupe.model import Level, parse_event_id, parse_pattern_id
from logloupe.store.schema import HAS_PATTERN_VARIABLES, NUMBER_PREFIX
from logloupe.store.timerange import parse_time

# ---------------------------------------------------------------- lexer

_SPECIAL = set('()"[]{}')
_FIELD_NAME = re.compile(r"^[A-Za-z_@][\w.@-]*$")
_ALNUM_TOKEN = re.compile(r"^[A-Za-z0-9]+$")
_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9]+")
MAX_QUERY_LENGTH = 8192
MAX_DEPTH = 64
MAX_VAR_POSITION = 1000  # var.N: far more variables than any template has


@dataclass(frozen=True)
class Token:
    kind: str  # WORD PHRASE REGEX LPAREN RPAREN LBRACK RBRACK AND OR NOT MINUS EOF
    text: str
    pos: int
    field_prefix: bool = False  # a WORD that ends in an unescaped ':' (``service:``)


def _lex(q: str, regex_max: int) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(q)
    while i < n:
        c = q[i]
        if c.isspace():
            i += 1
        elif c == "(":
            tokens.append(Token("LPAREN", c, i))
            i += 1
        elif c == ")":
            tokens.append(Token("RPAREN", c, i))
            i += 1
        elif c in "[{":
            tokens.append(Token("LBRACK", c, i))
            i += 1
        elif c in "]}":
            tokens.append(Token("RBRACK", c, i))
            i += 1
        elif c == '"':
            start, i, buf = i, i + 1, []
            while i < n and q[i] != '"':
                if q[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(q[i])
                i += 1
            if i >= n:
                raise QuerySyntaxError("unterminated phrase: missing closing quote", start, q)
            tokens.append(Token("PHRASE", "".join(buf), start))
            i += 1
        elif c == "/" and _at_value_start(tokens, q, i):
            start, i, buf = i, i + 1, []
            while i < n and q[i] != "/":
                if q[i] == "\\" and i + 1 < n and q[i + 1] == "/":
                    i += 1
                elif q[i] == "\\" and i + 1 < n:
                    buf.append(q[i])
                    i += 1
                buf.append(q[i])
                i += 1
            if i >= n:
                raise QuerySyntaxError("unterminated regex: missing closing /", start, q)
            body = "".join(buf)
            if len(body) > regex_max:
                raise QuerySyntaxError(f"regex longer than {regex_max} characters", start, q)
            tokens.append(Token("REGEX", body, start))
            i += 1
        elif c == "-" and _at_term_start(tokens, q, i) and i + 1 < n and not q[i + 1].isspace():
            tokens.append(Token("MINUS", c, i))
            i += 1
        else:
            start, buf = i, []
            after_field = False
            while i < n and not q[i].isspace() and q[i] not in _SPECIAL:
                if q[i] == "\\" and i + 1 < n:
                    buf.append(q[i + 1])
                    i += 2
                    continue
                if q[i] == ":" and not after_field and _FIELD_NAME.match("".join(buf)):
                    tokens.append(Token("WORD", "".join(buf), start, field_prefix=True))
                    i += 1
                    if i >= n or q[i].isspace():
                        raise QuerySyntaxError(f"field '{''.join(buf)}' needs a value after ':'", i, q)
                    after_field, start, buf = True, i, []
                    if q[i] in '"([{/':
                        break  # the value is a phrase, list, range or regex: its own token
                    continue
                buf.append(q[i])
                i += 1
            if buf:
                text = "".join(buf)
                kind = "WORD" if after_field else {"AND": "AND", "OR": "OR", "NOT": "NOT"}.get(text, "WORD")
                tokens.append(Token(kind, text, start))
    tokens.append(Token("EOF", "", n))
    return tokens


def _at_term_start(tokens: list[Token], q: str, i: int) -> bool:
    return i == 0 or q[i - 1].isspace() or q[i - 1] == "("


def _at_value_start(tokens: list[Token], q: str, i: int) -> bool:
    return _at_term_start(tokens, q, i) or q[i - 1] == ":"


# ---------------------------------------------------------------- AST


@dataclass(frozen=True)
class Match:
    """A condition on one field (``None`` = the message, full-text)."""

    field: str | None
    op: str  # term, phrase, regex, wildcard, cmp, range, exists
    value: str = ""
    cmp: str = "="
    low: str | None = None
    high: str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    pos: int = 0


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class All:
    """The empty query: everything in range."""


Node = Match | And | Or | Not | All


class _Parser:
    def __init__(self, q: str, regex_max: int) -> None:
        self.q = q
        self.tokens = _lex(q, regex_max)
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(message, (tok or self.peek()).pos, self.q)

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            return All()
        node = self.or_expr()
        if self.peek().kind != "EOF":
            tok = self.peek()
            raise self.error(f"unexpected '{tok.text}'", tok)
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.peek().kind == "OR":
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.peek().kind not in ("OR", "RPAREN", "EOF"):
            if self.peek().kind == "AND":
                self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind in ("NOT", "MINUS"):
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "LPAREN":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error("query nested too deeply", tok)
            node = self.or_expr()
            if self.peek().kind != "RPAREN":
                raise self.error("missing closing parenthesis")
            self.take()
            self.depth -= 1
            return node
        if tok.kind == "PHRASE":
            return Match(None, "phrase", tok.text, pos=tok.pos)
        if tok.kind == "REGEX":
            return _regex(None, tok, self)
        if tok.kind == "WORD" and tok.field_prefix:
            return self.field_value(tok)
        if tok.kind == "WORD":
            return _word(None, tok)
        if tok.kind == "EOF":
            raise self.error("query ends where a term was expected", tok)
        raise self.error(f"unexpected '{tok.text}'", tok)

    def field_value(self, field_tok: Token) -> Node:
        name = field_tok.text
        tok = self.take()
        if tok.kind == "PHRASE":
            return Match(name, "phrase", tok.text, pos=tok.pos)
        if tok.kind == "REGEX":
            return _regex(name, tok, self)
        if tok.kind == "LBRACK":
            return self.range(name, tok)
        if tok.kind == "LPAREN":  # service:(auth OR payments)
            items: list[Node] = []
            while self.peek().kind not in ("RPAREN", "EOF"):
                inner = self.take()
                if inner.kind in ("AND", "OR"):
                    continue
                if inner.kind == "PHRASE":
                    items.append(Match(name, "phrase", inner.text, pos=inner.pos))
                elif inner.kind == "WORD":
                    items.append(_word(name, inner))
                else:
                    raise self.error(f"unexpected '{inner.text}' in value list", inner)
            if self.peek().kind != "RPAREN" or not items:
                raise self.error("value list needs values and a closing parenthesis")
            self.take()
            return items[0] if len(items) == 1 else Or(tuple(items))
        if tok.kind in ("WORD", "AND", "OR", "NOT"):
            return _word(name, tok)
        raise self.error(f"field '{name}' needs a value", tok)

    def range(self, name: str, open_tok: Token) -> Node:
        parts = []
        for _ in range(4):
            if self.peek().kind == "EOF":
                raise self.error("a range is written [low TO high]", open_tok)
            parts.append(self.take())
        low, to, high, close = parts
        if low.kind not in ("WORD", "PHRASE") or high.kind not in ("WORD", "PHRASE"):
            raise self.error("a range is written [low TO high]", open_tok)
        if to.kind != "WORD" or to.text.upper() != "TO":
            raise self.error("a range is written [low TO high]", to)
        if close.kind != "RBRACK":
            raise self.error("range needs a closing ] or }", close)
        return Match(
            name,
            "range",
            low=None if low.text == "*" else low.text,
            high=None if high.text == "*" else high.text,
            low_inclusive=open_tok.text == "[",
            high_inclusive=close.text == "]",
            pos=open_tok.pos,
        )


def _regex(name: str | None, tok: Token, parser: _Parser) -> Match:
    try:
        re.compile(tok.text)
    except re.error as exc:
        raise QuerySyntaxError(f"invalid regex: {exc.msg}", tok.pos, parser.q) from None
    if re.search(r"\\[1-9]|\(\?[=!<]", tok.text):
        raise QuerySyntaxError("regex back-references and look-arounds are not supported", tok.pos, parser.q)
    return Match(name, "regex", tok.text, pos=tok.pos)


def _word(name: str | None, tok: Token) -> Match:
    text = tok.text
    for op in (">=", "<=", ">", "<"):
        if text.startswith(op) and name is not None:
            value = text[len(op) :]
            if not value:
                raise QuerySyntaxError(f"comparison '{op}' needs a value", tok.pos)
            return Match(name, "cmp", value, cmp=op, pos=tok.pos)
    if name is not None and text == "*":
        return Match(name, "exists", pos=tok.pos)
    if "*" in text or "?" in text:
        return Match(name, "wildcard", text, pos=tok.pos)
    return Match(name, "term", text, pos=tok.pos)


def phrase(value: str) -> str:
    """``value`` as a quoted phrase of the query language (backslashes and quotes escaped), for
    queries the product writes itself: ``f"service:{phrase(name)}"``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_query(q: str, regex_max: int = 256) -> Node:
    if len(q) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"query longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH, q)
    return _Parser(q, regex_max).parse()


# ---------------------------------------------------------------- compiler

# Columns users may name, with aliases. Everything else is an attribute.
_STRING_COLUMNS = {
    "service": "service",
    "host": "host",
    "source": "source",
    "trace_id": "trace_id",
    "span_id": "span_id",
    "level_raw": "level_raw",
    "classification": "classification",
    "tenant": None,  # never selectable: tenancy is not a user filter
}
_TIME_FIELDS = {"ts", "timestamp", "@timestamp", "time"}
_LEVEL_ALIASES = {
    "WARNING": "WARN",
    "ERR": "ERROR",
    "CRIT": "FATAL",
    "CRITICAL": "FATAL",
    "EMERG": "FATAL",
    "ALERT": "FATAL",
    "PANIC": "FATAL",
    "NOTICE": "INFO",
    "INFORMATION": "INFO",
    "DBG": "DEBUG",
}


def normalise_level_name(text: str) -> Level | None:
    upper = text.strip().upper()
    upper = _LEVEL_ALIASES.get(upper, upper)
    try:
        return Level[upper]
    except KeyError:
        return None


@dataclass
class CompiledQuery:
    where: str
    params: dict[str, Any] = field(default_factory=dict)


class _Compiler:
    def __init__(self, q: str, now_us: int, pattern_groups: dict[int, tuple[int, ...]] | None = None) -> None:
        self.q = q
        self.now_us = now_us
        self.params: dict[str, Any] = {}
        # Merged patterns: a query for the surviving id also finds the events of the ids merged into it.
        self.pattern_groups = pattern_groups or {}

    def param(self, value: Any, type_: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{type_}}}"

    def error(self, message: str, node: Match) -> QuerySyntaxError:
        return QuerySyntaxError(message, node.pos, self.q)

    def node(self, node: Node) -> str:
        if isinstance(node, All):
            return "1"
        if isinstance(node, And):
            return "(" + " AND ".join(self._and_items(node.items)) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.node(n) for n in node.items) + ")"
        if isinstance(node, Not):
            return f"NOT ({self.node(node.item)})"
        return self.match(node)

    def _and_items(self, items: list[Node] | tuple[Node, ...]) -> list[str]:
        """The conditions of an AND; its plain message words become one ``hasAllTokens``.

        One look-up of all the words in the text index instead of one per word: at 5M benchmark
        events, ``connection refused`` over 24 h counted in ~11.5 ms against ~13 ms for two ``hasToken``.
        """
        words = [n for n in items if _plain_word(n)]
        if len(words) < 2:
            return [self.node(n) for n in items]
        tokens = " ".join(dict.fromkeys(w.value for w in words if isinstance(w, Match)))
        merged = f"hasAllTokens(message, {self.param(tokens, 'String')})"
        out = [merged]
        out += [self.node(n) for n in items if not _plain_word(n)]
        return out

    def match(self, m: Match) -> str:
        try:
            kind, target = resolve_field(m.field)
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
            return self.event_id(m)
        if kind == "anomaly_score":
            return self.numeric("anomaly_score", m)
        if kind == "flags":
            return f"has(flags, {self.param(m.value, 'String')})"
        if kind == "column":
            return self.string(target, m)
        if kind == "var":
            return self.variable(target, m)
        key = self.param(target, "String")
        if m.op == "exists":
            return f"mapContains(attributes, {key})"
        col = f"attributes[{key}]"
        if m.op in ("cmp", "range") and _all_numeric(m):
            return self.numeric(f"toFloat64OrNull({col})", m)
        return self.string(col, m)

    def message(self, m: Match) -> str:
        if m.op in ("term", "phrase"):
            return text_condition(m.value, self.param)
        if m.op == "wildcard":
            return f"message ILIKE {self.param(_like_pattern(m.value, anchored=False), 'String')}"
        if m.op == "regex":
            return f"match(message, {self.param(m.value, 'String')})"
        if m.op == "exists":
            return "message != ''"
        raise self.error("comparisons are not supported on the message", m)

    def string(self, col: str, m: Match) -> str:
        if m.op in ("term", "phrase"):
            return f"{col} = {self.param(m.value, 'String')}"
        if m.op == "wildcard":
            return f"{col} LIKE {self.param(_like_pattern(m.value, anchored=True), 'String')}"
        if m.op == "regex":
            return f"match({col}, {self.param(m.value, 'String')})"
        if m.op == "exists":
            return f"{col} != ''"
        if m.op == "cmp":
            return f"{col} {m.cmp} {self.param(m.value, 'String')}"
        parts = []
        if m.low is not None:
            parts.append(f"{col} {'>=' if m.low_inclusive else '>'} {self.param(m.low, 'String')}")
        if m.high is not None:
            parts.append(f"{col} {'<=' if m.high_inclusive else '<'} {self.param(m.high, 'String')}")
        return "(" + " AND ".join(parts or ["1"]) + ")"

    def variable(self, position: str, m: Match) -> str:
        """``var.N`` is the pattern's N-th variable (0-based); ``var`` is any of them."""

        def cond(col: str) -> str:
            if m.op in ("cmp", "range") and _all_numeric(m):
                return self.numeric(f"toFloat64OrNull({col})", m)
            return self.string(col, m)

        if position:
            # Arrays count from 1 in SQL; a position past the end reads '' and matches no value.
            return cond(f"arrayElement(pattern_variables, {self.param(int(position) + 1, 'UInt32')})")
        if m.op == "exists":
            return HAS_PATTERN_VARIABLES
        if m.op in ("term", "phrase"):
            return f"has(pattern_variables, {self.param(m.value, 'String')})"
        return f"arrayExists(var_value -> {cond('var_value')}, pattern_variables)"

    def numeric(self, col: str, m: Match) -> str:
        def num(text: str) -> float:
            try:
                return float(text)
            except ValueError:
                raise self.error(f"'{text}' is not a number", m) from None

        if m.op == "cmp":
            return f"{col} {m.cmp} {self.param(num(m.value), 'Float64')}"
        if m.op == "term":
            return f"{col} = {self.param(num(m.value), 'Float64')}"
        if m.op == "range":
            parts = []
            if m.low is not None:
                parts.append(f"{col} {'>=' if m.low_inclusive else '>'} {self.param(num(m.low), 'Float64')}")
            if m.high is not None:
                op = "<=" if m.high_inclusive else "<"
                parts.append(f"{col} {op} {self.param(num(m.high), 'Float64')}")
            return "(" + " AND ".join(parts or ["1"]) + ")"
        raise self.error("this field takes numbers", m)

    def level(self, m: Match) -> str:
        if m.op in ("term", "phrase", "cmp"):
            level = normalise_level_name(m.value)
            if level is None:
                raise self.error(f"unknown level '{m.value}' (use TRACE DEBUG INFO WARN ERROR FATAL)", m)
            op = m.cmp if m.op == "cmp" else "="
            return f"toInt8(level) {op} {self.param(int(level), 'Int8')}"
        if m.op == "range":
            parts = []
            for bound, inclusive, sign in ((m.low, m.low_inclusive, ">"), (m.high, m.high_inclusive, "<")):
                if bound is None:
                    continue
                level = normalise_level_name(bound)
                if level is None:
                    raise self.error(f"unknown level '{bound}'", m)
                parts.append(f"toInt8(level) {sign}{'=' if inclusive else ''} {self.param(int(level), 'Int8')}")
            return "(" + " AND ".join(parts or ["1"]) + ")"
        if m.op == "exists":
            return "1"
        raise self.error("level takes a name such as ERROR, or a comparison such as >=WARN", m)

    def pattern(self, m: Match) -> str:
        if m.op not in ("term", "phrase"):
            raise self.error("pattern takes a pattern id", m)
        try:
            pid = parse_pattern_id(m.value)
        except ValueError:
            raise self.error(f"'{m.value}' is not a pattern id", m) from None
        members = self.pattern_groups.get(pid, ())
        if members:
            ids = ", ".join(self.param(i, "UInt64") for i in (pid, *members))
            return f"pattern_id IN ({ids})"
        return f"pattern_id = {self.param(pid, 'UInt64')}"

    def event_id(self, m: Match) -> str:
        try:
            ts_us, uid = parse_event_id(m.value)
        except ValueError:
            raise self.error(f"'{m.value}' is not an event id", m) from None
        return (
            f"(ts = fromUnixTimestamp64Micro({self.param(ts_us, 'Int64')}, 'UTC')"
            f" AND uid = {self.param(uid, 'UInt64')})"
        )

    def time(self, m: Match) -> str:
        def us(text: str) -> int:
            try:
                return parse_time(text, self.now_us)
            except ValueError as exc:
                raise self.error(str(exc), m) from None

        col = "ts"
        if m.op == "cmp":
            return f"{col} {m.cmp} fromUnixTimestamp64Micro({self.param(us(m.value), 'Int64')}, 'UTC')"
        if m.op in ("term", "phrase"):
            return f"{col} = fromUnixTimestamp64Micro({self.param(us(m.value), 'Int64')}, 'UTC')"
        if m.op == "range":
            parts = []
            if m.low is not None:
                op = ">=" if m.low_inclusive else ">"
                parts.append(f"{col} {op} fromUnixTimestamp64Micro({self.param(us(m.low), 'Int64')}, 'UTC')")
            if m.high is not None:
                op = "<=" if m.high_inclusive else "<"
                parts.append(f"{col} {op} fromUnixTimestamp64Micro({self.param(us(m.high), 'Int64')}, 'UTC')")
            return "(" + " AND ".join(parts or ["1"]) + ")"
        raise self.error("time takes a comparison or a range, e.g. ts:>=now-1h", m)


def attribute_key(field: str) -> str:
    """``attr.user`` / ``attributes.user`` / ``meta.user`` / ``user`` → ``user``."""
    for prefix in ("attr.", "attributes.", "meta."):
        if field.startswith(prefix):
            return field[len(prefix) :]
    return field


def resolve_field(field: str | None) -> tuple[str, str]:
    """What a query field names, shared by the SQL compiler and the live-tail evaluator.

    Returns (kind, target): kind is message, time, level, pattern, id, anomaly_score, flags,
    column (target: the column), var (target: the 0-based position of the pattern variable, or ''
    for any) or attribute (target: the attribute key). ValueError for a name that cannot be queried.
    """
    name = field.lower() if field else None
    if name is None or name in ("message", "msg"):
        return "message", "message"
    if name == "tenant":
        raise ValueError("'tenant' cannot be queried; it is fixed by your credentials")
    if name in _TIME_FIELDS:
        return "time", "ts"
    if name == "level":
        return "level", "level"
    if name in ("pattern", "pattern_id"):
        return "pattern", "pattern_id"
    if name == "id":
        return "id", "id"
    if name == "anomaly_score":
        return "anomaly_score", "anomaly_score"
    if name in ("flags", "flag"):
        return "flags", "flags"
    if name == "var":
        return "var", ""
    if name.startswith("var."):
        position = name[4:]
        if not (position.isascii() and position.isdigit()) or int(position) >= MAX_VAR_POSITION:
            raise ValueError(f"'{field}': a pattern variable is var.N, N a 0-based position below {MAX_VAR_POSITION}")
        return "var", str(int(position))
    column = _STRING_COLUMNS.get(name)
    if column:
        return "column", column
    key = attribute_key(field or "")
    if not key:
        raise ValueError("attribute name missing")
    return "attribute", key


def text_condition(text: str, param: Any) -> str:
    """Case-insensitive full-text condition on the message that the text index can serve.

    The index keeps only the first ``NUMBER_PREFIX`` digits of a longer run of digits
    (``store/schema.py``), so for tokens with such a run it answers a superset: the exact token is
    then checked on those rows.
    """
    if _ALNUM_TOKEN.match(text):
        cond = f"hasToken(message, {param(text, 'String')})"
        if cut_by_index(text):
            cond = f"({cond} AND {_exact_token(text, param)})"
        return cond
    tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
    if not text.isascii() or not tokens:
        return f"positionCaseInsensitiveUTF8(message, {param(text, 'String')}) > 0"
    # The token test lets the index skip granules; the substring test keeps the phrase in order.
    exact = "".join(f" AND {_exact_token(t, param)}" for t in dict.fromkeys(tokens) if cut_by_index(t))
    return (
        f"(hasAllTokens(message, {param(' '.join(tokens), 'String')}){exact}"
        f" AND positionCaseInsensitiveUTF8(message, {param(text, 'String')}) > 0)"
    )


_LONG_DIGITS = re.compile(f"[0-9]{{{NUMBER_PREFIX},}}")


def _plain_word(node: Node) -> bool:
    """A search word on the message the text index answers exactly by itself (``hasToken``)."""
    if not (isinstance(node, Match) and node.op == "term" and _ALNUM_TOKEN.match(node.value)):
        return False
    try:
        kind, _ = resolve_field(node.field)
    except ValueError:
        return False
    return kind == "message" and not cut_by_index(node.value)


def cut_by_index(token: str) -> bool:
    """A token the index may hold only in part: it has a run of ``NUMBER_PREFIX`` digits or more."""
    return _LONG_DIGITS.search(token) is not None


def _exact_token(token: str, param: Any) -> str:
    """The token, in any case, is one of the message's tokens (read from the message itself)."""
    if token.isdigit():
        return f"has(splitByNonAlpha(message), {param(token, 'String')})"
    return f"has(splitByNonAlpha(lower(message)), {param(token.lower(), 'String')})"


def _like_pattern(text: str, *, anchored: bool) -> str:
    out = []
    for ch in text:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
    body = "".join(out)
    return body if anchored else f"%{body}%"


def _all_numeric(m: Match) -> bool:
    values = [v for v in (m.value if m.op == "cmp" else None, m.low, m.high) if v is not None]
    try:
        for v in values:
            float(v)
    except ValueError:
        return False
    return bool(values)


def compile_query(
    q: str, *, now_us: int, regex_max: int = 256, pattern_groups: dict[int, tuple[int, ...]] | None = None
) -> CompiledQuery:
    """User query text → a SQL boolean expression over ``events`` and its parameters."""
    compiler = _Compiler(q, now_us, pattern_groups)
    where = compiler.node(parse_query(q, regex_max))
    return CompiledQuery(where, compiler.params)


def field_expression(name: str, params: dict[str, Any]) -> str:
    """SQL for a field used in group-by (histogram split, facets); attributes become map lookups."""
    lowered = name.lower()
    if lowered == "level":
        return "toString(level)"
    if lowered in ("pattern", "pattern_id"):
        return "if(pattern_id = 0, '', lower(leftPad(hex(pattern_id), 16, '0')))"
    column = _STRING_COLUMNS.get(lowered)
    if column:
        return column
    pname = f"f{len(params)}"
    params[pname] = attribute_key(name)
    return f"attributes[{{{pname}:String}}]"
