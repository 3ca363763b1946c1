"""kill -9 while stack traces arrive split across requests: every acknowledged line is stored exactly once,
inside one event, whether its record was open in the checkpoint or not when the server died."""

from __future__ import annotations

import itertools
import re
import threading
import time
from pathlib import Path

import httpx

from logloupe.store.events import EventStore
from tests.helpers import free_port, wait_http
from tests.ingest.conftest import start_server, stop

KILLS = 2
CLIENTS = 2
TOKEN = re.compile(r"tok\d{7}")


def test_sigkill_with_open_multiline_records_loses_and_duplicates_no_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    acked: set[str] = set()
    lock = threading.Lock()
    counter = itertools.count()

    def body(n: int) -> tuple[str, list[str]]:
        # a request ends inside a trace; the next one continues it and starts the next trace
        toks = [f"tok{n * 10 + k:07d}" for k in range(4)]
        text = (
            f"\tat app.Next.frame(Next.java:1) {toks[0]}\n"
            f"2026-03-01 10:00:00 ERROR [main] app.Worker: {toks[1]} failed\n"
            f"java.lang.IllegalStateException: {toks[2]}\n"
            f"\tat app.Worker.run(Worker.java:10) {toks[3]}\n"
        )
        return text, toks

    def client(number: int, stop_flag: threading.Event) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            while not stop_flag.is_set():
                with lock:
                    n = next(counter)
                text, toks = body(n)
                try:
                    r = c.post(
                        "/api/v1/logs",
                        params={"service": f"crashtext{number}"},
                        content=text,
                        headers={"content-type": "text/plain"},
                    )
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if r.status_code == 200 and r.json()["accepted"] == len(toks):
                    with lock:
                        acked.update(toks)

    # acknowledged = durable (not searchable): a client sends its next request while a trace is open
    env = {
        "LOGLOUPE_INGEST_RATE_BYTES_S": "0",
        "LOGLOUPE_MULTILINE_FLUSH_MS": "400",
        "LOGLOUPE_INGEST_WAIT_STORED": "false",
    }
    for round_ in range(KILLS + 1):
        proc = start_server(data, port, **env)
        wait_http(f"{url}/healthz")
        before = len(acked)
        stop_flag = threading.Event()
        threads = [threading.Thread(target=client, args=(i, stop_flag)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) - before < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_flag.set()
        if round_ < KILLS:
            proc.kill()  # mid-stream: open records are in the checkpoint or in unread entries
            proc.wait()
        for t in threads:
            t.join()
        if round_ == KILLS:
            time.sleep(1.0)  # the last open records are flushed after the timeout
            stop(proc)
    assert len(acked) >= 600

    with EventStore(data) as store:
        rows = store.rows("SELECT message FROM events WHERE tenant = 'default' AND startsWith(service, 'crashtext')")
    seen: dict[str, int] = {}
    for r in rows:
        for tok in TOKEN.findall(str(r["message"])):
            seen[tok] = seen.get(tok, 0) + 1
    missing = sorted(t for t in acked if t not in seen)
    doubled = {t: n for t, n in seen.items() if n > 1}
    assert not missing, f"{len(missing)} acknowledged lines lost, e.g. {missing[:5]}"
    assert not doubled, f"{len(doubled)} lines stored more than once, e.g. {list(doubled.items())[:5]}"
    joined = [str(r["message"]) for r in rows if str(r["message"]).count("\n") >= 3]
    assert joined, "traces split across requests were joined"
