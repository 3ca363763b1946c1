"""Typed masks for log text: one rule table (``RULES``) serves template mining and redaction.

Each rule is flagged for the purposes it serves (``MaskRule.mining`` / ``MaskRule.redact``). Two entry
points:

* ``mask_for_mining(message)`` replaces values that are variable by nature (numbers, hex ids, IPs,
  paths, URLs, UUIDs...) with ``<*>`` *inside* tokens, so ``CPU#0`` becomes ``CPU#<*>`` and the
  constant text around a value survives into the template.
* ``redact(text, mode)`` replaces sensitive values (emails, IPs, MACs, UUIDs, JWTs, bearer tokens,
  cloud access keys, passwords in key=value, card numbers that pass Luhn...) with typed placeholders
  such as ``<EMAIL>``, a keyed hash of the value (``mode="hash"``), or leaves them (``"keep"``).
  What leaves the machine goes through it: LLM prompts (``analyse/redact.py`` picks the types per
  tenant) and alert notifications (``alert/dispatch.py``).

``value_type(value)`` names the type of an extracted variable for the miner.
All functions are pure and never raise on any ``str``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

WILDCARD = "<*>"

# --- the rule table -----------------------------------------------------------------------------------
# One table serves both purposes. Each rule says what it is used for:
#
# * ``mining``: ``mask_for_mining`` applies these rules, in table order, to the whole message. A match
#   is overwritten in place by NUL characters, so offsets never move and later rules see earlier masks;
#   runs of NULs become the spans that ``<*>`` replaces. Boundaries are written so a value glued to text
#   by punctuation (``CPU#0``, ``PS/2``, ``ip=1.2.3.4``) is masked while identifiers that merely contain
#   digits (``jk2_init``, ``i686``, ``ext4``) are kept.
# * ``redact``: ``redact`` applies these rules, in table order, and replaces the value (``group``) with
#   ``<TYPE>`` or ``<TYPE:hash>``; ``check`` can veto a match (Luhn for card numbers).
#
# A shape can have a mining rule and a redaction rule of its own: mining wants "one value" spans that
# keep templates stable (``host:port`` together, dates as one value), redaction wants exact values with
# no false positives on ordinary words. Both orders are kept: mining-only and redaction-only rules are
# interleaved so each purpose sees its rules in the order it always had.
_HOLE = "\x00"
_NB = r"(?<![\w\x00])"  # not preceded by a word char (nor an earlier mask)
_NA = r"(?![\w])"  # not followed by a word char

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_filter(match: re.Match[str]) -> bool:
    digits = re.sub(r"[ \-]", "", match.group(0))
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


@dataclass(frozen=True, slots=True)
class MaskRule:
    """One value shape: its type (the redaction placeholder), its pattern, and what it is used for."""

    type: str
    pattern: re.Pattern[str]
    mining: bool = False
    redact: bool = False
    group: int = 0  # the group holding the value; the rest of the match is kept (``password=<SECRET>``)
    check: Callable[[re.Match[str]], bool] | None = None


def _m(type_: str, pattern: str, flags: int = 0) -> MaskRule:
    return MaskRule(type_, re.compile(pattern, flags), mining=True)


def _r(
    type_: str, pattern: str, group: int = 0, check: Callable[[re.Match[str]], bool] | None = None, flags: int = 0
) -> MaskRule:
    return MaskRule(type_, re.compile(pattern, flags), redact=True, group=group, check=check)


def _b(type_: str, pattern: str, group: int = 0, flags: int = 0) -> MaskRule:
    """A rule for both purposes: a secret is a variable to the miner and a value to redact."""
    return MaskRule(type_, re.compile(pattern, flags), mining=True, redact=True, group=group)


_TLDS = (
    "com|net|org|io|dev|app|cloud|internal|local|localdomain|lan|corp|intra|home|edu|gov|mil|int|biz|info|"
    "co|us|uk|de|fr|eu|nl|be|ch|at|se|no|dk|fi|es|it|pl|cz|ie|pt|jp|cn|kr|in|au|nz|ca|br|ru"
)

# Keys whose value is a secret (``password=…``, ``api_key: …``): the SECRET rule and the quick test that
# sends a line to the full masker share them, so the test is exactly as wide as the rule.
_SENSITIVE_FIELDS = (
    r"password|passwd|pwd|pass|secret|api[_-]?key|apikey|access[_-]?key|"
    r"secret[_-]?key|client[_-]?secret|auth[_-]?token|token|private[_-]?key"
)

RULES: tuple[MaskRule, ...] = (
    # --- secrets (redaction) -------------------------------------------------------------------
    _b(
        "PRIVATE_KEY",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        flags=re.S,
    ),
    _b("JWT", r"\beyJ[\w\-]{4,}\.[\w\-]{4,}\.[\w\-]{4,}"),
    # a bearer token is whatever follows the scheme; "basic"/"token" need a digit or base64 padding
    _b("TOKEN", r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)", 1),
    _b("TOKEN", r"(?i)\b(?:basic|token)\s+((?=[A-Za-z\-._~]*[\d+/=])[A-Za-z0-9\-._~+/]{12,}=*)", 1),
    _b("AWS_KEY", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    _b("GCP_KEY", r"\bAIza[0-9A-Za-z\-_]{35}\b"),
    _b(
        "API_KEY",
        r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}\b|\bgh[pousr]_[A-Za-z0-9]{20,}\b|\bxox[abpr]-[A-Za-z0-9\-]{10,}\b|"
        r"\bhf_[A-Za-z0-9]{20,}\b",
    ),
    _r("CREDENTIALS", r"(?i)\b[a-z][a-z0-9+.\-]{0,31}://([^\s/:@<>]+:[^\s/@<>]+)@", 1),
    _b("SECRET", r"(?i)(?<![<\w])(?:" + _SENSITIVE_FIELDS + r")[\"']?\s*[=:]\s*[\"']?([^\s\"'&,;<]+)", 1),
    # --- personal data (redaction) ----------------------------------------------------------------
    _b("EMAIL", r"(?<![\w.+\-])[\w.+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}\b"),
    # --- values (mining; the redaction twin follows where there is one) ----------------------------
    # dates written out inside messages: "Sat Jun 18 02:23:10 2005", "Fri Jul 01 08:16:53 PDT 2005",
    # ISO 8601 "2017-05-16 00:00:00.008" / "2017-05-16T00:00:00Z": one value, not six numbers
    _m(
        "DATE",
        r"\b(?:" + _DAY + r",?\s+)?" + _MONTH + r"\s+\d{1,2},?\s+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
        r"(?:\s+[A-Z]{3,4})?(?:\s+\d{4})?\b",
    ),
    _m("DATE", r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?(?![\w:])"),
    # a measured size written with a decimal and a unit, inside a list: "(estimated size 5.2 KB, free 1.0 MB)"
    _m("SIZE", r"(?<![\w.])\d+\.\d+\s(?:[KMGT]i?B|B|bytes)(?=[,;)\]])"),
    # a request line's target and protocol are one value: "GET /v2/servers HTTP/1.1"
    _m("REQUEST", r"(?<=\s)/\S*\s+HTTP/\d(?:\.\d)?\b"),
    # URLs, including scheme-relative ones like hdfs://host:9000/path
    _m("URL", r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s\x00]+"),
    _r("URL", r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s\"'<>]+"),
    # UUIDs: one rule for both purposes
    MaskRule(
        "UUID",
        re.compile(_NB + r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}" + _NA),
        mining=True,
        redact=True,
    ),
    # MAC / colon-separated hex chains (FF:F2:9F:16:E2:23:00:0D) before IPv6/ports get split
    _m("MAC", _NB + r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5,}" + _NA),
    _r("MAC", r"\b[0-9A-Fa-f]{2}(?:([:\-])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}\b"),
    # IPv6 (8 groups for mining; the compressed forms too for redaction)
    _m("IPV6", _NB + r"(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}" + _NA),
    _r(
        "IPV6",
        r"(?<![\w:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|"
        r"(?:[0-9a-fA-F]{1,4}:){1,6}(?::[0-9a-fA-F]{1,4}){1,6}|(?:[0-9a-fA-F]{1,4}:){1,7}:|"
        r"::(?:[0-9a-fA-F]{1,4}:){0,6}[0-9a-fA-F]{1,4})(?![\w:])",
    ),
    # IPv4 with an optional leading slash and optional :port (host:port is one value)
    _m("IPV4", r"/?" + _NB + r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w]|\.\w)"),
    _r("IPV4", r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
    # card numbers that pass the Luhn check; phone numbers written with a country code
    _r("CARD", r"\b\d(?:[ \-]?\d){12,18}\b", check=_card_filter),
    _r("PHONE", r"(?<![\w.])\+\d{1,3}[ \-]?\(?\d{1,4}\)?[ \-]?\d{3,4}[ \-]?\d{3,4}\b"),
    # fully qualified host names (known top-level domains only: "java.lang.String" is not a host)
    _r("HOST", r"(?<![\w.\-@])(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?:" + _TLDS + r")(?![\w\-]|\.\w)"),
    # Unix paths with at least two segments (or a trailing slash), not URLs
    _m(
        "PATH",
        r"(?<![\w:/.\x00])(?:~|\.{1,2})?(?:/+[^\s/:()\[\]{}\"',;<>\x00]+){2,}/?|(?<![\w:/\x00])/[\w.\-@%+~]+/",
    ),
    _r("PATH", r"(?<![\w:/.])(?:~|\.{1,2})?(?:/[\w.\-@%+~]+){2,}/?"),
    # host:port, the pair is one value: proxy.cse.cuhk.edu.hk:5070
    _m("HOSTPORT", r"(?<![\w.\-\x00])[A-Za-z0-9][\w\-]*(?:\.[\w\-]+)*\.[A-Za-z]{2,}:\d{1,5}(?![\w.])"),
    # host names with a numeric part: cp-1.slowvm1.utah.cloudlab.us, 24-54-76-216.bflony.adelphia.net
    _m(
        "HOSTNAME",
        r"(?<![\w.\-\x00])(?=[\w\-]*(?:^|[\-.])\d|(?=[A-Za-z_\-]*+\d)[\w\-]*+\.)"
        r"(?=[\w.\-]*[A-Za-z])[A-Za-z0-9][\w\-]*(?:\.[A-Za-z0-9][\w\-]*){2,}(?![\w.\-])",
    ),
    # booleans are values
    _m("BOOL", r"\b(?:true|false|True|False)\b"),
    # versions: v1.0.0, v0.97
    _m("VERSION", r"\bv\d+(?:\.\d+)+[a-z]*\b"),
    # Windows paths
    _m("PATH", r"\b[A-Za-z]:\\[^\s\"'\x00]+"),
    # identifiers ending in an id: blk_-123, rdd_2_1, broadcast_9_piece0, attempt_2017_0024_m_00003_1
    _m("ID", _NB + r"[A-Za-z][A-Za-z]*_-?\d[\w\-]*" + _NA),
    # hex with 0x prefix, and bare hex runs long enough to be ids (must contain a digit)
    _m("HEX", r"\b0[xX][0-9a-fA-F]+\b"),
    _m("HEX", _NB + r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}" + _NA),
    _r("HEX", r"\b(?:0[xX][0-9a-fA-F]{6,}|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,})\b"),
    # durations glued to their unit: 10000ms, 1.5s, 30min
    _m("DURATION", r"(?<![\w\x00])\d+(?:\.\d+)?(?:ns|us|µs|ms|s|sec|secs|min|mins|h|hr|hrs|d)" + _NA),
    _r("DURATION", r"\b\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)\b"),
    # numbers: integers, decimals, versions, signed, dotted/dashed runs (2005-06-03-15.42.50)
    _m("NUMBER", r"(?<![\w\x00])[-+]?\d+(?:[.\-]\d+)*(?:[kKmMgG][bB]?)?" + _NA),
    _r("NUMBER", r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])"),
)
_MINING_RULES: tuple[re.Pattern[str], ...] = tuple(r.pattern for r in RULES if r.mining)
_REDACT_RULES: tuple[MaskRule, ...] = tuple(r for r in RULES if r.redact)
_HOLES = re.compile(r"\x00+(?:[.\-_]?\x00+)*")  # adjacent masks (1.2.<*>) form one value


def _blank(match: re.Match[str]) -> str:
    return _HOLE * (match.end() - match.start())


def _blank_group(group: int) -> Callable[[re.Match[str]], str]:
    """Blank only the rule's value group: ``password=hunter2`` -> ``password=<*>``."""

    def blank(match: re.Match[str]) -> str:
        start, end = match.span(group)
        if start < 0:
            return match.group(0)
        base = match.start()
        whole = match.group(0)
        return whole[: start - base] + _HOLE * (end - start) + whole[end - base :]

    return blank


_MINING_STEPS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = tuple(
    (r.pattern, _blank_group(r.group) if r.group else _blank) for r in RULES if r.mining
)


def mask_spans(message: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of ``message`` that are values, in order, never overlapping."""
    text = message.replace(_HOLE, " ") if _HOLE in message else message
    for pattern, blank in _MINING_STEPS:
        text = pattern.sub(blank, text)
    if _HOLE not in text:
        return []
    return [m.span() for m in _HOLES.finditer(text)]


def apply_spans(message: str, spans: list[tuple[int, int]]) -> str:
    """``message`` with each span replaced by ``<*>``."""
    if not spans:
        return message
    parts = []
    prev = 0
    for start, end in spans:
        parts.append(message[prev:start])
        parts.append(WILDCARD)
        prev = end
    parts.append(message[prev:])
    return "".join(parts)


def mask_for_mining(message: str) -> str:
    """Replace variable-looking values with ``<*>`` while keeping the text around them."""
    return apply_spans(message, mask_spans(message))


# Digits fold to "0": the mining rules do not tell digits apart (the one exception, a "0x" prefix,
# only matters for odd tokens like "1x5"), so messages with one shape key are masked at the same
# offsets. bytes.translate is C-fast.
_SHAPE_TABLE = bytes.maketrans(b"123456789", b"000000000")
_ANY_DIGIT = re.compile(r"\d")
_BOOLEANS = frozenset({"true", "false", "True", "False"})


def shape_key(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").translate(_SHAPE_TABLE)


# Rules that may span whitespace; a line without any of these triggers can be masked token by token.
_MULTI_TOKEN = re.compile(
    r"\b" + _MONTH + r"\s+\d|\d{4}-\d\d-\d\d|HTTP/\d|\d\s(?:[KMGT]i?B|B|bytes)[,;)\]]"
    # the secret rules that reach across a space: "Bearer <token>", "password: <value>", a PEM block
    r"|(?i:bearer|basic|token)\s|(?<![<\w])(?i:" + _SENSITIVE_FIELDS + r")[\"']?\s*[=:]\s|-----BEGIN"
)


class MiningMasker:
    """``mask_for_mining`` with bounded caches keyed by digit shape, for lines and for tokens.

    The result is the masked message with whitespace normalised to single spaces (what the miner
    tokenises). Lines of a shape seen before are answered from the line cache; other lines without
    rules that cross whitespace are masked token by token, each token shape being masked once.
    """

    __slots__ = ("_lines", "_tokens", "hits", "max_entries", "misses")

    def __init__(self, max_entries: int = 65_536) -> None:
        self._lines: dict[bytes, str | None] = {}
        self._tokens: dict[bytes, tuple[list[tuple[int, int]], str | None]] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def __call__(self, message: str) -> str:
        return self.mask(message, shape_key(message))[0]

    def mask(self, message: str, key: bytes) -> tuple[str, bool]:
        """The masked message, and whether it is the same for every message of shape ``key``."""
        cached = self._lines.get(key)
        if cached is not None:
            self.hits += 1
            return cached, True
        self.misses += 1
        if _MULTI_TOKEN.search(message) is not None:
            masked = " ".join(mask_for_mining(message).split())
        else:
            masked = " ".join([self._token(tok) for tok in message.split()])
        exact = _ANY_DIGIT.search(masked) is None
        if exact:
            if len(self._lines) >= self.max_entries:
                self._lines.clear()
            self._lines[key] = masked
        return masked, exact

    def _token(self, token: str) -> str:
        if token.isalpha():
            return WILDCARD if token in _BOOLEANS else token
        if token.isdigit():
            return WILDCARD
        key = token.encode("utf-8", "surrogatepass").translate(_SHAPE_TABLE)
        entry = self._tokens.get(key)
        if entry is None:
            spans = mask_spans(token)
            masked = apply_spans(token, spans)
            entry = (spans, masked if _ANY_DIGIT.search(masked) is None else None)
            if len(self._tokens) >= self.max_entries:
                self._tokens.clear()
            self._tokens[key] = entry
        return entry[1] if entry[1] is not None else apply_spans(token, entry[0])


# --- value types --------------------------------------------------------------------------------------
_TYPE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("int", re.compile(r"[-+]?\d+")),
    ("float", re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?")),
    ("hex", re.compile(r"(?:0[xX])?[0-9a-fA-F]*\d[0-9a-fA-F]*")),
    ("ipv4", re.compile(r"/?\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?")),
    ("uuid", re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")),
    ("mac", re.compile(r"[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}")),
    ("email", re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")),
    ("url", re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")),
    ("path", re.compile(r"(?:[A-Za-z]:\\|~|\.{0,2}/)[^\s]*")),
    (
        "duration",
        re.compile(r"[-+]?\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds|m|min|mins|h|hr|hrs|d)"),
    ),
    ("size", re.compile(r"[-+]?\d+(?:\.\d+)?\s?(?:[kKmMgGtT]i?[bB]|[bB]|bytes)")),
    ("ipv6", re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*:[0-9a-fA-F:]*")),
    ("version", re.compile(r"v?\d+(?:\.\d+){2,}(?:[-+][\w.]+)?")),
    ("id", re.compile(r"[A-Za-z_][\w\-]*\d[\w\-]*")),
    ("word", re.compile(r"[A-Za-z][A-Za-z'\-]*")),
)


_TYPE_CACHE: dict[bytes, str] = {}


def value_type(value: str) -> str:
    """Name the type of an extracted variable: int, float, hex, ipv4, uuid, path, ... or ``str``."""
    if not value:
        return "empty"
    if value.isdigit():
        return "int"
    key = shape_key(value)  # the rules do not tell digits apart (except 0 of 0x)
    cached = _TYPE_CACHE.get(key)
    if cached is not None:
        return cached
    found = "str"
    for name, pattern in _TYPE_RULES:
        if pattern.fullmatch(value):
            found = name
            break
    if len(_TYPE_CACHE) >= 65_536:
        _TYPE_CACHE.clear()
    _TYPE_CACHE[key] = found
    return found


# --- redaction --------------------------------------------------------------------------------------
RedactMode = Literal["mask", "hash", "keep"]

# A tenant's masking mode, for everything that leaves the machine (LLM prompts, alert notifications):
# mask | hash | keep, plus strict (mask with IP addresses and host names). "off", the first name of
# "keep", is still accepted and read as "keep" (migration 0306 rewrote stored rows).
MASKING_MODES = ("mask", "hash", "keep", "strict")
LEGACY_MASKING_MODES = {"off": "keep"}


def masking_mode(value: str) -> str:
    """``value`` in its current spelling (``off`` -> ``keep``); unknown values stay as they are."""
    return LEGACY_MASKING_MODES.get(value, value)


# Redaction classes, for policies to pick from (``analyse.redact.RedactionPolicy``).
SECRET_TYPES: frozenset[str] = frozenset(
    {"PRIVATE_KEY", "JWT", "TOKEN", "AWS_KEY", "GCP_KEY", "API_KEY", "CREDENTIALS", "SECRET"}
)
PII_TYPES: frozenset[str] = frozenset({"EMAIL", "CARD", "PHONE"})
NETWORK_TYPES: frozenset[str] = frozenset({"IPV4", "IPV6", "MAC", "HOST"})
# ``redact``'s default: secrets, personal data and the identifiers that can point at a person or machine.
# Numbers, paths, durations and hex ids are only masked for mining unless asked for by ``types``.
SENSITIVE_TYPES: frozenset[str] = SECRET_TYPES | PII_TYPES | frozenset({"UUID", "MAC", "IPV6", "IPV4", "URL"})
REDACT_TYPES: frozenset[str] = frozenset(r.type for r in _REDACT_RULES)


def _hash_value(value: str, key: bytes) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=key[:64], digest_size=6).hexdigest()


def redact(
    text: str,
    mode: RedactMode | str = "mask",
    *,
    types: frozenset[str] = SENSITIVE_TYPES,
    hash_key: bytes = b"logloupe",
) -> str:
    """Replace sensitive values in ``text`` by ``<TYPE>`` (mask), ``<TYPE:hash>`` (hash) or keep them.

    The hash is keyed (per tenant) so equal values stay joinable without being reversible by lookup.
    Any mode other than ``keep`` and ``hash`` masks: an unknown mode never lets a value through.
    """
    if mode == "keep" or not text:
        return text
    hashed = mode == "hash"
    for rule in _REDACT_RULES:
        if rule.type not in types:
            continue

        def _replace(match: re.Match[str], rule: MaskRule = rule) -> str:
            if rule.check is not None and not rule.check(match):
                return match.group(0)
            value = match.group(rule.group)
            if value is None:
                return match.group(0)
            placeholder = f"<{rule.type}:{_hash_value(value, hash_key)}>" if hashed else f"<{rule.type}>"
            start, end = match.span(rule.group)
            base = match.start(0)
            whole = match.group(0)
            return whole[: start - base] + placeholder + whole[end - base :]

        text = rule.pattern.sub(_replace, text)
    return text
