"""Events/s through the server's anomaly detection (``LiveDetection``), against the store writer
it is hooked on, in the same run.

    PYTHONPATH=src python benchmarks/anomaly_hook.py [--events 200000] [--batch 20000]

A synthetic stream: 20 services, 200 message shapes with variable numbers, INFO with a few WARN
and ERROR, one event per 10 ms, every event carrying a trace id (sessions of about 20 events per
service). Measured on the same events:

- ``observe``: ``OnlineDetector.observe`` alone, pattern ids and event ids precomputed (the floor);
- ``detect (fingerprint)``: ``LiveDetection`` over events without pattern ids (today's pipeline:
  every message is fingerprinted), in one thread;
- ``detect (pattern ids)``: the same over events that carry pattern ids (once the miner is wired);
- ``session drain``: feeding the queued session events to the tracker;
- ``writer alone`` (the peer): ``StoreWriter`` inserting the batches into a temporary chDB store;
- ``writer + detection``: the same with the hook registered and the detection thread running,
  timed until every event is both stored and seen by the detectors.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from logloupe.analyse.anomaly.live import LiveDetection, fingerprint
from logloupe.analyse.anomaly.online import OnlineDetector
from logloupe.model import Level, LogEvent, event_uid
from logloupe.pipeline.writer import StoreWriter
from logloupe.store.anomalies import AnomalyRecords
from logloupe.store.events import EventStore
from logloupe.store.meta import MetaStore

SHAPES = [f"op{i} finished for user {{}} in {{}}ms with status {{}}" for i in range(200)]


def make_events(n: int, seed: int = 7) -> list[LogEvent]:
    rng = random.Random(seed)
    t0 = (time.time_ns() // 1000) - 2 * 86400 * 1_000_000
    out = []
    for i in range(n):
        shape = rng.randrange(len(SHAPES))
        r = rng.random()
        level = Level.ERROR if r < 0.01 else Level.WARN if r < 0.05 else Level.INFO
        message = SHAPES[shape].format(rng.randrange(10_000), rng.randrange(1000), rng.choice((200, 201, 404)))
        ts = t0 + i * 10_000
        out.append(
            LogEvent(
                tenant="bench",
                ts_us=ts,
                observed_ts_us=ts,
                uid=event_uid("bench", i),
                message=message,
                service=f"svc{shape % 20}",
                level=level,
                trace_id=f"trace-{shape % 20}-{i // 400}",
            )
        )
    return out


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} events/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=20_000)
    args = ap.parse_args()
    events = make_events(args.events)
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    n = len(events)
    results: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as tmp:
        meta = MetaStore(Path(tmp) / "meta.db")

        ids = [e.id for e in events]
        pids = [fingerprint(e.message) for e in events]
        detector = OnlineDetector()
        started = time.perf_counter()
        for e, pid, eid in zip(events, pids, ids, strict=True):
            detector.observe(e.tenant, e.service, e.ts_us, e.level, pid, eid)
        results["observe"] = time.perf_counter() - started

        live = LiveDetection(AnomalyRecords(meta.engine))  # no thread: on_stored detects inline
        started = time.perf_counter()
        for batch in batches:
            live.on_stored(batch)
        results["detect (fingerprint)"] = time.perf_counter() - started
        started = time.perf_counter()
        live.tick(events[-1].ts_us)
        results["session drain"] = time.perf_counter() - started

        with_pids = [
            LogEvent(e.tenant, e.ts_us, e.observed_ts_us, e.uid, e.message, e.service, level=e.level, pattern_id=p)
            for e, p in zip(events, pids, strict=True)
        ]
        live = LiveDetection(AnomalyRecords(meta.engine), session_key="")
        started = time.perf_counter()
        for i in range(0, n, args.batch):
            live.on_stored(with_pids[i : i + args.batch])
        results["detect (pattern ids)"] = time.perf_counter() - started

        for name, hooked in (("writer alone (peer)", False), ("writer + detection", True)):
            store = EventStore(Path(tmp) / ("store-hooked" if hooked else "store"))
            writer = StoreWriter(store, batch_rows=args.batch, queue_events=max(1000, n))
            live = LiveDetection(AnomalyRecords(meta.engine))
            if hooked:
                writer.after_store.append(live.on_stored)
                live.start()
            started = time.perf_counter()
            futures = [writer.submit(batch, wait_s=600) for batch in batches]
            for future in futures:
                future.result(timeout=600)
            live.flush()
            results[name] = time.perf_counter() - started
            live.stop()
            writer.close()
            store.close()
        meta.close()

    print(f"{n:,} events, batches of {args.batch:,}")
    for name, seconds in results.items():
        print(f"  {name:<22} {rate(n, seconds)}")
    ratio = results["writer alone (peer)"] / results["writer + detection"]
    print(f"ingest throughput kept with detection on: {ratio:.0%}")


if __name__ == "__main__":
    main()
