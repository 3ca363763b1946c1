"""Normalised fields → LogEvents: the tenant, times and the idempotent id are fixed here.

An event's uid names its place in its input: ``model.input_uid(tenant, position, ordinal, service)``,
where ``position`` is the input's key (a digest of a request body, a file and chunk, or the
write-ahead buffer position for inputs without one) and ``ordinal`` counts the events of the
service from ``first_index`` on (the first item's index in the input: callers that assemble an
input in runs of consecutive items pass each run's first index, so the runs' ordinals never meet).
The same input gives the same uids, so the store recognises a re-send by (tenant, ts, uid); two
identical lines of one input keep two uids; one service's events count up by one, which the
store's codec packs to almost nothing. A sender's own document id (``doc_ids``: an Elasticsearch ``_id``) names
its event whatever request carries it (``model.doc_uid``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from logloupe.model import FLAG_TIME_REPLACED, INDEX_BITS, INDEX_MASK, Level, LogEvent, doc_uid, input_uid_base
from logloupe.parse.records import Fields

# The sanity window text lines get in ``parse_line`` (``parse/timestamps.py``): a time more than a
# day ahead of the observed time or before 1990 is kept at the observed time, with the same reason
# attribute, so records and text lines read alike.
from logloupe.parse.timestamps import MAX_FUTURE_US, MIN_TS_US, ORIGINAL_ATTRIBUTE, REASON_ATTRIBUTE, sanity_check


def assemble(
    items: Iterable[Fields],
    *,
    tenant: str,
    now_us: int,
    source: str = "",
    service: str = "",
    host: str = "",
    position: str = "",
    first_index: int = 0,
    doc_ids: dict[int, str] | None = None,
) -> list[LogEvent]:
    """Build events; ``position`` names where the batch came from so a replay yields the same ids
    (``first_index``: the first item's index there)."""
    rows = assemble_rows(
        items,
        tenant=tenant,
        now_us=now_us,
        source=source,
        service=service,
        host=host,
        position=position,
        first_index=first_index,
        doc_ids=doc_ids,
    )
    # Positional (LogEvent's field order): half the cost of keywords on the ingest hot path.
    return [
        LogEvent(t, ts, obs, uid, msg, svc, hst, lvl, raw, 0, [], attrs, src, trace, span, flags)
        for t, ts, obs, uid, msg, svc, hst, lvl, raw, attrs, src, trace, span, flags in rows
    ]


# What assemble_rows yields per event: LogEvent's fields without the analysis ones, in this order.
Row = tuple[str, int, int, int, str, str, str, Level, str, dict[str, str], str, str, str, list[str]]


def assemble_rows(
    items: Iterable[Fields],
    *,
    tenant: str,
    now_us: int,
    source: str = "",
    service: str = "",
    host: str = "",
    position: str = "",
    first_index: int = 0,
    doc_ids: dict[int, str] | None = None,
) -> Iterator[Row]:
    """``assemble`` as plain rows ``(tenant, ts_us, observed_ts_us, uid, message, service, host,
    level, level_raw, attributes, source, trace_id, span_id, flags)``: decoder processes ship
    columns and need no event objects."""
    # per service: [the uid's high bits, their block, the next ordinal]: one digest per service and
    # input (per 16.7M events), not per event
    counters: dict[str, list[int]] = {}
    for index, f in enumerate(items, first_index):
        flags = list(f.flags)
        attributes = f.attributes
        ts_us = f.ts_us
        if ts_us is None:
            ts_us = now_us
        elif ts_us > now_us + MAX_FUTURE_US or ts_us < MIN_TS_US:  # the common case costs one test
            _replaced, reason = sanity_check(ts_us, now_us)
            attributes = {**attributes, REASON_ATTRIBUTE: reason or "", ORIGINAL_ATTRIBUTE: _written(ts_us)}
            if FLAG_TIME_REPLACED not in flags:
                flags.append(FLAG_TIME_REPLACED)
            ts_us = now_us
        svc = f.service or service
        if f.service_from_text and service and f.service != service:
            svc = service
            attributes = {**attributes, "logger": f.service}
        hst = f.host or host
        src = f.source or source
        counter = counters.get(svc)
        if counter is None:
            block = first_index >> INDEX_BITS
            counter = counters[svc] = [input_uid_base(tenant, position, svc, block), block, first_index]
        ordinal = counter[2]
        counter[2] = ordinal + 1
        if ordinal >> INDEX_BITS != counter[1]:
            counter[1] = ordinal >> INDEX_BITS
            counter[0] = input_uid_base(tenant, position, svc, counter[1])
        uid = counter[0] | (ordinal & INDEX_MASK)
        if doc_ids and (doc := doc_ids.get(index)):
            uid = doc_uid(tenant, svc, doc)
        yield (
            tenant,
            ts_us,
            now_us,
            uid,
            f.message,
            svc,
            hst,
            f.level,
            f.level_raw,
            attributes,
            src,
            f.trace_id,
            f.span_id,
            flags,
        )


def _written(ts_us: int) -> str:
    """An impossible time as ISO 8601 when it can be written so, else its µs."""
    try:
        return datetime.fromtimestamp(ts_us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return str(ts_us)
