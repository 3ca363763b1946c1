"""kill -9 during continuous ingest: every acknowledged event is stored exactly once."""

from __future__ import annotations

import itertools
import random
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil
import pytest

from logloupe.store.events import EventStore
from tests.helpers import free_port, wait_http
from tests.ingest.conftest import start_server, stop

KILLS = 3
CLIENTS = 2
BATCH = 200


@pytest.mark.parametrize(
    ("wait_stored", "processes"),
    [
        ("false", "2"),  # the server's defaults: acknowledged once in the write-ahead buffer, decoder processes
        ("true", "0"),  # acknowledged once searchable, decoded in the server's thread
        ("false", "0"),
    ],
)
def test_sigkill_during_ingest_loses_and_duplicates_nothing_acknowledged(
    tmp_path: Path, wait_stored: str, processes: str
) -> None:
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    acked: set[str] = set()
    attempted: set[str] = set()
    lock = threading.Lock()
    counter = itertools.count()
    acked_per_round: list[int] = []

    def client(stop_flag: threading.Event) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            while not stop_flag.is_set():
                with lock:
                    ids = [f"crashid{next(counter):08d}" for _ in range(BATCH)]
                    attempted.update(ids)
                body = b"\n".join(orjson.dumps({"message": i, "service": "crash", "seq": i[7:]}) for i in ids)
                try:
                    r = c.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if r.status_code == 200 and r.json()["accepted"] == BATCH:
                    with lock:
                        acked.update(ids)

    rng = random.Random(7)
    for round_ in range(KILLS + 1):
        proc = start_server(
            data,
            port,
            LOGLOUPE_INGEST_RATE_BYTES_S="0",
            LOGLOUPE_INGEST_WAIT_STORED=wait_stored,
            LOGLOUPE_PIPELINE_DECODE_PROCESSES=processes,
        )
        wait_http(f"{url}/healthz")
        before = len(acked)
        stop_flag = threading.Event()
        threads = [threading.Thread(target=client, args=(stop_flag,)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) - before < 2 * BATCH and time.monotonic() < deadline:
            time.sleep(0.05)  # kill only once this round has acknowledged something
        time.sleep(rng.random() / 2)
        if round_ < KILLS:
            proc.kill()  # SIGKILL: no shutdown, no flush
            proc.wait()
        stop_flag.set()
        for t in threads:
            t.join()
        acked_per_round.append(len(acked) - before)
        if round_ == KILLS:
            stop(proc)  # a clean stop stores what is buffered
    assert all(n > 0 for n in acked_per_round), acked_per_round

    with EventStore(data) as store:
        rows = store.rows(
            "SELECT message, count() AS n FROM events WHERE tenant = 'default' AND service = 'crash' GROUP BY message"
        )
    counts = {r["message"]: int(r["n"]) for r in rows}
    missing = [i for i in acked if counts.get(i, 0) == 0]
    duplicated = {i: n for i, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    assert not duplicated, f"{len(duplicated)} events stored more than once, e.g. {list(duplicated.items())[:5]}"
    assert set(counts) <= attempted


def test_decoder_processes_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(tmp_path / "data", port, LOGLOUPE_PIPELINE_DECODE_PROCESSES="2")
    try:
        wait_http(f"{url}/healthz")
        r = httpx.post(f"{url}/api/v1/logs?sync=true", json={"message": "wakes the decoder processes"}, timeout=60)
        assert r.status_code == 200, r.text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("spawn_main" in " ".join(c.cmdline()) for c in children)
    finally:
        proc.kill()
        proc.wait()
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, [c.pid for c in alive]
