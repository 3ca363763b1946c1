"""Property tests: any Unicode message round-trips exactly; no generated query yields invalid SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logloupe.errors import QuerySyntaxError
from logloupe.model import LogEvent
from logloupe.store import search as ops
from logloupe.store.events import EventStore
from logloupe.store.query import compile_query


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    s = EventStore(Path(tmp_path_factory.mktemp("prop")))
    yield s
    s.close()


_counter = iter(range(1, 10**9))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.text(max_size=300))
def test_any_unicode_message_round_trips(shared_store: EventStore, message: str) -> None:
    n = next(_counter)
    now = ops.now_us()
    tenant = f"prop{n}"
    shared_store.insert([LogEvent(tenant, now, now, n, message, attributes={"k": message})])
    events = ops.search(shared_store, ops.Scope(tenant, ""), limit=5).events
    assert len(events) == 1
    assert events[0].message == message
    assert events[0].attributes == {"k": message}


_word = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_field = st.sampled_from(["service", "host", "level", "attr.user", "message", "ts", "pattern_id", "x.y", "id"])
_atom = st.one_of(
    _word,
    _word.map(lambda w: f'"{w}"'),
    st.tuples(_field, _word).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(_field, st.sampled_from([">", ">=", "<", "<="]), _word).map(lambda t: f"{t[0]}:{t[1]}{t[2]}"),
    st.tuples(_field, _word, _word).map(lambda t: f"{t[0]}:[{t[1]} TO {t[2]}]"),
    _word.map(lambda w: f"/{w}/"),
)
_query = st.recursive(
    _atom,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" AND ", " OR ", " "]), inner).map("".join),
        inner.map(lambda q: f"NOT {q}"),
        inner.map(lambda q: f"-{q}"),
        inner.map(lambda q: f"({q})"),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.one_of(_query, st.text(max_size=40)))
def test_compiled_sql_always_runs(shared_store: EventStore, q: str) -> None:
    try:
        compile_query(q, now_us=ops.now_us())
    except QuerySyntaxError:
        return  # a clear 400 is a fine answer; anything else is not
    # The store may still refuse a regex RE2 cannot compile (a 400); it must never be a SQL parse error.
    try:
        ops.count(shared_store, ops.Scope("nobody", q))
    except Exception as exc:
        text = str(exc)
        assert "Syntax error" not in text and "SYNTAX_ERROR" not in text, (q, text)
        assert getattr(exc, "status", 500) == 400, (q, text)
