"""LLM labels of new patterns (setting ``llm_classify_new_patterns``; ``analyse/llm_patterns.py``).

``setup`` starts the background labeller when the setting is on and an LLM provider is configured:
it listens to the enricher's new patterns and adds a stage after the enricher that gives a labelled
pattern's later events the LLM's label. ``GET /api/v1/pattern-labels`` lists the tenant's labels.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from logloupe.analyse.llm_patterns import PatternLabeller, labels_of
from logloupe.serve.deps import Principal, get_principal, get_services
from logloupe.serve.services import Services
from logloupe.store.accounts import Accounts

router = APIRouter(tags=["patterns"])
EXTRA = "pattern_labeller"


def setup(services: Services) -> None:
    s = services.settings
    if not s.llm_classify_new_patterns or s.llm_provider == "offline":
        return
    accounts = Accounts(services.meta)
    labeller = PatternLabeller(
        s,
        services.meta,
        # With auth on, each tenant's stored LLM policy decides (as for insights); else the settings.
        accounts=lambda: accounts if "principal_resolver" in services.extras else None,
        classifier_for=services.enricher.classifier_for,
        on_label=services.enricher.set_pattern_label,
    )
    services.enricher.listeners.append(labeller.on_new_pattern)
    services.extras[EXTRA] = labeller
    labeller.start()


def teardown(services: Services) -> None:
    labeller: PatternLabeller | None = services.extras.pop(EXTRA, None)
    if labeller is None:
        return
    labeller.stop()
    if labeller.on_new_pattern in services.enricher.listeners:
        services.enricher.listeners.remove(labeller.on_new_pattern)


@router.get("/api/v1/pattern-labels", summary="Labels an LLM gave the tenant's new patterns (newest first)")
def get_pattern_labels(
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    found = services.extras.get(EXTRA)
    return {
        "enabled": found is not None,
        "labels": labels_of(services.meta, principal.tenant),
        "queued": found.queue.qsize() if found else 0,
        "dropped": found.dropped if found else 0,
    }
