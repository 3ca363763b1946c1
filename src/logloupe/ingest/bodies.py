"""Reading request bodies safely: size limits that hold after decompression, and the JSON shapes
LogLoupe accepts (one object, an array, or NDJSON)."""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import AsyncIterator
from itertools import repeat
from typing import Any

import orjson
import simdjson
import zstandard

from logloupe.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia

# How much of a refused body the error keeps (``PayloadTooLarge.head``), for the quarantine.
HEAD_BYTES = 16384


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(
                f"request body larger than {limit} bytes", head=bytes(buf[:HEAD_BYTES]), limit_bytes=limit
            )
    return bytes(buf)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """gzip / deflate / zstd bodies, refusing anything that inflates past ``limit`` (zip bombs)."""
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity"):
        return body
    try:
        if enc in ("gzip", "x-gzip", "deflate"):
            wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
            d = zlib.decompressobj(wbits)
            out = d.decompress(body, limit + 1)
            if len(out) > limit or d.unconsumed_tail:
                raise _too_large(limit, out)
            return out
        if enc == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(body)
            out = reader.read(limit + 1)
            if len(out) > limit:
                raise _too_large(limit, out)
            return out
    except (zlib.error, zstandard.ZstdError) as exc:
        raise InvalidInput(f"body is not valid {enc}: {exc}") from None
    raise UnsupportedMedia(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or zstd")


def _too_large(limit: int, out: bytes) -> PayloadTooLarge:
    # the head of the inflated text: readable in the quarantine, unlike the compressed bytes
    return PayloadTooLarge(f"decompressed body larger than {limit} bytes", head=out[:HEAD_BYTES], limit_bytes=limit)


_UNREAD: Any = object()  # an Item's record not parsed yet (``Item.unread``)


class Item:
    """One element of a body: a parsed record, a raw line, or a rejection with its reason.

    ``record`` of an item made by ``unread`` is parsed from ``raw`` the first time it is read: the
    NDJSON hot path validates lines without building them (``split_json``), and only the items
    something looks into (a limit check, the CLI's direct ingest) are ever parsed in the server.
    ``has_record`` asks whether there is one without parsing it.
    """

    __slots__ = ("_record", "doc_id", "error", "index", "invalid_utf8", "line", "raw", "raw_is_record")
    _FIELDS = ("index", "record", "line", "error", "raw", "raw_is_record", "doc_id", "invalid_utf8")

    def __init__(
        self,
        index: int,
        record: dict[str, Any] | None = None,
        line: bytes | None = None,
        error: str | None = None,
        raw: bytes = b"",
        raw_is_record: bool = False,  # ``raw`` is exactly the record's JSON object (no re-encoding needed)
        doc_id: str = "",  # the sender's own id for this record (an Elasticsearch ``_id``): it names the event
        # Its JSON held invalid UTF-8, read as U+FFFD (``replacing_invalid_utf8``): the event is flagged invalid_utf8.
        invalid_utf8: bool = False,
    ) -> None:
        self.index = index
        self._record: Any = record
        self.line = line
        self.error = error
        self.raw = raw
        self.raw_is_record = raw_is_record
        self.doc_id = doc_id
        self.invalid_utf8 = invalid_utf8

    @classmethod
    def unread(cls, index: int, raw: bytes) -> Item:
        """A line already known to be one JSON object (``_objects_only``); parsed when first asked for."""
        item = cls(index, None, None, None, raw, True)
        item._record = _UNREAD
        return item

    @property
    def record(self) -> dict[str, Any] | None:
        if self._record is _UNREAD:
            self._record = orjson.loads(self.raw)
        record: dict[str, Any] | None = self._record
        return record

    @record.setter
    def record(self, value: dict[str, Any] | None) -> None:
        self._record = value

    @property
    def has_record(self) -> bool:
        return self._record is not None

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Item) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._FIELDS, self._fields(), strict=True))
        return f"Item({shown})"


_PARSERS = threading.local()
# Lines longer than this take orjson: a simdjson parser keeps the capacity of the largest document
# it has read (one parser per thread, for the process's lifetime).
_VALIDATE_MAX_LINE = 1 << 16


def _objects_only(lines: list[bytes]) -> bool:
    """True when every line is one JSON object, checked by simdjson without building it (~0.2 µs a
    line against ~0.8 µs for ``orjson.loads``, which builds every dict and string).

    Sound only where simdjson refuses everything orjson refuses; checked over the edge cases in
    ``tests/ingest/test_event_columns.py``. The one it takes that orjson does not, a leading
    byte-order mark, cannot pass here: every line must start with ``{``. What simdjson refuses and
    orjson takes (integers beyond 64 bits, 1,024 levels of nesting) returns False: the caller parses
    with orjson.
    """
    if not all(map(bytes.startswith, lines, repeat(b"{"))) or max(map(len, lines)) > _VALIDATE_MAX_LINE:
        return False
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = simdjson.Parser()
    try:  # each document is dropped at once (type() keeps no reference): the parser is reusable
        kinds = set(map(type, map(parser.parse, lines)))
    except (ValueError, RuntimeError):
        return False
    return kinds == {simdjson.Object}


class ObjectLines:
    """An NDJSON body of two or more lines that are each one JSON object, validated and not parsed:
    the usual body, which ``serve/api/logs.py: store_items`` takes without an ``Item`` per line.
    ``items()`` gives what ``split_json`` gives for the same body."""

    __slots__ = ("lines",)

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def items(self) -> list[Item]:
        return list(map(Item.unread, range(len(self.lines)), self.lines))


def object_lines(body: bytes) -> ObjectLines | None:
    """The body as ``ObjectLines``, or None when it is anything else (one object or an array, a bad
    or blank line, a line simdjson does not take)."""
    found = read_json(body)
    return found if isinstance(found, ObjectLines) else None


def split_json(body: bytes) -> list[Item]:
    """One JSON object, a JSON array of objects, or NDJSON. Bad lines are items with an error."""
    found = read_json(body)
    return found.items() if isinstance(found, ObjectLines) else found


def read_json(body: bytes) -> list[Item] | ObjectLines:
    """``split_json``, with the usual NDJSON body (two or more lines, each one JSON object that
    simdjson takes) as ``ObjectLines``: validated, not parsed, no ``Item`` per line."""
    stripped = body.strip()
    if not stripped:
        return []
    if stripped[:1] in (b"{", b"["):
        repaired = False
        try:
            whole = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            whole = None  # maybe NDJSON
            if _utf8_fault(exc):
                with contextlib.suppress(ValueError):  # NDJSON, or bad beyond its UTF-8: the lines below say
                    whole, repaired = replacing_invalid_utf8(stripped), True
        if whole is not None:
            values = whole if isinstance(whole, list) else [whole]
            found = [_item(i, v, orjson.dumps(v)) for i, v in enumerate(values)]
            if repaired:  # the items that hold U+FFFD now (or held one of their own) are flagged
                for it in found:
                    it.invalid_utf8 = not it.error and _REPLACEMENT in it.raw
            return found
    lines = list(map(bytes.strip, stripped.split(b"\n")))
    if _objects_only(lines):  # the usual body: validated, parsed later only where something reads it
        return ObjectLines(lines)
    try:  # every line an object, but one simdjson does not take: parsed and wrapped in C-level loops
        values = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        values = []  # a bad or blank line: the loop below names it
    if values and set(map(type, values)) == {dict}:
        return list(map(Item, range(len(lines)), values, repeat(None), repeat(None), lines, repeat(True)))
    items: list[Item] = []
    append = items.append
    loads = orjson.loads
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            value = loads(line)
        except orjson.JSONDecodeError as exc:
            try:
                if not _utf8_fault(exc):
                    raise
                value = replacing_invalid_utf8(line)  # only a line that failed for its UTF-8 pays for this
            except ValueError:
                append(Item(i, error=f"line {i + 1}: invalid JSON ({exc})", raw=line))
                continue
            item = _item(i, value, line)
            if not item.error:
                # stored as it reads, flagged (a text line's rule); its JSON is written anew for the buffer
                item.raw_is_record, item.invalid_utf8 = False, True
            append(item)
            continue
        if type(value) is dict:  # the usual line, positionally: _item's first case
            append(Item(i, value, None, None, line, True))
        else:
            append(_item(i, value, line))
    return items


_REPLACEMENT = "\ufffd".encode()


def _utf8_fault(exc: orjson.JSONDecodeError) -> bool:
    """orjson refused the text for invalid UTF-8 (it checks that first, over the whole text)."""
    return "UTF-8" in exc.msg


def replacing_invalid_utf8(data: bytes) -> Any:
    """``orjson.loads`` of JSON text whose one fault is invalid UTF-8 (which orjson refuses): the bad
    bytes read as U+FFFD, as a text line's are. ``ValueError`` (``orjson.JSONDecodeError`` is one)
    when that is not its fault: the text is valid UTF-8, or still not JSON."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return orjson.loads(data.decode("utf-8", "replace"))
    raise ValueError("valid UTF-8")


def _item(index: int, value: Any, raw: bytes) -> Item:
    if isinstance(value, dict):
        return Item(index, record=value, raw=raw, raw_is_record=True)
    if isinstance(value, str):
        return Item(index, record={"message": value}, raw=raw)
    return Item(index, error=f"item {index}: expected a JSON object, got {type(value).__name__}", raw=raw)


def split_lines(body: bytes, max_line_bytes: int) -> list[Item]:
    items = []
    for i, line in enumerate(body.split(b"\n")):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        items.append(Item(i, line=line[: max_line_bytes * 2], raw=line[:1024]))
    return items
