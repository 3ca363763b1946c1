"""Store benchmark: LogLoupe's ingest and query path against hand-written SQL on chDB, same run.

    python benchmarks/store.py [--events 5000000] [--repeat 20] [--data-dir DIR] [--json OUT]
                               [--block-cache-mb MB]

Generates N events over 7 days with a Loghub-like vocabulary (block ids, IPs, user names, numbers —
high-cardinality tokens) across 10 services and 50 hosts, each with the pattern id and variables
the pipeline's template miner gives it (``PatternMiner``, as the pipeline stores every event),
then reports:

- ingest events/s through LogLoupe's writer (LogEvent objects → Arrow batches in the producer's
  thread → one writer inserting) versus the raw engine rate (the same number of pre-encoded Arrow
  batches sent straight to chDB into a twin table), in four rounds alternating which side goes
  first: the ratio is our ingest overhead;
- bytes/event on disk after merges (data, marks and the text index) and compressed data alone;
- p50/p95 latency of six queries through LogLoupe's query path (``store/search.py``) and as
  hand-written SQL on the same table, the two sides' samples interleaved (the machine is shared:
  both sides see the same load). Both sides read through the same engine settings, the block
  cache (``--block-cache-mb``) included: the ratio is our query path's overhead.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from logloupe.model import Level, LogEvent, input_uid_base
from logloupe.parse.patterns import PatternMiner
from logloupe.pipeline.writer import StoreWriter
from logloupe.store import search as ops
from logloupe.store.events import (
    ARROW_SCHEMA,
    BLOCK_CACHE_MB,
    DEFAULT_FIELDS,
    INSERT_COLUMNS,
    EventStore,
    record_batch,
)

TENANT = "bench"
# What a search page reads: the fields GET /api/v1/search answers with by default.
PAGE = DEFAULT_FIELDS
SERVICES = [
    "hdfs-datanode",
    "hdfs-namenode",
    "sshd",
    "apache",
    "spark-executor",
    "zookeeper",
    "openstack-nova",
    "auth",
    "payments",
    "api-gateway",
]
BATCH = 10_000
# Ingest runs in this many rounds, alternating which side goes first (see ingest_both).
INGEST_ROUNDS = 4
NEEDLE_BLOCK = "blk_-7777777777777777"


def _templates(rng: random.Random) -> list[Callable[[], tuple[str, Level]]]:
    def ip() -> str:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def blk() -> str:
        return f"blk_{rng.choice(['', '-'])}{rng.getrandbits(62)}"

    users = [f"user{i}" for i in range(5000)]
    return [
        lambda: (f"Receiving block {blk()} src: /{ip()}:{rng.randint(30000, 60000)} dest: /{ip()}:50010", Level.INFO),
        lambda: (f"PacketResponder {rng.randint(0, 2)} for block {blk()} terminating", Level.INFO),
        lambda: (
            f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip()}:50010 is added to {blk()} size "
            f"{rng.randint(1, 67108864)}",
            Level.INFO,
        ),
        lambda: (
            f"Accepted password for {rng.choice(users)} from {ip()} port {rng.randint(1024, 65535)} ssh2",
            Level.INFO,
        ),
        lambda: (
            f"Failed password for invalid user {rng.choice(users)} from {ip()} port {rng.randint(1024, 65535)} ssh2",
            Level.WARN,
        ),
        lambda: (
            f"GET /api/v1/orders/{rng.randint(1, 10**7)} HTTP/1.1 200 {rng.randint(100, 90000)} "
            f"{rng.randint(1, 900)}ms",
            Level.INFO,
        ),
        lambda: (
            f"Connection refused: could not connect to server at {ip()}:5432 attempt {rng.randint(1, 5)}",
            Level.ERROR,
        ),
        lambda: (
            f"Executor task {rng.randint(1, 100000)}.0 in stage {rng.randint(1, 500)}.0 finished in "
            f"{rng.randint(5, 60000)} ms",
            Level.INFO,
        ),
        lambda: (
            f"Got user-level KeeperException when processing sessionid:0x{rng.getrandbits(48):x} type:create",
            Level.WARN,
        ),
        lambda: (
            f"Instance {rng.getrandbits(128):032x} spawned successfully in {rng.uniform(1, 60):.2f} seconds",
            Level.INFO,
        ),
        lambda: (
            f"payment declined for order ord_{rng.randint(10**5, 10**6)} amount={rng.uniform(1, 500):.2f}",
            Level.WARN,
        ),
        lambda: (f"java.net.SocketTimeoutException: Read timed out after {rng.randint(1000, 60000)} ms", Level.ERROR),
        lambda: (f"query executed in {rng.randint(1, 500)} ms rows={rng.randint(0, 10000)}", Level.DEBUG),
    ]


def generate(n: int, now_us: int, seed: int, uid_salt: int) -> list[list[LogEvent]]:
    """``n`` events in chunks of BATCH, timestamps spread over the last 7 days, in time order per chunk.

    Each chunk is one input to the pipeline (a request body, a file chunk): its events' uids share the
    input's and service's digest in their high bits and count up per service in the low bits
    (``model.input_uid``); ``uid_salt``
    names a different input for the same events (the raw side's twin table)."""
    return list(generate_iter(n, now_us, seed, uid_salt))


def generate_iter(n: int, now_us: int, seed: int, uid_salt: int) -> Iterator[list[LogEvent]]:
    rng = random.Random(seed)
    templates = _templates(rng)
    miner = PatternMiner()  # the same lines give the same ids and variables in every generator
    weights = [12, 12, 12, 8, 4, 12, 2, 10, 3, 5, 3, 2, 15]
    span = 7 * 86_400_000_000
    needle_at = n // 2
    for start in range(0, n, BATCH):
        chunk = []
        key = f"bench:{seed}:{uid_salt}:{start}"
        bases: dict[str, list[int]] = {}  # per service: uid high bits, next ordinal (as the pipeline counts)
        for i in range(start, min(n, start + BATCH)):
            make = rng.choices(templates, weights)[0]
            message, level = make()
            if i == needle_at:
                message = f"Receiving block {NEEDLE_BLOCK} src: /10.1.2.3:40000 dest: /10.1.2.4:50010"
            ts = now_us - span + (i * span) // n + rng.randint(0, 999)
            rng.getrandbits(63)  # the random uid this took before: the same events as earlier runs
            service = rng.choice(SERVICES)
            chunk.append(
                LogEvent(
                    TENANT,
                    ts,
                    ts,
                    0,
                    message,
                    service=service,
                    host=f"host-{rng.randint(1, 50):02d}",
                    level=level,
                    level_raw=level.name,
                    source="bench",
                    attributes={"region": rng.choice(["eu-west-1", "us-east-1", "ap-south-1"])},
                )
            )
        # What the pipeline's stage adds before storing: the pattern id and variables its miner finds.
        for event, (pid, variables, _) in zip(
            chunk, miner.add_many((e.message, e.tenant, e.service, e.ts_us) for e in chunk), strict=True
        ):
            event.pattern_id, event.pattern_vars = pid, list(variables)
        for event in chunk:  # as the pipeline names the events of one input (a request body of BATCH lines)
            counter = bases.setdefault(event.service, [input_uid_base(TENANT, key, event.service), 0])
            event.uid = counter[0] | counter[1]
            counter[1] += 1
        yield chunk


def ingest_logloupe(store: EventStore, chunks: list[list[LogEvent]]) -> float:
    writer = StoreWriter(store, batch_rows=BATCH * 2, flush_ms=50, queue_events=BATCH * 20)
    started = time.perf_counter()
    futures = [writer.submit(chunk, wait_s=600) for chunk in chunks]
    for f in futures:
        f.result()
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


def ingest_raw(store: EventStore, chunks: Iterable[list[LogEvent]]) -> float:
    """The engine alone: Arrow IPC bytes encoded beforehand, sent straight to chDB's twin table."""
    payloads = []
    for chunk in chunks:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, ARROW_SCHEMA) as w:
            w.write_batch(record_batch(chunk, lambda _t: 30))
        payloads.append(sink.getvalue().to_pybytes())
    conn = store._conn  # the engine itself, on purpose
    started = time.perf_counter()
    for data in payloads:
        with conn.send_insert(f"INSERT INTO events_raw ({INSERT_COLUMNS})", "ArrowStream") as ins:
            ins.append(data)
            ins.finish()
    return time.perf_counter() - started


def ingest_both(store: EventStore, ours: list[list[LogEvent]], raw: Iterator[list[LogEvent]]) -> tuple[float, float]:
    """Seconds for LogLoupe's path and for the raw engine, in alternating rounds.

    The rounds go raw-ours, ours-raw, raw-ours, ours-raw, so a change of load on this shared
    machine and the background merges of earlier rounds weigh on both sides alike.
    """
    store.execute("CREATE TABLE IF NOT EXISTS events_raw AS events")
    t_ours = t_raw = 0.0
    per_round = -(-len(ours) // INGEST_ROUNDS)
    for round_ in range(INGEST_ROUNDS):
        mine = ours[round_ * per_round : (round_ + 1) * per_round]
        theirs = list(itertools.islice(raw, len(mine)))
        if round_ % 2 == 0:
            t_raw += ingest_raw(store, theirs)
            t_ours += ingest_logloupe(store, mine)
        else:
            t_ours += ingest_logloupe(store, mine)
            t_raw += ingest_raw(store, theirs)
    store.execute("DROP TABLE events_raw SYNC")
    return t_ours, t_raw


def timed_pair(ours: Callable[[], object], raw: Callable[[], object], repeat: int) -> tuple[tuple[float, float], ...]:
    """p50/p95 (ms) of both sides, their samples interleaved so both see the same machine load."""
    ours()  # warm caches the same way for both sides
    raw()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((ours, samples[0]), (raw, samples[1])):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
    result = []
    for out in samples:
        out.sort()
        result.append((statistics.median(out), out[max(0, int(len(out) * 0.95) - 1)]))
    return tuple(result)


def queries(store: EventStore, now_us: int) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    day = now_us - 86_400_000_000
    week = now_us - 7 * 86_400_000_000
    base = {"t": TENANT}

    def sql(q: str, **params: object) -> Callable[[], object]:
        return lambda: store.rows(q, {**base, **params})

    def sql2(q1: str, q2: str, **params: object) -> Callable[[], object]:
        return lambda: (store.rows(q1, {**base, **params}), store.rows(q2, {**base, **params}))

    # The page GET /api/v1/search answers unless asked for more fields; the hand-written SQL reads
    # the same columns.
    cols = "toUnixTimestamp64Micro(ts) AS ts_us, uid, service, host, level, message, pattern_id, attributes"
    since = "ts >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')"
    return [
        (
            "two-token AND, newest 100 over 24 h",
            lambda: ops.search(
                store, ops.Scope(TENANT, "connection refused", from_us=day, now_us=now_us), limit=100, fields=PAGE
            ),
            sql2(
                f"SELECT count() FROM events WHERE tenant = {{t:String}} AND {since}"
                " AND hasToken(message, 'connection') AND hasToken(message, 'refused')",
                f"SELECT {cols} FROM events WHERE tenant = {{t:String}} AND {since}"
                " AND hasToken(message, 'connection') AND hasToken(message, 'refused')"
                " ORDER BY ts DESC LIMIT 100",
                since=day,
            ),
        ),
        (
            "needle: one rare block id, all time",
            lambda: ops.search(store, ops.Scope(TENANT, NEEDLE_BLOCK, now_us=now_us), limit=100, fields=PAGE),
            sql2(
                "SELECT count() FROM events WHERE tenant = {t:String}"
                " AND hasAllTokens(message, {tok:String}) AND positionCaseInsensitiveUTF8(message, {n:String}) > 0",
                f"SELECT {cols} FROM events WHERE tenant = {{t:String}}"
                " AND hasAllTokens(message, {tok:String}) AND positionCaseInsensitiveUTF8(message, {n:String}) > 0"
                " ORDER BY ts DESC LIMIT 100",
                tok=NEEDLE_BLOCK.replace("_", " ").replace("-", " "),
                n=NEEDLE_BLOCK,
            ),
        ),
        (
            'phrase "read timed out", newest 100 over 24 h',
            lambda: ops.search(
                store, ops.Scope(TENANT, '"read timed out"', from_us=day, now_us=now_us), limit=100, fields=PAGE
            ),
            sql2(
                f"SELECT count() FROM events WHERE tenant = {{t:String}} AND {since}"
                " AND hasAllTokens(message, 'read timed out') AND positionCaseInsensitiveUTF8(message, 'read timed out') > 0",
                f"SELECT {cols} FROM events WHERE tenant = {{t:String}} AND {since}"
                " AND hasAllTokens(message, 'read timed out') AND positionCaseInsensitiveUTF8(message, 'read timed out') > 0"
                " ORDER BY ts DESC LIMIT 100",
                since=day,
            ),
        ),
        (
            "7-day histogram by level, 1-minute buckets",
            lambda: ops.histogram(
                store, ops.Scope(TENANT, "", from_us=week, to_us=now_us, now_us=now_us), interval="1m"
            ),
            sql(
                f"SELECT toStartOfMinute(ts) AS b, level, count() FROM events WHERE tenant = {{t:String}} AND {since}"
                " GROUP BY b, level ORDER BY b",
                since=week,
            ),
        ),
        (
            "top-10 services by errors, 7 days",
            lambda: ops.facets(
                store, ops.Scope(TENANT, "level:ERROR", from_us=week, now_us=now_us), fields=["service"], size=10
            ),
            sql(
                f"SELECT service, count() AS c FROM events WHERE tenant = {{t:String}} AND {since} AND level = 'ERROR'"
                " GROUP BY service ORDER BY c DESC LIMIT 10",
                since=week,
            ),
        ),
        (
            "service + level, newest 50, 7 days",
            lambda: ops.search(
                store,
                ops.Scope(TENANT, "service:sshd AND level:WARN", from_us=week, now_us=now_us),
                limit=50,
                fields=PAGE,
            ),
            sql2(
                f"SELECT count() FROM events WHERE tenant = {{t:String}} AND {since} AND service = 'sshd'"
                " AND level = 'WARN'",
                f"SELECT {cols} FROM events WHERE tenant = {{t:String}} AND {since} AND service = 'sshd'"
                " AND level = 'WARN' ORDER BY ts DESC LIMIT 50",
                since=week,
            ),
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument(
        "--block-cache-mb",
        type=int,
        default=BLOCK_CACHE_MB,
        help="the engine's cache of decompressed blocks, MiB, for both sides (0: none)",
    )
    ap.add_argument(
        "--queries-only",
        action="store_true",
        help="time the queries again on the store an earlier run left in --data-dir, without ingesting",
    )
    args = ap.parse_args()
    if args.queries_only and args.data_dir is None:
        ap.error("--queries-only needs the --data-dir of an earlier run")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="logloupe-bench-"))
    now_us = time.time_ns() // 1000
    load_before = os.getloadavg()
    print(f"load average (1/5/15 min) {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    if not args.queries_only:
        print(f"generating {args.events:,} events ...", flush=True)
        ours = generate(args.events, now_us, seed=1, uid_salt=0)
    store = EventStore(data_dir, block_cache_mb=args.block_cache_mb)
    print(f"block cache {args.block_cache_mb} MiB (both sides)")
    try:
        rate_ours = rate_raw = None
        if args.queries_only:
            # The ranges end where the stored events do, as they ended at the run that stored them.
            newest = store.scalar(
                "SELECT toUnixTimestamp64Micro(max(ts)) FROM events WHERE tenant = {t:String}", {"t": TENANT}
            )
            now_us = int(newest) + 1
        else:
            t_ours, t_raw = ingest_both(store, ours, generate_iter(args.events, now_us, seed=1, uid_salt=1 << 62))
            del ours
            rate_raw, rate_ours = args.events / t_raw, args.events / t_ours
            print(
                f"ingest  LogLoupe {rate_ours:,.0f} ev/s   raw chDB {rate_raw:,.0f} ev/s"
                f"   ratio {rate_ours / rate_raw:.2f}"
            )
            store.optimize()
        usage = store.disk_usage()
        per_event = usage["bytes_on_disk"] / max(1, usage["rows"])
        compressed = usage["compressed"] / max(1, usage["rows"])
        print(
            f"disk    {per_event:.2f} bytes/event on disk (index and marks included), {compressed:.1f} compressed data"
        )
        results = []
        print(f"{'query':46} {'LogLoupe p50/p95 ms':>22} {'raw SQL p50/p95 ms':>22} {'ratio':>6}")
        for name, ours_fn, raw_fn in queries(store, now_us):
            (o50, o95), (r50, r95) = timed_pair(ours_fn, raw_fn, args.repeat)
            results.append({"query": name, "ours_p50": o50, "ours_p95": o95, "raw_p50": r50, "raw_p95": r95})
            print(f"{name:46} {o50:10.1f} / {o95:7.1f}   {r50:10.1f} / {r95:7.1f}   {o50 / r50:5.2f}")
        load_after = os.getloadavg()
        print(f"load average (1/5/15 min) {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "events": args.events,
                        "ingest_events_per_s": rate_ours,
                        "raw_insert_events_per_s": rate_raw,
                        "block_cache_mb": args.block_cache_mb,
                        "bytes_per_event_on_disk": per_event,
                        "compressed_bytes_per_event": compressed,
                        "queries": results,
                        "threads": threading.active_count(),
                        "load_average_before": load_before,
                        "load_average_after": load_after,
                    },
                    indent=2,
                )
            )
    finally:
        store.close()


if __name__ == "__main__":
    main()
