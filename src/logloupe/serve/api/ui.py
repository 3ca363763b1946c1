"""The browser UI: one HTML shell for every page under ``/app/``, and its static files.

Pages are plain ES modules in ``serve/ui/static/pages/``; the client-side router picks one by
the path. Nothing is fetched from anywhere else: the files ship inside the package.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from logloupe.errors import NotFound

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
STATIC_DIR = UI_DIR / "static"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
# The shell and its assets may be cached briefly but must be revalidated (ETag) after an upgrade.
_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
_SHELL_HEADERS = {
    **_CACHE,
    # Scripts only from this server; log text is never markup, and this is the second fence.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self';"
    " img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(tags=["ui"], include_in_schema=False)


# ``GET /`` lives in serve/api/elastic.py: Elasticsearch clients get cluster info there and
# browsers (Accept: text/html) are redirected to /app/discover.


@router.get("/app", summary="The UI shell")
@router.get("/app/{page:path}", summary="The UI shell: every page is routed in the browser")
def shell(page: str = "") -> Response:
    return FileResponse(UI_DIR / "index.html", media_type=_TYPES[".html"], headers=_SHELL_HEADERS)


@router.get("/static/{path:path}", summary="UI assets shipped in the package")
def static(path: str) -> Response:
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR) or not target.is_file() or target.suffix not in _TYPES:
        raise NotFound(f"no UI asset {path!r}")
    return FileResponse(target, media_type=_TYPES[target.suffix], headers=_CACHE)
