"""Every route of the app — today's and those later modules register — needs credentials when auth
is on, and an ingest-only key reaches nothing but ingest paths. Routes are read from the app itself,
so a new endpoint that forgets ``get_principal`` fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Route

from logloupe.serve.app import create_app
from logloupe.serve.auth import GATED_PREFIXES, PUBLIC_PATHS, is_ingest_path
from logloupe.settings import Settings
from tests.auth.conftest import World


def _flat(routes: list[Any]) -> Iterator[Any]:
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield r


def _all_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(data_dir="/nonexistent-not-opened"))  # type: ignore[arg-type]
    found = set()
    for r in _flat(app.routes):
        if isinstance(r, Route):
            for m in r.methods or ():
                if m != "HEAD":
                    found.add((m, r.path))
    return sorted(found)


ROUTES = _all_routes()
NON_PUBLIC = [(m, p) for m, p in ROUTES if p not in PUBLIC_PATHS and p != "/healthz"]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x0000000000000000", path)


def test_the_route_list_is_read_from_the_app() -> None:
    assert ("POST", "/api/v1/logs") in ROUTES and ("GET", "/api/v1/search") in ROUTES
    assert len(NON_PUBLIC) >= 25


@pytest.mark.parametrize(("method", "path"), NON_PUBLIC, ids=[f"{m} {p}" for m, p in NON_PUBLIC])
def test_every_route_needs_credentials(world: World, method: str, path: str) -> None:
    r = world.client.request(method, _url(path), json={})
    if method == "GET" and not path.startswith(GATED_PREFIXES):
        # A UI shell may be public, but only as a page: never data.
        if r.status_code not in (401, 404):  # a missing static file is a 404 with no data
            assert r.headers["content-type"].split(";")[0] in ("text/html", "text/javascript", "text/css"), path
        return
    assert r.status_code == 401, f"{method} {path} answered {r.status_code} without credentials"


NOT_INGEST = [
    (m, p) for m, p in NON_PUBLIC if not is_ingest_path(p) and not (m == "GET" and not p.startswith(GATED_PREFIXES))
]


@pytest.mark.parametrize(("method", "path"), NOT_INGEST, ids=[f"{m} {p}" for m, p in NOT_INGEST])
def test_ingest_key_reaches_only_ingest_paths(world: World, method: str, path: str) -> None:
    r = world.client.request(method, _url(path), json={}, headers={"X-API-Key": world.keys["acme-ingest"]})
    assert r.status_code == 403, f"{method} {path} answered {r.status_code} to an ingest key"
