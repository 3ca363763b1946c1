"""What a running server holds: settings, the stores, the writer. One per process."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from logloupe import metrics
from logloupe.model import EventColumns, LogEvent
from logloupe.parse.patterns import PatternMatch
from logloupe.parse.sources import rules_from
from logloupe.pipeline.enrich import Enricher
from logloupe.pipeline.writer import StoreWriter
from logloupe.settings import Settings
from logloupe.store.events import EventStore
from logloupe.store.meta import MetaStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: EventStore
    meta: MetaStore
    writer: StoreWriter
    enricher: Enricher
    # Stages added by later modules (pattern miner, detectors, alerting) register here by name.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        meta = MetaStore(settings.data_dir / "meta.db", quarantine_max_bytes=settings.quarantine_max_bytes)
        meta.ensure_tenant(settings.default_tenant, retention_days=settings.retention_days)
        try:  # a bad [[parsing_sources]] table stops the start, before the event store is opened
            rules = rules_from(settings.parsing_sources, meta.parsing_sources())
        except Exception:
            meta.close()
            raise
        store = EventStore(
            settings.data_dir, query_timeout_s=settings.query_timeout_s, block_cache_mb=settings.store_block_cache_mb
        )
        writer = StoreWriter(
            store,
            batch_rows=settings.writer_batch_rows,
            flush_ms=settings.writer_flush_ms,
            queue_events=settings.writer_queue_events,
            retention_days=lambda tenant: meta.retention_days(tenant, settings.retention_days),
        )
        enricher = Enricher(settings.data_dir / "patterns" / "miner.json", data_dir=settings.data_dir)
        metrics.PATTERN_MINER.watch(enricher.miner_stats)  # logloupe_patterns_* at scrape time
        services = cls(settings, store, meta, writer, enricher)

        def remember(new: list[tuple[LogEvent, PatternMatch]]) -> None:
            # The patterns table gives the UI and alerts each pattern's template and service.
            meta.add_patterns([(e.tenant, m.pattern_id, m.template, e.service) for e, m in new])

        enricher.batch_listeners.append(remember)
        # The ingest pipeline runs this on every decoded batch before it is stored.
        services.extras["event_stage"] = EnrichStage(services)
        # ...and the store writer on what is written to it directly (demo, CLI, in-process sources).
        writer.stage = services.enrich
        services.extras["pattern_lookup"] = services.pattern_template
        # Per-source parsing settings, before any source or listener starts (serve/api/parsing.py reloads them).
        services.extras["source_rules"] = rules
        return services

    def enrich(self, events: Sequence[LogEvent]) -> list[LogEvent]:
        """Pattern id, variables and class for each event (in place); saves the miner now and then."""
        self.enricher.enrich(events)
        self._save_miner()
        return list(events)

    def enrich_columns(self, events: EventColumns) -> None:
        """``enrich`` on column lists (the ingest pipeline's batches from its decoder processes)."""
        self.enricher.enrich_columns(events)
        self._save_miner()

    def _save_miner(self) -> None:
        try:
            self.enricher.save_if_dirty(200_000)
        except OSError:
            log.exception("could not save the pattern miner's state")

    def pattern_template(self, tenant: str, pattern_id_hex: str) -> str:
        try:
            pid = int(pattern_id_hex, 16)
        except ValueError:
            return ""
        found = self.meta.pattern_names(tenant).get(pid)
        return str(found["name"] or found["template"]) if found else ""

    def close(self) -> None:
        try:
            self.enricher.save()
        except OSError:
            log.exception("could not save the pattern miner's state")
        self.writer.close()
        self.store.close()
        self.meta.close()


class EnrichStage:
    """The ingest pipeline's ``event_stage``: ``Services.enrich`` on events, and on column lists
    (``columns``, which the pipeline calls for the batches its decoder processes decoded, so that
    no ``LogEvent`` is built per event there)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, events: list[LogEvent]) -> list[LogEvent]:
        return self.services.enrich(events)

    def columns(self, events: EventColumns) -> None:
        self.services.enrich_columns(events)
