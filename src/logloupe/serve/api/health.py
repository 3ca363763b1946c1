"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from logloupe import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 when the server is ready to ingest and search")
def healthz(request: Request) -> Any:
    ready = bool(getattr(request.app.state, "ready", False))
    body = {"status": "ok" if ready else "starting", "version": __version__}
    return JSONResponse(body, status_code=200 if ready else 503)
