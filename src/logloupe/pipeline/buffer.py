"""The durable, bounded write-ahead buffer between ingest and the store.

Every accepted batch is one *entry* appended to segment files under ``<data_dir>/wal`` before
the client is acknowledged. Positions are global byte offsets: a segment file is named by the
offset of its first byte, so ``written - checkpoint`` is the buffer's size in bytes.

Entry frame: ``>III`` (payload length, CRC-32 of the payload, item count), then the payload.
A torn tail (a crash mid-append, never acknowledged) fails its length or CRC check and is cut off
when the buffer is opened again.

fsync policy (``Settings.buffer_fsync``):

- ``always`` (default): the appender waits until its bytes are on disk. Appenders that arrive
  while an fsync runs share the next one (group commit), so the cost is one ``fdatasync`` per
  group, not per request. An acknowledged batch survives ``kill -9`` and power loss.
- ``interval``: a background thread syncs every ``buffer_fsync_interval_ms``. Acknowledged data
  survives ``kill -9`` (it is in the page cache) but the last interval may be lost on power loss.
- ``never``: the operating system decides; survives ``kill -9`` only.

The consumer (``pipeline/workers.py``) reads entries back from the files, stores them and moves the
checkpoint (``checkpoint.json``, replaced atomically). Before inserting a range it records the range
as *in flight*, so after a crash the same range is replayed with the same dedup token — the store
then ignores a range it already has. Segments wholly before the checkpoint are deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from logloupe.errors import TooManyRequests, Unavailable
from logloupe.metrics import BUFFER_BYTES, BUFFER_FSYNC_SECONDS

log = logging.getLogger(__name__)

FRAME = struct.Struct(">III")
FSYNC_POLICIES = ("always", "interval", "never")
_SEGMENT_SUFFIX = ".seg"


@dataclass(frozen=True, slots=True)
class Entry:
    pos: int  # global offset of the frame
    end: int  # global offset just past it
    count: int  # items in the payload
    payload: bytes


@dataclass(frozen=True)
class Checkpoint:
    done: int = 0  # everything before this offset is in the store
    inflight: tuple[int, int] | None = None  # a range being inserted: replay it exactly
    # Open multiline records as of ``done`` (``pipeline/streams.py``): lines from entries before
    # ``done`` that are not stored yet. Saved in the same atomic write, so none is lost or doubled.
    pending: list[dict[str, Any]] | None = None


def _segment_name(start: int) -> str:
    return f"{start:020d}{_SEGMENT_SUFFIX}"


class WriteAheadBuffer:
    """Thread-safe appends with group commit; one reader (the pipeline worker)."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        segment_bytes: int = 64 * 1024 * 1024,
        fsync: str = "always",
        fsync_interval_ms: int = 200,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"buffer fsync policy must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_ms / 1000
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._sync_lock = threading.Lock()
        self._data = threading.Condition(threading.Lock())  # the reader waits here for new entries
        self._closed = False
        self.checkpoint = self._load_checkpoint()
        self._segments = self._recover()
        last = self._segments[-1]
        self._seg_start = last
        self._fd = os.open(self.path / _segment_name(last), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seg_size = os.fstat(self._fd).st_size
        self.written = last + self._seg_size
        self.durable = self.written
        self._readers: dict[int, int] = {}  # segment start → read-only fd
        BUFFER_BYTES.set(self.pending_bytes)
        self._syncer: threading.Thread | None = None
        if fsync == "interval":
            self._syncer = threading.Thread(target=self._sync_loop, name="logloupe-wal-sync", daemon=True)
            self._syncer.start()

    # -- opening ---------------------------------------------------------------------

    def _load_checkpoint(self) -> Checkpoint:
        try:
            raw = orjson.loads((self.path / "checkpoint.json").read_bytes())
        except FileNotFoundError:
            return Checkpoint()
        inflight = raw.get("inflight")
        pending = raw.get("pending")
        return Checkpoint(
            int(raw["done"]),
            (int(inflight[0]), int(inflight[1])) if inflight else None,
            pending if isinstance(pending, list) else None,
        )

    def _recover(self) -> list[int]:
        """Segment starts in order; the last segment's torn tail cut off."""
        starts = sorted(
            int(p.name[: -len(_SEGMENT_SUFFIX)])
            for p in self.path.glob(f"*{_SEGMENT_SUFFIX}")
            if p.name[: -len(_SEGMENT_SUFFIX)].isdigit()
        )
        if not starts:
            start = self.checkpoint.done
            (self.path / _segment_name(start)).touch()
            return [start]
        last = starts[-1]
        seg = self.path / _segment_name(last)
        data = seg.read_bytes()
        off = 0
        while off + FRAME.size <= len(data):
            length, crc, _count = FRAME.unpack_from(data, off)
            body = data[off + FRAME.size : off + FRAME.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            off += FRAME.size + length
        if off < len(data):
            log.warning("write-ahead buffer: cut a torn tail of %d bytes from %s", len(data) - off, seg.name)
            with open(seg, "r+b") as f:
                f.truncate(off)
                os.fsync(f.fileno())
        return starts

    # -- appending ----------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        return self.written - self.checkpoint.done

    def append(self, payload: bytes, count: int, *, block_s: float = 0.0) -> int:
        """Append one entry and (per the fsync policy) make it durable; return its end position.

        When the buffer is full, wait up to ``block_s`` for room, then raise TooManyRequests.
        """
        frame = FRAME.pack(len(payload), zlib.crc32(payload), count) + payload
        deadline = time.monotonic() + block_s
        with self._lock:
            while self.written - self.checkpoint.done + len(frame) > self.max_bytes and self.pending_bytes > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise TooManyRequests(
                        "the ingest buffer is full; retry shortly", retry_after_s=2, buffer_bytes=self.max_bytes
                    )
                self._space.wait(min(remaining, 0.5))
            if self._closed:
                raise Unavailable("the ingest buffer is shut down")
            if self._seg_size and self._seg_size + len(frame) > self.segment_bytes:
                self._rotate()
            view = memoryview(frame)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._seg_size += len(frame)
            self.written += len(frame)
            end = self.written
        BUFFER_BYTES.set(self.pending_bytes)
        if self.fsync == "always":
            self._sync(end)
        with self._data:
            self._data.notify_all()
        return end

    def _rotate(self) -> None:
        """Close the full segment (durably, unless the policy is never) and start the next one."""
        if self.fsync != "never":
            os.fdatasync(self._fd)
        os.close(self._fd)
        self._seg_start = self.written
        self._segments.append(self._seg_start)
        self._fd = os.open(self.path / _segment_name(self._seg_start), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seg_size = 0
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        if self.fsync == "never":
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sync(self, upto: int) -> None:
        """Group commit: one fdatasync covers every append made before it started."""
        if self.durable >= upto:
            return
        with self._sync_lock:
            if self.durable >= upto:
                return
            with self._lock:
                if self._closed:
                    return
                target = self.written
                fd = os.dup(self._fd)
            try:
                with BUFFER_FSYNC_SECONDS.time():
                    os.fdatasync(fd)
            finally:
                os.close(fd)
            self.durable = max(self.durable, target)

    def _sync_loop(self) -> None:
        while not self._closed:
            time.sleep(self.fsync_interval_s)
            try:
                self._sync(self.written)
            except OSError:
                log.exception("write-ahead buffer fsync failed")

    # -- reading (one consumer) -----------------------------------------------------------

    def wait_for_data(self, pos: int, timeout_s: float) -> bool:
        with self._data:
            if self.written > pos:
                return True
            self._data.wait(timeout_s)
        return self.written > pos

    def read(self, pos: int, *, max_bytes: int, max_items: int, upto: int | None = None) -> list[Entry]:
        """Entries from ``pos`` on, up to about ``max_bytes``/``max_items`` (at least one) and ``upto``."""
        limit = self.written if upto is None else upto
        out: list[Entry] = []
        taken = items = 0
        while pos < limit and taken < max_bytes and items < max_items:
            seg = self._segment_of(pos)
            seg_end = self._segment_end(seg, limit)
            want = min(seg_end - pos, max(max_bytes - taken, FRAME.size))
            data = self._pread(seg, want, pos - seg)
            off = 0
            while off + FRAME.size <= len(data) and taken < max_bytes and items < max_items:
                length, crc, count = FRAME.unpack_from(data, off)
                if off + FRAME.size + length > len(data):
                    if off == 0:  # one entry bigger than the window: read exactly it
                        data = self._pread(seg, FRAME.size + length, pos - seg)
                        continue
                    break
                body = data[off + FRAME.size : off + FRAME.size + length]
                if zlib.crc32(body) != crc:
                    log.error("write-ahead buffer: corrupt entry at %d; skipping the rest of its segment", pos + off)
                    if out:
                        return out
                    return [Entry(pos + off, seg_end, 0, b"")]  # a zero-count entry: the worker skips it
                out.append(Entry(pos + off, pos + off + FRAME.size + length, count, body))
                off += FRAME.size + length
                taken += FRAME.size + length
                items += count
            if off == 0:
                break
            pos += off
        return out

    def _segment_of(self, pos: int) -> int:
        with self._lock:
            segs = list(self._segments)
        best = segs[0]
        for s in segs:
            if s > pos:
                break
            best = s
        return best

    def _segment_end(self, seg: int, limit: int) -> int:
        with self._lock:
            segs = list(self._segments)
        i = segs.index(seg)
        return min(segs[i + 1], limit) if i + 1 < len(segs) else limit

    def _pread(self, seg: int, size: int, offset: int) -> bytes:
        fd = self._readers.get(seg)
        if fd is None:
            fd = os.open(self.path / _segment_name(seg), os.O_RDONLY)
            self._readers[seg] = fd
        return os.pread(fd, size, offset)

    def iter_range(self, start: int, end: int, chunk_bytes: int = 8 * 1024 * 1024) -> Iterator[Entry]:
        pos = start
        while pos < end:
            entries = self.read(pos, max_bytes=chunk_bytes, max_items=1 << 30, upto=end)
            if not entries:
                return
            yield from entries
            pos = entries[-1].end

    # -- checkpoint --------------------------------------------------------------------------

    def set_checkpoint(
        self, done: int, inflight: tuple[int, int] | None = None, pending: list[dict[str, Any]] | None = None
    ) -> None:
        """Record progress atomically; then drop segments wholly before ``done``."""
        tmp = self.path / "checkpoint.json.tmp"
        state: dict[str, Any] = {"done": done, "inflight": list(inflight) if inflight else None}
        if pending:
            state["pending"] = pending
        body = orjson.dumps(state)
        with open(tmp, "wb") as f:
            f.write(body)
            if self.fsync != "never":
                f.flush()
                os.fdatasync(f.fileno())
        os.replace(tmp, self.path / "checkpoint.json")
        with self._lock:
            self.checkpoint = Checkpoint(done, inflight, pending or None)
            obsolete = [s for i, s in enumerate(self._segments[:-1]) if self._segments[i + 1] <= done]
            for s in obsolete:
                self._segments.remove(s)
            self._space.notify_all()
        for s in obsolete:
            fd = self._readers.pop(s, None)
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                (self.path / _segment_name(s)).unlink()
        BUFFER_BYTES.set(self.pending_bytes)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._space.notify_all()
        with self._sync_lock, self._lock:
            if self.fsync != "never":
                os.fdatasync(self._fd)
            os.close(self._fd)
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()
        with self._data:
            self._data.notify_all()
