"""Follow log files like Filebeat: globs, rotation, truncation, checkpoints flushed after the ack.

Identity of a file is its (device, inode) plus a fingerprint: a hash of its first bytes (up to
``FP_BYTES``), so a reused inode with other content is a new file, and a copy or a compressed
rotation of a file we read is recognised and resumed where we stopped.

One cycle (``step``): scan the globs when due (new files, renamed, removed, truncated ones),
read from the open files into one batch (bounded in lines and bytes), write the batch id and the
offsets it will reach into the checkpoint as *pending*, send it, and on the acknowledgement
advance the offsets. After a crash the pending batch is looked up in the sink: stored → the
offsets advance, not stored → it is read again. So each line is stored once.

Rotation by rename: the open descriptor follows the inode; it is read to its end and closed
when the path no longer names it. Copytruncate: a size below our offset (or a changed
fingerprint) means the file was truncated; we restart it at 0, and the copy, recognised by the
old fingerprint, is read from the old offset. Removed files are finished through the open
descriptor. Compressed rotated files (``.gz``, ``.bz2``, ``.xz``) are read once when enabled,
from the offset of the plain file they were made from.
"""

from __future__ import annotations

import bz2
import contextlib
import fnmatch
import glob
import gzip
import hashlib
import logging
import lzma
import os
import re
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from logloupe.ingest.checkpoints import Checkpoints
from logloupe.ingest.joiner import Joined, Line, MultilineJoiner
from logloupe.ingest.sinks import Batch, Sink, SinkError, send_with_retry
from logloupe.ingest.sources import SourceStatus
from logloupe.metrics import SOURCE_EVENTS, SOURCE_FILES, SOURCE_LAG_BYTES, SOURCE_LAG_SECONDS, SOURCE_POSITION

log = logging.getLogger(__name__)

FP_BYTES = 1024
# A fingerprint this short is not trusted to match a file under another inode.
FP_MIN_CROSS = 64
CHUNK = 64 * 1024
COMPRESSED: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
ORPHAN_TTL_S = 3600.0
MAX_STATES = 10000


@dataclass
class TailInput:
    """A set of paths (globs) and what to stamp on their lines."""

    paths: list[str]
    service: str = ""
    host: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)


@dataclass
class TailConfig:
    inputs: list[TailInput]
    start_at: str = "end"  # "end" or "beginning": where files present at the first scan start
    read_compressed: bool = False
    multiline: bool = True
    max_line_bytes: int = 65536
    max_multiline_lines: int = 500
    batch_lines: int = 5000
    batch_bytes: int = 4 * 1024 * 1024
    scan_s: float = 1.0
    idle_s: float = 0.2
    multiline_flush_s: float = 1.0
    multiline_start: re.Pattern[str] | None = None  # a parsing source's start pattern (ingest/joiner.py)
    close_removed_s: float = 1.0
    close_inactive_s: float = 60.0
    # A compressed file is read once it has not changed for this long (the rotation finished it).
    compressed_settle_s: float = 2.0
    forget_after_s: float = 7 * 86400.0


@dataclass
class FileState:
    """What the checkpoint keeps per file."""

    dev: int
    ino: int
    path: str
    fp: str = ""
    fp_len: int = 0
    offset: int = 0
    compressed: bool = False
    done: bool = False  # a compressed file read to its end
    removed: bool = False
    seen_at: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.dev}:{self.ino}"

    def to_json(self) -> dict[str, Any]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "path": self.path,
            "fp": self.fp,
            "fp_len": self.fp_len,
            "offset": self.offset,
            "compressed": self.compressed,
            "done": self.done,
            "removed": self.removed,
            "seen_at": self.seen_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileState:
        return cls(
            dev=int(d["dev"]),
            ino=int(d["ino"]),
            path=str(d.get("path", "")),
            fp=str(d.get("fp", "")),
            fp_len=int(d.get("fp_len", 0)),
            offset=int(d.get("offset", 0)),
            compressed=bool(d.get("compressed", False)),
            done=bool(d.get("done", False)),
            removed=bool(d.get("removed", False)),
            seen_at=float(d.get("seen_at", 0.0)),
        )


@dataclass
class Orphan:
    """The position of a file's old content after a copytruncate, waiting for its copy."""

    fp: str
    fp_len: int
    offset: int
    since: float


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def is_compressed(path: str) -> bool:
    return os.path.splitext(path)[1] in COMPRESSED


def read_prefix(path: str, compressed: bool, n: int = FP_BYTES) -> bytes:
    """The first ``n`` bytes of the (decompressed) content; b"" when unreadable."""
    try:
        if compressed:
            opener = COMPRESSED[os.path.splitext(path)[1]]
            with opener(path, "rb") as fh:
                data: bytes = fh.read(n)
                return data
        with open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, lzma.LZMAError, ValueError):
        return b""


def prefix_matches(prefix: bytes, fp: str, fp_len: int) -> bool:
    if fp_len == 0:
        return True  # nothing known about the content yet
    return len(prefix) >= fp_len and _hash(prefix[:fp_len]) == fp


class _Handle:
    """An open file being read: the descriptor, the partial line and the multiline joiner."""

    def __init__(self, state: FileState, spec: TailInput, cfg: TailConfig, start: int) -> None:
        self.state = state
        self.spec = spec
        self.cfg = cfg
        self.fh: IO[bytes]
        if state.compressed:
            opener = COMPRESSED[os.path.splitext(state.path)[1]]
            self.fh = opener(state.path, "rb")
            skip = start
            while skip > 0:
                got = self.fh.read(min(skip, CHUNK))
                if not got:
                    break
                skip -= len(got)
        else:
            self.fh = open(state.path, "rb")  # noqa: SIM115 - held open across cycles on purpose
            self.fh.seek(start)
        self.read_pos = start
        self.buf = bytearray()
        self.buf_start = start
        self.overlong = False  # inside a line longer than the cap: bytes dropped until its newline
        self.joiner = MultilineJoiner(
            enabled=cfg.multiline,
            max_lines=cfg.max_multiline_lines,
            max_chars=cfg.max_line_bytes,
            start=cfg.multiline_start,
        )
        self.last_data = time.monotonic()
        self.at_eof = False
        self.unmatched = False  # its path no longer names it (renamed out of the globs, or removed)
        self.finished = False

    def stat(self) -> os.stat_result | None:
        try:
            return os.fstat(self.fh.fileno())
        except (OSError, ValueError):
            return None

    def reset(self) -> None:
        """After a truncation: start again at byte 0."""
        self.fh.seek(0)
        self.read_pos = 0
        self.buf = bytearray()
        self.buf_start = 0
        self.overlong = False
        self.joiner.reset()

    def read_lines(self, max_bytes: int) -> list[Line]:
        """Read up to ``max_bytes``; return the complete lines, keeping a partial one buffered."""
        out: list[Line] = []
        cap = self.cfg.max_line_bytes
        try:
            chunk = self.fh.read(min(CHUNK, max(1, max_bytes)))
        except (OSError, EOFError, lzma.LZMAError) as exc:
            log.warning("tail: cannot read %s: %s", self.state.path, exc)
            chunk = b""
        if not chunk:
            self.at_eof = True
            return out
        self.at_eof = False
        self.last_data = time.monotonic()
        pos = 0
        while pos < len(chunk):
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                if not self.overlong:
                    room = cap - len(self.buf)
                    self.buf += chunk[pos : pos + max(0, room)]
                    if len(chunk) - pos > room:
                        self.overlong = True
                self.read_pos += len(chunk) - pos
                break
            piece = chunk[pos:nl]
            if not self.overlong:
                room = cap - len(self.buf)
                if len(piece) > room:
                    self.buf += piece[: max(0, room)]
                    self.overlong = True
                else:
                    self.buf += piece
            self.read_pos += nl + 1 - pos
            out.append(self._line(self.read_pos))
            pos = nl + 1
        return out

    def _line(self, end: int) -> Line:
        raw = bytes(self.buf)
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        line = Line(raw.decode("utf-8", "replace"), self.buf_start, end, self.overlong)
        self.buf = bytearray()
        self.buf_start = end
        self.overlong = False
        return line

    def partial(self) -> Line | None:
        """The unterminated last line, when the file is finished (removed, rotated away, compressed)."""
        if not self.buf and not self.overlong:
            self.buf_start = self.read_pos
            return None
        return self._line(self.read_pos)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()


class FileTailer:
    """A file tail source (see the module docstring); drive it with ``step`` or a SourceRunner."""

    kind = "tail"

    def __init__(
        self,
        config: TailConfig,
        sink: Sink,
        checkpoints: Checkpoints,
        *,
        source_id: str = "tail",
        stopping: threading.Event | None = None,
    ) -> None:
        self.cfg = config
        self.sink = sink
        self.checkpoints = checkpoints
        self.id = source_id
        self.idle_s = config.idle_s
        self.stopping = stopping or threading.Event()
        self.status = SourceStatus(source_id, self.kind)
        self.hostname = socket.gethostname()
        self.states: dict[str, FileState] = {}
        self.handles: dict[str, _Handle] = {}
        self.orphans: list[Orphan] = []
        self._first_scan = True
        self._next_scan = 0.0
        self._dirty = False
        self._recovered = False
        self._turn = 0
        self._load()

    # -- checkpoint --------------------------------------------------------------------

    def _load(self) -> None:
        saved = self.checkpoints.load(self.id) or {}
        for d in saved.get("files", []):
            st = FileState.from_json(d)
            self.states[st.key] = st
        self.orphans = [Orphan(o["fp"], o["fp_len"], o["offset"], o["since"]) for o in saved.get("orphans", [])]
        self._pending: dict[str, Any] | None = saved.get("pending")
        self._first_scan = not saved.get("started", False)

    def _save(self, pending: dict[str, Any] | None = None) -> None:
        body = {
            "started": True,
            "files": [s.to_json() for s in self.states.values()],
            "orphans": [o.__dict__ for o in self.orphans],
            "pending": pending,
        }
        self.checkpoints.save(self.id, body)
        self._dirty = False

    def _recover(self) -> None:
        """A batch was in flight when we stopped: ask the sink whether it was stored."""
        pending = self._pending
        if not pending:
            self._recovered = True
            return
        while True:
            try:
                stored = self.sink.has_batch(str(pending["id"]))
                break
            except SinkError as exc:
                self.status.error("sink", exc.message)
                self.status.state = "retrying"
                if self.stopping.wait(2.0):
                    return
        self._recovered = True
        if stored:
            for key, offset in pending.get("ends", {}).items():
                if key in self.states:
                    self.states[key].offset = max(self.states[key].offset, int(offset))
            for key in pending.get("done", []):
                if key in self.states:
                    self.states[key].done = True
        self._pending = None
        self._save()

    # -- scanning ----------------------------------------------------------------------

    def _matched(self) -> dict[str, tuple[str, TailInput, os.stat_result]]:
        found: dict[str, tuple[str, TailInput, os.stat_result]] = {}
        for spec in self.cfg.inputs:
            for pattern in spec.paths:
                for path in sorted(glob.glob(os.path.expanduser(pattern))):
                    name = os.path.basename(path)
                    if any(fnmatch.fnmatch(name, ex) or fnmatch.fnmatch(path, ex) for ex in spec.exclude):
                        continue
                    if is_compressed(path) and not self.cfg.read_compressed:
                        continue
                    try:
                        st = os.stat(path)  # follows symlinks: the target is the identity
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    if is_compressed(path) and time.time() - st.st_mtime < self.cfg.compressed_settle_s:
                        continue  # maybe still being written by the rotation
                    key = f"{st.st_dev}:{st.st_ino}"
                    found.setdefault(key, (path, spec, st))
        return found

    def _check_truncated(self, h: _Handle) -> None:
        st = h.stat()
        if st is None or h.state.compressed:
            return
        truncated = st.st_size < h.read_pos
        if not truncated and h.state.fp_len:
            prefix = os.pread(h.fh.fileno(), h.state.fp_len, 0)
            truncated = not prefix_matches(prefix, h.state.fp, h.state.fp_len)
        if truncated:
            log.info("tail: %s was truncated; reading it again from the start", h.state.path)
            self._orphan(h.state)
            h.reset()

    def _orphan(self, state: FileState) -> None:
        if state.fp_len >= FP_MIN_CROSS:
            self.orphans.append(Orphan(state.fp, state.fp_len, state.offset, time.time()))
        state.offset = 0
        state.fp = ""
        state.fp_len = 0
        self._dirty = True

    def scan(self) -> None:
        now = time.time()
        for h in list(self.handles.values()):
            self._check_truncated(h)
        found = self._matched()
        for key, h in self.handles.items():
            if key in found:
                h.unmatched = False
                h.state.path = found[key][0]
                h.state.seen_at = now
            else:
                h.unmatched = True
        initial = self._first_scan
        self._first_scan = False
        live_fps = [(h.state.fp, h.state.fp_len) for h in self.handles.values() if h.state.fp_len >= FP_MIN_CROSS]
        for key, (path, spec, st) in found.items():
            if key in self.handles:
                continue
            compressed = is_compressed(path)
            prefix = read_prefix(path, compressed)
            state = self.states.get(key)
            if state is not None and not state.removed and prefix_matches(prefix, state.fp, state.fp_len):
                state.path, state.seen_at = path, now
                if state.done:
                    continue
                if not compressed and st.st_size < state.offset:
                    self._orphan(state)  # truncated while we had it closed
                if compressed or st.st_size > state.offset:
                    self._open(state, spec)
                continue
            if state is not None and not state.removed and state.fp_len and not compressed:
                self._orphan(state)  # same inode, other content: rewritten, or the inode reused
            start = 0
            orphan = next((o for o in self.orphans if prefix_matches(prefix, o.fp, o.fp_len)), None)
            if orphan is not None and not compressed:
                start = orphan.offset
                self.orphans.remove(orphan)
            elif any(prefix_matches(prefix, fp, n) for fp, n in live_fps):
                continue  # a copy of a file we are reading (copytruncate, before the truncate)
            elif compressed:
                same = [
                    s
                    for s in self.states.values()
                    if not s.compressed and s.fp_len >= FP_MIN_CROSS and prefix_matches(prefix, s.fp, s.fp_len)
                ]
                if orphan is not None:
                    start = orphan.offset
                elif same:
                    start = max(s.offset for s in same)
                elif initial and self.cfg.start_at == "end":
                    start = -1
            elif initial and self.cfg.start_at == "end":
                start = st.st_size
            new = FileState(st.st_dev, st.st_ino, path, compressed=compressed, seen_at=now)
            self.states[key] = new
            self._dirty = True
            if start < 0:
                new.done = True
                continue
            new.offset = start
            new.fp_len = min(len(prefix), FP_BYTES)
            new.fp = _hash(prefix[: new.fp_len])
            if compressed or st.st_size > new.offset:
                self._open(new, spec)
        self.orphans = [o for o in self.orphans if now - o.since < ORPHAN_TTL_S]
        self._forget(now, found)
        SOURCE_FILES.labels(self.id).set(len(self.handles))

    def _open(self, state: FileState, spec: TailInput) -> None:
        try:
            self.handles[state.key] = _Handle(state, spec, self.cfg, state.offset)
        except (OSError, EOFError) as exc:
            self.status.error("file", f"cannot open {state.path}: {exc}")

    def _forget(self, now: float, found: dict[str, Any]) -> None:
        stale = [
            k
            for k, s in self.states.items()
            if k not in found and k not in self.handles and now - s.seen_at > self.cfg.forget_after_s
        ]
        for k in stale:
            del self.states[k]
            self._dirty = True
        if len(self.states) > MAX_STATES:
            for k, _ in sorted(self.states.items(), key=lambda kv: kv[1].seen_at)[: len(self.states) - MAX_STATES]:
                if k not in self.handles:
                    del self.states[k]

    # -- reading -----------------------------------------------------------------------

    def _record(self, h: _Handle, ev: Joined) -> dict[str, Any]:
        attrs: dict[str, Any] = {**h.spec.labels, "file.path": h.state.path, "file.offset": ev.start}
        if ev.lines > 1:
            attrs["multiline.lines"] = ev.lines
        if ev.truncated:
            attrs["truncated"] = "true"
        rec: dict[str, Any] = {"message": ev.text, "attributes": attrs, "host": h.spec.host or self.hostname}
        if h.spec.service:
            rec["service"] = h.spec.service
        return rec

    def _collect(self) -> tuple[list[dict[str, Any]], dict[str, int], list[str], int]:
        """Read into one batch: records, the end offset reached per file, files finished."""
        records: list[dict[str, Any]] = []
        ends: dict[str, int] = {}
        finished: list[str] = []
        size = 0
        cfg = self.cfg
        now = time.monotonic()
        order = list(self.handles.items())
        if order:  # start with a different file each cycle: a huge file must not starve the others
            self._turn = (self._turn + 1) % len(order)
            order = order[self._turn :] + order[: self._turn]
        for key, h in order:
            if len(records) >= cfg.batch_lines or size >= cfg.batch_bytes:
                break
            if not h.state.compressed:
                self._check_truncated(h)
            complete: list[Joined] = []
            while len(records) + len(complete) < cfg.batch_lines and size < cfg.batch_bytes:
                lines = h.read_lines(cfg.batch_bytes - size)
                if h.at_eof:
                    break
                for line in lines:
                    if not line.text.strip():
                        # Blank lines are not events; the offset passes them once nothing is pending.
                        if h.joiner.pending_start is None:
                            ends[key] = line.end
                        continue
                    for ev in h.joiner.push(line):
                        complete.append(ev)
                        size += len(ev.text) + 64
            if h.at_eof:
                idle = now - h.last_data
                gone = h.unmatched or (h.stat() or os.stat_result((0,) * 10)).st_nlink == 0
                ending = h.state.compressed or (gone and idle >= cfg.close_removed_s)
                if ending:
                    tail = h.partial()
                    if tail is not None and tail.text.strip():
                        complete.extend(h.joiner.push(tail))
                    complete.extend(h.joiner.flush())
                    h.finished = True
                    finished.append(key)
                    ends[key] = h.read_pos
                elif idle >= cfg.multiline_flush_s:
                    complete.extend(h.joiner.flush())
            for ev in complete:
                records.append(self._record(h, ev))
                ends[key] = max(ends.get(key, 0), ev.end)
        return records, ends, finished, size

    def step(self) -> bool:
        if not self._recovered:
            self._recover()
            if not self._recovered:
                return False
        if time.monotonic() >= self._next_scan:
            self.scan()
            self._next_scan = time.monotonic() + self.cfg.scan_s
        records, ends, finished, _ = self._collect()
        delivered = False
        if records:
            self.status.last_read_at = time.time()
            batch = Batch(uuid.uuid4().hex, f"tail:{self.id}", records)
            pending = {"id": batch.id, "ends": ends, "done": finished}
            self._save(pending)
            self.status.state = "running"

            def failed(exc: SinkError) -> None:
                self.status.error("sink", exc.message)
                self.status.state = "retrying"

            stored = send_with_retry(self.sink, batch, stopping=self.stopping.is_set, on_error=failed)
            if stored is None:
                return False  # stopping: the pending batch is resolved at the next start
            self.status.state = "running"
            self.status.last_ack_at = time.time()
            self.status.events_total += len(records)
            self.status.batches_total += 1
            SOURCE_EVENTS.labels(self.id).inc(len(records))
            delivered = True
        if ends or finished:
            for key, offset in ends.items():
                st = self.states.get(key)
                if st is not None:
                    st.offset = max(st.offset, offset)
                    self._grow_fingerprint(st)
            self._dirty = True
        self._close_idle(finished)
        if self._dirty or delivered:
            self._save()
        self.status.state = "running"
        self._update_lag()
        return delivered

    def _grow_fingerprint(self, st: FileState) -> None:
        if st.compressed or st.fp_len >= FP_BYTES:
            return
        h = self.handles.get(st.key)
        try:
            prefix = os.pread(h.fh.fileno(), FP_BYTES, 0) if h is not None else read_prefix(st.path, False)
        except OSError:
            return
        if len(prefix) > st.fp_len and prefix_matches(prefix, st.fp, st.fp_len):
            st.fp_len = len(prefix)
            st.fp = _hash(prefix)

    def _close_idle(self, finished: list[str]) -> None:
        now = time.monotonic()
        for key in finished:
            h = self.handles.pop(key)
            st = h.stat()
            if st is not None and st.st_nlink == 0:
                h.state.removed = True
            if h.state.compressed:
                h.state.done = True
            h.close()
            self._dirty = True
        for key, h in list(self.handles.items()):
            if (
                h.at_eof
                and h.joiner.pending_start is None
                and not h.buf
                and now - h.last_data >= self.cfg.close_inactive_s
            ):
                h.close()  # reopened by the scan when the file grows
                del self.handles[key]
        SOURCE_FILES.labels(self.id).set(len(self.handles))

    def _update_lag(self) -> None:
        lag = 0
        for h in self.handles.values():
            st = h.stat()
            if st is not None and not h.state.compressed:
                lag += max(0, st.st_size - h.state.offset)
        position = sum(s.offset for s in self.states.values())
        SOURCE_LAG_BYTES.labels(self.id).set(lag)
        SOURCE_POSITION.labels(self.id).set(position)
        if self.status.last_read_at:
            SOURCE_LAG_SECONDS.labels(self.id).set(0 if lag == 0 else time.time() - self.status.last_read_at)
        self.status.lag = {"bytes": lag}
        self.status.position = {
            "files": len(self.states),
            "open_files": len(self.handles),
            "bytes": position,
            "offsets": {s.path: s.offset for s in list(self.states.values())[:100]},
        }

    def close(self) -> None:
        for h in self.handles.values():
            h.close()
        self.handles.clear()
        self.sink.close()
