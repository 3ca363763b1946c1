"""Docs are a contract: every setting, CLI command and API route is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.routing import Route

from logloupe.cli.main import main
from logloupe.serve.app import create_app
from logloupe.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert not missing, f"document these settings in docs/settings.md: {missing}"


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    documented = set(re.findall(r"^## logloupe ([\w-]+)", text, re.M))
    missing = sorted(set(main.commands) - documented)
    assert not missing, f"document these commands in docs/cli.md: {missing}"


def _flat(routes: list[Any]) -> Iterator[Any]:
    # FastAPI wraps included routers; their routes sit under ``original_router``.
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield r


def test_every_api_route_is_documented() -> None:
    # Path parameters may be named differently in prose ({id} vs {event_id}).
    text = re.sub(r"\{[^}]*\}", "{}", "\n".join(p.read_text() for p in DOCS.glob("*.md")))
    app = create_app(Settings(data_dir=Path("/nonexistent-not-opened")))
    paths = {re.sub(r"\{[^}]*\}", "{}", r.path) for r in _flat(app.routes) if isinstance(r, Route)}
    assert len(paths) > 10, "the route listing found too few routes to be trusted"
    missing = sorted(
        p for p in paths if p not in text and p not in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
    )
    assert not missing, f"document these routes in docs/*.md: {missing}"


def test_every_metric_is_documented() -> None:
    from logloupe.metrics import REGISTRY

    text = (DOCS / "metrics.md").read_text()
    names = {m.name for m in REGISTRY.collect()}
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"document these metrics in docs/metrics.md: {missing}"


def test_readme_links_point_at_existing_docs() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    links = set(re.findall(r"\]\((docs/[\w./-]+\.md)\)", readme))
    assert links, "the README links its docs"
    missing = sorted(link for link in links if not (DOCS.parent / link).exists())
    assert not missing, f"README links to missing docs: {missing}"
