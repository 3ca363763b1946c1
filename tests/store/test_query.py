"""The query language: parsing, errors at positions, and SQL that only ever carries parameters."""

from __future__ import annotations

import pytest

from logloupe.errors import QuerySyntaxError
from logloupe.store.query import And, Match, Not, Or, compile_query, parse_query

NOW = 1_800_000_000_000_000


def test_bare_terms_are_anded() -> None:
    node = parse_query("connection refused")
    assert isinstance(node, And)
    assert [m.value for m in node.items if isinstance(m, Match)] == ["connection", "refused"]


def test_or_not_and_minus() -> None:
    node = parse_query("a OR b -c NOT d")
    assert isinstance(node, Or)
    right = node.items[1]
    assert isinstance(right, And)
    assert all(isinstance(n, Not) for n in right.items[1:])


@pytest.mark.parametrize(
    ("query", "field", "op"),
    [
        ("service:auth", "service", "term"),
        ('service:"api gateway"', "service", "phrase"),
        ("service:pay*", "service", "wildcard"),
        ("attr.user_id:123", "attr.user_id", "term"),
        ("level:>=WARN", "level", "cmp"),
        ("message:/time(out|d)/", "message", "regex"),
        ("ts:[now-1h TO now]", "ts", "range"),
        ("host:*", "host", "exists"),
    ],
)
def test_field_forms(query: str, field: str, op: str) -> None:
    node = parse_query(query)
    assert isinstance(node, Match)
    assert (node.field, node.op) == (field, op)


@pytest.mark.parametrize(
    ("query", "position"),
    [('"open phrase', 0), ("(a OR b", 7), ("a AND", 5), ("service:", 8), ("/unclosed", 0), ("a )", 2)],
)
def test_syntax_errors_carry_the_position(query: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        compile_query(query, now_us=NOW)
    assert info.value.position == position
    assert f"position {position}" in info.value.message


def test_user_text_never_reaches_sql() -> None:
    evil = "x' OR 1=1 -- ; DROP TABLE events"
    compiled = compile_query(f'service:"{evil}" "{evil}" attr.k:"{evil}"', now_us=NOW)
    assert "DROP" not in compiled.where
    assert "'" not in compiled.where
    assert evil in compiled.params.values()


def test_unknown_level_is_a_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError):
        compile_query("level:LOUD", now_us=NOW)


def test_tenant_is_not_a_user_filter() -> None:
    with pytest.raises(QuerySyntaxError):
        compile_query("tenant:other", now_us=NOW)


def test_backreferences_are_refused() -> None:
    with pytest.raises(QuerySyntaxError):
        compile_query(r"/(a)\1/", now_us=NOW)
