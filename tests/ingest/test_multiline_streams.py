"""Multiline assembly per stream across requests, datagrams and restarts, through a real ``logloupe serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ingest.conftest import stop
from tests.ingest.test_parsing_sources import Served, mark, serve

FLUSH_MS = 3000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = serve(tmp_path_factory.mktemp("multiline") / "data", None, LOGLOUPE_MULTILINE_FLUSH_MS=str(FLUSH_MS))
    try:
        yield s
    finally:
        stop(s.proc)


def post_text(url: str, service: str, text: str, *, sync: bool) -> None:
    r = httpx.post(
        f"{url}/api/v1/logs",
        params={"service": service, "sync": "true" if sync else "false"},
        content=text,
        headers={"content-type": "text/plain"},
        timeout=60,
    )
    assert r.status_code == 200, r.text


PART1 = (
    "2026-03-01 10:00:00 INFO [main] app.Worker: {m} started\n"
    "2026-03-01 10:00:01 ERROR [main] app.Worker: {m} job failed\n"
    "java.lang.IllegalStateException: boom\n"
    "\tat app.Worker.run(Worker.java:10)\n"
)
PART2 = (
    "\tat java.lang.Thread.run(Thread.java:829)\n"
    "Caused by: java.io.IOException: disk full\n"
    "\t... 3 more\n"
    "2026-03-01 10:00:02 INFO [main] app.Worker: {m} next job\n"
)


def test_stack_trace_split_across_two_requests_is_one_event(server: Served) -> None:
    m, svc = mark(), f"worker-{mark()}"
    post_text(server.url, svc, PART1.format(m=m), sync=False)
    post_text(server.url, svc, PART2.format(m=m), sync=True)
    events = server.events(f"service:{svc}", 3)
    assert [e["message"].split("\n")[0].split(": ", 1)[-1] for e in events] == [
        f"{m} started",
        f"{m} job failed",
        f"{m} next job",
    ]
    trace = events[1]["message"].split("\n")
    assert trace[1:] == [
        "java.lang.IllegalStateException: boom",
        "\tat app.Worker.run(Worker.java:10)",
        "\tat java.lang.Thread.run(Thread.java:829)",
        "Caused by: java.io.IOException: disk full",
        "\t... 3 more",
    ]
    assert events[1]["level"] == "ERROR"
    assert events[1]["attributes"]["lines"] == "6"
    assert events[1]["ts"] == "2026-03-01T10:00:01.000000Z"


def test_after_the_flush_timeout_the_next_request_starts_a_new_event(server: Served) -> None:
    m, svc = mark(), f"worker-{mark()}"
    post_text(server.url, svc, PART1.format(m=m), sync=True)  # answered once the held record is flushed
    r = httpx.get(f"{server.url}/api/v1/search", params={"q": f"service:{svc}", "from": "2020-01-01T00:00:00Z"})
    events = sorted(r.json()["events"], key=lambda e: e["ts"])  # searchable at once: no polling
    assert len(events) == 2
    assert events[1]["message"].endswith("\tat app.Worker.run(Worker.java:10)")
    post_text(server.url, svc, PART2.format(m=m), sync=True)
    events = server.events(f"service:{svc}", 4)
    messages = [e["message"] for e in events]
    assert messages[1].count("\n") == 2  # the first part alone
    # the rest is an event of its own (at its arrival time: it has none written)
    (rest,) = [msg for msg in messages if msg.startswith("\tat java.lang.Thread.run")]
    assert rest.count("\n") == 2


def test_syslog_datagrams_of_one_sender_join(server: Served) -> None:
    m = mark()
    frames = [
        f"<11>Mar  1 10:00:00 box1 billing{m}[7]: {m} charge failed",
        f"<11>Mar  1 10:00:00 box1 billing{m}[7]: java.lang.IllegalStateException: {m}",
        f"<11>Mar  1 10:00:00 box1 billing{m}[7]: \tat app.Billing.charge(Billing.java:42)",
        f"<14>Mar  1 10:00:00 box2 billing{m}[8]: {m} other host",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for frame in frames:
            s.sendto(frame.encode(), ("127.0.0.1", server.udp_port))
            time.sleep(0.15)  # separate datagrams, separate buffer entries
    events = server.events(f"service:billing{m}", 2)
    by_host = {e["host"]: e for e in events}
    assert by_host["box1"]["message"].split("\n") == [
        f"{m} charge failed",
        f"java.lang.IllegalStateException: {m}",
        "\tat app.Billing.charge(Billing.java:42)",
    ]
    assert by_host["box2"]["message"] == f"{m} other host"


def test_restart_after_kill_with_an_open_record_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    m, svc = mark(), f"worker-{mark()}"
    first = serve(data, None, LOGLOUPE_MULTILINE_FLUSH_MS="60000")
    try:
        post_text(first.url, svc, PART1.format(m=m), sync=False)
        checkpoint = data / "wal" / "checkpoint.json"
        deadline = time.monotonic() + 30
        saved: dict[str, object] = {}
        while time.monotonic() < deadline:
            if checkpoint.exists():
                saved = json.loads(checkpoint.read_text())
                if saved.get("pending"):
                    break
            time.sleep(0.05)
        assert saved.get("pending"), saved  # the open record is in the checkpoint...
        os.kill(first.proc.pid, signal.SIGKILL)  # ...when the server dies without a word
        first.proc.wait()
    finally:
        if first.proc.poll() is None:
            stop(first.proc)
    second = serve(data, None, LOGLOUPE_MULTILINE_FLUSH_MS="60000")
    try:
        post_text(second.url, svc, PART2.format(m=m), sync=True)
        events = second.events(f"service:{svc}", 3)
        assert len(events) == 3
        assert events[1]["message"].count("\n") == 5  # both halves, once
        assert events[1]["attributes"]["lines"] == "6"
        ids = [e["id"] for e in events]
        assert len(set(ids)) == 3
    finally:
        stop(second.proc)
