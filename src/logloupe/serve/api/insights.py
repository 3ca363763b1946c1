"""Explain a pattern, an event or an anomaly: evidence from the store, an insight streamed as SSE.

``POST /api/v1/insights/explain`` gathers a bounded sample of the tenant's events (those of the
pattern, those around the event, or the anomaly's evidence), groups them by their stored pattern
ids, and explains them with the configured provider (``llm_*`` settings; the offline knowledge
base by default) through ``logloupe.analyse.insights``. The answer is ``text/event-stream``:
``meta`` (what is explained), ``delta`` frames (the text as the LLM writes it, or the offline
text in pieces), then ``insight`` (the final JSON, citations checked against the sample and
pointed at event ids) and ``done``. Insights are kept per tenant (the last ``KEEP``) for
``GET /api/v1/insights`` and feedback; feedback goes to the tenant's ``FeedbackStore``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from logloupe.analyse.classify import Classifier
from logloupe.analyse.grouping import FallbackMiner
from logloupe.analyse.insights import (
    SYSTEM_PROMPT,
    Analysis,
    AnalysisResult,
    Insight,
    InsightCache,
    PatternStats,
    Usage,
    attach_past_incidents,
    build_prompts,
    explain,
    explain_offline,
    ground_reply,
    merge_insights,
    parse_reply,
    select_patterns,
)
from logloupe.analyse.knowledge import Feedback, FeedbackStore
from logloupe.analyse.llm import PROVIDERS, LLMError, Provider, provider_from_settings
from logloupe.analyse.redact import RedactionPolicy, tenant_redaction
from logloupe.analyse.tokens import count_tokens
from logloupe.errors import BadRequest, LogLoupeError, NotFound
from logloupe.model import LogEvent, format_pattern_id, iso_micros
from logloupe.serve.api.patterns import pattern_id as parse_pid
from logloupe.serve.api.search import scope_for
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.accounts import Accounts
from logloupe.store.anomalies import AnomalyRecords
from logloupe.store.search import context, get_event, search

router = APIRouter(prefix="/api/v1/insights", tags=["insights"])

MAX_EVENTS = 200  # the bounded sample one explanation looks at
MAX_PATTERNS = 8  # patterns explained per request
KEEP = 100  # insights kept per tenant for the list and feedback
_LOCK = threading.Lock()
_ID = re.compile(r"[0-9a-f]{16}")


class ExplainBody(BaseModel):
    pattern_id: str | None = Field(default=None, description="Explain this pattern (16 hex characters)")
    event_id: str | None = Field(default=None, description="Explain this event and its neighbours")
    anomaly_id: str | None = Field(default=None, description="Explain this anomaly from its evidence")
    from_: str | None = Field(default=None, alias="from", description="Start of the range (pattern events)")
    to: str | None = Field(default=None, description="End of the range")

    model_config = {"populate_by_name": True}


class FeedbackBody(BaseModel):
    verdict: Literal["helpful", "wrong", "fixed"] | None = Field(
        default=None, description="helpful, wrong or fixed; fixed when only fixed_by is given"
    )
    fixed_by: str = Field(default="", max_length=2000, description='What fixed it ("fixed by …")')


# --- evidence ------------------------------------------------------------------------------------


def _line(e: LogEvent) -> str:
    first = e.message.split("\n", 1)[0]
    return f"{iso_micros(e.ts_us)} {e.level.name} {e.service}: {first}"


class _StoredGrouper:
    """Group by the pattern id the store already holds; the fallback miner for events without one."""

    def __init__(self, templates: dict[int, dict[str, Any]]) -> None:
        self.templates = templates
        self.fallback = FallbackMiner()
        self.current: LogEvent | None = None

    def __call__(self, line: str) -> tuple[int, str]:
        e = self.current
        if e is None or not e.pattern_id:
            return self.fallback(line.split(": ", 1)[-1])
        template = str(self.templates.get(e.pattern_id, {}).get("template") or "")
        return e.pattern_id, template or self.fallback(e.message.split("\n", 1)[0])[1]


def _analyse(services: Services, tenant: str, events: list[LogEvent]) -> AnalysisResult:
    grouper = _StoredGrouper(services.meta.pattern_names(tenant))
    try:
        classifier = Classifier.for_tenant(services.settings.data_dir, tenant)
    except ValueError:
        classifier = Classifier.default()
    analysis = Analysis(grouper, classifier)
    for n, e in enumerate(events, start=1):
        grouper.current = e
        analysis.add(n, _line(e))
    return analysis.result()


def _dedup(events: list[LogEvent]) -> list[LogEvent]:
    seen: dict[str, LogEvent] = {}
    for e in events:
        seen.setdefault(e.id, e)
    return sorted(seen.values(), key=lambda e: (e.ts_us, e.uid))[:MAX_EVENTS]


def _gather(
    services: Services, principal: Principal, body: ExplainBody
) -> tuple[dict[str, Any], list[LogEvent], list[int]]:
    """The subject, the sample of events, and the pattern ids to explain first."""
    given = [k for k in ("pattern_id", "event_id", "anomaly_id") if getattr(body, k)]
    if len(given) != 1:
        raise BadRequest("give exactly one of pattern_id, event_id, anomaly_id")
    tenant = principal.tenant
    if body.pattern_id:
        pid = parse_pid(body.pattern_id)
        scope = scope_for(services, principal, f"pattern:{format_pattern_id(pid)}", body.from_, body.to)
        found = search(services.store, scope, limit=MAX_EVENTS)
        if not found.events:
            raise NotFound(f"no events of pattern {format_pattern_id(pid)}")
        subject = {"kind": "pattern", "id": format_pattern_id(pid), "events_total": found.total}
        return subject, _dedup(found.events), [pid]
    if body.event_id:
        around = context(services.store, tenant, body.event_id.strip(), before=25, after=25)
        event: LogEvent = around["event"]
        events = [*around["before"], event, *around["after"]]
        subject = {"kind": "event", "id": event.id, "message": event.message[:500]}
        return subject, _dedup(events), [event.pattern_id] if event.pattern_id else []
    anomaly = AnomalyRecords(services.meta.engine).get(tenant, str(body.anomaly_id).strip())
    events = []
    for eid in anomaly.anomaly.event_ids[:50]:
        try:
            events.append(get_event(services.store, tenant, eid))
        except NotFound:
            continue  # expired since
    pids = list(anomaly.anomaly.pattern_ids[:5])
    for pid in pids:
        scope = scope_for(services, principal, f"pattern:{format_pattern_id(pid)}", body.from_, body.to)
        events += search(services.store, scope, limit=40).events
    if not events:
        raise NotFound(f"anomaly {anomaly.id} has no stored evidence left")
    subject = {
        "kind": "anomaly",
        "id": anomaly.id,
        "service": anomaly.anomaly.service,
        "anomaly_kind": anomaly.anomaly.kind,
        "summary": str(anomaly.details.get("summary", ""))[:500],
    }
    return subject, _dedup(events), pids


def _selected(result: AnalysisResult, first: list[int]) -> list[PatternStats]:
    by_id = result.by_id()
    chosen = [by_id[format_pattern_id(p)] for p in first if format_pattern_id(p) in by_id]
    if not chosen and result.patterns:  # e.g. an event without a stored pattern id
        chosen = [result.patterns[0]]
    for p in select_patterns(result, MAX_PATTERNS):
        if p not in chosen and len(chosen) < MAX_PATTERNS:
            chosen.append(p)
    return chosen


# --- providers -----------------------------------------------------------------------------------


def _policy(services: Services, principal: Principal) -> tuple[str, RedactionPolicy, str]:
    """Provider name, masking policy, and a note when the tenant's LLM policy overrode settings."""
    s = services.settings
    provider = s.llm_provider if s.llm_provider in PROVIDERS else "offline"
    note = ""
    tp = Accounts(services.meta).policy(principal.tenant)
    # The masking mode applies in every mode (its default, "mask", is what local mode always did); the
    # provider allow-list only where there are tenants to keep apart.
    if "principal_resolver" in services.extras and provider != "offline" and provider not in tp.llm_allowed_providers:
        note = f"{provider} is not allowed by this tenant's LLM policy"
        provider = "offline"
    try:
        policy = tenant_redaction(s.data_dir, principal.tenant, tp.llm_masking_mode, ip_addresses=s.redact_ip_addresses)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return provider, policy, note


def _frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def render_text(insights: list[Insight]) -> str:
    """The plain text the UI shows while the final JSON is on its way."""
    parts = []
    for i in insights:
        fixes = "\n".join(f"- {f}" for f in i.fixes)
        parts.append(f"{i.title}\n\n{i.summary}\n\nProbable cause: {i.probable_cause}\n\nFixes:\n{fixes}\n")
    return "\n".join(parts) or "Nothing to explain in these events.\n"


def _pieces(text: str, words: int = 6) -> Iterator[str]:
    tokens = re.split(r"(?<=\s)", text)
    for k in range(0, len(tokens), words):
        yield "".join(tokens[k : k + words])


def _stream_llm(
    provider: Provider,
    selected: list[PatternStats],
    result: AnalysisResult,
    services: Services,
    policy: RedactionPolicy,
    cache: InsightCache,
    insights: list[Insight],
    usage: Usage,
) -> Iterator[bytes]:
    """Each prompt chunk streamed from the provider as ``delta`` frames, then parsed and grounded."""
    s = services.settings
    by_id = result.by_id()
    chunks, omitted = build_prompts(selected, s.llm_budget_tokens, s.llm_context_tokens, policy)
    usage.patterns_omitted = len(omitted)
    for extra in explain_offline(omitted, result):
        extra.source += " (over token budget)"
        insights.append(extra)
    for chunk in chunks:
        pieces: list[str] = []
        try:
            for piece in provider.stream(SYSTEM_PROMPT, chunk.user, 1200):
                pieces.append(piece)
                yield _frame("delta", {"text": piece})
            text = "".join(pieces)
            items = parse_reply(text)
        except (LLMError, ValueError) as exc:
            reason = exc.message if isinstance(exc, LLMError) else f"unusable reply: {exc}"
            fallback = explain_offline(chunk.patterns, result)
            for f in fallback:
                f.source += f" (fallback: {reason[:120]})"
            insights += fallback
            yield _frame("delta", {"text": "\n\n" + render_text(fallback), "reset": True})
            continue
        insights += ground_reply(items, chunk, provider, usage, chunk.tokens, count_tokens(text), by_id, cache)
    cache.save()


# --- storage of recent insights ------------------------------------------------------------------


def _store_path(services: Services, tenant: str) -> Path:
    FeedbackStore(services.settings.data_dir, tenant)  # validates the tenant name
    return services.settings.data_dir / "insights" / f"{tenant}.json"


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return rows


def _save(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows[-KEEP:]), encoding="utf-8")
    tmp.replace(path)


def _public(i: Insight, events: list[LogEvent], by_id: dict[str, PatternStats]) -> dict[str, Any]:
    """An insight for the API: citations re-checked and pointed at event ids of the sample."""
    d = i.to_dict()
    cites = []
    for c in i.citations:
        if c.pattern_id not in by_id:
            continue
        cited = [events[n - 1] for n in c.lines if 1 <= n <= len(events)]
        cites.append(
            {
                "pattern_id": c.pattern_id,
                "event_ids": [e.id for e in cited],
                "lines": c.lines,
                "verified": c.verified and bool(cited),
                # The range that holds the cited events, so a link can open Discover on them.
                "from": iso_micros(min(e.ts_us for e in cited) - 1_000_000) if cited else None,
                "to": iso_micros(max(e.ts_us for e in cited) + 1_000_000) if cited else None,
            }
        )
    d["citations"] = cites
    d["grounded"] = i.grounded and any(c["verified"] for c in cites)
    return d


def _final(
    subject: dict[str, Any],
    provider: str,
    note: str,
    insights: list[Insight],
    usage: Usage,
    events: list[LogEvent],
    result: AnalysisResult,
) -> dict[str, Any]:
    by_id = result.by_id()
    items = [_public(i, events, by_id) for i in insights]
    head = items[0] if items else {}
    citations: list[dict[str, Any]] = []
    for item in items:
        citations += [c for c in item["citations"] if c not in citations]
    cited = {c["pattern_id"] for c in citations}
    return {
        "id": secrets.token_hex(8),
        "created": iso_micros(time.time_ns() // 1000),
        "subject": subject,
        "provider": provider,
        "note": note,
        "title": head.get("title", "Nothing to explain"),
        "summary": head.get("summary", ""),
        "cause": head.get("probable_cause", ""),
        "fixes": head.get("fixes", []),
        "confidence": head.get("confidence", 0.0),
        "grounded": bool(head.get("grounded", False)),
        "citations": citations,
        "insights": items,
        "patterns": [
            {"id": p.id, "template": p.template, "count": p.count, "label": p.label}
            for p in result.patterns
            if p.id in cited
        ],
        "events_considered": len(events),
        "usage": usage.to_dict(),
        "feedback": [],
    }


# --- routes --------------------------------------------------------------------------------------


@router.post(
    "/explain",
    summary="Explain a pattern, an event or an anomaly; server-sent events: meta, delta…, insight, done",
    response_class=StreamingResponse,
)
def explain_route(
    body: ExplainBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> StreamingResponse:
    # Everything that can fail with a 4xx happens before the stream starts.
    subject, events, first = _gather(services, principal, body)
    provider_name, policy, note = _policy(services, principal)
    result = _analyse(services, principal.tenant, events)
    selected = _selected(result, first)
    memory = FeedbackStore(services.settings.data_dir, principal.tenant)
    path = _store_path(services, principal.tenant)
    s = services.settings

    def stream() -> Iterator[bytes]:
        try:
            yield from explained()
        except LogLoupeError as exc:  # after the headers: said in the stream, not as a status
            yield _frame("error", {"code": exc.code, "message": exc.message})

    def explained() -> Iterator[bytes]:
        yield _frame(
            "meta",
            {"subject": subject, "provider": provider_name, "events": len(events), "patterns": len(selected)},
        )
        insights: list[Insight] = []
        usage = Usage()
        if provider_name == "offline":
            insights, usage = explain(result, None, policy=policy, memory=memory, patterns=selected)
            for piece in _pieces(render_text(insights)):
                yield _frame("delta", {"text": piece})
        else:
            client = httpx.Client(timeout=s.llm_timeout_s)
            try:
                provider = provider_from_settings(provider_name, client, s)
                cache = InsightCache(s.data_dir / "cache" / f"insights-{principal.tenant}.json")
                if all(cache.get(p.template, provider.name, provider.model) for p in selected):
                    insights, usage = explain(
                        result, provider, policy=policy, cache=cache, memory=memory, patterns=selected
                    )
                    for piece in _pieces(render_text(insights)):
                        yield _frame("delta", {"text": piece})
                else:
                    yield from _stream_llm(provider, selected, result, services, policy, cache, insights, usage)
                    insights = merge_insights(insights)
                    attach_past_incidents(insights, result, memory)
            finally:
                client.close()
        # The insight about the subject's own pattern first: it is what was asked about.
        mine = {format_pattern_id(p) for p in first}
        insights.sort(key=lambda i: not any(c.pattern_id in mine for c in i.citations))
        final = _final(subject, provider_name, note, insights, usage, events, result)
        with _LOCK:
            rows = _load(path)
            rows.append(final)
            _save(path, rows)
        yield _frame("insight", final)
        yield _frame("done", {"id": final["id"]})

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.get("", summary="The tenant's recent insights, newest first")
def list_insights(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    limit: Annotated[int, Query(ge=1, le=KEEP)] = 50,
) -> dict[str, Any]:
    rows = _load(_store_path(services, principal.tenant))
    return {"items": list(reversed(rows))[:limit]}


@router.get("/{insight_id}", summary="One stored insight")
def get_insight(
    insight_id: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    for row in _load(_store_path(services, principal.tenant)):
        if row.get("id") == insight_id:
            return row
    raise NotFound(f"no insight with id {insight_id!r}")


@router.post("/{insight_id}/feedback", summary="Helpful, wrong, or fixed by …: stored in the tenant's memory")
def feedback(
    insight_id: str,
    body: FeedbackBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    verdict = body.verdict or ("fixed" if body.fixed_by.strip() else None)
    if verdict is None:
        raise BadRequest("give a verdict (helpful, wrong, fixed) or fixed_by text")
    if verdict == "fixed" and not body.fixed_by.strip():
        raise BadRequest("a 'fixed' verdict needs fixed_by: what fixed it")
    path = _store_path(services, principal.tenant)
    memory = FeedbackStore(services.settings.data_dir, principal.tenant)
    with _LOCK:
        rows = _load(path)
        row = next((r for r in rows if r.get("id") == insight_id), None)
        if row is None:
            raise NotFound(f"no insight with id {insight_id!r}")
        templates = {p["id"]: p["template"] for p in row.get("patterns", [])}
        stored = []
        for pid in [c["pattern_id"] for c in row.get("citations", [])][:5] or [""]:
            if pid and not _ID.fullmatch(pid):
                continue
            fb = Feedback(pid, templates.get(pid, row.get("title", "")), verdict, body.fixed_by.strip()[:2000])
            memory.add(fb)
            stored.append(pid)
        entry = {
            "verdict": verdict,
            "fixed_by": body.fixed_by.strip()[:2000],
            "user": principal.user,
            "at": time.time(),
        }
        row.setdefault("feedback", []).append(entry)
        _save(path, rows)
    return {"id": insight_id, "verdict": verdict, "patterns": stored, "feedback": row["feedback"]}


def offline_insights(services: Services, tenant: str, events: list[LogEvent]) -> list[dict[str, Any]]:
    """Knowledge-base insights (no LLM, nothing leaves the machine) about these events, citing them:
    what a finished upload job shows next to its patterns."""
    sample = _dedup(events)
    result = _analyse(services, tenant, sample)
    by_id = result.by_id()
    return [_public(i, sample, by_id) for i in explain_offline(select_patterns(result, MAX_PATTERNS), result)]
