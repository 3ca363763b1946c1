"""Kubernetes CRI and Docker json lines: the program's own text inside is read as a line of its own,
stack traces written through the runtime join, and lines the runtime cut are completed."""

from __future__ import annotations

import orjson

from logloupe.model import Level
from logloupe.parse.formats import container_glue, container_line
from logloupe.parse.line import parse_line
from logloupe.parse.multiline import MultilineAssembler
from logloupe.parse.records import Limits, text_fields

NOW = 1_795_262_400_000_000
TS = "2026-01-02T03:04:05.123456789Z"


def cri(stream: str, text: str, tag: str = "F") -> str:
    return f"{TS} {stream} {tag} {text}"


def docker(stream: str, log: str) -> str:
    return orjson.dumps({"log": log, "stream": stream, "time": "2026-01-02T03:04:05.1Z"}).decode()


JAVA = [
    "2026-01-02 03:04:05,123 ERROR [main] com.shop.Checkout: payment failed",
    "java.lang.IllegalStateException: card declined",
    "\tat com.shop.Checkout.pay(Checkout.java:42)",
    "Caused by: java.io.IOException: reset",
    "\t... 3 more",
]
PYTHON = [
    "Traceback (most recent call last):",
    '  File "app.py", line 3, in <module>',
    "    main()",
    "ValueError: bad input",
]


def messages(lines: list[str]) -> list[str]:
    asm = MultilineAssembler()
    out = []
    for line in lines:
        out += asm.feed(parse_line(line, now_us=NOW), now_us=NOW)
    out += asm.flush()
    return [r.message for r in out]


def test_the_inner_header_gives_level_logger_and_message() -> None:
    p = parse_line(cri("stderr", JAVA[0]), now_us=NOW)
    assert (p.format, p.inner, p.level, p.service, p.message) == (
        "cri",
        "timestamped",
        Level.ERROR,
        "com.shop.Checkout",
        "payment failed",
    )
    assert p.attributes["stream"] == "stderr" and p.attributes["thread"] == "main"
    assert not p.headerless
    j = parse_line(docker("stdout", '{"level":"warn","msg":"slow","user":"u1"}\n'), now_us=NOW)
    assert (j.format, j.inner, j.level, j.message, j.attributes["user"]) == (
        "docker_json",
        "json",
        Level.WARN,
        "slow",
        "u1",
    )
    frame = parse_line(cri("stderr", JAVA[2]), now_us=NOW)
    assert frame.headerless and frame.ts_us is not None and frame.inner == "plain"


def test_java_and_python_traces_through_cri_and_docker_become_one_record() -> None:
    assert messages([cri("stderr", t) for t in JAVA]) == ["payment failed\n" + "\n".join(JAVA[1:])]
    assert messages([docker("stderr", t + "\n") for t in PYTHON]) == ["\n".join(PYTHON)]
    # a line of the other stream does not continue it
    got = messages([cri("stderr", JAVA[0]), cri("stdout", JAVA[2]), cri("stderr", JAVA[1])])
    assert got == ["payment failed", JAVA[2], JAVA[1]]


def test_cut_lines_are_completed_without_a_newline() -> None:
    lines = [cri("stdout", "a very ", "P"), cri("stdout", "long ", "P"), cri("stdout", "line"), cri("stdout", "next")]
    assert messages(lines) == ["a very long line", "next"]
    assert messages([docker("stdout", "half "), docker("stdout", "and half\n"), docker("stdout", "x\n")]) == [
        "half and half",
        "x",
    ]
    # the cut part is followed by a trace line of its own stream, which still joins
    cut = [
        cri("stderr", "java.lang.IllegalStateException: card ", "P"),
        cri("stderr", "declined"),
        cri("stderr", JAVA[2]),
    ]
    assert messages([cri("stderr", JAVA[0]), *cut]) == ["payment failed\n" + "\n".join(JAVA[1:3])]


def test_text_fields_joins_container_lines_and_drops_the_partial_mark() -> None:
    raw = [cri("stderr", t).encode() for t in JAVA] + [cri("stdout", "a ", "P").encode(), cri("stdout", "b").encode()]
    fields = text_fields(raw, Limits(), NOW)
    assert [f.message for f in fields] == ["payment failed\n" + "\n".join(JAVA[1:]), "a b"]
    assert fields[0].level == Level.ERROR and fields[0].attributes["lines"] == "5"
    assert "partial" not in fields[1].attributes


def test_container_line_and_glue() -> None:
    assert container_line(cri("stdout", "x", "P")) == ("cri", "stdout", "x", True)
    assert container_line(docker("stderr", "y\n")) == ("docker_json", "stderr", "y", False)
    assert container_line("2026-01-02 03:04:05 INFO plain") is None
    assert container_line('{"log": 3}') is None
    assert container_glue(cri("stdout", "a ", "P"), "b", False) == cri("stdout", "a b")
    whole = orjson.loads(container_glue(docker("stdout", "a "), "b", False))
    assert whole["log"] == "a b\n" and whole["stream"] == "stdout"
