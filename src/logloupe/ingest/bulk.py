"""Elasticsearch ``_bulk`` bodies → records, with one result per action (pure).

An action line (``index``, ``create``, ``update`` with ``doc``; ``delete`` is refused per item)
is followed by its source line. The index names the service unless the document names one.
Common ECS fields are lifted: ``host.name`` → host, ``log.level`` → level, ``service.name`` → service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from logloupe.parse.keys import lift_ecs

ACTIONS = ("index", "create", "update", "delete")


@dataclass
class BulkItem:
    action: str
    index: str
    doc_id: str
    record: dict[str, Any] | None = None
    error: str | None = None
    raw: bytes = b""


def ecs_record(doc: dict[str, Any]) -> dict[str, Any]:
    """Lift the ECS objects Filebeat and friends send into the fields LogLoupe reads (the shared
    rule, ``parse.keys.lift_ecs``: every record path and JSON text lines do the same)."""
    return lift_ecs(doc)


def parse_bulk(body: bytes, default_index: str = "") -> list[BulkItem]:
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    items: list[BulkItem] = []
    i = 0
    while i < len(lines):
        raw_action = lines[i]
        i += 1
        try:
            action_obj = orjson.loads(raw_action)
        except orjson.JSONDecodeError as exc:
            items.append(BulkItem("index", default_index, "", error=f"invalid action line: {exc}", raw=raw_action))
            continue
        if not isinstance(action_obj, dict) or len(action_obj) != 1 or next(iter(action_obj)) not in ACTIONS:
            items.append(BulkItem("index", default_index, "", error="malformed action line", raw=raw_action))
            continue
        action, meta = next(iter(action_obj.items()))
        meta = meta if isinstance(meta, dict) else {}
        index = str(meta.get("_index") or default_index)
        doc_id = str(meta.get("_id") or "")
        if action == "delete":
            items.append(BulkItem(action, index, doc_id, error="delete is not supported: logs are immutable"))
            continue
        if i >= len(lines):
            items.append(BulkItem(action, index, doc_id, error="action without a source line", raw=raw_action))
            continue
        raw_doc = lines[i]
        i += 1
        try:
            doc = orjson.loads(raw_doc)
        except orjson.JSONDecodeError as exc:
            items.append(BulkItem(action, index, doc_id, error=f"invalid JSON document: {exc}", raw=raw_doc))
            continue
        if action == "update" and isinstance(doc, dict):
            doc = doc.get("doc", doc.get("upsert"))
        if not isinstance(doc, dict):
            items.append(BulkItem(action, index, doc_id, error="the document is not a JSON object", raw=raw_doc))
            continue
        if not index:
            items.append(BulkItem(action, index, doc_id, error="no index named for this document", raw=raw_doc))
            continue
        items.append(BulkItem(action, index, doc_id, record=ecs_record(doc), raw=raw_doc))
    return items
