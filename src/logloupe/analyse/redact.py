"""Mask secrets and personal data before any text leaves the machine.

The policy is per tenant (``RedactionPolicy``); the default masks credentials, tokens, keys,
e-mail addresses, card numbers and phone numbers, and keeps IP addresses, which diagnosis
often needs (set ``ip_addresses=True`` to mask them too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

_SECRET_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
        "<PRIVATE_KEY>",
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"), "<JWT>"),
    ("bearer", re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 <SECRET>"),
    (
        "api_key",
        re.compile(
            r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}\b|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}\b|"
            r"\bxox[abpr]-[A-Za-z0-9-]{10,}\b|\bhf_[A-Za-z0-9]{20,}\b"
        ),
        "<SECRET>",
    ),
    (
        "assignment",
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|auth)"
            r"(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',;&]+)"
        ),
        r"\1\2<SECRET>",
    ),
    (
        "url_credentials",
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/:@]+:[^\s/@]+@"),
        r"\1<USER>:<SECRET>@",
    ),
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_PHONE = re.compile(r"(?<![\w.])\+\d{1,3}[ -]?\(?\d{1,4}\)?[ -]?\d{3,4}[ -]?\d{3,4}\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class RedactionPolicy:
    secrets: bool = True
    emails: bool = True
    card_numbers: bool = True
    phone_numbers: bool = True
    ip_addresses: bool = False

    def apply(self, text: str) -> str:
        if self.secrets:
            for _, pattern, repl in _SECRET_RULES:
                text = pattern.sub(repl, text)
        if self.emails:
            text = _EMAIL.sub("<EMAIL>", text)
        if self.card_numbers:
            text = _CARD.sub(_card_repl, text)
        if self.phone_numbers:
            text = _PHONE.sub("<PHONE>", text)
        if self.ip_addresses:
            text = _IPV4.sub("<IP>", text)
        return text


def tenant_policy(data_dir: Path, tenant: str, base: RedactionPolicy | None = None) -> RedactionPolicy:
    """``base`` overridden by ``<data_dir>/policies/<tenant>.json`` (booleans by field name), if present."""
    policy = base or RedactionPolicy()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", tenant) or tenant in {".", ".."}:
        raise ValueError(f"invalid tenant name {tenant!r}")
    path = data_dir / "policies" / f"{tenant}.json"
    if not path.exists():
        return policy
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(RedactionPolicy)}
    return replace(policy, **{k: bool(v) for k, v in data.items() if k in known})


def _card_repl(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "<CARD>" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


DEFAULT_POLICY = RedactionPolicy()
