"""File upload: a multipart body streamed to a temp file (never whole in memory), then an ingest job
that reads it line by line (plain or gzip, detected by magic bytes) into the pipeline.

Progress is counted per job: lines read, parsed (became events), stored (in the store, searchable),
rejected (quarantined with the reason). ``JobRegistry`` runs the jobs and keeps each one in the
metadata store (``JobStore``, the ``ingest_jobs`` table): written when the job starts, after each
chunk is buffered, and when it ends. After a restart ``resume`` picks up every job that was still
running: it reads its temporary file again from the line after the last buffered chunk.
"""

from __future__ import annotations

import gzip
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from python_multipart.multipart import MultipartParser, parse_options_header

from logloupe.errors import InvalidInput, PayloadTooLarge, TooManyRequests
from logloupe.ingest.bodies import HEAD_BYTES

log = logging.getLogger(__name__)

CHUNK_LINES = 5000
JOB_KEEP_S = 30 * 86400  # finished jobs are forgotten this long after they ended (at the next start)


@dataclass
class Upload:
    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


async def receive_multipart(chunks: AsyncIterator[bytes], content_type: str, limit: int, directory: Path) -> Upload:
    """Stream a multipart/form-data body; the part named ``file`` goes to a temp file under ``directory``."""
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidInput("upload a file as multipart/form-data with a part named 'file'")
    directory.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", delete=False)  # noqa: SIM115
    state: dict[str, Any] = {"headers": {}, "field": b"", "name": "", "filename": None, "value": bytearray()}
    fields: dict[str, str] = {}
    found: dict[str, Any] = {"file": False, "filename": "", "size": 0}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        key = state["field"].lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end() -> None:
        state["field"] = b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        fn = disp.get(b"filename")
        state["filename"] = fn.decode("utf-8", "replace") if fn is not None else None
        if state["name"] == "file":
            found["file"] = True
            found["filename"] = state["filename"] or "upload"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["name"] == "file":
            out.write(data[start:end])
            found["size"] += end - start
        elif len(state["value"]) < 4096:
            state["value"] += data[start:end]

    def on_part_end() -> None:
        if state["name"] != "file" and state["name"]:
            fields[state["name"]] = bytes(state["value"]).decode("utf-8", "replace")[:1024]
        state.update(headers={}, field=b"", name="", filename=None, value=bytearray())

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    total = 0
    head = bytearray()  # the body's start, for the quarantine if it is refused
    try:
        async for chunk in chunks:
            total += len(chunk)
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            if total > limit:
                raise PayloadTooLarge(f"upload larger than {limit} bytes", head=bytes(head), limit_bytes=limit)
            parser.write(chunk)
        parser.finalize()
    except Exception as exc:
        out.close()
        Path(out.name).unlink(missing_ok=True)
        if isinstance(exc, PayloadTooLarge):
            raise
        raise InvalidInput(f"unreadable multipart body: {exc}") from None
    out.close()
    if not found["file"]:
        Path(out.name).unlink(missing_ok=True)
        raise InvalidInput("the upload has no part named 'file'")
    return Upload(Path(out.name), Path(found["filename"]).name, found["size"], fields)


@dataclass
class Job:
    id: str
    tenant: str
    filename: str
    size_bytes: int
    service: str
    status: str = "running"  # running, done, failed
    lines_read: int = 0
    parsed: int = 0
    stored: int = 0
    rejected: int = 0
    error: str = ""
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    path: str = ""  # the temporary file while the job runs (not shown)
    resume_line: int = 0  # lines covered by the chunks already buffered (not shown)

    def to_api(self) -> dict[str, Any]:
        body = asdict(self)
        for private in ("tenant", "path", "resume_line"):
            body.pop(private)
        return body


class JobStore(Protocol):
    """Where jobs are kept across restarts (``MetaStore`` implements it)."""

    def save_job(self, job: dict[str, Any]) -> None: ...

    def get_job(self, tenant: str, job_id: str) -> dict[str, Any] | None: ...

    def jobs_with_status(self, status: str) -> list[dict[str, Any]]: ...

    def prune_jobs(self, finished_before: float) -> int: ...


# (tenant, source, service, records, lines, place) → end position; ``place`` is the chunk's last line
# number in the file (with the chunk's content it names the input: the same file uploaded again, or a
# chunk sent again after a restart, gets the same event ids). A future-returning waiter for that position.
AppendBatch = Callable[[str, str, str, list[bytes], list[bytes], int], int]
WaitStored = Callable[[int], Any]
Quarantine = Callable[[str, str, list[tuple[str, bytes]]], None]


class JobRegistry:
    def __init__(
        self,
        append: AppendBatch,
        wait_stored: WaitStored,
        quarantine: Quarantine,
        max_line: int,
        store: JobStore | None = None,
        written: Callable[[], int] | None = None,
    ) -> None:
        self.append = append
        self.wait_stored = wait_stored
        self.quarantine = quarantine
        self.max_line = max_line
        self.store = store
        self.written = written  # the buffer's end now: what a resumed job's earlier chunks wait for
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, tenant: str, upload: Upload, service: str) -> Job:
        job = Job(secrets.token_hex(8), tenant, upload.filename, upload.size, service, path=str(upload.path))
        with self._lock:
            self.jobs[job.id] = job
        self._save(job)
        threading.Thread(target=self._run, args=(job, upload.path), name=f"upload-{job.id}", daemon=True).start()
        return job

    def get(self, tenant: str, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None and self.store is not None:
            row = self.store.get_job(tenant, job_id)
            job = Job(**row) if row is not None else None
        return job if job is not None and job.tenant == tenant else None

    def resume(self) -> list[Job]:
        """Restart the jobs a stopped server left running, from their last buffered chunk."""
        if self.store is None:
            return []
        try:
            self.store.prune_jobs(time.time() - JOB_KEEP_S)
        except Exception:
            log.exception("could not prune old upload jobs")
        resumed = []
        for row in self.store.jobs_with_status("running"):
            job = Job(**row)
            if job.id in self.jobs:
                continue
            path = Path(job.path)
            if not job.path or not path.exists():
                job.status, job.error = "failed", "the server stopped and the uploaded file is gone"
                job.finished_at = time.time()
                self._save(job)
                continue
            # Counters as of the last buffered chunk; lines up to ``resume_line`` are read again, not sent.
            job.lines_read, already = 0, job.parsed
            job.stored = 0
            with self._lock:
                self.jobs[job.id] = job
            earlier = []  # the chunks buffered before the restart: stored once the buffer has replayed
            if already and self.written is not None:
                earlier.append(self._count_stored(job, self.wait_stored(self.written()), already))
            threading.Thread(target=self._run, args=(job, path, earlier), name=f"upload-{job.id}", daemon=True).start()
            resumed.append(job)
        return resumed

    def _save(self, job: Job) -> None:
        if self.store is None:
            return
        try:
            self.store.save_job(asdict(job))
        except Exception:  # progress is informative: never fail the ingest over it
            log.exception("could not save upload job %s", job.id)

    def _count_stored(self, job: Job, fut: Any, n: int) -> Any:
        def done(_f: Any) -> None:
            with self._lock:
                job.stored += n

        fut.add_done_callback(done)
        return fut

    def _run(self, job: Job, path: Path, earlier: list[Any] | None = None) -> None:
        pending: list[Any] = list(earlier or [])
        skip = job.resume_line
        try:
            with path.open("rb") as raw:
                magic = raw.read(2)
                raw.seek(0)
                stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw  # type: ignore[assignment]
                records: list[bytes] = []
                lines: list[bytes] = []
                for line in self._lines(stream, job, skip):
                    if line[:1] == b"{":
                        try:
                            value = orjson.loads(line)
                        except orjson.JSONDecodeError:
                            value = None
                        if isinstance(value, dict):
                            records.append(orjson.dumps(value))
                        else:
                            lines.append(line)
                    else:
                        lines.append(line)
                    if len(records) + len(lines) >= CHUNK_LINES:
                        pending.append(self._flush(job, records, lines))
                        records, lines = [], []
                if records or lines:
                    pending.append(self._flush(job, records, lines))
            for fut in pending:
                fut.result(timeout=600)
            with self._lock:  # every chunk is in the store (a callback may not have counted it yet)
                job.stored = job.parsed
            job.status = "done"
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            job.status, job.error = "failed", f"unreadable file: {exc}"
            self.quarantine(job.tenant, "upload", [(job.error, job.filename.encode())])
        except Exception as exc:
            log.exception("upload job %s failed", job.id)
            job.status, job.error = "failed", str(exc)[:300]
        finally:
            if job.status != "running":
                job.finished_at = time.time()
                self._save(job)
                path.unlink(missing_ok=True)

    def _lines(self, stream: IO[bytes], job: Job, skip: int = 0) -> Any:
        while True:
            line = stream.readline(self.max_line)
            if not line:
                return
            job.lines_read += 1
            if not line.endswith(b"\n"):  # longer than the limit: keep the head, skip the rest
                while True:
                    more = stream.readline(self.max_line)
                    if not more or more.endswith(b"\n"):
                        break
            if job.lines_read <= skip:  # a resumed job: buffered before the restart
                continue
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            if b"\x00" in line and not line.replace(b"\x00", b"").strip():
                job.rejected += 1
                self.quarantine(job.tenant, "upload", [(f"line {job.lines_read}: only NUL bytes", line[:1024])])
                continue
            yield line

    def _flush(self, job: Job, records: list[bytes], lines: list[bytes]) -> Any:
        n = len(records) + len(lines)
        while True:
            try:
                end = self.append(job.tenant, f"upload:{job.filename}", job.service, records, lines, job.lines_read)
                break
            except TooManyRequests as exc:  # the buffer is full: wait like any client would
                time.sleep(min(float(exc.retry_after_s), 2.0))
        # Saved before it shows: whoever sees this progress (GET /api/v1/jobs) sees what a restart resumes
        # from. A crash between the append above and this save sends the chunk once more on resume: the
        # same input again, stored once.
        self._save(replace(job, parsed=job.parsed + n, resume_line=job.lines_read))
        job.parsed += n
        job.resume_line = job.lines_read
        return self._count_stored(job, self.wait_stored(end), n)
