"""Stored anomalies, per tenant: insert, list, fetch, feedback and a score timeline.

The ``anomalies`` table lives in ``meta.py`` (migration ``0600_anomalies``). Every read and write
takes the tenant, so one tenant never sees another's anomalies.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from logloupe.errors import NotFound
from logloupe.model import Anomaly, format_pattern_id, iso_micros, parse_pattern_id
from logloupe.store.meta import anomalies

VERDICTS = ("false_positive", "real")


@dataclass(frozen=True, slots=True)
class StoredAnomaly:
    id: str
    anomaly: Anomaly
    details: dict[str, Any]  # the explanation JSON: summary and the patterns behind it
    feedback: str
    created_at: float
    repeats: int = 0  # later ones of the same kind, service and pattern within anomaly_repeat_s

    def to_api(self) -> dict[str, Any]:
        a = self.anomaly
        pattern_ids = [format_pattern_id(p) for p in a.pattern_ids]
        searchable = [p["id"] for p in self.details.get("patterns", []) if p.get("source") == "pattern"]
        return {
            "id": self.id,
            "service": a.service,
            "kind": a.kind,
            "score": round(a.score, 4),
            "ts": iso_micros(a.ts_us),
            "explanation": self.details,
            "pattern_ids": pattern_ids,
            "event_ids": list(a.event_ids),
            "links": {
                "events": [f"/api/v1/events/{e}" for e in a.event_ids],
                "patterns": [f"/api/v1/search?q=pattern:{p}" for p in searchable],
            },
            "feedback": self.feedback,
            "created_at": self.created_at,
            "repeats": self.repeats,
        }


class AnomalyRecords:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(self, items: Sequence[tuple[Anomaly, dict[str, Any]]]) -> list[StoredAnomaly]:
        """Stores anomalies with their explanation JSON; one transaction for the lot."""
        if not items:
            return []
        now = time.time()
        stored = [StoredAnomaly(secrets.token_hex(8), a, details, "", now) for a, details in items]
        with self.engine.begin() as conn:
            conn.execute(
                anomalies.insert(),
                [
                    {
                        "id": s.id,
                        "tenant": s.anomaly.tenant,
                        "service": s.anomaly.service,
                        "kind": s.anomaly.kind,
                        "score": float(s.anomaly.score),
                        "ts": s.anomaly.ts_us,
                        "explanation": orjson.dumps(s.details).decode(),
                        "pattern_ids": orjson.dumps([format_pattern_id(p) for p in s.anomaly.pattern_ids]).decode(),
                        "event_ids": orjson.dumps(list(s.anomaly.event_ids)).decode(),
                        "feedback": "",
                        "created_at": now,
                    }
                    for s in stored
                ],
            )
        return stored

    def add_repeats(self, counts: dict[str, int]) -> None:
        """Adds to the repeat counts of stored anomalies (id -> how many more); one transaction."""
        if not counts:
            return
        with self.engine.begin() as conn:
            for anomaly_id, n in counts.items():
                conn.execute(
                    anomalies.update().where(anomalies.c.id == anomaly_id).values(repeats=anomalies.c.repeats + int(n))
                )

    def find(
        self,
        tenant: str,
        *,
        from_us: int | None = None,
        to_us: int | None = None,
        service: str | None = None,
        kind: str | None = None,
        min_score: float | None = None,
        limit: int = 100,
    ) -> list[StoredAnomaly]:
        """Newest first."""
        t = anomalies.c
        q = sa.select(anomalies).where(t.tenant == tenant)
        if from_us is not None:
            q = q.where(t.ts >= from_us)
        if to_us is not None:
            q = q.where(t.ts <= to_us)
        if service is not None:
            q = q.where(t.service == service)
        if kind is not None:
            q = q.where(t.kind == kind)
        if min_score is not None:
            q = q.where(t.score >= min_score)
        q = q.order_by(t.ts.desc(), t.created_at.desc(), t.id).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [_row(r) for r in rows]

    def get(self, tenant: str, anomaly_id: str) -> StoredAnomaly:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(anomalies).where(anomalies.c.tenant == tenant, anomalies.c.id == anomaly_id)
            ).first()
        if row is None:
            raise NotFound(f"no anomaly {anomaly_id!r}")
        return _row(row)

    def set_feedback(self, tenant: str, anomaly_id: str, verdict: str) -> StoredAnomaly:
        with self.engine.begin() as conn:
            result = conn.execute(
                anomalies.update()
                .where(anomalies.c.tenant == tenant, anomalies.c.id == anomaly_id)
                .values(feedback=verdict, feedback_at=time.time())
            )
        if result.rowcount == 0:
            raise NotFound(f"no anomaly {anomaly_id!r}")
        return self.get(tenant, anomaly_id)

    def with_feedback(self) -> list[StoredAnomaly]:
        """Every anomaly with a verdict, all tenants, in the order the verdicts were given (to
        replay them into a fresh detector at start-up)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(anomalies).where(anomalies.c.feedback != "").order_by(anomalies.c.feedback_at)
            ).all()
        return [_row(r) for r in rows]

    def timeline(
        self, tenant: str, *, from_us: int, to_us: int, step_s: int, service: str | None = None
    ) -> list[dict[str, Any]]:
        """Per service and bucket of ``step_s`` seconds: the highest score and the count."""
        t = anomalies.c
        step_us = step_s * 1_000_000
        bucket = (t.ts // sa.literal(step_us, sa.BigInteger)).label("b")
        q = (
            sa.select(t.service, bucket, sa.func.max(t.score).label("score"), sa.func.count().label("n"))
            .where(t.tenant == tenant, t.ts >= from_us, t.ts <= to_us)
            .group_by(t.service, bucket)
            .order_by(t.service, bucket)
        )
        if service is not None:
            q = q.where(t.service == service)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            {"service": r.service, "bucket": int(r.b), "max_score": float(r.score), "count": int(r.n)} for r in rows
        ]

    def bounds(self, tenant: str, service: str | None = None) -> tuple[int, int] | None:
        """Earliest and latest anomaly time of the tenant, or None when it has none."""
        t = anomalies.c
        q = sa.select(sa.func.min(t.ts), sa.func.max(t.ts)).where(t.tenant == tenant)
        if service is not None:
            q = q.where(t.service == service)
        with self.engine.connect() as conn:
            lo, hi = conn.execute(q).one()
        return None if lo is None else (int(lo), int(hi))


def _row(r: Any) -> StoredAnomaly:
    details: dict[str, Any] = orjson.loads(r.explanation)
    anomaly = Anomaly(
        r.tenant,
        r.service,
        r.kind,
        float(r.score),
        int(r.ts),
        str(details.get("summary", "")),
        tuple(parse_pattern_id(p) for p in orjson.loads(r.pattern_ids)),
        tuple(orjson.loads(r.event_ids)),
    )
    return StoredAnomaly(r.id, anomaly, details, r.feedback, float(r.created_at), int(r.repeats))
