"""What a running server holds: settings, the stores, the writer. One per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logloupe.pipeline.writer import StoreWriter
from logloupe.settings import Settings
from logloupe.store.events import EventStore
from logloupe.store.meta import MetaStore


@dataclass
class Services:
    settings: Settings
    store: EventStore
    meta: MetaStore
    writer: StoreWriter
    # Stages added by later modules (pattern miner, detectors, alerting) register here by name.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        meta = MetaStore(settings.data_dir / "meta.db")
        meta.ensure_tenant(settings.default_tenant, retention_days=settings.retention_days)
        store = EventStore(settings.data_dir, query_timeout_s=settings.query_timeout_s)
        writer = StoreWriter(
            store,
            batch_rows=settings.writer_batch_rows,
            flush_ms=settings.writer_flush_ms,
            queue_events=settings.writer_queue_events,
            retention_days=lambda tenant: meta.retention_days(tenant, settings.retention_days),
        )
        return cls(settings, store, meta, writer)

    def close(self) -> None:
        self.writer.close()
        self.store.close()
        self.meta.close()
