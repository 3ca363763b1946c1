"""The one writer that owns inserts into the event store.

Producers ``submit`` events and get a future that resolves once the events are in the store
(so an HTTP 2xx can wait for durability). The writer gathers submissions into large batches —
up to ``batch_rows`` or ``flush_ms`` — because the columnar engine wants few big inserts.
The queue is bounded in events: when it is full, ``submit`` fails with TooManyRequests and the
caller answers 429 (backpressure), never unbounded memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import pyarrow as pa

from logloupe.errors import TooManyRequests, Unavailable
from logloupe.metrics import INGESTED, STORE_INSERT_SECONDS
from logloupe.model import Level, LogEvent
from logloupe.store.events import EventStore, record_batch

log = logging.getLogger(__name__)

# Called with each batch after it is stored (pattern stats, anomaly detectors, live tail, metrics).
AfterStore = Callable[[Sequence[LogEvent]], None]


def count_ingested(events: Sequence[LogEvent]) -> None:
    """``logloupe_ingested_events_total`` by tenant, source and level, one increment per group."""
    groups: dict[tuple[str, str, int], int] = {}
    for e in events:
        key = (e.tenant, e.source, e.level)  # a level's name is looked up once per group
        groups[key] = groups.get(key, 0) + 1
    for (tenant, source, level), n in groups.items():
        INGESTED.labels(tenant, source, Level(level).name).inc(n)


class StoreWriter:
    def __init__(
        self,
        store: EventStore,
        *,
        batch_rows: int = 20000,
        flush_ms: int = 200,
        queue_events: int = 500000,
        retention_days: Callable[[str], int] = lambda tenant: 30,
    ) -> None:
        self.store = store
        self.batch_rows = batch_rows
        self.flush_s = flush_ms / 1000
        self.queue_events = queue_events
        self.retention_days = retention_days
        self.after_store: list[AfterStore] = []
        # Run on each submission before it is encoded (the pattern miner and classifier).
        self.stage: Callable[[list[LogEvent]], list[LogEvent]] | None = None
        self._pending: deque[tuple[list[LogEvent], pa.RecordBatch, Future[int]]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self.stored_total = 0
        self.failed_batches = 0
        self._thread = threading.Thread(target=self._run, name="logloupe-store-writer", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queued

    def submit(self, events: list[LogEvent], *, wait_s: float = 0.0) -> Future[int]:
        """Queue events; the future resolves to the count stored, or to the store's error."""
        future: Future[int] = Future()
        if not events:
            future.set_result(0)
            return future
        if self.stage is not None:
            events = self.stage(events)
        # Built here, in the producer's thread, so it overlaps the writer's insert (chDB releases the GIL).
        batch = record_batch(events, self.retention_days)
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._queued + len(events) > self.queue_events and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TooManyRequests("the ingest queue is full; retry shortly", retry_after_s=1)
                self._cond.wait(remaining)
            if self._closed:
                raise Unavailable("the store writer is shut down")
            self._pending.append((events, batch, future))
            self._queued += len(events)
            self._cond.notify_all()
        return future

    def write(self, events: list[LogEvent], timeout_s: float = 60.0) -> int:
        """Submit and wait until stored."""
        return self.submit(events, wait_s=timeout_s).result(timeout=timeout_s)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until everything submitted so far is stored."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._cond.wait(0.05)

    def _take_batch(self) -> list[tuple[list[LogEvent], pa.RecordBatch, Future[int]]]:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait(0.5)
            if not self._pending:
                return []
            deadline = time.monotonic() + self.flush_s
            while self._queued < self.batch_rows and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[tuple[list[LogEvent], pa.RecordBatch, Future[int]]] = []
            rows = 0
            while self._pending and (rows < self.batch_rows or not batch):
                item = self._pending.popleft()
                batch.append(item)
                rows += len(item[0])
            self._busy = True
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._closed:
                    return
                continue
            try:
                with STORE_INSERT_SECONDS.time():
                    n = self.store.insert_batches([b for _, b, _ in batch])
            except Exception as exc:
                self.failed_batches += 1
                log.exception("store insert failed")
                for _, _, fut in batch:
                    fut.set_exception(exc)
            else:
                self.stored_total += n
                stored = [e for events, _, _ in batch for e in events]
                count_ingested(stored)
                for hook in self.after_store:
                    try:
                        hook(stored)
                    except Exception:  # a hook must never lose stored events' acknowledgements
                        log.exception("after-store hook failed")
                for events, _, fut in batch:
                    fut.set_result(len(events))
            finally:
                with self._cond:
                    self._queued -= sum(len(events) for events, _, _ in batch)
                    self._busy = False
                    self._cond.notify_all()

    def close(self, timeout_s: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
