"""Upload jobs survive a restart: progress is kept in the metadata store, an unfinished job resumes."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, wait_http
from tests.ingest.conftest import start_server, stop

LINES = 40_000


def _job(url: str, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/api/v1/jobs/{job_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _total(url: str, q: str) -> int:
    r = httpx.get(f"{url}/api/v1/search", params={"q": q, "limit": 0}, timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def test_upload_job_resumes_after_sigkill_and_its_progress_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    path = tmp_path / "resume.log"
    path.write_bytes(b"".join(b"INFO resumejob line %06d of the upload\n" % i for i in range(LINES)))

    # A slow tenant rate (the file is ~1.6 MB) keeps the job running long enough to kill it mid-way.
    proc = start_server(data, port, LOGLOUPE_INGEST_RATE_BYTES_S="200000", LOGLOUPE_INGEST_BURST_BYTES="250000")
    try:
        wait_http(f"{url}/healthz")
        with path.open("rb") as f:
            r = httpx.post(f"{url}/api/v1/upload", files={"file": (path.name, f)}, timeout=60)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while _job(url, job_id)["parsed"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = _job(url, job_id)
        assert before["status"] == "running" and 0 < before["parsed"] < LINES, before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    proc = start_server(data, port, LOGLOUPE_INGEST_RATE_BYTES_S="0")
    try:
        wait_http(f"{url}/healthz")
        deadline = time.monotonic() + 90
        job = _job(url, job_id)
        while job["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            job = _job(url, job_id)
        assert job["status"] == "done", job
        assert job["lines_read"] == LINES and job["parsed"] == LINES and job["stored"] == LINES, job
        assert job["rejected"] == 0 and job["filename"] == "resume.log"
        # Every line is searchable; the chunks buffered before the kill were not sent again.
        assert _total(url, "resumejob") == LINES
        assert not list((data / "uploads").glob("upload-*"))  # the temporary file is gone once done
    finally:
        stop(proc)

    proc = start_server(data, port)
    try:
        wait_http(f"{url}/healthz")
        again = _job(url, job_id)  # the progress is read back from the metadata store
        analysis = ("patterns", "insights")  # computed again from the events after the restart
        assert {k: v for k, v in again.items() if k not in analysis} == {
            k: v for k, v in job.items() if k not in analysis
        }
        assert [p["id"] for p in again["patterns"]] == [p["id"] for p in job["patterns"]]
        assert httpx.get(f"{url}/api/v1/jobs/{'0' * 16}", timeout=10).status_code == 404
    finally:
        stop(proc)


def test_finished_jobs_are_pruned_running_ones_kept(tmp_path: Path) -> None:
    from logloupe.store.meta import MetaStore

    meta = MetaStore(tmp_path / "meta.db")
    base = {"tenant": "t", "filename": "f.log", "size_bytes": 1, "service": "f", "created_at": 1.0}
    meta.save_job({**base, "id": "old", "status": "done", "finished_at": 100.0})
    meta.save_job({**base, "id": "recent", "status": "failed", "finished_at": 300.0})
    meta.save_job({**base, "id": "running", "status": "running", "finished_at": None})
    assert meta.prune_jobs(200.0) == 1
    assert meta.get_job("t", "old") is None
    assert meta.get_job("t", "recent") is not None and meta.get_job("t", "running") is not None
    assert meta.get_job("other", "recent") is None  # a tenant sees only its own jobs
    meta.close()
