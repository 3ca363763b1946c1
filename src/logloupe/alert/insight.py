"""The insight summary a notification carries: cheap, local, never a remote call.

``InsightSummaries`` is the ``insight_lookup(tenant, pattern_id_hex, samples) -> str`` the alerts
module registers. It answers, in order:

1. when an LLM provider is configured (and the tenant's LLM policy allows it): the tenant's cached
   LLM insight for the pattern's template (``<data-dir>/cache/insights-<tenant>.json``, written by
   ``POST /api/v1/insights/explain``);
2. the offline knowledge base (``analyse.knowledge.FAMILIES``) matched against the pattern's
   template and the sample lines;
3. nothing (``""``): the notification then has no insight.

The text is fixed-format — ``<title>: <summary> Probable cause: <cause> Top fix: <fix>`` — and
never contains log text: the knowledge base's own wording, or the cached insight's fields with
whitespace collapsed and lengths capped. Channels escape it like every other field.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from logloupe.analyse.insights import InsightCache
from logloupe.analyse.knowledge import Family, match_families
from logloupe.analyse.llm import PROVIDERS, AnthropicProvider, HuggingFaceProvider, OpenAIProvider

log = logging.getLogger(__name__)

# (tenant, pattern id as 16 hex characters or "", sample lines) -> summary or ""
InsightLookup = Callable[[str, str, list[str]], str]
PatternLookup = Callable[[str, str], str]

MAX_CHARS = 600  # the whole summary
_PART_CHARS = 240  # one field of a cached insight
_MATCH_SAMPLES = 5  # sample lines matched against the knowledge base
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DEFAULT_MODELS = {
    "openai": OpenAIProvider.default_model,
    "anthropic": AnthropicProvider.default_model,
    "huggingface": HuggingFaceProvider.default_model,
}


def _clean(text: Any, limit: int = _PART_CHARS) -> str:
    """One line, bounded: a cached insight's field as a sentence fragment."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compose(title: str, summary: str, cause: str, fix: str) -> str:
    """``<title>: <summary> Probable cause: <cause> Top fix: <fix>`` (empty parts left out)."""
    parts = []
    head = _clean(summary)
    if title:
        head = f"{_clean(title, 80)}: {head}" if head else _clean(title, 80)
    if head:
        parts.append(head)
    if cause:
        parts.append(f"Probable cause: {_clean(cause)}")
    if fix:
        parts.append(f"Top fix: {_clean(fix)}")
    text = " ".join(parts)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def family_summary(family: Family) -> str:
    return compose(family.title, family.description, family.cause, family.fixes[0] if family.fixes else "")


def offline_summary(template: str, samples: Sequence[str]) -> str:
    """The knowledge base's summary for the first (most specific) family the text matches, or ""."""
    text = "\n".join([template, *samples[:_MATCH_SAMPLES]])
    families = match_families(text)
    return family_summary(families[0]) if families else ""


def cached_summary(entries: Sequence[dict[str, Any]]) -> str:
    """The first usable cached LLM insight (grounded ones first), or ""."""
    ordered = sorted(entries, key=lambda d: not d.get("grounded", True))
    for d in ordered:
        if not isinstance(d, dict) or not d.get("summary"):
            continue
        fixes = d.get("fixes") or []
        fix = fixes[0] if isinstance(fixes, list) and fixes else ""
        return compose(str(d.get("title", "")), str(d["summary"]), str(d.get("probable_cause", "")), str(fix))
    return ""


class InsightSummaries:
    """``insight_lookup`` for the alert engine: the cached LLM insight when there is one, else offline."""

    def __init__(
        self,
        data_dir: Path,
        *,
        provider: str = "offline",
        model: str = "",
        pattern_lookup: PatternLookup | None = None,
        llm_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.provider = provider if provider in PROVIDERS else "offline"
        self.model = model or _DEFAULT_MODELS.get(self.provider, "")
        self.pattern_lookup = pattern_lookup
        self.llm_allowed = llm_allowed
        self._lock = threading.Lock()
        self._caches: dict[str, tuple[float, InsightCache]] = {}  # tenant -> (file mtime, cache)

    def __call__(self, tenant: str, pattern_id: str, samples: list[str]) -> str:
        template = ""
        if pattern_id and self.pattern_lookup is not None:
            try:
                template = self.pattern_lookup(tenant, pattern_id) or ""
            except Exception:  # a missing pattern never blocks an alert
                log.exception("pattern lookup for an insight failed")
        if self.provider != "offline" and template and self._allowed(tenant):
            hit = self.cached(tenant, template)
            if hit:
                return hit
        return offline_summary(template, samples)

    def _allowed(self, tenant: str) -> bool:
        if self.llm_allowed is None:
            return True
        try:
            return self.llm_allowed(tenant)
        except Exception:  # no policy to read: the offline knowledge base
            log.exception("LLM policy lookup for an insight failed")
            return False

    def cached(self, tenant: str, template: str) -> str:
        """The tenant's cached LLM insight for this template; reads the file only when it changed."""
        if not _TENANT.fullmatch(tenant) or tenant in {".", ".."}:
            return ""
        path = self.data_dir / "cache" / f"insights-{tenant}.json"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return ""
        with self._lock:
            held = self._caches.get(tenant)
            if held is None or held[0] != mtime:
                try:
                    held = (mtime, InsightCache(path))
                except (OSError, ValueError):
                    log.warning("unreadable insight cache %s", path)
                    return ""
                self._caches[tenant] = held
            entries = held[1].get(template, self.provider, self.model)
        return cached_summary(entries) if isinstance(entries, list) else ""
