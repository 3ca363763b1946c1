"""Starts the syslog listeners with the server when ``syslog_udp_port``/``syslog_tcp_port`` are set.

Syslog carries no credentials: a message belongs to the tenant ``syslog_tenant_map`` names for the
sender's network (the most specific CIDR wins), else to ``syslog_tenant`` (default: ``default_tenant``).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter

from logloupe.ingest.syslog_listen import SenderTenants, TcpListener, UdpListener
from logloupe.pipeline.decode import encode_entry
from logloupe.serve.api.logs import pipeline_of
from logloupe.serve.services import Services
from logloupe.store.search import now_us

router = APIRouter(tags=["syslog"])


def setup(services: Services) -> None:
    settings = services.settings
    if not settings.syslog_udp_port and not settings.syslog_tcp_port:
        return
    pipeline = pipeline_of(services)
    tenants = SenderTenants(settings.syslog_tenant_map, settings.syslog_tenant or settings.default_tenant)
    services.extras["syslog_tenants"] = tenants

    def submit(records: list[dict[str, Any]], source: str, sender: str) -> None:
        tenant = tenants.tenant_for(sender)
        payload = encode_entry(tenant, source, [orjson.dumps(r) for r in records], observed_us=now_us())
        pipeline.append(tenant, payload, len(records))

    listeners: list[Any] = []
    if settings.syslog_udp_port:
        listeners.append(UdpListener(settings.syslog_host, settings.syslog_udp_port, submit))
    if settings.syslog_tcp_port:
        listeners.append(TcpListener(settings.syslog_host, settings.syslog_tcp_port, submit))
    services.extras["syslog_listeners"] = listeners


def teardown(services: Services) -> None:
    for listener in services.extras.pop("syslog_listeners", []):
        listener.close()
