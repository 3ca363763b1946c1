"""Grafana Loki push bodies (JSON, or snappy-compressed protobuf ``logproto.PushRequest``) → records (pure).

The protobuf message is small, so it is decoded from the wire format by hand:

    PushRequest  { repeated Stream streams = 1; }
    Stream       { string labels = 1; repeated Entry entries = 2; uint64 hash = 3; }
    Entry        { Timestamp timestamp = 1; string line = 2; repeated LabelPair structuredMetadata = 3; }
    Timestamp    { int64 seconds = 1; int32 nanos = 2; }
    LabelPair    { string name = 1; string value = 2; }

Stream labels (and structured metadata) become attributes; ``service_name``/``service``/``app``/``job``
name the service, ``level``/``detected_level``/``severity`` the level, ``host``/``hostname`` the host.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import cramjam
import orjson

from logloupe.errors import InvalidInput, PayloadTooLarge
from logloupe.ingest.bodies import HEAD_BYTES

SERVICE_LABELS = ("service_name", "service", "app", "application", "job", "container")
LEVEL_LABELS = ("level", "detected_level", "severity", "lvl")
HOST_LABELS = ("host", "hostname", "instance", "node", "pod")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_labels(text: str) -> dict[str, str]:
    """``{job="x", level="info"}`` → dict (Prometheus label syntax)."""
    inner = text.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    out: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        m = _LABEL.match(inner, pos)
        if not m:
            raise InvalidInput(f"unreadable stream labels: {text[:200]}")
        value = m.group(2).encode().decode("unicode_escape") if "\\" in m.group(2) else m.group(2)
        out[m.group(1)] = value
        pos = m.end()
    return out


def _record(labels: dict[str, str], ts_ns: int, line: str, metadata: dict[str, str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {**labels, **metadata}
    record: dict[str, Any] = {"timestamp": ts_ns, "message": line, "attributes": attrs}
    for keys, target in ((SERVICE_LABELS, "service"), (LEVEL_LABELS, "level"), (HOST_LABELS, "host")):
        for key in keys:
            if attrs.get(key):
                record[target] = attrs[key]
                break
    return record


def decode_json(body: bytes) -> list[dict[str, Any]]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not Loki push JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("streams"), list):
        raise InvalidInput('Loki push JSON must be {"streams": [...]}')
    out = []
    for stream in request["streams"]:
        if not isinstance(stream, dict):
            raise InvalidInput("each stream must be an object")
        labels = stream.get("stream") or stream.get("labels") or {}
        if isinstance(labels, str):
            labels = parse_labels(labels)
        labels = {str(k): str(v) for k, v in labels.items()}
        for value in stream.get("values") or []:
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidInput('each value must be ["<unix ns>", "<line>"]')
            try:
                ts_ns = int(value[0])
            except (TypeError, ValueError):
                raise InvalidInput(f"unreadable timestamp {str(value[0])[:50]!r}") from None
            meta = value[2] if len(value) > 2 and isinstance(value[2], dict) else {}
            out.append(_record(labels, ts_ns, str(value[1]), {str(k): str(v) for k, v in meta.items()}))
    return out


# -- protobuf wire format -------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise InvalidInput("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): ints for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise InvalidInput("truncated protobuf field")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise InvalidInput(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8", "replace")


def decode_protobuf(body: bytes, *, snappy: bool = True, limit: int = 32 * 1024 * 1024) -> list[dict[str, Any]]:
    if snappy:
        size, _ = _varint(body, 0)  # a snappy block starts with its uncompressed length: refuse bombs first
        if size > limit:
            head = body[:HEAD_BYTES]  # still compressed: inflating it is what is refused
            raise PayloadTooLarge(f"decompressed body larger than {limit} bytes", head=head, limit_bytes=limit)
        try:
            body = bytes(cramjam.snappy.decompress_raw(body))
        except Exception as exc:  # cramjam raises its own DecompressionError
            raise InvalidInput(f"body is not snappy-compressed: {exc}") from None
    out = []
    for number, wire, stream in _fields(body):
        if number != 1 or wire != 2:
            continue
        labels: dict[str, str] = {}
        entries = []
        for n, w, value in _fields(stream):
            if n == 1 and w == 2:
                labels = parse_labels(_text(value))
            elif n == 2 and w == 2:
                entries.append(value)
        for entry in entries:
            ts_ns, line, meta = 0, "", {}
            for n, w, value in _fields(entry):
                if n == 1 and w == 2:
                    seconds = nanos = 0
                    for tn, _tw, tv in _fields(value):
                        if tn == 1:
                            seconds = tv - (1 << 64) if tv >= 1 << 63 else tv
                        elif tn == 2:
                            nanos = tv
                    ts_ns = seconds * 1_000_000_000 + nanos
                elif n == 2 and w == 2:
                    line = _text(value)
                elif n == 3 and w == 2:
                    pair = {pn: _text(pv) for pn, pw, pv in _fields(value) if pw == 2}
                    meta[pair.get(1, "")] = pair.get(2, "")
            out.append(_record(labels, ts_ns, line, meta))
    return out
