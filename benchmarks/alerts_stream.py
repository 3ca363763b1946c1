"""Cost of streaming alert evaluation on the store writer's path.

Peer: the same StoreWriter inserting the same events with no after-store hook, in the same run.
Every event is classified ``incident`` (the worst case: every event matches a rule), spread over
50 patterns, so the dispatcher folds them into 50 notifications.

    PYTHONPATH=src .venv/bin/python benchmarks/alerts_stream.py [events]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from logloupe.alert.engine import AlertEngine
from logloupe.model import Level, LogEvent
from logloupe.pipeline.writer import StoreWriter
from logloupe.settings import Settings
from logloupe.store.events import EventStore
from logloupe.store.meta import MetaStore


def events(n: int, offset: int) -> list[LogEvent]:
    now = time.time_ns() // 1000
    return [
        LogEvent(
            tenant="default",
            ts_us=now + i,
            observed_ts_us=now + i,
            uid=offset + i,
            message=f"payment {i} failed: card declined",
            service="checkout",
            level=Level.ERROR,
            pattern_id=1 + i % 50,
            classification="incident",
        )
        for i in range(n)
    ]


def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = EventStore(Path(d) / "store")
        meta = MetaStore(Path(d) / "meta.db")
        meta.ensure_tenant("default")
        engine = AlertEngine(Settings(data_dir=Path(d)), store, meta)
        engine.start(scheduler=False)
        writer = StoreWriter(store, batch_rows=20000, flush_ms=50)
        try:
            # The hook on its own, first (before the engine's background merges compete for CPU):
            # every event matches and is folded into an already-firing alert.
            engine.on_stored(events(1000, 30_000_000))
            engine.dispatcher.drain()
            burst = events(n, 20_000_000)
            hook_alone = time.perf_counter()
            engine.on_stored(burst)
            engine.dispatcher.drain()
            hook_s = time.perf_counter() - hook_alone
            timings = {}
            for label, hooked in (
                ("writer alone (peer)", False),
                ("writer + alert hook", True),
            ):
                if hooked:
                    writer.after_store.append(engine.on_stored)
                batch = events(n, 10_000_000 if hooked else 0)
                started = time.perf_counter()
                for i in range(0, n, 20000):
                    writer.submit(batch[i : i + 20000], wait_s=60)
                writer.flush()
                timings[label] = time.perf_counter() - started
            engine.dispatcher.drain()
            for label, s in timings.items():
                print(f"{label:24s} {n / s:12,.0f} events/s  ({s:.2f} s)")
            print(f"{'hook alone':24s} {n / hook_s:12,.0f} events/s  ({hook_s:.2f} s)")
            print(f"ratio hooked/peer time: {timings['writer + alert hook'] / timings['writer alone (peer)']:.2f}")
            fired = engine.alerts.history("default", state="firing", limit=1000)
            print(f"notifications: {len(fired)} firing rows for {3 * n + 1000} matching events")
        finally:
            writer.close()
            engine.close()
            meta.close()
            store.close()


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
