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

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from logloupe.errors import InvalidInput, NotFound
from logloupe.metrics import QUARANTINE_PRUNED

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

# -- accounts, tenants and access control (the auth area; operations in store/accounts.py) --

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("tenant", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("sources", sa.Text, nullable=False, default="[]"),
    sa.Column("created_by", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False),
)

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, default=""),
    sa.Column("created_by", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float, nullable=True),
    sa.Column("used_by", sa.String(32), nullable=True),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("identifier", sa.String(254), nullable=False, index=True),
    sa.Column("client", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("ok", sa.Boolean, nullable=False),
)

tenant_policies = sa.Table(
    "tenant_policies",
    metadata,
    sa.Column("tenant", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("ingest_rate_per_s", sa.Float, nullable=False, default=0.0),
    sa.Column("ingest_burst", sa.Integer, nullable=False, default=0),
    sa.Column("ingest_daily_bytes", sa.Integer, nullable=False, default=0),
    sa.Column("llm_allowed_providers", sa.Text, nullable=False, default="[]"),
    sa.Column("llm_masking_mode", sa.String(16), nullable=False, default="mask"),
)

ingest_usage = sa.Table(
    "ingest_usage",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("events", sa.Integer, nullable=False, default=0),
    sa.Column("bytes", sa.Integer, nullable=False, default=0),
)

# -- alerting (alert/store.py reads and writes these) --------------------------------------

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("severity", sa.String(32), nullable=False, default="warning"),
    sa.Column("channels", sa.Text, nullable=False, default="[]"),
    sa.Column("params", sa.Text, nullable=False, default="{}"),
    sa.Column("targets", sa.Text, nullable=False, default="{}"),
    sa.Column("origin", sa.String(16), nullable=False, default="api"),
    sa.Column("created_by", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("last_eval_at", sa.Float, nullable=True),
    sa.Column("last_eval_ms", sa.Float, nullable=True),
    sa.UniqueConstraint("tenant", "name"),
)

alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(32), nullable=False),
    sa.Column("rule_name", sa.String(200), nullable=False),
    sa.Column("rule_type", sa.String(32), nullable=False),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("matches", sa.Integer, nullable=False, default=0),
    sa.Column("suppressed", sa.Integer, nullable=False, default=0),
    sa.Column("payload", sa.Text, nullable=False, default="{}"),
    sa.Index("ix_alert_history_tenant_at", "tenant", "at"),
)

alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("history_id", sa.Integer, sa.ForeignKey("alert_history.id", ondelete="CASCADE"), index=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("target", sa.Text, nullable=False, default=""),
    sa.Column("result", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False, default=0.0),
)

alert_silences = sa.Table(
    "alert_silences",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("rule_id", sa.String(32), nullable=False, default=""),
    sa.Column("group_key", sa.Text, nullable=False, default=""),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("created_by", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
# Patterns: events carry a 64-bit pattern id (written by the template miner); this table holds
# what people say about a pattern. SQLite integers are signed, so ids are stored as signed 64-bit.
patterns = sa.Table(
    "patterns",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("service", sa.String(200), nullable=False, default=""),
    sa.Column("template", sa.Text, nullable=False, default=""),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Merged patterns: ``source`` is shown and searched as part of ``target``.
pattern_merges = sa.Table(
    "pattern_merges",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("source", sa.BigInteger, primary_key=True),
    sa.Column("target", sa.BigInteger, nullable=False, index=True),
    sa.Column("merged_at", sa.Float, nullable=False),
)

# Per-source parsing settings a tenant made through /api/v1/parsing/sources (parse/sources.py).
parsing_sources = sa.Table(
    "parsing_sources",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", sa.Float, nullable=False),
)


# Labels an LLM gave new patterns in the background (analyse/llm_patterns.py), when they beat the
# offline classifier's; later events of the pattern get them.
pattern_labels = sa.Table(
    "pattern_labels",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("pattern_id", sa.BigInteger, primary_key=True),
    sa.Column("label", sa.String(32), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("offline_label", sa.String(32), nullable=False),
    sa.Column("offline_confidence", sa.Float, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("labelled_at", sa.Float, nullable=False),
)


def _signed(pattern_id: int) -> int:
    return pattern_id - (1 << 64) if pattern_id >= 1 << 63 else pattern_id


def _unsigned(stored: int) -> int:
    return stored + (1 << 64) if stored < 0 else stored


def signed_pattern_id(pattern_id: int) -> int:
    """A 64-bit pattern id as SQLite's signed BIGINT stores it."""
    return _signed(pattern_id)


def unsigned_pattern_id(stored: int) -> int:
    return _unsigned(stored)


# Pull sources' positions (file offsets, CloudWatch timestamps, Azure windows), one JSON per source.
source_checkpoints = sa.Table(
    "source_checkpoints",
    metadata,
    sa.Column("source_id", sa.String(200), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
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
    # Later ones of the same kind, service and pattern within ``anomaly_repeat_s``: counted here,
    # not stored again (analyse/anomaly/live.py).
    sa.Column("repeats", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_anomalies_tenant_ts", "tenant", "ts"),
)

# Upload jobs (ingest/upload.py): progress survives a restart, and an unfinished job resumes from
# ``resume_line`` (the lines its buffered chunks covered) while its temporary file is still there.
ingest_jobs = sa.Table(
    "ingest_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("lines_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("parsed", sa.BigInteger, nullable=False, default=0),
    sa.Column("stored", sa.BigInteger, nullable=False, default=0),
    sa.Column("rejected", sa.BigInteger, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("path", sa.Text, nullable=False, default=""),  # the temporary file while the job runs
    sa.Column("resume_line", sa.BigInteger, nullable=False, default=0),
    sa.Column("updated_at", sa.Float, nullable=False),
)
INGEST_JOB_FIELDS = tuple(c.name for c in ingest_jobs.columns if c.name != "updated_at")

# Raw input kept in quarantine is cut to this size; the reason says so.
QUARANTINE_MAX_RAW = 16384
# The quarantine's size per tenant before its oldest items go (``MetaStore.prune_quarantine``).
QUARANTINE_MAX_BYTES = 256 * 1024 * 1024


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    def step(conn: Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return step


def _masking_off_to_keep(conn: Connection) -> None:
    # The masking mode "off" was renamed "keep" (mask | hash | keep, issue #3); reads map it too.
    conn.execute(
        tenant_policies.update().where(tenant_policies.c.llm_masking_mode == "off").values(llm_masking_mode="keep")
    )


def _anomaly_repeats(conn: Connection) -> None:
    # Tables created before the column existed get it; a table 0600 created from today's
    # definition already has it.
    if "repeats" not in {c["name"] for c in sa.inspect(conn).get_columns("anomalies")}:
        conn.execute(sa.text("ALTER TABLE anomalies ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0"))


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_tenants", _create(tenants)),
    ("0002_saved_searches", _create(saved_searches)),
    ("0003_quarantine", _create(quarantine)),
    ("0300_auth_users", _create(users, memberships)),
    ("0301_auth_api_keys", _create(api_keys)),
    ("0302_auth_tokens", _create(refresh_tokens, revoked_tokens)),
    ("0303_auth_invitations", _create(invitations)),
    ("0304_auth_login_attempts", _create(login_attempts)),
    ("0305_auth_tenant_policies", _create(tenant_policies, ingest_usage)),
    ("0400_alert_rules", _create(alert_rules)),
    ("0401_alert_history", _create(alert_history, alert_deliveries)),
    ("0402_alert_silences", _create(alert_silences)),
    ("0200_patterns", _create(patterns, pattern_merges)),
    ("0500_sources_checkpoints", _create(source_checkpoints)),
    ("0600_anomalies", _create(anomalies)),
    ("0100_ingest_jobs", _create(ingest_jobs)),
    ("0210_parsing_sources", _create(parsing_sources)),
    ("0620_analyse_pattern_labels", _create(pattern_labels)),
    ("0306_auth_masking_modes", _masking_off_to_keep),
    ("0630_anomaly_repeats", _anomaly_repeats),
]


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    retention_days: int


class MetaStore:
    def __init__(self, path: Path, *, quarantine_max_bytes: int = QUARANTINE_MAX_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

        @sa.event.listens_for(self.engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        self.migrate()
        self._retention_cache: dict[str, int] = {}
        self.quarantine_max_bytes = quarantine_max_bytes
        # Bytes quarantined per tenant since its last size check: a flood of bad input is cut back
        # to the cap every eighth of it, not only at the hourly sweep (``prune_quarantine``).
        self._quarantined_since_check: dict[str, int] = {}

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
        kept = [(reason, raw[:QUARANTINE_MAX_RAW]) for reason, raw in items]
        rows = [
            {"tenant": tenant, "received_at": now, "source": source, "reason": reason, "raw": raw}
            for reason, raw in kept
        ]
        with self.engine.begin() as conn:
            conn.execute(quarantine.insert(), rows)
        added = self._quarantined_since_check.get(tenant, 0) + sum(len(raw) + len(reason) for reason, raw in kept)
        if added > self.quarantine_max_bytes // 8:
            added = 0
            self.prune_quarantine(tenant)
        self._quarantined_since_check[tenant] = added

    def prune_quarantine(self, tenant: str, older_than: float | None = None) -> dict[str, int]:
        """Deletes the tenant's quarantined items received before ``older_than`` (epoch seconds; the
        retention sweep passes the tenant's retention), then its oldest items beyond
        ``quarantine_max_bytes`` (raw bytes plus reason). Counted in ``logloupe_quarantine_pruned_total``,
        so nothing leaves the quarantine unseen. Returns the counts by reason (``age``, ``size``)."""
        q = quarantine.c
        pruned = {"age": 0, "size": 0}
        with self.engine.begin() as conn:
            if older_than is not None:
                gone = conn.execute(sa.delete(quarantine).where(q.tenant == tenant, q.received_at < older_than))
                pruned["age"] = gone.rowcount or 0
            # newest first, the running size; the newest item past the cap and all older ones go
            running = sa.func.sum(sa.func.length(q.raw) + sa.func.length(q.reason)).over(
                order_by=q.id.desc(), rows=(None, 0)
            )
            sized = sa.select(q.id, running.label("acc")).where(q.tenant == tenant).subquery()
            cut = conn.execute(
                sa.select(sized.c.id)
                .where(sized.c.acc > self.quarantine_max_bytes)
                .order_by(sized.c.id.desc())
                .limit(1)
            ).scalar()
            if cut is not None:
                gone = conn.execute(sa.delete(quarantine).where(q.tenant == tenant, q.id <= cut))
                pruned["size"] = gone.rowcount or 0
        for reason, n in pruned.items():
            if n:
                QUARANTINE_PRUNED.labels(tenant, reason).inc(n)
        return pruned

    def list_quarantine(
        self, tenant: str, limit: int = 100, *, before: int | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first; ``before``: items older than that id (the previous page's last)."""
        query = sa.select(quarantine).where(quarantine.c.tenant == tenant)
        if before is not None:
            query = query.where(quarantine.c.id < before)
        if source:
            query = query.where(quarantine.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(quarantine.c.id.desc()).limit(limit)).all()
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

    def count_quarantine(self, tenant: str, source: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(quarantine).where(quarantine.c.tenant == tenant)
        if source:
            query = query.where(quarantine.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    # -- patterns: names and merges (the counts live in the event store) ----------------------

    def pattern_names(self, tenant: str) -> dict[int, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(patterns).where(patterns.c.tenant == tenant)).all()
        return {
            _unsigned(r.id): {"name": r.name, "template": r.template, "service": r.service, "created_at": r.created_at}
            for r in rows
        }

    def upsert_pattern(
        self, tenant: str, pattern_id: int, *, name: str | None = None, template: str | None = None, service: str = ""
    ) -> None:
        if name is not None and len(name) > 200:
            raise InvalidInput("a pattern name has at most 200 characters")
        key = (patterns.c.tenant == tenant) & (patterns.c.id == _signed(pattern_id))
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(patterns.c.id).where(key)).first()
            values = {k: v for k, v in (("name", name), ("template", template)) if v is not None}
            if row is None:
                conn.execute(
                    patterns.insert().values(
                        tenant=tenant,
                        id=_signed(pattern_id),
                        service=service,
                        template=values.get("template", ""),
                        name=values.get("name", ""),
                        created_at=time.time(),
                    )
                )
            elif values:
                conn.execute(patterns.update().where(key).values(**values))

    def add_patterns(self, rows: list[tuple[str, int, str, str]]) -> None:
        """New patterns found by the miner, (tenant, id, template, service), in one transaction: a
        stream of new patterns (unique one-token lines, say) must not cost a commit each."""
        if not rows:
            return
        latest = {(tenant, _signed(pid)): (template, service) for tenant, pid, template, service in rows}
        now = time.time()
        with self.engine.begin() as conn:
            existing: set[tuple[str, int]] = set()
            for tenant in {t for t, _ in latest}:
                ids = [i for t, i in latest if t == tenant]
                for first in range(0, len(ids), 500):  # bound the IN list
                    found = conn.execute(
                        sa.select(patterns.c.id).where(
                            (patterns.c.tenant == tenant) & patterns.c.id.in_(ids[first : first + 500])
                        )
                    ).all()
                    existing.update((tenant, r.id) for r in found)
            fresh = [
                {"tenant": t, "id": i, "service": svc, "template": tpl, "name": "", "created_at": now}
                for (t, i), (tpl, svc) in latest.items()
                if (t, i) not in existing
            ]
            if fresh:
                conn.execute(patterns.insert(), fresh)
            for t, i in existing:
                conn.execute(
                    patterns.update()
                    .where((patterns.c.tenant == t) & (patterns.c.id == i))
                    .values(template=latest[(t, i)][0])
                )

    def pattern_groups(self, tenant: str) -> dict[int, tuple[int, ...]]:
        """Surviving pattern id → the ids merged into it."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(pattern_merges).where(pattern_merges.c.tenant == tenant)).all()
        groups: dict[int, list[int]] = {}
        for r in rows:
            groups.setdefault(_unsigned(r.target), []).append(_unsigned(r.source))
        return {k: tuple(sorted(v)) for k, v in groups.items()}

    def merge_patterns(self, tenant: str, target: int, sources: list[int]) -> tuple[int, ...]:
        """Merge ``sources`` (and whatever was merged into them) into ``target``."""
        sources = [s for s in dict.fromkeys(sources) if s != target]
        if not sources:
            raise InvalidInput("merge needs at least two different pattern ids")
        now = time.time()
        with self.engine.begin() as conn:
            t = pattern_merges.c
            # A target that was itself merged away comes back as a surviving pattern.
            conn.execute(pattern_merges.delete().where((t.tenant == tenant) & (t.source == _signed(target))))
            for source in sources:
                conn.execute(
                    pattern_merges.update()
                    .where((t.tenant == tenant) & (t.target == _signed(source)))
                    .values(target=_signed(target), merged_at=now)
                )
                conn.execute(pattern_merges.delete().where((t.tenant == tenant) & (t.source == _signed(source))))
                conn.execute(
                    pattern_merges.insert().values(
                        tenant=tenant, source=_signed(source), target=_signed(target), merged_at=now
                    )
                )
        return self.pattern_groups(tenant).get(target, ())

    def split_pattern(self, tenant: str, target: int, members: list[int] | None = None) -> list[int]:
        """Undo merges into ``target`` (all, or the ``members`` named); return the ids split off."""
        current = self.pattern_groups(tenant).get(target, ())
        if not current:
            raise InvalidInput("this pattern has no merged patterns to split off")
        chosen = [m for m in current if members is None or m in members]
        if not chosen:
            raise InvalidInput("none of those ids is merged into this pattern")
        with self.engine.begin() as conn:
            t = pattern_merges.c
            for member in chosen:
                conn.execute(pattern_merges.delete().where((t.tenant == tenant) & (t.source == _signed(member))))
        return chosen

    # -- per-source parsing settings ------------------------------------------------------------

    def parsing_sources(self, tenant: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Tenant → its parsing source specs, in the order they are tried (one tenant or all)."""
        t = parsing_sources.c
        query = sa.select(t.tenant, t.spec).order_by(t.tenant, t.position, t.name)
        if tenant is not None:
            query = query.where(t.tenant == tenant)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(row.tenant, []).append(orjson.loads(row.spec))
        return out

    def put_parsing_source(self, tenant: str, spec: dict[str, Any], position: int | None = None) -> bool:
        """Create or replace the tenant's source named ``spec["name"]``; True when it is new."""
        t = parsing_sources.c
        text = orjson.dumps(spec).decode()
        with self.engine.begin() as conn:
            updated = conn.execute(
                parsing_sources.update()
                .where((t.tenant == tenant) & (t.name == spec["name"]))
                .values(spec=text, updated_at=time.time(), **({} if position is None else {"position": position}))
            )
            if updated.rowcount:
                return False
            if position is None:
                last = conn.execute(sa.select(sa.func.max(t.position)).where(t.tenant == tenant)).scalar()
                position = 0 if last is None else int(last) + 1
            conn.execute(
                parsing_sources.insert().values(
                    tenant=tenant, name=spec["name"], spec=text, position=position, updated_at=time.time()
                )
            )
        return True

    def delete_parsing_source(self, tenant: str, name: str) -> None:
        t = parsing_sources.c
        with self.engine.begin() as conn:
            result = conn.execute(parsing_sources.delete().where((t.tenant == tenant) & (t.name == name)))
        if result.rowcount == 0:
            raise NotFound(f"no parsing source {name!r}")

    # -- pull sources' checkpoints ----------------------------------------------------------

    def get_checkpoint(self, source_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(source_checkpoints.c.state).where(source_checkpoints.c.source_id == source_id)
            ).first()
        if row is None:
            return None
        value = orjson.loads(row.state)
        return value if isinstance(value, dict) else None

    def set_checkpoint(self, source_id: str, state: dict[str, Any]) -> None:
        text = orjson.dumps(state).decode()
        with self.engine.begin() as conn:
            updated = conn.execute(
                source_checkpoints.update()
                .where(source_checkpoints.c.source_id == source_id)
                .values(state=text, updated_at=time.time())
            )
            if updated.rowcount == 0:
                conn.execute(
                    source_checkpoints.insert().values(source_id=source_id, state=text, updated_at=time.time())
                )

    # -- upload jobs ------------------------------------------------------------------------

    def save_job(self, job: dict[str, Any]) -> None:
        """Insert or update one job row (``INGEST_JOB_FIELDS``)."""
        values = {k: job[k] for k in INGEST_JOB_FIELDS if k in job}
        values["updated_at"] = time.time()
        with self.engine.begin() as conn:
            updated = conn.execute(ingest_jobs.update().where(ingest_jobs.c.id == values["id"]).values(**values))
            if updated.rowcount == 0:
                conn.execute(ingest_jobs.insert().values(**values))

    def get_job(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(ingest_jobs).where((ingest_jobs.c.tenant == tenant) & (ingest_jobs.c.id == job_id))
            ).first()
        return {k: row._mapping[k] for k in INGEST_JOB_FIELDS} if row is not None else None

    def prune_jobs(self, finished_before: float) -> int:
        """Forget jobs that ended before ``finished_before`` (epoch seconds); return how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                ingest_jobs.delete().where(
                    (ingest_jobs.c.status != "running") & (ingest_jobs.c.finished_at < finished_before)
                )
            )
        return int(result.rowcount or 0)

    def jobs_with_status(self, status: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(ingest_jobs).where(ingest_jobs.c.status == status).order_by(ingest_jobs.c.created_at)
            ).all()
        return [{k: r._mapping[k] for k in INGEST_JOB_FIELDS} for r in rows]

    def close(self) -> None:
        self.engine.dispose()
