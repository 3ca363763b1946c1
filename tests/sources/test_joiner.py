"""The multiline joiner: pure, table-driven, and a property (offsets tile the input, no text lost)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from logloupe.ingest.joiner import Joined, Line, MultilineJoiner


def join(texts: list[str], **kw: object) -> list[str]:
    j = MultilineJoiner(**kw)  # type: ignore[arg-type]
    out: list[Joined] = []
    pos = 0
    for t in texts:
        end = pos + len(t.encode()) + 1
        out += j.push(Line(t, pos, end))
        pos = end
    out += j.flush()
    return [e.text for e in out]


def test_java_trace_with_cause() -> None:
    lines = [
        "2026-01-01 ERROR failed",
        "java.lang.IllegalStateException: boom",
        "\tat a.B.c(B.java:1)",
        "Caused by: java.io.IOException: disk",
        "\t... 3 more",
        "2026-01-01 INFO next",
    ]
    assert join(lines) == ["\n".join(lines[:5]), lines[5]]


def test_python_traceback_ends_at_the_exception_line() -> None:
    lines = [
        "ERROR job",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "KeyError: 'a'",
        "INFO after",
    ]
    assert join(lines) == ["\n".join(lines[:4]), "INFO after"]


def test_chained_python_tracebacks_stay_together() -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "a.py", line 1',
        "ValueError: one",
        "During handling of the above exception, another exception occurred:",
        "Traceback (most recent call last):",
        '  File "b.py", line 2',
        "KeyError: two",
        "next event",
    ]
    assert join(lines) == ["\n".join(lines[:7]), "next event"]


def test_plain_lines_and_disabled_joiner() -> None:
    assert join(["a", "b", "c"]) == ["a", "b", "c"]
    assert join(["a", "  b"], enabled=False) == ["a", "  b"]
    assert join(["  orphan continuation", "x"]) == ["  orphan continuation", "x"]


def test_bounded_lines_per_event() -> None:
    out = join(["start", *(f"  {i}" for i in range(10))], max_lines=4)
    assert len(out) == 3 and out[0].count("\n") == 3


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab \tT:")), min_size=1, max_size=8), max_size=40))
def test_events_tile_the_lines(texts: list[str]) -> None:
    j = MultilineJoiner(max_lines=3)
    lines, pos = [], 0
    for t in texts:
        lines.append(Line(t, pos, pos + len(t) + 1))
        pos += len(t) + 1
    events = [e for ln in lines for e in j.push(ln)] + j.flush()
    assert "\n".join(e.text for e in events) == "\n".join(texts)
    assert [e.start for e in events][:1] == ([0] if texts else [])
    for a, b in itertools.pairwise(events):
        assert a.end == b.start
    assert (events[-1].end if events else 0) == pos


def test_a_start_pattern_replaces_the_trace_rules() -> None:
    import re

    lines = ["2026-01-01 one", "plain continuation", "  indented", "2026-01-02 two", "Caused by: x"]
    joined = join(lines, start=re.compile(r"^\d{4}-\d{2}-\d{2} "))
    assert joined == ["2026-01-01 one\nplain continuation\n  indented", "2026-01-02 two\nCaused by: x"]
    # Without it, an unindented plain line starts an event of its own.
    assert join(lines)[:2] == ["2026-01-01 one", "plain continuation\n  indented"]


def test_a_tail_source_compiles_its_start_pattern(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from logloupe.errors import InvalidInput
    from logloupe.ingest.checkpoints import FileCheckpoints
    from logloupe.ingest.sources import build_source

    spec = {"name": "app", "type": "tail", "paths": [str(tmp_path / "*.log")], "multiline_start": "^\\d{4}-"}
    checkpoints = FileCheckpoints(tmp_path / "cp.json")
    tailer = build_source(spec, sink=None, checkpoints=checkpoints)  # type: ignore[arg-type]
    assert tailer.cfg.multiline_start.pattern == "^\\d{4}-"  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="multiline_start"):
        build_source({**spec, "multiline_start": "(["}, sink=None, checkpoints=checkpoints)  # type: ignore[arg-type]


def test_container_lines_join_by_their_inner_text_and_cut_lines_are_completed() -> None:
    ts = "2026-01-02T03:04:05.1Z"
    lines = [
        f"{ts} stderr F 2026-01-02 03:04:05 ERROR [main] app.Job: failed",
        f"{ts} stderr F java.lang.IllegalStateException: boom",
        f"{ts} stderr F \tat a.B.c(B.java:1)",
        f"{ts} stdout P a very ",
        f"{ts} stdout P long ",
        f"{ts} stdout F line",
        '{"log":"Traceback (most recent call last):\\n","stream":"stderr","time":"2026-01-02T03:04:05Z"}',
        '{"log":"  File \\"x.py\\", line 1\\n","stream":"stderr","time":"2026-01-02T03:04:05Z"}',
        '{"log":"ValueError: ","stream":"stderr","time":"2026-01-02T03:04:05Z"}',
        '{"log":"bad\\n","stream":"stderr","time":"2026-01-02T03:04:05Z"}',
    ]
    assert join(lines) == [
        # the first line as the runtime wrote it (the server reads its header), then the program's text
        f"{lines[0]}\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)",
        f"{ts} stdout F a very long line",
        f'{lines[6]}\n  File "x.py", line 1\nValueError: bad',
    ]
    # offsets still tile the file, cut lines included
    j = MultilineJoiner()
    out: list[Joined] = []
    pos = 0
    for t in lines:
        out += j.push(Line(t, pos, pos + len(t) + 1))
        pos += len(t) + 1
    out += j.flush()
    assert [(e.start, e.end) for e in out] == [(0, out[1].start), (out[1].start, out[2].start), (out[2].start, pos)]
