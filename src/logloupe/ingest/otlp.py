"""OTLP/HTTP logs (``ExportLogsServiceRequest``), protobuf or JSON → records (pure).

Mapping: resource attribute ``service.name`` → service, ``host.name`` → host; other resource
attributes become ``resource.<key>``; the scope gives ``scope.name``, ``scope.version`` and
``scope.<key>`` for each of its attributes (name and version win a clash); log attributes are kept
as they are. Severity number (OpenTelemetry's 1–24 scale) → level, severity text kept as
the raw level; trace and span ids are kept as hex.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from logloupe.errors import InvalidInput

_OTEL_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def otel_level(number: int, text: str) -> str:
    if 1 <= number <= 24:
        return _OTEL_LEVELS[(number - 1) // 4]
    return text


def _any_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def _record(
    resource: dict[str, Any],
    scope: dict[str, Any],
    attributes: dict[str, Any],
    *,
    time_ns: int,
    observed_ns: int,
    severity_number: int,
    severity_text: str,
    body: Any,
    trace_id: str,
    span_id: str,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for k, v in resource.items():
        if k not in ("service.name", "host.name"):
            attrs[f"resource.{k}"] = v
    for k, v in scope.items():
        attrs[f"scope.{k}"] = v
    attrs.update(attributes)
    message = body if isinstance(body, str) else ("" if body is None else orjson.dumps(body).decode())
    record: dict[str, Any] = {"message": message, "attributes": attrs}
    if time_ns or observed_ns:
        record["timestamp"] = time_ns or observed_ns
    level = otel_level(severity_number, severity_text)
    if level:
        record["level"] = level
    if severity_text:
        attrs["severity_text"] = severity_text
    for key, target in (("service.name", "service"), ("host.name", "host")):
        if resource.get(key):
            record[target] = str(resource[key])
    if trace_id:
        record["trace_id"] = trace_id
    if span_id:
        record["span_id"] = span_id
    return record


def decode_protobuf(body: bytes) -> list[dict[str, Any]]:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"body is not an OTLP ExportLogsServiceRequest: {exc}") from None
    out = []
    for rl in request.resource_logs:
        resource = {kv.key: _any_value(kv.value) for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            scope = {kv.key: _any_value(kv.value) for kv in sl.scope.attributes}
            if sl.scope.name:
                scope["name"] = sl.scope.name
            if sl.scope.version:
                scope["version"] = sl.scope.version
            for lr in sl.log_records:
                out.append(
                    _record(
                        resource,
                        scope,
                        {kv.key: _any_value(kv.value) for kv in lr.attributes},
                        time_ns=lr.time_unix_nano,
                        observed_ns=lr.observed_time_unix_nano,
                        severity_number=int(lr.severity_number),
                        severity_text=lr.severity_text,
                        body=_any_value(lr.body),
                        trace_id=lr.trace_id.hex(),
                        span_id=lr.span_id.hex(),
                    )
                )
    return out


def _json_any(v: Any) -> Any:
    if not isinstance(v, dict) or not v:
        return None
    kind, value = next(iter(v.items()))
    if kind == "arrayValue":
        return [_json_any(x) for x in (value or {}).get("values", [])]
    if kind == "kvlistValue":
        return _json_attrs((value or {}).get("values", []))
    if kind == "intValue":
        return int(value)
    return value


def _json_attrs(kvs: Any) -> dict[str, Any]:
    if not isinstance(kvs, list):
        return {}
    return {str(kv.get("key")): _json_any(kv.get("value")) for kv in kvs if isinstance(kv, dict)}


def _severity_number(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.startswith("SEVERITY_NUMBER_"):
        name = value[len("SEVERITY_NUMBER_") :]
        base = name.rstrip("1234")
        if base in _OTEL_LEVELS:
            return _OTEL_LEVELS.index(base) * 4 + int(name[len(base) :] or 1)
    return 0


def decode_json(body: bytes) -> list[dict[str, Any]]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not OTLP JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidInput("OTLP JSON must be an object with resourceLogs")
    out = []
    for rl in request.get("resourceLogs") or []:
        resource = _json_attrs((rl.get("resource") or {}).get("attributes"))
        for sl in rl.get("scopeLogs") or []:
            raw_scope = sl.get("scope") or {}
            scope = _json_attrs(raw_scope.get("attributes"))
            scope.update((k, raw_scope[k]) for k in ("name", "version") if raw_scope.get(k))
            for lr in sl.get("logRecords") or []:
                out.append(
                    _record(
                        resource,
                        scope,
                        _json_attrs(lr.get("attributes")),
                        time_ns=int(lr.get("timeUnixNano") or 0),
                        observed_ns=int(lr.get("observedTimeUnixNano") or 0),
                        severity_number=_severity_number(lr.get("severityNumber", 0)),
                        severity_text=str(lr.get("severityText") or ""),
                        body=_json_any(lr.get("body")),
                        trace_id=str(lr.get("traceId") or ""),
                        span_id=str(lr.get("spanId") or ""),
                    )
                )
    return out
