"""Starts the syslog listeners with the server when ``syslog_udp_port``/``syslog_tcp_port`` or
``syslog_tenant_ports`` are set.

Whose a message is, first match wins:

1. an API key in the message (structured data ``[logloupe@32473 key="llk_…"]`` or a first word
   ``llk_…``; ``ingest/syslog.py: message_key``): the key's tenant, with its role, source scope and
   the tenant's quotas checked as on every other ingest path. A key that is unknown, revoked or not
   allowed this source sends the message to the quarantine (of the tenant the message would
   otherwise have had) with the reason; the key itself is never stored;
2. the port it arrived on, if ``syslog_tenant_ports`` names it;
3. the sender's network (``syslog_tenant_map``, the most specific CIDR wins), else ``syslog_tenant``
   (default: ``default_tenant``) — unless ``syslog_require_key``, which quarantines it instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter

from logloupe.errors import LogLoupeError, TooManyRequests
from logloupe.ingest.syslog import message_key, without_key
from logloupe.ingest.syslog_listen import SenderTenants, Submit, TcpListener, UdpListener
from logloupe.metrics import REJECTED
from logloupe.pipeline.decode import encode_entry
from logloupe.serve.api.logs import pipeline_of
from logloupe.serve.deps import Principal
from logloupe.serve.services import Services
from logloupe.store.search import now_us

router = APIRouter(tags=["syslog"])

KEY_CACHE_S = 30.0  # a revoked key stops working within this long
KEY_CACHE_MAX = 1000


@dataclass
class _Item:  # what QuotaChecker.check counts
    raw: bytes
    error: str | None = None


class KeyCache:
    """Key → principal (or the error it raised), remembered for ``KEY_CACHE_S``: a busy sender puts
    its key in every message, and checking it is a hash and a metadata lookup."""

    def __init__(self, resolve: Callable[[str], Principal], clock: Callable[[], float] = time.monotonic) -> None:
        self.resolve = resolve
        self.clock = clock
        self._known: dict[str, tuple[float, Principal | LogLoupeError]] = {}
        self._lock = threading.Lock()

    def principal(self, key: str) -> Principal:
        now = self.clock()
        with self._lock:
            hit = self._known.get(key)
        if hit is None or hit[0] < now:
            try:
                found: Principal | LogLoupeError = self.resolve(key)
            except LogLoupeError as exc:
                found = exc
            with self._lock:
                if len(self._known) >= KEY_CACHE_MAX:
                    self._known.clear()
                self._known[key] = (now + KEY_CACHE_S, found)
            hit = (0.0, found)
        if isinstance(hit[1], LogLoupeError):
            raise hit[1]
        return hit[1]


def _redacted(record: dict[str, Any]) -> bytes:
    return orjson.dumps(without_key(record))


class SyslogTenants:
    """Turns a listener's batch into per-tenant buffer entries (see the module docstring)."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.services = services
        self.pipeline = pipeline_of(services)
        self.senders = SenderTenants(settings.syslog_tenant_map, settings.syslog_tenant or settings.default_tenant)
        self.require_key = settings.syslog_require_key
        self.keys: KeyCache | None = None
        if settings.auth_enabled:
            from logloupe.serve.auth import principal_from_key

            self.keys = KeyCache(lambda key: principal_from_key(services, key))

    def submitter(self, port_tenant: str = "") -> Submit:
        def submit(records: list[dict[str, Any]], source: str, sender: str) -> None:
            self.submit(records, source, sender, port_tenant)

        return submit

    def submit(self, records: list[dict[str, Any]], source: str, sender: str, port_tenant: str = "") -> None:
        """Append ``records`` by tenant. Each group appended is removed from ``records``, so a caller
        retrying after ``TooManyRequests`` (TCP push-back) sends only what is left."""
        fallback = port_tenant or self.senders.tenant_for(sender)
        # By tenant and key: each key is checked (role, source scope) on its own messages only.
        groups: dict[tuple[str, str], list[int]] = {}
        principals: dict[str, Principal] = {}
        rejected: dict[str, list[tuple[str, bytes]]] = {}
        handled: set[int] = set()  # quarantined or appended: not to be sent again
        keys = [message_key(record) for record in records]
        for i, (record, key) in enumerate(zip(records, keys, strict=True)):
            tenant, by = fallback, ""
            if key is not None and self.keys is not None:
                try:
                    principal = self.keys.principal(key)
                except LogLoupeError as exc:
                    rejected.setdefault(fallback, []).append((f"syslog API key: {exc.message}", _redacted(record)))
                    handled.add(i)
                    continue
                tenant, by = principal.tenant, key
                principals[key] = principal
            elif key is None and self.require_key and not port_tenant:
                reason = "syslog message without an API key (syslog_require_key)"
                rejected.setdefault(fallback, []).append((reason, _redacted(record)))
                handled.add(i)
                continue
            groups.setdefault((tenant, by), []).append(i)
        for tenant, items in rejected.items():
            self.services.meta.quarantine(tenant, source, items)
            REJECTED.labels(tenant, source, "syslog_key").inc(len(items))
        try:
            for (tenant, by), idx in groups.items():
                # Only a message that carried a key is copied to take it out; the rest go as they are.
                payload = [_redacted(records[i]) if keys[i] else orjson.dumps(records[i]) for i in idx]
                principal = principals.get(by) or Principal(tenant=tenant, user="syslog", role="ingest")
                checker = self.services.extras.get("quota_checker")
                try:
                    if checker is not None:
                        checker.check(principal, source, [_Item(p) for p in payload])
                except TooManyRequests:
                    raise
                except LogLoupeError as exc:  # the key may not ingest this source: keep it visible
                    self.services.meta.quarantine(tenant, source, [(f"syslog: {exc.message}", p) for p in payload])
                    REJECTED.labels(tenant, source, "syslog_key").inc(len(payload))
                    handled.update(idx)
                    continue
                entry = encode_entry(tenant, source, payload, observed_us=now_us())
                self.pipeline.append(tenant, entry, len(payload))
                handled.update(idx)
        finally:
            records[:] = [r for i, r in enumerate(records) if i not in handled]


def setup(services: Services) -> None:
    settings = services.settings
    if not settings.syslog_udp_port and not settings.syslog_tcp_port and not settings.syslog_tenant_ports:
        return
    tenants = SyslogTenants(services)
    services.extras["syslog_tenants"] = tenants.senders
    listeners: list[Any] = []
    shared = tenants.submitter()
    if settings.syslog_udp_port:
        listeners.append(UdpListener(settings.syslog_host, settings.syslog_udp_port, shared))
    if settings.syslog_tcp_port:
        listeners.append(TcpListener(settings.syslog_host, settings.syslog_tcp_port, shared))
    for port, tenant in settings.syslog_tenant_ports.items():
        submit = tenants.submitter(tenant)
        listeners.append(UdpListener(settings.syslog_host, port, submit))
        listeners.append(TcpListener(settings.syslog_host, port, submit))
    services.extras["syslog_listeners"] = listeners


def teardown(services: Services) -> None:
    for listener in services.extras.pop("syslog_listeners", []):
        listener.close()
