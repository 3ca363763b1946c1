"""Alert rules, history, deliveries and silences in the metadata database (tables in store/meta.py)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from logloupe.alert.notification import Notification
from logloupe.alert.rules import PARAMS, Rule, RuleSpec, Targets
from logloupe.errors import InvalidInput, NotFound
from logloupe.store.meta import alert_deliveries, alert_history, alert_rules, alert_silences

HISTORY_STATES = ("firing", "resolved", "suppressed", "silenced")


def _row_to_rule(r: Any) -> Rule:
    return Rule(
        id=r.id,
        tenant=r.tenant,
        name=r.name,
        type=r.type,
        params=PARAMS[r.type].model_validate(orjson.loads(r.params)),
        channels=list(orjson.loads(r.channels)),
        severity=r.severity,
        enabled=bool(r.enabled),
        targets=Targets.model_validate(orjson.loads(r.targets)),
        origin=r.origin,
        created_by=r.created_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
        last_eval_at=r.last_eval_at,
        last_eval_ms=r.last_eval_ms,
    )


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- rules ------------------------------------------------------------------------------

    def list_rules(self, tenant: str | None = None, *, enabled_only: bool = False) -> list[Rule]:
        query = sa.select(alert_rules).order_by(alert_rules.c.tenant, alert_rules.c.name)
        if tenant is not None:
            query = query.where(alert_rules.c.tenant == tenant)
        if enabled_only:
            query = query.where(alert_rules.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [_row_to_rule(r) for r in conn.execute(query)]

    def get_rule(self, tenant: str, rule_id: str) -> Rule:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(alert_rules).where(alert_rules.c.tenant == tenant, alert_rules.c.id == rule_id)
            ).first()
        if row is None:
            raise NotFound(f"no alert rule {rule_id!r}")
        return _row_to_rule(row)

    def find_rule(self, tenant: str, name: str) -> Rule | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(alert_rules).where(alert_rules.c.tenant == tenant, alert_rules.c.name == name)
            ).first()
        return None if row is None else _row_to_rule(row)

    def create_rule(self, tenant: str, spec: RuleSpec, *, origin: str = "api", created_by: str = "") -> Rule:
        params = spec.validated_params()
        if self.find_rule(tenant, spec.name) is not None:
            raise InvalidInput(f"an alert rule named {spec.name!r} exists already", name=spec.name)
        now = time.time()
        rule_id = secrets.token_hex(8)
        row = {
            "id": rule_id,
            "tenant": tenant,
            "name": spec.name,
            "type": spec.type,
            "enabled": spec.enabled,
            "severity": spec.severity,
            "channels": orjson.dumps(list(spec.channels)).decode(),
            "params": orjson.dumps(params.model_dump()).decode(),
            "targets": orjson.dumps(spec.targets.model_dump()).decode(),
            "origin": origin,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(alert_rules.insert().values(**row))
        return self.get_rule(tenant, rule_id)

    def update_rule(self, tenant: str, rule_id: str, spec: RuleSpec) -> Rule:
        current = self.get_rule(tenant, rule_id)
        params = spec.validated_params()
        other = self.find_rule(tenant, spec.name)
        if other is not None and other.id != rule_id:
            raise InvalidInput(f"an alert rule named {spec.name!r} exists already", name=spec.name)
        targets = spec.targets.merged(current.targets)
        with self.engine.begin() as conn:
            conn.execute(
                alert_rules.update()
                .where(alert_rules.c.tenant == tenant, alert_rules.c.id == rule_id)
                .values(
                    name=spec.name,
                    type=spec.type,
                    enabled=spec.enabled,
                    severity=spec.severity,
                    channels=orjson.dumps(list(spec.channels)).decode(),
                    params=orjson.dumps(params.model_dump()).decode(),
                    targets=orjson.dumps(targets.model_dump()).decode(),
                    updated_at=time.time(),
                )
            )
        return self.get_rule(tenant, rule_id)

    def delete_rule(self, tenant: str, rule_id: str) -> str:
        """Deletes a rule; a default rule is disabled instead, so start-up does not recreate it."""
        rule = self.get_rule(tenant, rule_id)
        with self.engine.begin() as conn:
            where = (alert_rules.c.tenant == tenant) & (alert_rules.c.id == rule_id)
            if rule.origin == "default":
                conn.execute(alert_rules.update().where(where).values(enabled=False, updated_at=time.time()))
                return "disabled"
            conn.execute(alert_rules.delete().where(where))
        return "deleted"

    def upsert_rule(self, tenant: str, spec: RuleSpec, *, origin: str) -> Rule:
        existing = self.find_rule(tenant, spec.name)
        if existing is None:
            return self.create_rule(tenant, spec, origin=origin, created_by=origin)
        if existing.origin in (origin, "default"):  # the file may reconfigure the default rules
            return self.update_rule(tenant, existing.id, spec)
        return existing

    def record_evaluation(self, rule_id: str, at: float, took_ms: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                alert_rules.update().where(alert_rules.c.id == rule_id).values(last_eval_at=at, last_eval_ms=took_ms)
            )

    # -- history ----------------------------------------------------------------------------

    def add_history(self, n: Notification, state: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                alert_history.insert().values(
                    tenant=n.tenant,
                    rule_id=n.rule_id,
                    rule_name=n.rule_name,
                    rule_type=n.rule_type,
                    group_key=n.group_key,
                    state=state,
                    at=n.at,
                    title=n.title,
                    matches=n.matches,
                    suppressed=n.suppressed,
                    payload=orjson.dumps(n.to_json()).decode(),
                )
            )
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def update_suppressed(self, history_id: int, suppressed: int, matches: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                alert_history.update()
                .where(alert_history.c.id == history_id)
                .values(suppressed=suppressed, matches=matches)
            )

    def add_delivery(
        self,
        history_id: int,
        tenant: str,
        channel: str,
        target: str,
        result: str,
        attempts: int,
        error: str = "",
        duration_ms: float = 0.0,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                alert_deliveries.insert().values(
                    history_id=history_id,
                    tenant=tenant,
                    channel=channel,
                    target=target,
                    result=result,
                    attempts=attempts,
                    error=error[:1000],
                    at=time.time(),
                    duration_ms=duration_ms,
                )
            )

    def history(
        self, tenant: str, *, state: str | None = None, rule_id: str | None = None, limit: int = 100, before_id: int = 0
    ) -> list[dict[str, Any]]:
        if state is not None and state not in HISTORY_STATES:
            raise InvalidInput(f"state must be one of {', '.join(HISTORY_STATES)}")
        query = sa.select(alert_history).where(alert_history.c.tenant == tenant)
        if state:
            query = query.where(alert_history.c.state == state)
        if rule_id:
            query = query.where(alert_history.c.rule_id == rule_id)
        if before_id:
            query = query.where(alert_history.c.id < before_id)
        query = query.order_by(alert_history.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            ids = [r.id for r in rows]
            deliveries: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
            if ids:
                for d in conn.execute(
                    sa.select(alert_deliveries)
                    .where(alert_deliveries.c.history_id.in_(ids), alert_deliveries.c.tenant == tenant)
                    .order_by(alert_deliveries.c.id)
                ):
                    deliveries[d.history_id].append(
                        {
                            "channel": d.channel,
                            "target": d.target,
                            "result": d.result,
                            "attempts": d.attempts,
                            "error": d.error,
                            "at": d.at,
                            "duration_ms": d.duration_ms,
                        }
                    )
        out = []
        for r in rows:
            payload = orjson.loads(r.payload)
            out.append(
                {
                    "id": r.id,
                    "rule_id": r.rule_id,
                    "rule_name": r.rule_name,
                    "rule_type": r.rule_type,
                    "group_key": r.group_key,
                    "state": r.state,
                    "at": r.at,
                    "title": r.title,
                    "matches": r.matches,
                    "suppressed": r.suppressed,
                    "notification": payload,
                    "deliveries": deliveries[r.id],
                }
            )
        return out

    def prune(self, before: float) -> int:
        """Delete history (with its deliveries) and expired silences older than ``before``."""
        with self.engine.begin() as conn:
            old = sa.select(alert_history.c.id).where(alert_history.c.at < before)
            conn.execute(alert_deliveries.delete().where(alert_deliveries.c.history_id.in_(old)))
            removed = conn.execute(alert_history.delete().where(alert_history.c.at < before)).rowcount
            conn.execute(alert_silences.delete().where(alert_silences.c.expires_at < before))
        return int(removed or 0)

    # -- silences ---------------------------------------------------------------------------

    def add_silence(
        self,
        tenant: str,
        *,
        rule_id: str,
        group_key: str,
        duration_s: float,
        reason: str,
        created_by: str,
        now: float | None = None,
    ) -> dict[str, Any]:
        if rule_id:
            self.get_rule(tenant, rule_id)  # a silence names a rule of the same tenant
        now = time.time() if now is None else now
        row = {
            "id": secrets.token_hex(8),
            "tenant": tenant,
            "rule_id": rule_id,
            "group_key": group_key,
            "reason": reason,
            "created_by": created_by,
            "created_at": now,
            "expires_at": now + duration_s,
        }
        with self.engine.begin() as conn:
            conn.execute(alert_silences.insert().values(**row))
        return row

    def silences(self, tenant: str | None = None, *, active_at: float | None = None) -> list[dict[str, Any]]:
        query = sa.select(alert_silences).order_by(alert_silences.c.expires_at.desc())
        if tenant is not None:
            query = query.where(alert_silences.c.tenant == tenant)
        if active_at is not None:
            query = query.where(alert_silences.c.expires_at > active_at)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def delete_silence(self, tenant: str, silence_id: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                alert_silences.delete().where(alert_silences.c.tenant == tenant, alert_silences.c.id == silence_id)
            )
        if result.rowcount == 0:
            raise NotFound(f"no silence {silence_id!r}")
