"""Docs are a contract: every setting, CLI command and API route is documented."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute

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


def test_every_api_route_is_documented() -> None:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    app = create_app(Settings(data_dir=Path("/nonexistent-not-opened")))
    paths = {r.path for r in app.routes if isinstance(r, APIRoute)}
    missing = sorted(p for p in paths if p not in text)
    assert not missing, f"document these routes in docs/*.md: {missing}"


def test_every_metric_is_documented() -> None:
    from logloupe.metrics import REGISTRY

    text = (DOCS / "metrics.md").read_text()
    names = {m.name for m in REGISTRY.collect()}
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"document these metrics in docs/metrics.md: {missing}"
