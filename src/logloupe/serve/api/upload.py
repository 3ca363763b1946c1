"""File upload: ``POST /api/v1/upload`` (multipart, plain or .gz, streamed to disk) creates an ingest
job; ``GET /api/v1/jobs/{id}`` reports its progress, also after a restart (jobs are kept in the
metadata store, and unfinished ones resume). Once a job is done it also shows its analysis: the
patterns of the file's events (source ``upload:<file name>``) and offline insights about them."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from logloupe.errors import NotFound, PayloadTooLarge
from logloupe.ingest.upload import Job, JobRegistry, receive_multipart
from logloupe.model import input_key
from logloupe.pipeline.decode import encode_entry
from logloupe.serve.api.logs import pipeline_of, quarantine_too_large
from logloupe.serve.auth import require_ingest
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.patterns import list_patterns
from logloupe.store.query import phrase
from logloupe.store.search import Scope, now_us, search

router = APIRouter(tags=["ingest"])

JOB_PATTERNS = 20  # patterns a finished job lists, commonest first
JOB_SAMPLE = 2000  # events of the job the insights look at (errors first)
ANALYSES_KEPT = 200  # finished jobs whose analysis is remembered
_ANALYSES_LOCK = threading.Lock()


def jobs_of(services: Services) -> JobRegistry:
    registry: JobRegistry | None = services.extras.get("upload_jobs")
    if registry is None:
        pipeline = pipeline_of(services)

        def append(tenant: str, source: str, service: str, records: list[bytes], lines: list[bytes], place: int) -> int:
            key = input_key("file", source, service, str(place), b"\n".join(records), b"\n".join(lines))
            payload = encode_entry(tenant, source, records, lines, service=service, observed_us=now_us(), key=key)
            return pipeline.append(tenant, payload, len(records) + len(lines), block_s=5.0)

        registry = JobRegistry(
            append,
            pipeline.wait_stored,
            services.meta.quarantine,
            services.settings.max_message_bytes * 2,
            store=services.meta,
            written=lambda: pipeline.buffer.written,
        )
        services.extras["upload_jobs"] = registry
    return registry


def setup(services: Services) -> None:
    """Resume the upload jobs a stopped server left running (their files are still on disk)."""
    jobs_of(services).resume()


@router.post("/api/v1/upload", status_code=202, summary="Upload a log file (multipart field 'file'; plain or .gz)")
async def upload(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> JSONResponse:
    try:
        received = await receive_multipart(
            request.stream(),
            request.headers.get("content-type", ""),
            services.settings.upload_max_bytes,
            services.settings.data_dir / "uploads",
        )
    except PayloadTooLarge as exc:  # 413, and the file's start in the quarantine
        await quarantine_too_large(services, principal, "upload", exc)
        raise
    name = received.filename
    stem = name[:-3] if name.endswith(".gz") else name
    service = received.fields.get("service") or stem.rsplit(".", 1)[0] or "upload"
    job = jobs_of(services).start(principal.tenant, received, service)
    return JSONResponse(job.to_api(), status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"})


@router.get("/api/v1/jobs/{job_id}", summary="Progress of an ingest job")
def get_job(
    job_id: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    job = jobs_of(services).get(principal.tenant, job_id)
    if job is None:
        raise NotFound(f"no ingest job {job_id!r}")
    body = job.to_api()
    if job.status == "done":
        body.update(job_analysis(services, principal.tenant, job))
    return body


def job_analysis(services: Services, tenant: str, job: Job) -> dict[str, Any]:
    """The finished job's patterns and offline insights, computed once and remembered (the events
    do not change once the job is done; retention may remove them later)."""
    cache: dict[tuple[str, str], dict[str, Any]] = services.extras.setdefault("job_analyses", {})
    key = (tenant, job.id)
    with _ANALYSES_LOCK:
        found = cache.get(key)
    if found is not None:
        return found
    from logloupe.serve.api.insights import offline_insights

    q = f"source:{phrase('upload:' + job.filename)}"
    groups = services.meta.pattern_groups(tenant)
    scope = Scope(tenant, q=q, pattern_groups=groups)
    patterns = list_patterns(
        services.store, scope, groups=groups, names=services.meta.pattern_names(tenant), limit=JOB_PATTERNS
    )["patterns"]
    for p in patterns:  # a trend and "new" are about a time range; a job is about its file
        p.pop("trend", None)
        p.pop("new", None)
    errors = search(services.store, Scope(tenant, q=f"{q} AND level:>=WARN", pattern_groups=groups), limit=JOB_SAMPLE)
    events = errors.events or search(services.store, scope, limit=JOB_SAMPLE).events
    analysis = {"patterns": patterns, "insights": offline_insights(services, tenant, events) if events else []}
    with _ANALYSES_LOCK:
        if len(cache) >= ANALYSES_KEPT:
            cache.pop(next(iter(cache)))
        cache[key] = analysis
    return analysis
