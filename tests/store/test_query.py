"""The query language: parsing, errors at positions, and SQL that only ever carries parameters."""

from __future__ import annotations

import pytest

from logloupe.errors import QuerySyntaxError
from logloupe.store.events import EventStore
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


@pytest.mark.parametrize("query", ["@:[", "a:[x", "a:[x TO", "a:[x TO y", "a:{", "f:("])
def test_unfinished_ranges_are_syntax_errors(query: str) -> None:
    with pytest.raises(QuerySyntaxError):
        compile_query(query, now_us=NOW)


@pytest.mark.parametrize(
    ("query", "sql_part"),
    [
        ("var.0:alice", "arrayElement(pattern_variables, {p0:UInt32}) = {p1:String}"),
        ("var:alice", "has(pattern_variables, {p0:String})"),
        ("var:ali*", "arrayExists(var_value -> var_value LIKE {p0:String}, pattern_variables)"),
        ("var.1:>100", "toFloat64OrNull(arrayElement(pattern_variables, {p0:UInt32})) > {p1:Float64}"),
        ("var:*", "(notEmpty(pattern_var_spans) OR notEmpty(pattern_vars_text))"),
    ],
)
def test_pattern_variables_compile_to_parameters(query: str, sql_part: str) -> None:
    compiled = compile_query(query, now_us=NOW)
    assert sql_part in compiled.where
    assert "alice" not in compiled.where and "100" not in compiled.where


def test_var_position_is_a_parameter_counted_from_zero() -> None:
    assert compile_query("var.0:x", now_us=NOW).params == {"p0": 1, "p1": "x"}
    assert compile_query("VAR.7:x", now_us=NOW).params == {"p0": 8, "p1": "x"}


@pytest.mark.parametrize("query", ["var.x:1", "var.-1:1", "var.1000:1", "var.:1", "var.²:1"])
def test_bad_var_positions_are_syntax_errors(query: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        compile_query(query, now_us=NOW)
    assert "var.N" in info.value.message


def test_pattern_variables_filter_in_the_engine(store: EventStore) -> None:
    """var.N and var against real rows: exact, wildcard, numeric, any position, negation, tenants."""
    from logloupe.model import LogEvent
    from logloupe.store import search as ops

    now = ops.now_us()
    rows = [
        ("user alice logged in from 10.0.0.1", ["alice", "10.0.0.1"]),
        ("user bob logged in from 10.0.0.2", ["bob", "10.0.0.2"]),
        ("took 250 ms for alice", ["250", "alice"]),
        ("took 40 ms for carol", ["40", "carol"]),
        ("no variables", []),
    ]
    events = [
        LogEvent(tenant, now - i * 1000, now, i + (100 if tenant == "t2" else 0), message, pattern_vars=variables)
        for tenant in ("t1", "t2")
        for i, (message, variables) in enumerate(rows)
    ]
    store.insert(events)

    def found(q: str) -> list[str]:
        return sorted(e.message for e in ops.search(store, ops.Scope("t1", q), limit=100).events)

    assert found("var.0:alice") == ["user alice logged in from 10.0.0.1"]
    assert found("var:alice") == ["took 250 ms for alice", "user alice logged in from 10.0.0.1"]
    assert found('var.1:"10.0.0.2"') == ["user bob logged in from 10.0.0.2"]
    assert (
        found("var.1:10.0.0.*")
        == found("var:10.0.0.*")
        == [
            "user alice logged in from 10.0.0.1",
            "user bob logged in from 10.0.0.2",
        ]
    )
    assert found("var.0:>100") == ["took 250 ms for alice"]
    assert found("var:[30 TO 60]") == ["took 40 ms for carol"]
    assert found("var.0:alice OR var.1:carol") == ["took 40 ms for carol", "user alice logged in from 10.0.0.1"]
    assert found("var:alice -var.0:alice") == ["took 250 ms for alice"]
    assert found("var.5:*") == [] and len(found("var:*")) == 4
    assert found("var.2:alice") == []
    assert ops.count(store, ops.Scope("t2", "var.0:alice")) == 1  # each tenant sees its own rows only
