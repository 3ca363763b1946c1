"""Syslog listeners (UDP and TCP) on threads, feeding a ``submit(records)`` callable.

TCP pushes back: while ``submit`` refuses (buffer full or over the rate limit) the connection is not
read, so the sender's socket buffer fills and it waits. UDP cannot push back: refused datagrams are
counted in ``logloupe_dropped_events{source="syslog_udp"}``.

``submit`` gets the sender's address too; ``SenderTenants`` turns it into a tenant (syslog carries
no credentials, so the network a message comes from is what says whose it is).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from logloupe.errors import LogLoupeError, TooManyRequests
from logloupe.ingest.syslog import Framer, parse_message, split_datagram
from logloupe.metrics import DROPPED

log = logging.getLogger(__name__)

# (records, source, sender address); may raise TooManyRequests, leaving in ``records`` what it did not take
Submit = Callable[[list[dict[str, Any]], str, str], None]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SENDER_CACHE_MAX = 10_000


class SenderTenants:
    """Sender address → tenant: the most specific network of ``mapping`` (CIDR → tenant) that holds the
    address, else ``default``. IPv4-mapped IPv6 addresses (a listener bound to ``::``) count as IPv4."""

    def __init__(self, mapping: Mapping[str, str], default: str) -> None:
        self.default = default
        networks = [(ipaddress.ip_network(cidr, strict=False), tenant) for cidr, tenant in mapping.items()]
        self.networks: list[tuple[IPNetwork, str]] = sorted(networks, key=lambda nt: -nt[0].prefixlen)
        self._cache: dict[str, str] = {}

    def tenant_for(self, address: str) -> str:
        found = self._cache.get(address)
        if found is None:
            found = self._lookup(address)
            if len(self._cache) >= SENDER_CACHE_MAX:
                self._cache.clear()
            self._cache[address] = found
        return found

    def _lookup(self, address: str) -> str:
        if not self.networks:
            return self.default
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return self.default
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for network, tenant in self.networks:
            if ip.version == network.version and ip in network:
                return tenant
        return self.default


def _records(frames: list[bytes]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [parse_message(f, now) for f in frames]


class UdpListener:
    def __init__(self, host: str, port: int, submit: Submit, *, batch: int = 1000, linger_s: float = 0.05) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.submit = submit
        self.batch = batch
        self.linger_s = linger_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logloupe-syslog-udp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frames: dict[str, list[bytes]] = {}  # by sender address, in arrival order
        count = 0
        first = 0.0
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
                if not frames:
                    first = time.monotonic()
                got = split_datagram(data)
                frames.setdefault(str(addr[0]), []).extend(got)
                count += len(got)
            except TimeoutError:
                pass
            except OSError:
                if self._stop.is_set():
                    break
                raise
            if frames and (count >= self.batch or time.monotonic() - first >= self.linger_s):
                for sender, group in frames.items():
                    self._send(group, sender)
                frames, count = {}, 0
        for sender, group in frames.items():
            self._send(group, sender)

    def _send(self, frames: list[bytes], sender: str) -> None:
        records = _records(frames)
        try:
            self.submit(records, "syslog_udp", sender)
        except TooManyRequests as exc:  # ``submit`` left in ``records`` what it could not take
            reason = "rate_limit" if "rate_bytes_s" in exc.details else "buffer_full"
            DROPPED.labels("syslog_udp", reason).inc(len(records))
        except LogLoupeError as exc:
            DROPPED.labels("syslog_udp", exc.code).inc(len(records))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        framer = Framer()
        self.request.settimeout(1.0)
        while not self.server.stopping.is_set():
            try:
                data = self.request.recv(256 * 1024)
            except TimeoutError:
                continue
            except OSError:
                break
            frames = framer.feed(data) if data else framer.flush()
            if frames:
                self._send(frames)
            if not data:
                break

    def _send(self, frames: list[bytes]) -> None:
        records = _records(frames)
        while not self.server.stopping.is_set():
            try:
                self.server.submit(records, "syslog_tcp", str(self.client_address[0]))
                return
            except TooManyRequests as exc:  # push back: stop reading until there is room
                time.sleep(min(float(exc.retry_after_s), 1.0))


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], submit: Submit) -> None:
        self.submit = submit
        self.stopping = threading.Event()
        super().__init__(addr, _TcpHandler)


class TcpListener:
    def __init__(self, host: str, port: int, submit: Submit) -> None:
        self.server = _TcpServer((host, port), submit)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="logloupe-syslog-tcp", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
