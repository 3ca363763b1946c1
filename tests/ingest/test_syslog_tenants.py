"""Per-sender syslog tenants: the sender's network names the tenant (``syslog_tenant_map``)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest
from pydantic import ValidationError

from logloupe.ingest.syslog_listen import SenderTenants
from logloupe.settings import Settings
from logloupe.store.events import EventStore
from tests.helpers import free_port, wait_http
from tests.ingest.conftest import free_udp_port, start_server, stop

MAP = {"127.0.0.0/24": "lab", "127.0.0.2/32": "acme", "2001:db8::/32": "beta"}


@pytest.mark.parametrize(
    ("address", "tenant"),
    [
        ("127.0.0.2", "acme"),  # /32 beats the /24 that holds it too
        ("127.0.0.1", "lab"),
        ("127.0.0.254", "lab"),
        ("127.0.1.5", "shared"),  # in no network: the default
        ("::ffff:127.0.0.2", "acme"),  # IPv4-mapped, as a listener on :: sees it
        ("2001:db8:1::7", "beta"),
        ("2001:db9::1", "shared"),
        ("fe80::1%eth0", "shared"),
        ("not an address", "shared"),
    ],
)
def test_sender_tenants_most_specific_network_wins(address: str, tenant: str) -> None:
    tenants = SenderTenants(Settings(syslog_tenant_map=MAP).syslog_tenant_map, "shared")
    assert tenants.tenant_for(address) == tenant
    assert tenants.tenant_for(address) == tenant  # cached


def test_tenant_map_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGLOUPE_SYSLOG_TENANT_MAP", '{"10.1.2.3/16": "acme"}')
    assert Settings().syslog_tenant_map == {"10.1.0.0/16": "acme"}  # host bits cleared
    with pytest.raises(ValidationError, match="not a network"):
        Settings(syslog_tenant_map={"10.1.0.0/33": "acme"})
    with pytest.raises(ValidationError, match="no tenant"):
        Settings(syslog_tenant_map={"10.1.0.0/16": " "})


def _tenants_of(data: Path, mark: str) -> dict[str, list[str]]:
    with EventStore(data) as store:
        rows = store.rows(
            "SELECT tenant, message FROM events WHERE position(message, {mark:String}) > 0 ORDER BY message",
            {"mark": mark},
        )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["tenant"], []).append(row["message"])
    return found


def _stored(port: int) -> float:
    """Syslog events stored for the mapped tenants so far (``logloupe_ingested_events_total``)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("logloupe_ingested_events_total{")
        and any(f'tenant="{t}"' in line for t in ("lab", "acme", "shared"))
    )


def test_syslog_senders_land_in_their_mapped_tenants(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port, udp, tcp = free_port(), free_udp_port(), free_port()
    mark = f"sendertenant{time.time_ns()}"
    proc = start_server(
        data,
        port,
        udp,
        tcp,
        LOGLOUPE_SYSLOG_TENANT="shared",
        LOGLOUPE_SYSLOG_TENANT_MAP=orjson.dumps(MAP).decode(),
        LOGLOUPE_INGEST_WAIT_STORED="true",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        # util-linux logger sends from 127.0.0.1 (the /24: "lab"), over UDP and TCP.
        for transport in ("-d", "-T"):
            subprocess.run(
                ["logger", "--rfc5424", "-n", "127.0.0.1", "-P", str(udp if transport == "-d" else tcp), transport,
                 "-t", "labapp", f"{mark} from logger {transport}"],
                check=True, timeout=10,
            )  # fmt: skip
        # 127.0.0.2 has a /32 of its own ("acme"): a UDP datagram from there.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            s.sendto(f"<11>Nov 21 04:40:00 acmehost acmeapp: {mark} from acme udp".encode(), ("127.0.0.1", udp))
        # 127.0.1.5 is in no mapped network: the default syslog_tenant ("shared"), over TCP.
        with socket.create_connection(("127.0.0.1", tcp), source_address=("127.0.1.5", 0)) as s:
            s.sendall(f"<14>Nov 21 04:40:00 otherhost other: {mark} from elsewhere tcp\n".encode())
        deadline = time.monotonic() + 30
        while _stored(port) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(proc)  # flushes the buffer into the store, then releases it
    found = _tenants_of(data, mark)
    assert found == {
        "lab": [f"{mark} from logger -T", f"{mark} from logger -d"],
        "acme": [f"{mark} from acme udp"],
        "shared": [f"{mark} from elsewhere tcp"],
    }
    assert "default" not in found  # the local-mode tenant sees none of it
