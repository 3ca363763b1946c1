"""Metadata (tenants, saved searches, and later users, keys, rules, checkpoints, patterns) in SQLite.

SQLAlchemy Core keeps the SQL portable so PostgreSQL can take over later. Schema changes are
registered migrations, applied in order and recorded by name in ``schema_migrations``:
append to ``MIGRATIONS``, never edit one that has shipped.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from logloupe.errors import InvalidInput, NotFound

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("retention_days", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

saved_searches = sa.Table(
    "saved_searches",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("time_from", sa.String(64), nullable=False, default=""),
    sa.Column("time_to", sa.String(64), nullable=False, default=""),
    sa.Column("created_by", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("tenant", "name"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
)

# Anomalies at or above the threshold (store/anomalies.py reads and writes them).
anomalies = sa.Table(
    "anomalies",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),  # microseconds since the epoch, UTC
    sa.Column("explanation", sa.Text, nullable=False),  # JSON
    sa.Column("pattern_ids", sa.Text, nullable=False),  # JSON list of 16-hex ids
    sa.Column("event_ids", sa.Text, nullable=False),  # JSON list of event ids
    sa.Column("feedback", sa.String(32), nullable=False, default=""),
    sa.Column("feedback_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_anomalies_tenant_ts", "tenant", "ts"),
)

# Raw input kept in quarantine is cut to this size; the reason says so.
QUARANTINE_MAX_RAW = 16384


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    def step(conn: Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return step


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_tenants", _create(tenants)),
    ("0002_saved_searches", _create(saved_searches)),
    ("0003_quarantine", _create(quarantine)),
    ("0600_anomalies", _create(anomalies)),
]


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    retention_days: int


class MetaStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

        @sa.event.listens_for(self.engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        self.migrate()
        self._retention_cache: dict[str, int] = {}

    def migrate(self) -> list[str]:
        applied = []
        with self.engine.begin() as conn:
            schema_migrations.create(conn, checkfirst=True)
            done = {r.name for r in conn.execute(sa.select(schema_migrations.c.name))}
            for name, step in MIGRATIONS:
                if name in done:
                    continue
                step(conn)
                conn.execute(schema_migrations.insert().values(name=name, applied_at=time.time()))
                applied.append(name)
        return applied

    # -- tenants ----------------------------------------------------------------------

    def ensure_tenant(self, tenant_id: str, *, name: str | None = None, retention_days: int = 30) -> Tenant:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).first()
            if row is None:
                conn.execute(
                    tenants.insert().values(
                        id=tenant_id,
                        name=name or tenant_id,
                        retention_days=retention_days,
                        created_at=time.time(),
                    )
                )
                return Tenant(tenant_id, name or tenant_id, retention_days)
            return Tenant(row.id, row.name, row.retention_days)

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).first()
        if row is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return Tenant(row.id, row.name, row.retention_days)

    def list_tenants(self) -> list[Tenant]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tenants).order_by(tenants.c.id)).all()
        return [Tenant(r.id, r.name, r.retention_days) for r in rows]

    def set_retention(self, tenant_id: str, days: int) -> None:
        if not 1 <= days <= 3650:
            raise InvalidInput("retention_days must be between 1 and 3650")
        with self.engine.begin() as conn:
            conn.execute(tenants.update().where(tenants.c.id == tenant_id).values(retention_days=days))
        self._retention_cache.pop(tenant_id, None)

    def retention_days(self, tenant_id: str, default: int = 30) -> int:
        cached = self._retention_cache.get(tenant_id)
        if cached is None:
            try:
                cached = self.get_tenant(tenant_id).retention_days
            except NotFound:
                cached = default
            self._retention_cache[tenant_id] = cached
        return cached

    # -- saved searches -----------------------------------------------------------------

    def save_search(
        self, tenant: str, name: str, query: str, time_from: str = "", time_to: str = "", created_by: str = ""
    ) -> dict[str, Any]:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("a saved search needs a name of 1 to 200 characters")
        item = {
            "id": secrets.token_hex(8),
            "tenant": tenant,
            "name": name.strip(),
            "query": query,
            "time_from": time_from,
            "time_to": time_to,
            "created_by": created_by,
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(saved_searches.c.id).where(
                    saved_searches.c.tenant == tenant, saved_searches.c.name == item["name"]
                )
            ).first()
            if existing:
                item["id"] = existing.id
                conn.execute(
                    saved_searches.update()
                    .where(saved_searches.c.id == existing.id)
                    .values(query=query, time_from=time_from, time_to=time_to)
                )
            else:
                conn.execute(saved_searches.insert().values(**item))
        return item

    def list_saved_searches(self, tenant: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(saved_searches).where(saved_searches.c.tenant == tenant).order_by(saved_searches.c.name)
            ).all()
        return [dict(r._mapping) for r in rows]

    def delete_saved_search(self, tenant: str, search_id: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                saved_searches.delete().where(saved_searches.c.tenant == tenant, saved_searches.c.id == search_id)
            )
        if result.rowcount == 0:
            raise NotFound(f"no saved search {search_id!r}")

    # -- quarantine: rejected input, kept visible with its reason -------------------------

    def quarantine(self, tenant: str, source: str, items: list[tuple[str, bytes]]) -> None:
        if not items:
            return
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                quarantine.insert(),
                [
                    {
                        "tenant": tenant,
                        "received_at": now,
                        "source": source,
                        "reason": reason,
                        "raw": raw[:QUARANTINE_MAX_RAW],
                    }
                    for reason, raw in items
                ],
            )

    def list_quarantine(self, tenant: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(quarantine).where(quarantine.c.tenant == tenant).order_by(quarantine.c.id.desc()).limit(limit)
            ).all()
        return [
            {
                "id": r.id,
                "received_at": r.received_at,
                "source": r.source,
                "reason": r.reason,
                "raw": r.raw.decode("utf-8", "replace"),
            }
            for r in rows
        ]

    def close(self) -> None:
        self.engine.dispose()
