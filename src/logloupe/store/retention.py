"""Retention: rows carry their tenant's retention at insert (the TTL uses it); a shortened retention
is applied to rows already stored by a delete mutation, so old data is gone, not hidden."""

from __future__ import annotations

from logloupe.store.events import EventStore


def enforce_retention(store: EventStore, tenant: str, days: int, now_us: int) -> None:
    """Physically delete the tenant's events ingested more than ``days`` ago."""
    cutoff = now_us - days * 86_400_000_000
    store.execute(
        "ALTER TABLE events DELETE WHERE tenant = {tenant:String}"
        " AND observed_ts < fromUnixTimestamp64Micro({cutoff:Int64}, 'UTC') SETTINGS mutations_sync = 2",
        {"tenant": tenant, "cutoff": cutoff},
    )


def expire_now(store: EventStore) -> None:
    """Apply TTLs immediately rather than at the next background merge."""
    store.execute("ALTER TABLE events MATERIALIZE TTL SETTINGS mutations_sync = 2")
    store.optimize()
