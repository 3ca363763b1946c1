"""``/login``: a small server-rendered sign-in page and its script (no inline script, strict CSP).

With auth off it explains single-user local mode instead of showing a form.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from logloupe.serve.deps import get_services
from logloupe.serve.services import Services

router = APIRouter(tags=["ui"], include_in_schema=False)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _asset(name: str) -> str:
    return resources.files("logloupe.serve.ui.login").joinpath(name).read_text(encoding="utf-8")


@router.get("/login", response_class=HTMLResponse)
def login_page(services: Annotated[Services, Depends(get_services)]) -> HTMLResponse:
    on = services.settings.auth_enabled
    html = _asset("login.html").replace("{{AUTH_ON_HIDDEN}}", "" if on else "hidden")
    html = html.replace("{{AUTH_OFF_HIDDEN}}", "hidden" if on else "")
    return HTMLResponse(html, headers={**_HEADERS, "Cache-Control": "no-store"})


@router.get("/login/login.js")
def login_js() -> Response:
    return Response(_asset("login.js"), media_type="text/javascript", headers=_HEADERS)


@router.get("/login/login.css")
def login_css() -> Response:
    return Response(_asset("login.css"), media_type="text/css", headers=_HEADERS)
