"""Anomalies: the online detectors wired to the store writer, and their results per tenant.

``setup`` creates one ``LiveDetection`` per process (the detectors keep state per tenant and
service inside), hooks it on ``StoreWriter.after_store``, replays stored feedback into it and
starts its ticker; ``teardown`` undoes all three. Subscribers (alerting) append a callable to
``services.extras["anomaly_listeners"]``; each receives every stored ``Anomaly``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from logloupe.analyse.anomaly.drivers import store_drivers
from logloupe.analyse.anomaly.live import Listener, LiveDetection
from logloupe.analyse.anomaly.tracker import TrackerSettings
from logloupe.errors import BadRequest
from logloupe.model import iso_micros
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.anomalies import AnomalyRecords
from logloupe.store.search import bucket_step_s, now_us
from logloupe.store.timerange import parse_time

router = APIRouter(prefix="/api/v1/anomalies", tags=["anomalies"])

EXTRA = "anomaly_detection"
LISTENERS = "anomaly_listeners"
MAX_LIMIT = 1000


def setup(services: Services) -> None:
    s = services.settings
    listeners: list[Listener] = services.extras.setdefault(LISTENERS, [])
    records = AnomalyRecords(services.meta.engine)
    state_path = s.data_dir / "anomaly" / "state.pickle"
    live = LiveDetection(
        records,
        threshold=s.anomaly_threshold,
        tick_s=s.anomaly_tick_s,
        session_key=s.anomaly_session_key.strip(),
        listeners=listeners,
        repeat_s=s.anomaly_repeat_s,
        tracker=TrackerSettings(window_events=s.anomaly_window_events, window_step=s.anomaly_window_step),
        state_path=state_path,
        checkpoint_s=s.anomaly_checkpoint_s,
    )
    live.drivers = lambda anomaly: store_drivers(services.store, anomaly)
    # Baselines and session models survive a restart (saved on shutdown and every checkpoint).
    live.load(state_path)
    # Mutes survive a restart too: verdicts are replayed in the order they were given; a session
    # model already retrained by one takes it again as a no-op.
    for stored in records.with_feedback():
        live.feedback(stored.anomaly, real=stored.feedback == "real")
    services.extras[EXTRA] = live
    services.writer.after_store.append(live.on_stored)
    live.start()


def teardown(services: Services) -> None:
    live: LiveDetection | None = services.extras.pop(EXTRA, None)
    if live is None:
        return
    live.stop()
    if live.on_stored in services.writer.after_store:
        services.writer.after_store.remove(live.on_stored)


def _live(services: Services) -> LiveDetection:
    live: LiveDetection | None = services.extras.get(EXTRA)
    if live is None:
        raise BadRequest("anomaly detection is not running")
    return live


def _range(from_: str | None, to: str | None) -> tuple[int | None, int | None]:
    now = now_us()
    try:
        lo = parse_time(from_, now) if from_ else None
        hi = parse_time(to, now) if to else None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if lo is not None and hi is not None and lo > hi:
        raise BadRequest("'from' is after 'to'")
    return lo, hi


class FeedbackBody(BaseModel):
    verdict: Literal["false_positive", "real"]


@router.get("", summary="The tenant's anomalies, newest first, with explanations and evidence")
def list_anomalies(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    service: str | None = None,
    kind: str | None = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    lo, hi = _range(from_, to)
    found = AnomalyRecords(services.meta.engine).find(
        principal.tenant, from_us=lo, to_us=hi, service=service, kind=kind, min_score=min_score, limit=limit
    )
    return {"items": [a.to_api() for a in found]}


@router.get("/timeline", summary="Highest anomaly score per service over time, bucketed, for a chart")
def timeline(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    service: str | None = None,
    interval: Annotated[str | None, Query(description="Bucket size such as 5m; automatic if absent")] = None,
    buckets: Annotated[int, Query(ge=1, le=1000, description="Target bucket count when automatic")] = 100,
) -> dict[str, Any]:
    records = AnomalyRecords(services.meta.engine)
    lo, hi = _range(from_, to)
    if lo is not None and hi is None:
        hi = now_us()
    if lo is None or hi is None:
        bounds = records.bounds(principal.tenant, service)
        if bounds is None:
            return {"interval_seconds": 0, "buckets": [], "series": []}
        lo = bounds[0] if lo is None else lo
        hi = bounds[1] if hi is None else hi
    step_s = bucket_step_s(lo, hi, interval, buckets)
    rows = records.timeline(principal.tenant, from_us=lo, to_us=hi, step_s=step_s, service=service)
    step_us = step_s * 1_000_000
    axis = list(range(lo // step_us, hi // step_us + 1))
    per_service: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        per_service.setdefault(r["service"], {})[r["bucket"]] = r
    series = []
    for name in sorted(per_service):
        points = per_service[name]
        series.append(
            {
                "service": name,
                # Empty buckets included (score 0), so the chart's time axis is continuous.
                "points": [
                    {
                        "ts": iso_micros(b * step_us),
                        "max_score": round(points[b]["max_score"], 4) if b in points else 0.0,
                        "count": points[b]["count"] if b in points else 0,
                    }
                    for b in axis
                ],
            }
        )
    return {"interval_seconds": step_s, "buckets": [iso_micros(b * step_us) for b in axis], "series": series}


@router.get("/{anomaly_id}", summary="One anomaly")
def get_anomaly(
    anomaly_id: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    return AnomalyRecords(services.meta.engine).get(principal.tenant, anomaly_id).to_api()


@router.post("/{anomaly_id}/feedback", summary="Mark an anomaly a false positive (mutes similar ones) or real")
def feedback(
    anomaly_id: str,
    body: FeedbackBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    records = AnomalyRecords(services.meta.engine)
    records.get(principal.tenant, anomaly_id)  # 404 before anything changes
    live = _live(services)
    stored = records.set_feedback(principal.tenant, anomaly_id, body.verdict)
    live.feedback(stored.anomaly, real=body.verdict == "real")
    return stored.to_api()
