"""Alert rules, history and silences, per tenant; ``setup`` starts the alerting stage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from logloupe.alert.engine import AlertEngine
from logloupe.alert.insight import InsightSummaries
from logloupe.alert.rules import AnomalySignal, RuleSpec
from logloupe.errors import Forbidden, InvalidInput, Unavailable
from logloupe.model import Anomaly
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

EDIT_ROLES = ("editor", "admin")


def setup(services: Services) -> None:
    def pattern_lookup(tenant: str, pattern_id: str) -> str:
        # Looked up per call: the pattern stage may register after this module's setup.
        lookup = services.extras.get("pattern_lookup")
        return str(lookup(tenant, pattern_id)) if lookup is not None else ""

    s = services.settings

    # Offline knowledge base, or the tenant's cached LLM insight when a provider is configured:
    # never a remote call on the alert path.
    def llm_allowed(tenant: str) -> bool:
        # Multi-tenant: the tenant's own LLM policy decides whether an LLM insight may be shown.
        if "principal_resolver" not in services.extras:
            return True
        from logloupe.store.accounts import Accounts

        return s.llm_provider in Accounts(services.meta).policy(tenant).llm_allowed_providers

    insight_lookup = InsightSummaries(
        s.data_dir, provider=s.llm_provider, model=s.llm_model, pattern_lookup=pattern_lookup, llm_allowed=llm_allowed
    )
    services.extras["insight_lookup"] = insight_lookup
    engine = AlertEngine(s, services.store, services.meta, pattern_lookup=pattern_lookup, insight_lookup=insight_lookup)
    engine.start()
    services.extras["alerts"] = engine
    services.writer.after_store.append(engine.on_stored)

    def on_anomaly(anomaly: Anomaly) -> None:
        # The online detectors (serve/api/anomalies.py) publish every stored anomaly here.
        engine.on_anomalies(
            [
                AnomalySignal(
                    anomaly.tenant,
                    anomaly.service,
                    anomaly.kind,
                    anomaly.score,
                    anomaly.ts_us,
                    anomaly.explanation,
                    list(anomaly.pattern_ids),
                    list(anomaly.event_ids),
                )
            ]
        )

    services.extras.setdefault("anomaly_listeners", []).append(on_anomaly)
    services.extras["alerts_anomaly_listener"] = on_anomaly


def teardown(services: Services) -> None:
    engine: AlertEngine | None = services.extras.pop("alerts", None)
    services.extras.pop("insight_lookup", None)
    listener = services.extras.pop("alerts_anomaly_listener", None)
    if listener is not None and listener in services.extras.get("anomaly_listeners", []):
        services.extras["anomaly_listeners"].remove(listener)
    if engine is not None:
        if engine.on_stored in services.writer.after_store:
            services.writer.after_store.remove(engine.on_stored)
        engine.close()


def get_engine(services: Annotated[Services, Depends(get_services)]) -> AlertEngine:
    engine: AlertEngine | None = services.extras.get("alerts")
    if engine is None:
        raise Unavailable("alerting is not running")
    return engine


def _editor(principal: Principal) -> None:
    if principal.role not in EDIT_ROLES:
        raise Forbidden("changing alerts needs the editor role")


Engine = Annotated[AlertEngine, Depends(get_engine)]
Who = Annotated[Principal, Depends(get_principal)]


@router.get("/rules", summary="The tenant's alert rules")
def list_rules(engine: Engine, principal: Who) -> dict[str, Any]:
    engine.ensure_defaults(principal.tenant)
    return {"items": [r.to_api() for r in engine.alerts.list_rules(principal.tenant)]}


@router.post("/rules", summary="Create an alert rule", status_code=201)
def create_rule(spec: RuleSpec, engine: Engine, principal: Who) -> dict[str, Any]:
    _editor(principal)
    rule = engine.alerts.create_rule(principal.tenant, spec, created_by=principal.user)
    engine.reload()
    return rule.to_api()


@router.get("/rules/{rule_id}", summary="One alert rule")
def get_rule(rule_id: str, engine: Engine, principal: Who) -> dict[str, Any]:
    return engine.alerts.get_rule(principal.tenant, rule_id).to_api()


@router.put("/rules/{rule_id}", summary="Replace an alert rule")
def update_rule(rule_id: str, spec: RuleSpec, engine: Engine, principal: Who) -> dict[str, Any]:
    _editor(principal)
    rule = engine.alerts.update_rule(principal.tenant, rule_id, spec)
    engine.reload()
    return rule.to_api()


@router.delete("/rules/{rule_id}", summary="Delete an alert rule (default rules are disabled)")
def delete_rule(rule_id: str, engine: Engine, principal: Who) -> dict[str, Any]:
    _editor(principal)
    outcome = engine.alerts.delete_rule(principal.tenant, rule_id)
    engine.reload()
    return {"id": rule_id, "result": outcome}


@router.post("/evaluate", summary="Evaluate the tenant's scheduled rules now")
def evaluate_now(engine: Engine, principal: Who) -> dict[str, Any]:
    _editor(principal)
    results = engine.evaluate_due(force=True, tenant=principal.tenant)
    return {"items": results}


@router.get("/history", summary="Alert history: firing, resolved, suppressed, silenced, with deliveries")
def history(
    engine: Engine,
    principal: Who,
    state: Annotated[str | None, Query(description="firing, resolved, suppressed or silenced")] = None,
    rule_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int, Query(ge=0, description="Page: entries older than this id")] = 0,
) -> dict[str, Any]:
    items = engine.alerts.history(principal.tenant, state=state, rule_id=rule_id, limit=limit, before_id=before_id)
    return {"items": items, "next_before_id": items[-1]["id"] if len(items) == limit else None}


class SilenceBody(BaseModel):
    rule_id: str = Field(default="", description="Empty: every rule of the tenant.")
    group_key: str = Field(default="", description="Empty: every group key of the rule.")
    duration_s: float = Field(gt=0, le=90 * 86400)
    reason: str = Field(default="", max_length=2000)


@router.get("/silences", summary="Silences of the tenant (active unless all=true)")
def list_silences(engine: Engine, principal: Who, all: bool = False) -> dict[str, Any]:
    active_at = None if all else engine.clock()
    return {"items": engine.alerts.silences(principal.tenant, active_at=active_at)}


@router.post("/silences", summary="Silence a rule or one of its group keys until it expires", status_code=201)
def create_silence(body: SilenceBody, engine: Engine, principal: Who) -> dict[str, Any]:
    _editor(principal)
    row = engine.alerts.add_silence(
        principal.tenant,
        rule_id=body.rule_id,
        group_key=body.group_key,
        duration_s=body.duration_s,
        reason=body.reason,
        created_by=principal.user,
        now=engine.clock(),
    )
    engine.dispatcher.refresh_silences()
    return row


@router.delete("/silences/{silence_id}", summary="End a silence")
def delete_silence(silence_id: str, engine: Engine, principal: Who) -> dict[str, Any]:
    _editor(principal)
    engine.alerts.delete_silence(principal.tenant, silence_id)
    engine.dispatcher.refresh_silences()
    return {"deleted": silence_id}


class AnomalyBody(BaseModel):
    service: str = ""
    kind: str = Field(min_length=1, max_length=100)
    score: float = Field(ge=0, le=1)
    ts_us: int
    explanation: str = Field(default="", max_length=10000)
    pattern_ids: list[str] = Field(default_factory=list, max_length=100)
    event_ids: list[str] = Field(default_factory=list, max_length=1000)
    samples: list[str] = Field(default_factory=list, max_length=50)
    insight: str = Field(default="", max_length=10000)


@router.post("/anomalies", summary="Report anomalies to the streaming anomaly rules")
def report_anomalies(items: list[AnomalyBody], engine: Engine, principal: Who) -> dict[str, Any]:
    _editor(principal)
    signals = []
    for a in items:
        try:
            pids = [int(p, 16) for p in a.pattern_ids]
        except ValueError:
            raise InvalidInput("pattern_ids are 16 hex characters each") from None
        signals.append(
            AnomalySignal(
                principal.tenant,
                a.service,
                a.kind,
                a.score,
                a.ts_us,
                a.explanation,
                pids,
                a.event_ids,
                a.samples,
                a.insight,
            )
        )
    engine.on_anomalies(signals)
    return {"accepted": len(signals)}
