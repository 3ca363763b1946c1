"""Elasticsearch-compatible ingest: enough of the API for ``helpers.bulk``, opensearch-py and Filebeat.

``GET /`` (cluster info; browsers asking for HTML are sent to the UI), ``GET /_license``,
``PUT|POST /_bulk``, ``/{index}/_bulk``, ``POST /{index}/_doc`` (and ``PUT /{index}/_doc/{id}``).
Every response carries ``X-Elastic-Product: Elasticsearch``; ``_bulk`` answers per item.
The index name becomes the service unless a document names its own.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from logloupe import __version__
from logloupe.errors import InvalidInput
from logloupe.ingest.bodies import Item
from logloupe.ingest.bulk import ecs_record, parse_bulk
from logloupe.metrics import INGEST_LATENCY
from logloupe.serve.api.logs import pipeline_of, quarantine_body, read_body, store_items, sync_param
from logloupe.serve.auth import principal_from_headers, require_ingest
from logloupe.serve.deps import Principal, get_services
from logloupe.serve.services import Services

router = APIRouter(tags=["elasticsearch"])

PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
ES_VERSION = "8.17.0"  # what we claim to be; Filebeat and the clients check the major
UI_HOME = "/app/discover"  # browsers asking for / get the UI


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=PRODUCT)


@router.api_route("/", methods=["GET"], summary="Elasticsearch cluster info (HTML clients go to the UI)")
@router.api_route("/", methods=["HEAD"], summary="Elasticsearch cluster info (HTML clients go to the UI)")
def es_root(request: Request, services: Annotated[Services, Depends(get_services)]) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(UI_HOME)
    # Like Elasticsearch with security on: cluster info only with credentials (401 otherwise).
    principal_from_headers(services, request.headers)
    return _json(
        {
            "name": "logloupe",
            "cluster_name": "logloupe",
            "cluster_uuid": "logloupe-0000000000000000",
            "version": {
                "number": ES_VERSION,
                "build_flavor": "default",
                "build_type": "logloupe",
                "build_hash": __version__,
                "build_date": "2026-01-01T00:00:00.000Z",
                "build_snapshot": False,
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }
    )


@router.get("/_license", summary="Elasticsearch license stub (basic, active)")
def es_license() -> Response:
    return _json(
        {
            "license": {
                "status": "active",
                "uid": "logloupe",
                "type": "basic",
                "issue_date_in_millis": 0,
                "max_nodes": 1000,
                "issued_to": "logloupe",
                "issuer": "logloupe",
                "start_date_in_millis": -1,
            }
        }
    )


def _result(action: str, index: str, doc_id: str, status: int, error: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"_index": index, "_id": doc_id, "status": status}
    if error is None:
        body.update(
            {
                "_version": 1,
                "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": 0,
                "_primary_term": 1,
            }
        )
    else:
        body["error"] = {"type": "mapper_parsing_exception", "reason": error}
    return {action: body}


async def _bulk(request: Request, services: Services, principal: Principal, index: str) -> Response:
    started = time.monotonic()
    body = await read_body(request, services, principal, "elasticsearch")
    parsed = parse_bulk(body, index)
    if not parsed:
        await quarantine_body(services, principal, "elasticsearch", "the bulk body holds no actions", body)
        raise InvalidInput("the bulk body holds no actions")
    results: list[dict[str, Any]] = []
    by_index: dict[str, list[Item]] = {}
    bad: list[Item] = []
    for n, it in enumerate(parsed):
        given = it.doc_id  # a client's own _id names its event: sent again in any request, stored once
        it.doc_id = it.doc_id or secrets.token_hex(10)
        if it.error:
            bad.append(Item(n, error=f"item {n}: {it.error}", raw=it.raw))
            results.append(_result(it.action, it.index, it.doc_id, 400, it.error))
        else:
            by_index.setdefault(it.index, []).append(Item(n, record=it.record, raw=it.raw, doc_id=given))
            results.append(_result("create" if it.action == "create" else "index", it.index, it.doc_id, 201))
    wait = sync_param(request)
    if bad:
        await store_items(services, principal, bad, source="elasticsearch", wait=False)
    if len(by_index) > 1:  # one rate-limit decision for the whole request, so it is stored whole or not at all
        pipeline_of(services).limiter.take(principal.tenant, len(body))
    for idx, items in by_index.items():
        await store_items(
            services, principal, items, source="elasticsearch", service=idx, wait=wait, rate_limit=len(by_index) == 1
        )
    INGEST_LATENCY.labels("elasticsearch").observe(time.monotonic() - started)
    took = int((time.monotonic() - started) * 1000)
    return _json({"took": took, "errors": bool(bad), "items": results})


@router.api_route("/_bulk", methods=["POST"], summary="Elasticsearch bulk ingest (per-item results)")
@router.api_route("/_bulk", methods=["PUT"], summary="Elasticsearch bulk ingest (per-item results)")
async def es_bulk(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> Response:
    return await _bulk(request, services, principal, "")


@router.api_route("/{index}/_bulk", methods=["POST"], summary="Elasticsearch bulk ingest into an index")
@router.api_route("/{index}/_bulk", methods=["PUT"], summary="Elasticsearch bulk ingest into an index")
async def es_index_bulk(
    index: str,
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> Response:
    return await _bulk(request, services, principal, index)


async def _doc(request: Request, services: Services, principal: Principal, index: str, doc_id: str) -> Response:
    body = await read_body(request, services, principal, "elasticsearch")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        bad = [Item(0, error=f"invalid JSON: {exc}", raw=body[:4096])]
        await store_items(services, principal, bad, source="elasticsearch")
        raise InvalidInput(f"the document is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the document must be a JSON object")
    item = Item(0, record=ecs_record(doc), raw=body, doc_id=doc_id)
    await store_items(services, principal, [item], source="elasticsearch", service=index, wait=sync_param(request))
    result = _result("index", index, doc_id or secrets.token_hex(10), 201)["index"]
    result.pop("status")
    return _json(result, 201)


@router.post("/{index}/_doc", summary="Elasticsearch single-document ingest")
async def es_doc(
    index: str,
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> Response:
    return await _doc(request, services, principal, index, "")


@router.api_route("/{index}/_doc/{doc_id}", methods=["PUT"], summary="Elasticsearch document with an id")
@router.api_route("/{index}/_doc/{doc_id}", methods=["POST"], summary="Elasticsearch document with an id")
async def es_doc_id(
    index: str,
    doc_id: str,
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(require_ingest)],
) -> Response:
    return await _doc(request, services, principal, index, doc_id)


# -- setup calls Beats make at start-up (templates, ILM, pipelines): accepted, nothing to configure ----


@router.get("/_xpack", summary="Elasticsearch feature info (for Beats' start-up checks)")
def es_xpack() -> Response:
    return _json(
        {
            "build": {"hash": __version__},
            "license": {"uid": "logloupe", "type": "basic", "mode": "basic", "status": "active"},
            "features": {"ilm": {"available": True, "enabled": True}},
        }
    )


@router.api_route("/_index_template/{name}", methods=["GET"], summary="Elasticsearch template stub (Beats set-up)")
@router.api_route("/_index_template/{name}", methods=["HEAD"], summary="Elasticsearch template stub (Beats set-up)")
@router.api_route("/_index_template/{name}", methods=["PUT"], summary="Elasticsearch template stub (Beats set-up)")
@router.api_route("/_ilm/policy/{name}", methods=["GET"], summary="Elasticsearch ILM stub")
@router.api_route("/_ilm/policy/{name}", methods=["HEAD"], summary="Elasticsearch ILM stub")
@router.api_route("/_ilm/policy/{name}", methods=["PUT"], summary="Elasticsearch ILM stub")
@router.api_route("/_ingest/pipeline/{name}", methods=["GET"], summary="Elasticsearch pipeline stub")
@router.api_route("/_ingest/pipeline/{name}", methods=["HEAD"], summary="Elasticsearch pipeline stub")
@router.api_route("/_ingest/pipeline/{name}", methods=["PUT"], summary="Elasticsearch pipeline stub")
def es_setup_stub(name: str, request: Request) -> Response:
    """LogLoupe has no templates or policies: lookups say "none yet", creations are acknowledged."""
    if request.method == "PUT":
        return _json({"acknowledged": True})
    return _json({"error": {"type": "resource_not_found_exception", "reason": f"{name} not found"}, "status": 404}, 404)
