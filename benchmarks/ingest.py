"""End-to-end HTTP ingest vs. the raw store insert rate, measured in the same run.

A real ``logloupe serve`` subprocess; several client threads post NDJSON batches of 1,000 events to
``POST /api/v1/logs`` until all are acknowledged, then we wait until every event is searchable.
The peer: ``EventStore.insert_batches`` with the same events as the pipeline stores them (parsed,
mined and classified; prepared Arrow batches of 20,000, the format the pipeline inserts) in this
process on its own data directory; ``insert_rows`` (JSON rows) is shown too. The load average is
printed before and after (the machine is shared), and the server's CPU time per event (with its
decoder processes), which the load moves less than the rates (but does move: cores shared with
other work run slower).

    python benchmarks/ingest.py                 # 200,000 events, 4 clients
    python benchmarks/ingest.py --events 50000 --clients 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from logloupe.parse.records import Limits, record_fields
from logloupe.pipeline.assemble import assemble
from logloupe.pipeline.enrich import Enricher
from logloupe.store.events import EventStore, event_row, record_batch

SERVICES = ["checkout", "auth", "search", "payments", "gateway"]
LEVELS = ["INFO"] * 8 + ["WARN", "ERROR"]


def make_records(n: int) -> list[dict[str, Any]]:
    base = time.time() - 3600
    return [
        {
            "timestamp": base + i / 100,
            "service": SERVICES[i % 5],
            "host": f"node-{i % 7}",
            "level": LEVELS[i % 10],
            "message": f"request {i} for user {i * 7919 % 100000} took {i % 900} ms status={200 + i % 5}",
            "meta": {"trace": f"{i:016x}", "region": "eu-west-1"},
        }
        for i in range(n)
    ]


def raw_insert_rates(records: list[dict[str, Any]]) -> tuple[float, float]:
    """The store alone, batches of 20,000 prepared events (parsed, mined and classified as the
    pipeline stores them): (Arrow record batches, JSONEachRow rows).

    Arrow (``EventStore.insert_batches``) is the path the pipeline uses and the peer of the ratio;
    JSON rows (``EventStore.insert_rows``) was the pipeline's path before and is shown for reference.
    Each the better of two runs on fresh stores: the peer at its best (the first insert in a
    process once ran at a fifth of the usual rate).
    """
    limits = Limits()
    events = assemble([record_fields(r, limits) for r in records], tenant="default", now_us=time.time_ns() // 1000)
    # The rows the pipeline inserts: with the miner's pattern ids and variables and a class (the store
    # keeps the variables as spans of the message, found at insert: part of the insert's work).
    Enricher().enrich(events)
    step = 20000
    batches = [record_batch(events[i : i + step], lambda tenant: 30) for i in range(0, len(events), step)]
    rows = [event_row(e, 30) for e in events]
    rates = []
    for insert in (
        lambda store, i: store.insert_batches([batches[i // step]]),
        lambda store, i: store.insert_rows(rows[i : i + step]),
    ):
        best = 0.0
        for _ in range(2):  # the better of two: a process's first insert pays the engine's warm-up
            with tempfile.TemporaryDirectory() as d, EventStore(Path(d)) as store:
                started = time.perf_counter()
                for i in range(0, len(events), step):
                    insert(store, i)
                best = max(best, len(events) / (time.perf_counter() - started))
        rates.append(best)
    return rates[0], rates[1]


def server_cpu_s(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of the server with its live children (the decoder processes), and
    of the server's own process alone (its Python threads share one GIL: the serial part)."""
    p = psutil.Process(pid)
    total = own = 0.0
    for proc in [p, *p.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
        if proc.pid == pid:
            own = t.user + t.system
    return total, own


def insert_seconds(metrics: str) -> tuple[float, float]:
    """(seconds, count) of the store inserts from the server's Prometheus text."""
    found = {"sum": 0.0, "count": 0.0}
    for line in metrics.splitlines():
        for kind in found:
            if line.startswith(f"logloupe_store_insert_seconds_{kind} "):
                found[kind] = float(line.split()[-1])
    return found["sum"], found["count"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--fsync", default="always", choices=["always", "interval", "never"])
    ap.add_argument(
        "--decode-processes", type=int, default=-1, help="LOGLOUPE_PIPELINE_DECODE_PROCESSES (default: the server's)"
    )
    args = ap.parse_args()

    records = make_records(args.events)
    bodies = [
        b"\n".join(orjson.dumps(r) for r in records[i : i + args.batch]) for i in range(0, len(records), args.batch)
    ]
    total_bytes = sum(len(b) for b in bodies)
    print(f"events: {args.events:,} in {len(bodies)} batches of {args.batch}; {total_bytes / 1e6:.1f} MB NDJSON")

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    raw_rate, raw_json_rate = raw_insert_rates(records)
    print(f"raw store insert, Arrow batches (EventStore.insert_batches, prepared events): {raw_rate:,.0f} events/s")
    print(f"raw store insert, JSON rows (EventStore.insert_rows, prepared rows): {raw_json_rate:,.0f} events/s")

    port = free_port()
    data = tempfile.mkdtemp(prefix="logloupe-bench-")
    env = {
        **os.environ,
        "LOGLOUPE_INGEST_RATE_BYTES_S": "0",
        "LOGLOUPE_BUFFER_FSYNC": args.fsync,
        **({"LOGLOUPE_PIPELINE_DECODE_PROCESSES": str(args.decode_processes)} if args.decode_processes >= 0 else {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "logloupe.cli", "serve", "--port", str(port), "--data-dir", data],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    peak_rss = peak_main = peak_children = peak_main_shared = 0
    sampling = True

    def sample() -> None:
        nonlocal peak_rss, peak_main, peak_children, peak_main_shared
        p = psutil.Process(proc.pid)
        while sampling:
            try:  # the server and its decoder processes, if any
                main = p.memory_info()
                children = sum(c.memory_info().rss for c in p.children(recursive=True))
                peak_rss = max(peak_rss, main.rss + children)
                if main.rss > peak_main:  # with the file-backed part (RssFile) at that moment
                    peak_main, peak_main_shared = main.rss, main.shared
                peak_children = max(peak_children, children)
            except psutil.Error:
                return
            time.sleep(0.1)

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()
        latencies: list[float] = []
        retries = 0
        lock = threading.Lock()
        queue = list(range(len(bodies)))

        def client() -> None:
            nonlocal retries
            with httpx.Client(base_url=url, timeout=120) as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        i = queue.pop()
                    while True:
                        t0 = time.perf_counter()
                        r = c.post("/api/v1/logs", content=bodies[i], headers={"content-type": "application/x-ndjson"})
                        if r.status_code == 429:
                            with lock:
                                retries += 1
                            time.sleep(float(r.headers.get("retry-after", "1")))
                            continue
                        r.raise_for_status()
                        with lock:
                            latencies.append(time.perf_counter() - t0)
                        break

        cpu_before = server_cpu_s(proc.pid)
        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        acked = time.perf_counter() - started
        while True:
            total = httpx.get(f"{url}/api/v1/search", params={"q": "", "limit": 0}, timeout=60).json()["total"]
            if total >= args.events:
                break
            time.sleep(0.2)  # each count takes the store's lock: poll gently (but within 0.2 s of the end)
        searchable = time.perf_counter() - started
        cpu_after = server_cpu_s(proc.pid)
        inserts = insert_seconds(httpx.get(f"{url}/metrics", timeout=30).text)
        cpu_used, cpu_own = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
        sampling = False
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)

    rate = args.events / searchable
    q = statistics.quantiles(latencies, n=100)
    print(f"clients: {args.clients}; fsync: {args.fsync}; 429 retries: {retries}")
    print(f"all acknowledged after {acked:.2f} s ({args.events / acked:,.0f} events/s)")
    mbps = total_bytes / searchable / 1e6
    print(f"end to end (all searchable): {searchable:.2f} s -> {rate:,.0f} events/s, {mbps:.1f} MB/s")
    print(f"ack latency per batch: p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms")
    print(
        f"server peak RSS (with decoder processes): {peak_rss / 2**20:.0f} MiB"
        f" (server {peak_main / 2**20:.0f} MiB, decoder processes {peak_children / 2**20:.0f} MiB, peaks apart;"
        f" of the server's, {peak_main_shared / 2**20:.0f} MiB file-backed: mapped library pages, mostly the"
        " store engine's; see docs/ingest.md)"
    )
    print(
        f"server CPU (with decoder processes, load-independent): {cpu_used:.1f} s ="
        f" {cpu_used / args.events * 1e6:.1f} µs per event; {cpu_used / searchable:.2f} cores busy on average"
    )
    print(
        f"server process alone (one GIL): {cpu_own / args.events * 1e6:.1f} µs per event,"
        f" {cpu_own / searchable:.2f} cores busy on average"
    )
    print(
        f"store inserts: {inserts[1]:.0f}, {inserts[0]:.2f} s in all ({inserts[0] / searchable:.0%} of the end-to-end"
        " time; the pipeline's other stages overlap them)"
    )
    print(f"ratio to raw insert rate (Arrow): {rate / raw_rate:.2f}; to JSON rows: {rate / raw_json_rate:.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
