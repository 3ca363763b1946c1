"""The ingest pipeline: write-ahead buffer → parse → insert in large batches → checkpoint.

``IngestPipeline.append`` is called by every ingest path (HTTP, bulk, OTLP, Loki, syslog, upload)
with items already split and validated; it returns once the entry is durable (see the fsync policy
in ``pipeline/buffer.py``). One worker thread reads entries back, turns them into events,
inserts them with a dedup token naming the buffer range (so a replay after a crash is a no-op),
runs the ``StoreWriter.after_store`` hooks and advances the checkpoint.

Tests and ``?sync=true`` wait for a position with ``wait_stored``; ``flush`` waits for everything.
Per-tenant ingest rates are token buckets in bytes (``RateLimiter``).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import orjson

from logloupe.errors import TooManyRequests
from logloupe.metrics import INGESTED, RATE_LIMITED, REJECTED, STORE_INSERT_SECONDS
from logloupe.model import LogEvent
from logloupe.parse.records import Fields, Limits, line_fields, record_fields
from logloupe.pipeline.assemble import assemble
from logloupe.pipeline.buffer import Entry, WriteAheadBuffer
from logloupe.settings import Settings
from logloupe.store.events import EventStore, event_row

log = logging.getLogger(__name__)

TAG_RECORD = b"J"  # a JSON object (one line)
TAG_LINE = b"L"  # a raw text line
# Called with the events of a batch before they are inserted (pattern mining, classification).
EventStage = Callable[[list[LogEvent]], list[LogEvent]]
AfterStore = Callable[[Sequence[LogEvent]], None]


def encode_entry(
    tenant: str,
    source: str,
    records: Sequence[bytes],
    lines: Sequence[bytes] = (),
    *,
    service: str = "",
    host: str = "",
    observed_us: int = 0,
) -> bytes:
    """One buffer entry: a JSON header line, then one tagged item per line."""
    header = {"tenant": tenant, "source": source, "service": service, "host": host, "observed_us": observed_us}
    parts = [orjson.dumps(header)]
    parts.extend(TAG_RECORD + r for r in records)
    parts.extend(TAG_LINE + ln for ln in lines)
    return b"\n".join(parts)


def decode_entry(entry: Entry, limits: Limits, now_us: int) -> list[LogEvent]:
    """An entry back to events; the position in the buffer makes the event ids stable across replays."""
    if not entry.payload:
        return []
    head, _, body = entry.payload.partition(b"\n")
    header = orjson.loads(head)
    fields: list[Fields] = []
    for part in body.split(b"\n") if body else ():
        tag, data = part[:1], part[1:]
        if tag == TAG_RECORD:
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                fields.append(line_fields(data, limits))
                continue
            fields.append(record_fields(value if isinstance(value, dict) else {"message": value}, limits))
        else:
            fields.append(line_fields(data, limits))
    return assemble(
        fields,
        tenant=header["tenant"],
        now_us=int(header.get("observed_us") or now_us),
        source=header.get("source", ""),
        service=header.get("service", ""),
        host=header.get("host", ""),
        position=f"wal:{entry.pos}",
    )


class RateLimiter:
    """Token buckets in bytes per tenant. A request may take the bucket into debt (so one body larger
    than the burst still passes when the bucket is full); the next ones wait until it is repaid."""

    def __init__(self, rate_bytes_s: float, burst_bytes: float) -> None:
        self.rate = rate_bytes_s
        self.burst = max(burst_bytes, 1.0)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, tenant: str, size: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(tenant, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens <= 0:
                self._buckets[tenant] = (tokens, now)
                RATE_LIMITED.labels(tenant, "rate_limit").inc()
                raise TooManyRequests(
                    f"tenant {tenant!r} is over its ingest rate of {int(self.rate)} bytes/s",
                    retry_after_s=max(1, math.ceil(-tokens / self.rate)),
                    rate_bytes_s=int(self.rate),
                    burst_bytes=int(self.burst),
                )
            self._buckets[tenant] = (tokens - size, now)


class IngestPipeline:
    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        *,
        retention_days: Callable[[str], int] = lambda tenant: 30,
        after_store: list[AfterStore] | None = None,
        quarantine: Callable[[str, str, list[tuple[str, bytes]]], None] | None = None,
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.retention_days = retention_days
        self.after_store = after_store if after_store is not None else []
        self.quarantine = quarantine
        self.extras = extras if extras is not None else {}
        self.limits = Limits(
            settings.max_message_bytes,
            settings.max_attributes,
            settings.max_attribute_value_bytes,
            settings.max_nesting_depth,
        )
        self.buffer = WriteAheadBuffer(
            settings.data_dir / "wal",
            max_bytes=settings.buffer_max_bytes,
            segment_bytes=settings.buffer_segment_bytes,
            fsync=settings.buffer_fsync,
            fsync_interval_ms=settings.buffer_fsync_interval_ms,
        )
        self.limiter = RateLimiter(settings.ingest_rate_bytes_s, settings.ingest_burst_bytes)
        self.batch_rows = settings.writer_batch_rows
        self.batch_bytes = settings.pipeline_batch_bytes
        self.flush_s = settings.writer_flush_ms / 1000
        self.stored_total = 0
        self.done = self.buffer.checkpoint.done
        self._waiters: list[tuple[int, Future[None]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._batches: queue.Queue[tuple[tuple[int, int], list[Entry], list[LogEvent]] | None] = queue.Queue(2)
        self._decoder = threading.Thread(target=self._decode_loop, name="logloupe-ingest-decode", daemon=True)
        self._inserter = threading.Thread(target=self._insert_loop, name="logloupe-ingest-insert", daemon=True)
        self._decoder.start()
        self._inserter.start()

    # -- producers ------------------------------------------------------------------------

    def append(self, tenant: str, payload: bytes, count: int, *, block_s: float = 0.0, limit: bool = True) -> int:
        """Rate-limit, then make one entry durable; return its end position (for ``wait_stored``)."""
        if limit:
            self.limiter.take(tenant, len(payload))
        try:
            return self.buffer.append(payload, count, block_s=block_s)
        except TooManyRequests:
            RATE_LIMITED.labels(tenant, "buffer_full").inc()
            raise

    def wait_stored(self, position: int) -> Future[None]:
        """A future that resolves once everything up to ``position`` is in the store."""
        future: Future[None] = Future()
        with self._cond:
            if self.done >= position:
                future.set_result(None)
            else:
                self._waiters.append((position, future))
        return future

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until everything appended so far is stored; False on timeout."""
        try:
            self.wait_stored(self.buffer.written).result(timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    # -- the worker: a decoder thread feeding an inserter thread ------------------------------
    # The store's insert runs in native code without the GIL, so decoding the next batch
    # overlaps with inserting this one.

    def _decode_loop(self) -> None:
        inflight = self.buffer.checkpoint.inflight
        pos = self.done
        if inflight is not None:
            # A crash interrupted this range: replay exactly it, with the same dedup token.
            log.info("replaying buffer range %s after an interrupted insert", inflight)
            entries = list(self.buffer.iter_range(*inflight))
            self._batches.put((inflight, entries, self._decode(entries)))
            pos = inflight[1]
        while not self._closed:
            if not self.buffer.wait_for_data(pos, 0.5):
                continue
            entries = self._gather(pos)
            if entries:
                span = (entries[0].pos, entries[-1].end)
                self._batches.put((span, entries, self._decode(entries)))
                pos = span[1]
        self._batches.put(None)

    def _gather(self, pos: int) -> list[Entry]:
        """Up to ``batch_rows`` items from ``pos``, waiting at most ``flush_s`` for more to fill the batch."""
        deadline = time.monotonic() + self.flush_s
        entries: list[Entry] = []
        rows = size = 0
        while rows < self.batch_rows and size < self.batch_bytes:
            got = self.buffer.read(pos, max_bytes=self.batch_bytes - size, max_items=self.batch_rows - rows)
            if got:
                entries.extend(got)
                pos = got[-1].end
                rows += sum(e.count for e in got)
                size += sum(e.end - e.pos for e in got)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                break
            self.buffer.wait_for_data(pos, remaining)
        return entries

    def _decode(self, entries: list[Entry]) -> list[LogEvent]:
        now = time.time_ns() // 1000
        events: list[LogEvent] = []
        for entry in entries:
            try:
                events.extend(decode_entry(entry, self.limits, now))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                self._reject([entry], f"unreadable buffer entry: {exc}")
        stage: EventStage | None = self.extras.get("event_stage")
        if stage is not None and events:
            try:
                events = stage(events)
            except Exception:  # analysis must never lose events
                log.exception("event stage failed; storing the batch without it")
        return events

    def _insert_loop(self) -> None:
        while True:
            batch = self._batches.get()
            if batch is None:
                return
            if not self._store(*batch):
                return

    def _store(self, span: tuple[int, int], entries: list[Entry], events: list[LogEvent]) -> bool:
        """Insert one batch and advance the checkpoint; False when shutting down mid-way."""
        start, end = span
        self.buffer.set_checkpoint(start, inflight=span)
        attempt = 0
        while events:
            try:
                rows = [event_row(e, self.retention_days(e.tenant)) for e in events]
                with STORE_INSERT_SECONDS.time():
                    self.store.insert_rows(rows, dedup_token=f"wal-{start}-{end}")
                break
            except Exception as exc:
                attempt += 1
                log.exception("store insert of buffer range %s failed (attempt %d)", span, attempt)
                if self._closed:
                    return False  # stays in flight; replayed at the next start
                if attempt >= 3:
                    self._reject(entries, f"store insert failed: {str(exc)[:200]}")
                    events = []
                    break
                time.sleep(0.5 * attempt)
        if events:
            self.stored_total += len(events)
            self._count(events)
            for hook in self.after_store:
                try:
                    hook(events)
                except Exception:  # a hook must never block the checkpoint
                    log.exception("after-store hook failed")
        self.buffer.set_checkpoint(end)
        with self._cond:
            self.done = end
            ready = [f for p, f in self._waiters if p <= end]
            self._waiters = [(p, f) for p, f in self._waiters if p > end]
        for f in ready:
            f.set_result(None)
        return True

    def _count(self, events: list[LogEvent]) -> None:
        counts: dict[tuple[str, str, str], int] = {}
        for e in events:
            key = (e.tenant, e.source, e.level.name)
            counts[key] = counts.get(key, 0) + 1
        for (tenant, source, level), n in counts.items():
            INGESTED.labels(tenant, source, level).inc(n)

    def _reject(self, entries: list[Entry], reason: str) -> None:
        for entry in entries:
            head = entry.payload.partition(b"\n")[0]
            try:
                header = orjson.loads(head)
                tenant, source = str(header["tenant"]), str(header.get("source", ""))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                tenant, source = self.settings.default_tenant, "buffer"
            REJECTED.labels(tenant, source, "store_failed").inc(max(entry.count, 1))
            if self.quarantine is not None:
                try:
                    self.quarantine(tenant, source, [(reason, entry.payload[:4096])])
                except Exception:
                    log.exception("quarantine failed")

    def close(self, timeout_s: float = 30.0) -> None:
        """Store what is buffered (up to ``timeout_s``), then stop; the rest replays at the next start."""
        self.flush(timeout_s)
        self._closed = True
        self._decoder.join(timeout_s)
        self._inserter.join(timeout_s)
        self.buffer.close()
