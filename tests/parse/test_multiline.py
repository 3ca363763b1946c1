from __future__ import annotations

import pytest

from logloupe.model import FLAG_TRUNCATED
from logloupe.parse.line import ParsedLine, parse_line
from logloupe.parse.multiline import MultilineAssembler

NOW = 1_763_726_400_000_000


def assemble(lines: list[str], **kw: int) -> list[ParsedLine]:
    asm = MultilineAssembler(**kw)
    out: list[ParsedLine] = []
    for i, line in enumerate(lines):
        out += asm.feed(parse_line(line, now_us=NOW), now_us=NOW + i)
    return out + asm.flush()


JAVA = [
    "2023-01-02 03:04:05,123 ERROR [main] com.acme.Service: request failed",
    "java.lang.IllegalStateException: boom",
    "\tat com.acme.Service.handle(Service.java:42)",
    "\tat com.acme.Main.main(Main.java:7)",
    "Caused by: java.io.IOException: disk full",
    "\tat java.io.FileOutputStream.write(FileOutputStream.java:326)",
    "\t... 12 more",
]
PYTHON = [
    "2023-01-02 03:04:05,123 - app - ERROR - handler crashed",
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 10, in <module>',
    "    main()",
    "",
    "During handling of the above exception, another exception occurred:",
    "",
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 3, in main',
    "ValueError: bad value",
]
GO = [
    "panic: runtime error: index out of range [5] with length 3",
    "",
    "goroutine 1 [running]:",
    "main.main()",
    "\t/tmp/sandbox/prog.go:8 +0x1d",
    "exit status 2",
]
NODE = [
    "2023-01-02T03:04:05.000Z ERROR unhandled rejection",
    "TypeError: Cannot read properties of undefined (reading 'x')",
    "    at Object.<anonymous> (/app/index.js:3:15)",
    "    at Module._compile (node:internal/modules/cjs/loader:1256:14)",
]
DOTNET = [
    "2023-01-02 03:04:05.123 ERROR Request failed",
    "System.InvalidOperationException: Sequence contains no elements",
    "   at System.Linq.ThrowHelper.ThrowNoElementsException()",
    " ---> System.ArgumentException: inner",
    "   --- End of inner exception stack trace ---",
    "   at Program.Main() in /src/Program.cs:line 12",
]


@pytest.mark.parametrize("trace", [JAVA, PYTHON, GO, NODE, DOTNET], ids=["java", "python", "go", "node", "dotnet"])
def test_stack_traces_become_one_record(trace: list[str]) -> None:
    after = "2023-01-02 03:04:06,000 INFO [main] com.acme.Service: next request"
    records = assemble([*trace, after])
    assert len(records) == 2
    lines = [x for x in trace if x.strip()]
    first = records[0]
    assert [x for x in first.message.split("\n") if x.strip()] == [
        parse_line(lines[0], now_us=NOW).message,
        *lines[1:],
    ]
    assert records[1].message == "next request"


def test_lines_without_a_trace_stay_apart() -> None:
    records = assemble(["plain one", "plain two", "", "plain three"])
    assert [r.message for r in records] == ["plain one", "plain two", "plain three"]


def test_flush_timeout_uses_the_clock_passed_in() -> None:
    asm = MultilineAssembler(timeout_us=1000)
    assert asm.feed(parse_line("2023-01-02 03:04:05 ERROR x: boom", now_us=NOW), now_us=NOW) == []
    assert asm.flush_expired(NOW + 999) == []
    assert asm.pending()
    assert [r.message for r in asm.flush_expired(NOW + 1000)] == ["boom"]
    assert not asm.pending()


def test_records_are_capped() -> None:
    lines = ["ERROR head", *["\tat frame" for _ in range(20)]]
    records = assemble(lines, max_lines=5)
    assert len(records) == 1
    assert records[0].message.count("\n") == 4
    assert FLAG_TRUNCATED in records[0].flags
