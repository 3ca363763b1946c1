"""Saved searches, per tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.query import parse_query

router = APIRouter(prefix="/api/v1/saved-searches", tags=["search"])


class SavedSearchBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    query: str = ""
    time_from: str = Field(default="", alias="from")
    time_to: str = Field(default="", alias="to")
    model_config = {"populate_by_name": True}


@router.get("", summary="The tenant's saved searches")
def list_saved(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    return {"items": services.meta.list_saved_searches(principal.tenant)}


@router.post("", summary="Save (or overwrite by name) a search")
def save(
    body: SavedSearchBody,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    parse_query(body.query)  # a saved search must be one that runs
    return services.meta.save_search(
        principal.tenant, body.name, body.query, body.time_from, body.time_to, created_by=principal.user
    )


@router.delete("/{search_id}", summary="Delete a saved search")
def delete(
    search_id: str,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    services.meta.delete_saved_search(principal.tenant, search_id)
    return {"deleted": search_id}
