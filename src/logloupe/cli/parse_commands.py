"""``logloupe patterns``: mine log templates from a file with the default miner settings."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import click
import orjson

from logloupe.model import format_pattern_id, iso_micros
from logloupe.parse.line import parse_line
from logloupe.parse.multiline import MultilineAssembler
from logloupe.parse.patterns import PatternMiner


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")


def _raw_lines(stream: BinaryIO) -> Iterator[str]:
    for raw in stream:
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        yield raw.decode("utf-8", "replace")


def _per_line(path: str, out: Any) -> None:
    """Two passes: learn every line, then label each with its pattern's final template, so early
    lines are not stuck with the template they had when they arrived."""
    miner = PatternMiner()
    if path == "-":
        lines = list(_raw_lines(sys.stdin.buffer))
        for line in lines:
            miner.add(line)
        second: Iterator[str] = iter(lines)
    else:
        with open(path, "rb") as f:
            for line in _raw_lines(f):
                miner.add(line)
        f2 = open(path, "rb")  # noqa: SIM115 - closed below
        second = _raw_lines(f2)
    write = out.write
    try:
        for line in second:
            m = miner.match(line) or miner.add(line)
            write(orjson.dumps({"pattern_id": format_pattern_id(m.pattern_id), "pattern": m.template}))
            write(b"\n")
    finally:
        if path != "-":
            f2.close()


def _ts(us: int) -> str:
    return iso_micros(us) if us else ""


@click.command("patterns")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--messages", is_flag=True, help="Each line is a bare message: no header or format detection.")
@click.option("--per-line", is_flag=True, help="One JSON object per input line: pattern_id and pattern.")
@click.option("--json", "as_json", is_flag=True, help="Print the pattern table as JSON.")
@click.option("--limit", type=int, default=0, help="Show only the N most frequent patterns (0: all).")
def patterns_command(file: str, messages: bool, per_line: bool, as_json: bool, limit: int) -> None:
    """Mine the log templates (patterns) of FILE ("-" for stdin) with default settings."""
    out = sys.stdout.buffer
    if per_line:
        _per_line(file, out)
        out.flush()
        return
    miner = PatternMiner()
    now_us = time.time_ns() // 1000
    stream = _open(file)
    try:
        if messages:
            for line in _raw_lines(stream):
                miner.add(line)
        else:
            assembler = MultilineAssembler()
            for raw in stream:
                parsed = parse_line(raw.rstrip(b"\r\n"), now_us=now_us)
                for rec in assembler.feed(parsed, now_us=now_us):
                    miner.add(rec.message, ts_us=rec.ts_us or 0)
            for rec in assembler.flush():
                miner.add(rec.message, ts_us=rec.ts_us or 0)
    finally:
        if file != "-":
            stream.close()
    pats = miner.patterns()
    if limit > 0:
        pats = pats[:limit]
    if as_json:
        rows = [
            {
                "pattern_id": format_pattern_id(p.pattern_id),
                "pattern": p.template,
                "count": p.count,
                "first_seen": _ts(p.first_seen_us),
                "last_seen": _ts(p.last_seen_us),
                "example": p.samples[0] if p.samples else "",
            }
            for p in pats
        ]
        out.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
        out.write(b"\n")
        out.flush()
        return
    click.echo(f"{'COUNT':>8}  {'FIRST SEEN':<27} {'LAST SEEN':<27} {'PATTERN ID':<16}  PATTERN / EXAMPLE")
    for p in pats:
        click.echo(
            f"{p.count:>8}  {_ts(p.first_seen_us):<27} {_ts(p.last_seen_us):<27} "
            f"{format_pattern_id(p.pattern_id):<16}  {p.template}"
        )
        if p.samples:
            lines = p.samples[0].splitlines() or [""]
            more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
            click.echo(f"{'':>8}  {'':<27} {'':<27} {'':<16}  e.g. {lines[0][:200]}{more}")
    click.echo(f"{len(pats)} patterns", err=True)


commands: list[click.Command] = [patterns_command]
