"""Container lines through the server's cross-entry joiner (pipeline/streams.py): a stack trace written
through CRI or Docker joins even when split across requests, a cut line is completed by the next
line of its stream, and the open state survives a restart with the same ids."""

from __future__ import annotations

import orjson

from logloupe.model import Level, LogEvent
from logloupe.parse.records import Limits
from logloupe.pipeline.decode import decode_payload, encode_entry
from logloupe.pipeline.streams import StreamJoiner

T0 = 1_780_000_000_000_000
TS = "2026-06-01T10:00:01.000000001Z"


def cri(stream: str, text: str, tag: str = "F") -> bytes:
    return f"{TS} {stream} {tag} {text}".encode()


def entry(lines: list[bytes], observed: int) -> bytes:
    return encode_entry("t1", "http", [], lines, service="pod", host="node", observed_us=observed)


def run(entries: list[tuple[int, bytes]], joiner: StreamJoiner) -> list[LogEvent]:
    out: list[LogEvent] = []
    for pos, payload in entries:
        out.extend(decode_payload(pos, payload, Limits(), T0, None, joiner))
    return out


FIRST = [
    cri("stderr", "2026-06-01 10:00:01 ERROR [main] app.Worker: job failed"),
    cri("stderr", "java.lang.IllegalStateException: boom"),
]
SECOND = [
    cri("stderr", "\tat app.Worker.run(Worker.java:10)"),
    cri("stdout", "a cut ", "P"),
]
THIRD = [cri("stdout", "line"), cri("stderr", "2026-06-01 10:00:02 INFO [main] app.Worker: next")]


def test_a_cri_trace_and_a_cut_line_across_entries_and_a_restart() -> None:
    entries = [(10, entry(FIRST, T0)), (20, entry(SECOND, T0 + 100_000)), (30, entry(THIRD, T0 + 200_000))]
    whole = run(entries, StreamJoiner())
    assert [e.message for e in whole] == [
        "job failed\njava.lang.IllegalStateException: boom\n\tat app.Worker.run(Worker.java:10)",
        "a cut line",
        "next",
    ]
    assert whole[0].level == Level.ERROR and whole[0].attributes["stream"] == "stderr"
    assert whole[0].attributes["lines"] == "3" and "partial" not in whole[1].attributes

    first = StreamJoiner()
    assert run(entries[:2], first)[0].message == whole[0].message  # the stdout line ended the trace
    saved = orjson.loads(orjson.dumps(first.export()))  # the cut line is held, as the checkpoint keeps it
    assert saved and saved[0]["glue"] is True
    second = StreamJoiner()
    second.restore(saved)
    after = run(entries[2:], second)
    assert [(e.uid, e.message) for e in after] == [(e.uid, e.message) for e in whole[1:]]


def test_a_docker_python_traceback_joins() -> None:
    tb = ["Traceback (most recent call last):\n", '  File "x.py", line 1\n', "ValueError: ", "bad\n"]
    lines = [orjson.dumps({"log": t, "stream": "stderr", "time": "2026-06-01T10:00:01Z"}) for t in tb]
    joiner = StreamJoiner()
    events = run([(1, entry(lines, T0))], joiner)
    assert events == []  # inside a traceback: held for more
    events += run([(2, entry([cri("stderr", "2026-06-01 10:00:03 INFO x: after")], T0 + 100_000))], joiner)
    assert [e.message for e in events] == [
        'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad',
        "after",
    ]
