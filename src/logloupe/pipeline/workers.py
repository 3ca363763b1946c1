"""The ingest pipeline: write-ahead buffer → parse → insert in large batches → checkpoint.

``IngestPipeline.append`` is called by every ingest path (HTTP, bulk, OTLP, Loki, syslog, upload)
with items already split and validated; it returns once the entry is durable (see the fsync policy
in ``pipeline/buffer.py``). Three threads take it from there: the decoder reads entries back and
parses them, runs the ``event_stage`` (pattern mining) and builds the Arrow columns — or hands the
parsing to decoder processes, and then the stage thread does the rest when their events come back —
and the inserter inserts them with a dedup token naming the buffer range (so a replay after a crash
is a no-op) and advances the checkpoint. A fourth thread runs the ``StoreWriter.after_store`` hooks
(metrics, alerting, live tail, anomaly detection) on each stored batch, in order, while the inserter
inserts the next one; acknowledgements that wait for "stored" resolve after the hooks have seen the
batch (so never before the insert, and an alert or a tail sees what a synchronous ingest returned).

Tests and ``?sync=true`` wait for a position with ``wait_stored``; ``flush`` waits for everything.
Per-tenant ingest rates are token buckets in bytes (``RateLimiter``).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pyarrow as pa

from logloupe.errors import LogLoupeError, TooManyRequests
from logloupe.metrics import (
    INGESTED,
    MULTILINE_EVICTED,
    MULTILINE_OPEN,
    RATE_LIMITED,
    REJECTED,
    STORE_INSERT_SECONDS,
)
from logloupe.model import EventColumns, Level, LogEvent
from logloupe.parse.records import Limits
from logloupe.pipeline.buffer import FRAME, Entry, WriteAheadBuffer
from logloupe.pipeline.decode import (
    DECODE_ERRORS,
    PackedResult,
    RowsResult,
    decode_packed,
    decode_payload,
    decode_rows,
    entry_tenant,
    init_decoder,
    unpack_columns,
    with_analysis_columns,
)
from logloupe.pipeline.streams import StreamJoiner, flush_entry, payload_joins
from logloupe.pipeline.writer import count_ingested, stored_only
from logloupe.settings import Settings
from logloupe.store.events import NO_DUPLICATES, Duplicates, EventStore, arrow_ipc, record_batch

log = logging.getLogger(__name__)

CHUNKS_PER_PROCESS = 4
HOOK_QUEUE_BATCHES = 1

# Called with the events of a batch before they are inserted (pattern mining, classification).
# With decoder processes the other columns come from the processes: a stage changes only the analysis
# fields (decode.ANALYSIS_COLUMNS) of the events in place, or returns other events (a filtered or new
# list), and then all their columns are built again in the server. A stage object with a ``columns``
# method (``serve.services.EnrichStage``) gets those batches as ``EventColumns`` instead, and fills in
# their analysis lists in place: no ``LogEvent`` is built for them.
EventStage = Callable[[list[LogEvent]], list[LogEvent]]
AfterStore = Callable[[Sequence[LogEvent]], None]


@dataclass
class _Batch:
    span: tuple[int, int]
    entries: list[Entry]
    events: Sequence[LogEvent] | None  # decoded here (a list), or EventColumns from decoder processes
    futures: list[Future[RowsResult]] | None  # or Arrow streams from decoder processes
    arrow: list[pa.RecordBatch] | None = None  # the decoded events' columns, built before the insert
    packed: list[Future[PackedResult]] | None = None  # or events from decoder processes, to enrich here
    # Open multiline records before and after this batch (saved with the checkpoint), and the lowest
    # buffer position they hold lines from: acknowledgements that wait for "stored" wait for them too.
    pending_before: list[dict[str, Any]] | None = None
    pending_after: list[dict[str, Any]] | None = None
    held: tuple[tuple[int, int], ...] = ()
    # Events per (tenant, source, level name), counted by the decoder processes, for the ingest metric.
    counts: dict[tuple[str, str, str], int] | None = None


def _kept_counts(batches: list[pa.RecordBatch], duplicates: Duplicates) -> dict[tuple[str, str, str], int]:
    """Stored events per (tenant, source, level name) of Arrow batches an insert left re-sent rows of out."""
    table = pa.Table.from_batches(batches)
    tenants = table.column("tenant").to_pylist()
    sources = table.column("source").to_pylist()
    levels = table.column("level").to_pylist()
    keys = zip(tenants, table.column("ts").cast(pa.int64()).to_pylist(), table.column("uid").to_pylist(), strict=True)
    counts: dict[tuple[str, str, str], int] = {}
    for i in duplicates.kept(keys):
        key = (tenants[i], sources[i], Level(levels[i]).name)
        counts[key] = counts.get(key, 0) + 1
    return counts


@dataclass
class _Stored:
    """A stored batch on its way to the hook thread: its events (None when no hook needs them), and the
    position and open multiline records that acknowledgements waiting for "stored" are resolved with."""

    end: int
    held: tuple[tuple[int, int], ...]
    events: Sequence[LogEvent] | None
    counts: dict[tuple[str, str, str], int] | None = None


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
        self._waiters: list[tuple[int, Future[None], int | None]] = []
        # Multiline records across entries (pipeline/streams.py), continued from the checkpoint.
        self.joiner = StreamJoiner(
            timeout_us=settings.multiline_flush_ms * 1000, max_message_bytes=settings.max_message_bytes
        )
        self.joiner.restore(self.buffer.checkpoint.pending)
        self.held = self.joiner.held()
        self._evicted = 0
        self._marker_end = 0  # end of the last flush marker appended; none again until it is read
        self._cond = threading.Condition()
        self._closed = False
        self._decoded: queue.Queue[_Batch | None] = queue.Queue(2)
        self._batches: queue.Queue[_Batch | None] = queue.Queue(2)
        # Bounded: when the hooks fall behind by this many batches, the inserter waits (memory stays bounded).
        self._stored: queue.Queue[_Stored | None] = queue.Queue(HOOK_QUEUE_BATCHES)
        self.decode_processes = settings.pipeline_decode_processes
        self._pool: ProcessPoolExecutor | None = None
        self._decoder = threading.Thread(target=self._decode_loop, name="logloupe-ingest-decode", daemon=True)
        self._stager = threading.Thread(target=self._stage_loop, name="logloupe-ingest-stage", daemon=True)
        self._inserter = threading.Thread(target=self._insert_loop, name="logloupe-ingest-insert", daemon=True)
        self._hooker = threading.Thread(target=self._hook_loop, name="logloupe-ingest-hooks", daemon=True)
        self._decoder.start()
        self._stager.start()
        self._inserter.start()
        self._hooker.start()

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

    def wait_stored(self, position: int, *, held: bool = True, since: int = 0) -> Future[None]:
        """A future that resolves once everything up to ``position`` is in the store — including
        lines held in an open multiline record that come from entries at ``since`` or later, unless
        ``held`` is False (then: checkpointed; open records are kept with the checkpoint)."""
        future: Future[None] = Future()
        after = since if held else None
        with self._cond:
            if self._ready(position, self.done, self.held, after):
                future.set_result(None)
            else:
                self._waiters.append((position, future, after))
        return future

    def wait_entry(self, end: int, payload: bytes) -> Future[None]:
        """``wait_stored`` for the one entry ``append(payload)`` returned ``end`` for: open records of
        other requests (other streams, earlier lines) are not waited for."""
        return self.wait_stored(end, since=end - FRAME.size - len(payload))

    @staticmethod
    def _ready(position: int, done: int, held: tuple[tuple[int, int], ...], since: int | None) -> bool:
        if done < position:
            return False
        return since is None or not any(first < position and last >= since for first, last in held)

    def flush(self, timeout_s: float = 60.0, *, held: bool = True) -> bool:
        """Wait until everything appended so far is stored; False on timeout."""
        try:
            self.wait_stored(self.buffer.written, held=held).result(timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    # -- the worker: decoder thread → stage thread → inserter thread ------------------------------
    # The store's insert runs in native code without the GIL, so decoding the next batch
    # overlaps with inserting this one. With decoder processes, the decoder thread hands batch N+1
    # to them while the stage thread enriches batch N (its events back from the processes).

    def _decode_loop(self) -> None:
        inflight = self.buffer.checkpoint.inflight
        pos = self.done
        if inflight is not None:
            # A crash interrupted this range: replay exactly it, with the same dedup token.
            log.info("replaying buffer range %s after an interrupted insert", inflight)
            entries = list(self.buffer.iter_range(*inflight))
            self._decoded.put(self._decode(inflight, entries))
            pos = inflight[1]
        while not self._closed:
            try:
                self._flush_marker(pos)
                if not self.buffer.wait_for_data(pos, self._idle_wait_s()):
                    continue
                entries = self._gather(pos)
                if entries:
                    span = (entries[0].pos, entries[-1].end)
                    self._decoded.put(self._decode(span, entries))
                    pos = span[1]
            except Exception:  # e.g. an unreadable segment: keep the thread, retry from the same place
                log.exception("ingest decoder failed at buffer position %d; retrying", pos)
                time.sleep(1.0)
        self._decoded.put(None)

    def _stage_loop(self) -> None:
        while True:
            batch = self._decoded.get()
            if batch is not None and batch.packed is not None:
                try:
                    batch = self._unpack(batch)
                except Exception:  # the thread must outlive one bad batch: decode it here instead
                    log.exception("unpacking buffer range %s failed; decoding it in the server", batch.span)
                    events = self._events_of(batch.entries, time.time_ns() // 1000)
                    batch = replace(batch, events=events, packed=None, arrow=None)
            self._batches.put(batch)
            if batch is None:
                return

    def _unpack(self, batch: _Batch) -> _Batch:
        """Events back from the decoder processes → the stage (enrichment) → Arrow columns."""
        assert batch.packed is not None
        now = time.time_ns() // 1000
        try:
            results = [f.result() for f in batch.packed]
        except Exception:  # a decoder process died: decode here instead
            log.exception("decoder process failed; decoding buffer range %s in the server", batch.span)
            events = self._events_of(batch.entries, now)
            return replace(batch, events=events, packed=None, arrow=self._arrow(events))
        counts: dict[tuple[str, str, str], int] = {}
        for _, _, errors, counted in results:
            for key, n in counted.items():
                counts[key] = counts.get(key, 0) + n
            bad = dict(errors)
            if bad:
                self._reject([e for e in batch.entries if e.pos in bad], next(iter(bad.values())))
        # No LogEvent per event: the events stay column lists (EventColumns) through the stage, the
        # Arrow columns and the hooks, when the stage takes them (a ``columns`` method, as
        # serve.services.EnrichStage has) or there is none.
        columns = unpack_columns([blob for blob, _, _, _ in results])
        stage: EventStage | None = self.extras.get("event_stage")
        by_columns: Callable[[EventColumns], None] | None = getattr(stage, "columns", None)
        if stage is None or by_columns is not None:
            if by_columns is not None and len(columns):
                try:
                    by_columns(columns)
                except Exception:  # analysis must never lose events
                    log.exception("event stage failed; storing the batch without it")
            try:
                arrow = self._with_analysis(results, columns)
                return replace(batch, events=columns, packed=None, arrow=arrow, counts=counts)
            except Exception:
                log.exception("Arrow columns of buffer range %s unusable; building them here", batch.span)
            # The processes' counts still hold: the hook thread need not count the events again.
            return replace(batch, events=columns, packed=None, arrow=self._arrow(columns), counts=counts)
        events = columns.events()
        staged = self._staged(events)
        if len(staged) == len(events) and all(a is b for a, b in zip(staged, events, strict=True)):
            try:  # the processes built the columns (and counted): only the analysis columns are added here
                arrow = self._with_analysis(results, staged)
                return replace(batch, events=staged, packed=None, arrow=arrow, counts=counts)
            except Exception:
                log.exception("Arrow columns of buffer range %s unusable; building them here", batch.span)
        # replace(): the batch keeps its multiline state (pending_before/after, held).
        return replace(batch, events=staged, packed=None, arrow=self._arrow(staged))

    @staticmethod
    def _with_analysis(results: list[PackedResult], events: Sequence[LogEvent]) -> list[pa.RecordBatch]:
        """Each process's Arrow columns with the analysis columns of its events (in order) filled in."""
        if isinstance(events, EventColumns):
            ids, variables, classes, scores = (
                events.pattern_id,
                events.pattern_vars,
                events.classification,
                events.anomaly_score,
            )
        else:
            ids = [e.pattern_id for e in events]
            variables = [e.pattern_vars for e in events]
            classes = [e.classification for e in events]
            scores = [e.anomaly_score for e in events]
        arrow: list[pa.RecordBatch] = []
        start = 0
        for _, columns, _, counted in results:
            end = start + sum(counted.values())
            if columns:
                arrow += with_analysis_columns(
                    columns, ids[start:end], variables[start:end], classes[start:end], scores[start:end]
                )
            start = end
        if start != len(events):
            raise ValueError(f"{len(events)} events for {start} rows of Arrow columns")
        return arrow

    def _idle_wait_s(self) -> float:
        expiry = self.joiner.next_expiry_us()
        if expiry is None:
            return 0.5
        return min(0.5, max(0.01, (expiry - time.time_ns() // 1000) / 1e6))

    def _flush_marker(self, pos: int) -> None:
        """A multiline record waited ``multiline_flush_ms``: append a flush marker that emits it when read."""
        expiry = self.joiner.next_expiry_us()
        if expiry is None or pos < self._marker_end:
            return
        now = time.time_ns() // 1000
        if now < expiry:
            return
        try:
            self._marker_end = self.buffer.append(flush_entry(now), 0)
        except LogLoupeError:  # the buffer is full or closing: try again on the next round
            log.debug("multiline flush marker not appended; retrying")

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

    def _needs_events(self) -> bool:
        """True while an analysis stage needs the events in the server (else processes send Arrow)."""
        return bool(self.after_store) or "event_stage" in self.extras

    def _decode(self, span: tuple[int, int], entries: list[Entry]) -> _Batch:
        now = time.time_ns() // 1000
        before = self.joiner.export()
        batch: _Batch | None = None
        rules = self.extras.get("source_rules")
        # Entries the joiner must see (text lines, syslog, flush markers) are decoded here, in order.
        if self.decode_processes > 0 and not any(payload_joins(e.payload, rules) for e in entries):
            try:
                batch = self._decode_in_processes(span, entries, now)
            except Exception:  # e.g. a broken pool: decode here from now on
                log.exception("decoder processes unavailable; decoding in the server")
                self.decode_processes = 0
        if batch is None:
            try:
                events = self._events_of(entries, now, self.joiner)
            except Exception:
                self.joiner.restore(before)  # retried from the same place: from the same state
                raise
            # Built here so it overlaps the previous batch's insert (the engine releases the GIL).
            batch = _Batch(span, entries, events, None, self._arrow(events))
        batch.pending_before = before
        batch.pending_after = self.joiner.export()
        batch.held = self.joiner.held()
        MULTILINE_OPEN.set(self.joiner.open_count)
        if self.joiner.evicted > self._evicted:
            MULTILINE_EVICTED.inc(self.joiner.evicted - self._evicted)
            self._evicted = self.joiner.evicted
        return batch

    def _decode_in_processes(self, span: tuple[int, int], entries: list[Entry], now: int) -> _Batch:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.decode_processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_decoder,
                initargs=(os.getpid(),),
            )
        # Several chunks per process: each holds a quarter of the events at its peak (decoder RSS),
        # and the processes take the next chunk as they finish (no one waits on the slowest half).
        parts = self.decode_processes * CHUNKS_PER_PROCESS
        size = -(-len(entries) // parts)
        chunks = [[(e.pos, e.payload) for e in entries[i : i + size]] for i in range(0, len(entries), size)]
        rules = self.extras.get("source_rules")
        retention: dict[str, int] = {}
        for entry in entries:
            try:
                tenant = entry_tenant(entry.payload) if entry.payload else ""
            except DECODE_ERRORS:
                continue
            if tenant and tenant not in retention:
                retention[tenant] = self.retention_days(tenant)
        days = self.settings.retention_days
        if self._needs_events():
            packed = [
                self._pool.submit(decode_packed, chunk, self.limits, now, rules, retention, days) for chunk in chunks
            ]
            return _Batch(span, entries, None, None, packed=packed)
        futures = [
            self._pool.submit(decode_rows, chunk, self.limits, retention, self.settings.retention_days, now, rules)
            for chunk in chunks
        ]
        return _Batch(span, entries, None, futures)

    def _arrow(self, events: Sequence[LogEvent]) -> list[pa.RecordBatch] | None:
        """The batch's Arrow columns, built ahead of the insert; on failure the insert builds them again
        inside its retries, so a batch that cannot be encoded ends in quarantine, never in a loop."""
        if not events:
            return None
        try:
            return [record_batch(events, self.retention_days)]
        except Exception:
            log.exception("could not build the Arrow columns of a batch; retrying at the insert")
            return None

    def _events_of(self, entries: list[Entry], now: int, joiner: StreamJoiner | None = None) -> list[LogEvent]:
        events: list[LogEvent] = []
        rules = self.extras.get("source_rules")
        for entry in entries:
            try:
                events.extend(decode_payload(entry.pos, entry.payload, self.limits, now, rules, joiner))
            except DECODE_ERRORS as exc:
                self._reject([entry], f"unreadable buffer entry: {exc}")
        return self._staged(events)

    def _staged(self, events: list[LogEvent]) -> list[LogEvent]:
        stage: EventStage | None = self.extras.get("event_stage")
        if stage is not None and events:
            try:
                events = stage(events)
            except Exception:  # analysis must never lose events
                log.exception("event stage failed; storing the batch without it")
        return events

    def _insert_loop(self) -> None:
        try:
            self._insert_batches()
        finally:  # the hook thread drains what was stored, then ends
            self._stored.put(None)

    def _insert_batches(self) -> None:
        while True:
            batch = self._batches.get()
            if batch is None:
                return
            while True:
                try:
                    stored = self._store(batch)
                    break
                except Exception:  # e.g. the disk is full for the checkpoint: retry, never skip
                    log.exception("ingest insert of buffer range %s failed; retrying", batch.span)
                    if self._closed:
                        return
                    time.sleep(1.0)
            if not stored:
                return

    def _store(self, batch: _Batch) -> bool:
        """Insert one batch and advance the checkpoint; False when shutting down mid-way."""
        start, end = span = batch.span
        entries = batch.entries
        self.buffer.set_checkpoint(start, inflight=span, pending=batch.pending_before)
        events: Sequence[LogEvent] = batch.events or []
        arrow = batch.arrow
        blobs: list[bytes] = []
        counted = 0
        counts: dict[tuple[str, str, str], int] = {}
        results: list[RowsResult] = []
        if batch.futures is not None:
            try:
                results = [f.result() for f in batch.futures]
            except Exception:  # a decoder process died: decode here instead
                log.exception("decoder process failed; decoding buffer range %s in the server", span)
                events = self._events_of(entries, time.time_ns() // 1000)
                arrow = None  # built at the insert
        if results:
            blobs = [r[0] for r in results if r[1]]
            counted = sum(r[1] for r in results)
            for r in results:
                for key, n in r[2].items():
                    counts[key] = counts.get(key, 0) + n
                bad = dict(r[3])
                if bad:
                    self._reject([e for e in entries if e.pos in bad], next(iter(bad.values())))
        attempt = 0
        duplicates = NO_DUPLICATES
        while events or counted:
            try:
                with STORE_INSERT_SECONDS.time():
                    if counted:
                        batches = [b for blob in blobs for b in pa.ipc.open_stream(blob).read_all().to_batches()]
                        duplicates = self.store.insert_arrow(arrow_ipc(batches), dedup_token=f"wal-{start}-{end}")
                        if duplicates.rows:  # a re-sent input: count what was stored
                            counts = _kept_counts(batches, duplicates)
                            counted -= duplicates.rows
                    else:
                        if arrow is None:
                            arrow = [record_batch(events, self.retention_days)]
                        duplicates = self.store.insert_arrow(arrow_ipc(arrow), dedup_token=f"wal-{start}-{end}")
                        events = stored_only(events, duplicates)
                break
            except Exception as exc:
                attempt += 1
                log.exception("store insert of buffer range %s failed (attempt %d)", span, attempt)
                if self._closed:
                    return False  # stays in flight; replayed at the next start
                if attempt >= 3:
                    self._reject(entries, f"store insert failed: {str(exc)[:200]}")
                    events, counted = [], 0
                    break
                time.sleep(0.5 * attempt)
        self.stored_total += counted + len(events)
        self.buffer.set_checkpoint(end, pending=batch.pending_after)
        # The metrics and hooks run in the hook thread while this one inserts the next batch.
        if not counted:  # the events' counts from the decoder processes, if they came from there
            counts = batch.counts if events and batch.counts is not None and not duplicates.rows else {}
        self._stored.put(_Stored(end, batch.held, events or None, counts or None))
        return True

    def _hook_loop(self) -> None:
        """Stored batches in order: metrics, the ``after_store`` hooks, then the waiting acknowledgements."""
        while True:
            item = self._stored.get()
            if item is None:
                return
            try:
                if item.counts:  # counted by the decoder processes
                    for (tenant, source, level), n in item.counts.items():
                        INGESTED.labels(tenant, source, level).inc(n)
                elif item.events:
                    count_ingested(item.events)
                # Every stored batch reaches the hooks, however it was counted.
                events = item.events or []
                for hook in self.after_store if events else ():
                    try:
                        hook(events)
                    except Exception:  # a hook must never block the acknowledgements
                        log.exception("after-store hook failed")
            except Exception:
                log.exception("ingest metrics of a stored batch failed")
            self._resolve(item.end, item.held)

    def _resolve(self, end: int, held: tuple[tuple[int, int], ...]) -> None:
        with self._cond:
            self.done = end
            self.held = held
            ready = [f for p, f, since in self._waiters if self._ready(p, end, held, since)]
            self._waiters = [w for w in self._waiters if w[1] not in ready]
        for f in ready:
            if f.set_running_or_notify_cancel():  # False when the waiting request went away
                f.set_result(None)

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
        """Store what is buffered (up to ``timeout_s``), then stop; the rest replays at the next start.
        Open multiline records are not waited for: the checkpoint keeps them for the next start."""
        self.flush(timeout_s, held=False)
        self._closed = True
        self._decoder.join(timeout_s)
        self._stager.join(timeout_s)
        self._inserter.join(timeout_s)
        self._hooker.join(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.buffer.close()
