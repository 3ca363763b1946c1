"""`logloupe analyze` in-process: stream a file (or one line) through analysis, explain, render.

The lines are read as ingest reads an uploaded file (``analyse/reading.py``: format and header
detection, stack traces joined, the server's service and time rules), and each record's message is
mined per service by the server's template miner, so a pattern's id and template are the ones the
server would give the same lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx

from logloupe.analyse.anomaly.offline import FileAnomalies
from logloupe.analyse.classify import Classifier
from logloupe.analyse.grouping import open_lines
from logloupe.analyse.insights import Analysis, AnalysisResult, InsightCache, RecordHook, explain
from logloupe.analyse.knowledge import FeedbackStore
from logloupe.analyse.llm import PROVIDERS, provider_from_settings
from logloupe.analyse.llm_policy import resolve_llm_policy
from logloupe.analyse.reading import RecordReader, upload_service
from logloupe.analyse.report import render, report_dict
from logloupe.errors import InvalidInput
from logloupe.parse.patterns import PatternMiner
from logloupe.parse.records import Limits
from logloupe.parse.sources import rules_from
from logloupe.settings import Settings


def _with_progress(path: str, lines: Iterator[tuple[int, str]], enabled: bool) -> Iterator[tuple[int, str]]:
    """Lines, with a progress line on stderr (bytes of the file read; lines for stdin)."""
    if not enabled:
        yield from lines
        return
    size = os.path.getsize(path) if path != "-" else 0
    gz = path != "-" and path.endswith(".gz")
    done = 0
    every = 50_000
    for number, line in lines:
        done += len(line) + 1
        if number % every == 0:
            if size and not gz:
                pct = min(100.0, 100.0 * done / size)
                bar = "#" * int(pct / 5)
                sys.stderr.write(f"\ranalyse [{bar:<20}] {pct:5.1f}% {number:,} lines")
            else:
                sys.stderr.write(f"\ranalyse {number:,} lines")
            sys.stderr.flush()
        yield number, line
    sys.stderr.write("\ranalyse done" + " " * 40 + "\n")
    sys.stderr.flush()


def analyse_lines(
    lines: Iterable[tuple[int, str]],
    settings: Settings,
    tenant: str,
    classifier: Classifier,
    source: str = "upload:file",
    service: str = "",
    on_record: RecordHook | None = None,
    now_us: int | None = None,
) -> AnalysisResult:
    """``(line number, line)`` pairs → the analysis, through the ingest path's parsing and joining
    (the source's parsing options from ``parsing_sources``) and the server's template miner."""
    options = rules_from(settings.parsing_sources, {}).options_for(tenant, source, service)
    limits = Limits(
        settings.max_message_bytes,
        settings.max_attributes,
        settings.max_attribute_value_bytes,
        settings.max_nesting_depth,
    )
    now = now_us if now_us is not None else time.time_ns() // 1000
    reader = RecordReader(tenant=tenant, now_us=now, source=source, service=service, options=options, limits=limits)
    analysis = Analysis(classifier=classifier, miner=PatternMiner(), tenant=tenant)
    result = analysis.feed_records(reader.read(lines), on_record=on_record)
    result.events = result.total_lines
    result.total_lines = reader.lines
    return result


def run_analysis(
    target: str,
    settings: Settings,
    is_file: bool,
    fmt: str = "text",
    provider_name: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    budget_tokens: int | None = None,
    tenant: str | None = None,
    progress: bool = True,
    client: httpx.Client | None = None,
    llm_classify: bool = False,
    anomalies: bool = True,
    service: str | None = None,
) -> str:
    tenant = tenant or settings.default_tenant
    provider_name = provider_name or settings.llm_provider
    if provider_name not in PROVIDERS:
        raise InvalidInput(f"unknown provider {provider_name!r}; one of {', '.join(PROVIDERS)}")
    try:
        tenant, llm = resolve_llm_policy(settings, tenant, provider_name)
        classifier = Classifier.for_tenant(settings.data_dir, tenant)
        memory = FeedbackStore(settings.data_dir, tenant)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    provider_name = llm.provider
    if llm.note:
        sys.stderr.write(f"logloupe analyze: {llm.note}\n")
    if is_file:
        lines = _with_progress(target, open_lines(target), progress and sys.stderr.isatty())
        source = "stdin" if target == "-" else Path(target).name
        stream_service = upload_service(source) if service is None else service
    else:
        lines = iter([(1, target)])
        source = "one log line"
        stream_service = service or ""  # like one line posted to /api/v1/logs: the line names it
    found = FileAnomalies(tenant, threshold=settings.anomaly_threshold) if anomalies else None
    result = analyse_lines(
        lines,
        settings,
        tenant,
        classifier,
        f"upload:{source}",
        stream_service,
        on_record=found.add_record if found else None,
    )
    kept = found.finish() if found else []
    policy = llm.redaction
    budget = budget_tokens or settings.llm_budget_tokens
    own_client = None
    provider = None
    if provider_name != "offline":
        own_client = client or httpx.Client(timeout=settings.llm_timeout_s)
        provider = provider_from_settings(
            provider_name, own_client, settings, model=model or "", base_url=base_url or ""
        )
    try:
        if provider is not None and llm_classify:
            from logloupe.analyse.llm_classify import apply_llm_labels, llm_labels

            apply_llm_labels(result.patterns, llm_labels(result.patterns[:200], provider, budget // 2, policy))
        cache = InsightCache(settings.data_dir / "cache" / f"insights-{tenant}.json") if provider else None
        insights, usage = explain(
            result,
            provider,
            budget_tokens=budget,
            context_tokens=settings.llm_context_tokens,
            policy=policy,
            cache=cache,
            memory=memory,
        )
    finally:
        if own_client is not None and client is None:
            own_client.close()
    return render(
        fmt,
        report_dict(
            result,
            insights,
            usage,
            source,
            anomalies=kept,
            anomaly_count=found.found if found else 0,
            anomaly_detection=found is not None,
            anomaly_threshold=settings.anomaly_threshold,
            llm_policy=llm.to_dict(),
        ),
    )
