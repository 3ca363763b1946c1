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
from typing import NamedTuple

from logloupe.errors import TooManyRequests, Unavailable
from logloupe.metrics import INGESTED, STORE_INSERT_SECONDS
from logloupe.model import EventColumns, Level, LogEvent
from logloupe.store.events import Duplicates, EventStore, ipc_message, ipc_stream, record_batch

log = logging.getLogger(__name__)

# Called with each batch after it is stored (pattern stats, anomaly detectors, live tail, metrics).
AfterStore = Callable[[Sequence[LogEvent]], None]


Counts = dict[tuple[str, str, str], int]


def ingest_counts(events: Sequence[LogEvent]) -> Counts:
    """Events per (tenant, source, level name): the labels of ``logloupe_ingested_events_total``."""
    groups: dict[tuple[str, str, int], int] = {}
    for e in events:
        key = (e.tenant, e.source, e.level)
        groups[key] = groups.get(key, 0) + 1
    return {(tenant, source, Level(level).name): n for (tenant, source, level), n in groups.items()}


def add_ingested(counts: Counts) -> None:
    for (tenant, source, level), n in counts.items():
        INGESTED.labels(tenant, source, level).inc(n)


def count_ingested(events: Sequence[LogEvent]) -> None:
    """``logloupe_ingested_events_total`` by tenant, source and level, one increment per group."""
    add_ingested(ingest_counts(events))


def stored_only(events: Sequence[LogEvent], duplicates: Duplicates) -> Sequence[LogEvent]:
    """The events an insert stored, in order: all of them, unless it left re-sent ones out (then the
    hooks and counts must not see them a second time either)."""
    if not duplicates.rows:
        return events
    if isinstance(events, EventColumns):
        return events.subset(duplicates.kept(zip(events.tenant, events.ts_us, events.uid, strict=True)))
    return [events[i] for i in duplicates.kept((e.tenant, e.ts_us, e.uid) for e in events)]


class _Submission(NamedTuple):
    events: list[LogEvent]
    arrow: bytes  # an Arrow IPC message (``events.ipc_message``)
    counts: Counts
    future: Future[int]


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
        self._pending: deque[_Submission] = deque()
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
        # Encoded and counted here, in the producer's thread, so it overlaps the writer's insert (chDB
        # releases the GIL): the writer thread is the ingest rate's critical path and only joins bytes.
        item = _Submission(
            events, ipc_message(record_batch(events, self.retention_days)), ingest_counts(events), future
        )
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._queued + len(events) > self.queue_events and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TooManyRequests("the ingest queue is full; retry shortly", retry_after_s=1)
                self._cond.wait(remaining)
            if self._closed:
                raise Unavailable("the store writer is shut down")
            self._pending.append(item)
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

    def _take_batch(self) -> list[_Submission]:
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
            batch: list[_Submission] = []
            rows = 0
            while self._pending and (rows < self.batch_rows or not batch):
                item = self._pending.popleft()
                batch.append(item)
                rows += len(item.events)
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
                    duplicates = self.store.insert_arrow(ipc_stream([item.arrow for item in batch]))
            except Exception as exc:
                self.failed_batches += 1
                log.exception("store insert failed")
                for item in batch:
                    item.future.set_exception(exc)
            else:
                stored = stored_only([e for item in batch for e in item.events], duplicates)
                self.stored_total += len(stored)
                if duplicates.rows:
                    add_ingested(ingest_counts(stored))
                else:
                    for item in batch:
                        add_ingested(item.counts)
                if self.after_store:
                    for hook in self.after_store:
                        try:
                            hook(stored)
                        except Exception:  # a hook must never lose stored events' acknowledgements
                            log.exception("after-store hook failed")
                kept = {id(e) for e in stored} if duplicates.rows else None
                for item in batch:
                    n = len(item.events) if kept is None else sum(id(e) in kept for e in item.events)
                    item.future.set_result(n)
            finally:
                with self._cond:
                    self._queued -= sum(len(item.events) for item in batch)
                    self._busy = False
                    self._cond.notify_all()

    def close(self, timeout_s: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
