"""The one table of field names a JSON log may use, shared by text lines that are JSON
(``formats.parse_json``) and structured records from any ingest path (``records.record_fields``),
so a line reads the same whichever way it arrives. The first key present wins, in this order.

ECS and OpenTelemetry spellings are included: dotted keys (``log.level``, ``service.name``,
``host.name``, ``trace.id``) and, through ``lift_ecs``, the same written as nested objects
(``{"service": {"name": ...}}``, ``{"log": {"level": ...}}``, ``{"host": {"name": ...}}``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "t", "datetime", "date", "eventTime", "@t", "Timestamp")
MESSAGE_KEYS = ("message", "msg", "@m", "@mt", "log", "text", "body", "short_message", "event", "Message")
LEVEL_KEYS = (
    "level",
    "log.level",
    "severity",
    "lvl",
    "loglevel",
    "log_level",
    "levelname",
    "@l",
    "severity_text",
    "Level",
    "status",  # Datadog's level; only when it holds a level word (not an HTTP status): ``LEVEL_WORD_ONLY``
)
LEVEL_WORD_ONLY = frozenset({"status"})
SERVICE_KEYS = (
    "service",
    "service.name",
    "service_name",
    "app",
    "application",
    "logger",
    "logger_name",
    "component",
    "program",
    "job",
)
HOST_KEYS = ("host", "host.name", "hostname", "host_name", "node", "instance", "pod")
TRACE_KEYS = ("trace_id", "traceId", "trace.id", "traceid", "dd.trace_id", "otelTraceID")
SPAN_KEYS = ("span_id", "spanId", "span.id", "spanid", "dd.span_id", "otelSpanID")
# Objects whose members are attributes of their own (``{"meta": {"user": 1}}`` → ``user``): ``lift_attributes``.
ATTRIBUTE_KEYS = ("meta", "attributes", "attrs", "fields", "labels", "extra", "context", "data")

# (object key, member, the field it names): ECS objects whose one member is a field of ours.
_ECS = (("host", "name", "host"), ("service", "name", "service"), ("log", "level", "level"))


def pop_level(obj: dict[str, Any], is_level: Callable[[str], bool]) -> Any:
    """Take the level out of ``obj``: the first of ``LEVEL_KEYS`` present, except that a
    ``LEVEL_WORD_ONLY`` key (``status``) counts only when it holds a level word — an HTTP status stays
    an attribute. None when there is none."""
    for key in LEVEL_KEYS:
        if key in obj:
            if key in LEVEL_WORD_ONLY:
                value = obj[key]
                if not isinstance(value, str) or value.strip().isdigit() or not is_level(value):
                    continue
            return obj.pop(key)
    return None


def lift_attributes(rest: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a JSON log whose own fields (time, message, level, service...) were taken
    out: the members of its ``ATTRIBUTE_KEYS`` objects (a later key's member wins a clash; such a
    key holding no object stays an attribute of that name), then its other keys, which win over
    the members. Empties ``rest``' attribute keys; not flattened. Shared by records and JSON text
    lines, so ``{"meta": {"user_id": 7}}`` is ``user_id`` on every path."""
    attributes: dict[str, Any] = {}
    for key in ATTRIBUTE_KEYS:
        nested = rest.pop(key, None)
        if isinstance(nested, dict):
            attributes.update(nested)
        elif nested is not None:
            attributes[key] = nested
    attributes.update(rest)
    return attributes


def needs_lift(doc: dict[str, Any]) -> bool:
    """Whether ``lift_ecs`` would change ``doc`` (cheap: three lookups)."""
    return isinstance(doc.get("host"), dict) or isinstance(doc.get("service"), dict) or isinstance(doc.get("log"), dict)


def lift_ecs(doc: dict[str, Any]) -> dict[str, Any]:
    """Lift the ECS objects Filebeat and friends send into the fields LogLoupe reads: ``host.name`` →
    host, ``service.name`` → service, ``log.level`` → level. The objects' other members stay: as
    ``host_info.*`` / ``service_info.*`` for host and service, as ``log.*`` for log. A copy."""
    out = dict(doc)
    for key, inner, target in _ECS:
        value = out.get(key)
        if not isinstance(value, dict) or not isinstance(value.get(inner), str):
            continue
        rest = {k: v for k, v in value.items() if k != inner}
        if key == target:
            del out[key]
            if rest:
                out[f"{key}_info"] = rest  # keeps e.g. host.os.* as attributes host_info.os.*
        elif rest:
            out[key] = rest
        else:
            del out[key]
        out[target] = value[inner]
    return out
