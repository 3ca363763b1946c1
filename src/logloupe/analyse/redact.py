"""The per-tenant redaction policy: which of ``parse.masking``'s rules apply, and how.

The rules themselves live in one table, ``parse.masking.RULES``; this module only chooses. A tenant's
masking mode is one of:

* ``mask`` (the default): secrets (private keys, JWTs, bearer tokens, cloud and API keys, credentials
  in URLs, ``password=``-style values) and personal data (e-mail addresses, Luhn-valid card numbers,
  phone numbers) become typed placeholders such as ``<EMAIL>``. IP addresses are kept, diagnosis often
  needs them (``redact_ip_addresses`` masks them too).
* ``hash``: the same values become ``<EMAIL:1f2e3d4c5b6a>``, a short keyed hash. Equal values give equal
  hashes within a tenant, so "the same user on every line" stays visible without the value; the key
  is per tenant (derived from a random secret in the data dir), so hashes are neither reversible by
  hashing guesses outside this machine nor joinable across tenants.
* ``keep``: text is sent as it is.
* ``strict``: ``mask`` plus IP addresses, MAC addresses and fully qualified host names.

``off`` is the old name of ``keep`` and is read as ``keep``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from logloupe.parse.masking import MASKING_MODES, NETWORK_TYPES, SECRET_TYPES, masking_mode, redact

log = logging.getLogger(__name__)

MODES = MASKING_MODES
DEFAULT_MODE = "mask"
KEY_FILE = "redact.key"  # under the data dir: the secret every tenant's hash key is derived from
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def normalise_mode(mode: str) -> str:
    """A stored or requested masking mode in its current spelling; ``ValueError`` when unknown."""
    mode = masking_mode(mode)
    if mode not in MODES:
        raise ValueError(f"masking_mode must be one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True, slots=True)
class RedactionPolicy:
    secrets: bool = True
    emails: bool = True
    card_numbers: bool = True
    phone_numbers: bool = True
    ip_addresses: bool = False
    host_names: bool = False
    mode: str = DEFAULT_MODE  # mask | hash | keep (strict is mask with the network flags set)
    hash_key: bytes = field(default=b"logloupe", repr=False)

    @classmethod
    def for_mode(cls, mode: str, *, ip_addresses: bool = False, hash_key: bytes = b"logloupe") -> RedactionPolicy:
        mode = normalise_mode(mode)
        if mode == "strict":
            return cls(ip_addresses=True, host_names=True, hash_key=hash_key)
        return cls(mode=mode, ip_addresses=ip_addresses, hash_key=hash_key)

    @property
    def types(self) -> frozenset[str]:
        """The ``parse.masking`` rule types this policy applies."""
        chosen: set[str] = set()
        if self.secrets:
            chosen |= SECRET_TYPES
        if self.emails:
            chosen.add("EMAIL")
        if self.card_numbers:
            chosen.add("CARD")
        if self.phone_numbers:
            chosen.add("PHONE")
        if self.ip_addresses:
            chosen |= NETWORK_TYPES - {"HOST"}
        if self.host_names:
            chosen.add("HOST")
        return frozenset(chosen)

    def apply(self, text: str) -> str:
        if self.mode == "keep":
            return text
        return redact(text, "hash" if self.mode == "hash" else "mask", types=self.types, hash_key=self.hash_key)


_keys_lock = threading.Lock()
_master_keys: dict[Path, bytes] = {}


def _master_key(data_dir: Path) -> bytes:
    """The data dir's random redaction secret, created (mode 0600) on first use."""
    path = data_dir / KEY_FILE
    with _keys_lock:
        key = _master_keys.get(path)
        if key is not None:
            return key
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = b""
        if len(key) < 32:
            key = secrets.token_bytes(32)
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(key)
            except FileExistsError:  # another process made it first: use theirs
                key = path.read_bytes()
            except OSError:  # read-only data dir: hashes are stable for this process only
                log.warning("cannot write %s; hashed values stay comparable only within this process", path)
        _master_keys[path] = key
        return key


def tenant_hash_key(data_dir: Path, tenant: str) -> bytes:
    """The tenant's key for hash mode: equal values hash alike within a tenant, never across tenants."""
    return hmac.new(_master_key(data_dir), tenant.encode("utf-8"), hashlib.sha256).digest()


def tenant_policy(data_dir: Path, tenant: str, base: RedactionPolicy | None = None) -> RedactionPolicy:
    """``base`` overridden by ``<data_dir>/policies/<tenant>.json``, if present, with the tenant's hash key.

    The file holds booleans by field name (``{"ip_addresses": true}``) and optionally ``"mode"``
    (``mask``, ``hash``, ``keep`` or ``strict``).
    """
    policy = base or RedactionPolicy()
    if not _TENANT.fullmatch(tenant) or tenant in {".", ".."}:
        raise ValueError(f"invalid tenant name {tenant!r}")
    path = data_dir / "policies" / f"{tenant}.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        mode = data.get("mode", data.get("masking_mode"))
        if isinstance(mode, str):
            policy = RedactionPolicy.for_mode(mode, ip_addresses=policy.ip_addresses)
        flags = {f.name for f in fields(RedactionPolicy) if f.type in ("bool", bool)}
        overrides: dict[str, Any] = {k: bool(v) for k, v in data.items() if k in flags}
        policy = replace(policy, **overrides)
    if policy.mode == "hash":
        policy = replace(policy, hash_key=tenant_hash_key(data_dir, tenant))
    return policy


def tenant_redaction(data_dir: Path, tenant: str, mode: str, *, ip_addresses: bool = False) -> RedactionPolicy:
    """What leaves the machine for ``tenant`` (LLM prompts, alert notifications): its stored masking mode,
    then its policy file. A mode this version does not know masks (never lets text through)."""
    try:
        base = RedactionPolicy.for_mode(mode, ip_addresses=ip_addresses)
    except ValueError:
        log.warning("unknown masking mode %r for tenant %s; masking", mode, tenant)
        base = RedactionPolicy(ip_addresses=ip_addresses)
    return tenant_policy(data_dir, tenant, base)


DEFAULT_POLICY = RedactionPolicy()
