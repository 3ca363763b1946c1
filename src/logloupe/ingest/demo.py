"""Realistic generated traffic for ``logloupe demo``: five services and four kinds of incident.

Deterministic for a seed and a start time, so the same demo tells the same story:
- a database outage burst (connection refused / pool exhausted, upstream 503s),
- a brand-new error pattern that never appeared before,
- a latency spike at the gateway,
- a worker service that goes silent.
Incidents repeat every ``CYCLE_S`` seconds (the new pattern appears once) so a live demo shows them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from logloupe.model import iso_micros

CYCLE_S = 15 * 60
OUTAGE = (180, 240)  # seconds into each cycle
LATENCY = (420, 500)
SILENCE = (600, 780)
NEW_PATTERN_AFTER_S = 300  # after the demo's start: the first cycle is its baseline

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
HOSTS = {
    "auth": ["auth-1", "auth-2"],
    "payments": ["pay-1", "pay-2"],
    "api-gateway": ["gw-1", "gw-2", "gw-3"],
    "database": ["db-primary", "db-replica"],
    "workers": ["worker-1", "worker-2"],
}
PATHS = [
    "/api/v1/orders",
    "/api/v1/cart",
    "/api/v1/users/me",
    "/api/v1/payments",
    "/api/v1/search",
    "/healthz",
]


class DemoTraffic:
    def __init__(self, start_us: int, seed: int = 7) -> None:
        self.start_us = start_us
        self.rng = random.Random(seed)

    def _phase(self, ts_us: int) -> int:
        return ((ts_us - self.start_us) // 1_000_000) % CYCLE_S

    def events(self, from_us: int, to_us: int, rate_per_s: float) -> Iterator[dict[str, Any]]:
        """Records for [from_us, to_us) at roughly ``rate_per_s`` events per second."""
        step = max(1, int(1_000_000 / rate_per_s))
        ts = from_us
        while ts < to_us:
            ts += int(self.rng.expovariate(1 / step)) + 1
            if ts >= to_us:
                break
            yield from self._one(ts)

    def _one(self, ts: int) -> Iterator[dict[str, Any]]:
        rng = self.rng
        phase = self._phase(ts)
        outage = OUTAGE[0] <= phase < OUTAGE[1]
        slow = LATENCY[0] <= phase < LATENCY[1]
        silent = SILENCE[0] <= phase < SILENCE[1]
        service = rng.choices(["api-gateway", "auth", "payments", "database", "workers"], weights=[40, 20, 15, 15, 10])[
            0
        ]
        if service == "workers" and silent:
            service = "api-gateway"
        host = rng.choice(HOSTS[service])
        trace = f"{rng.getrandbits(128):032x}"
        base: dict[str, Any] = {
            "timestamp": iso_micros(ts),
            "service": service,
            "host": host,
            "trace_id": trace,
        }
        user = rng.choice(USERS)
        ip = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

        if outage and service in ("database", "payments", "api-gateway") and rng.random() < 0.7:
            if service == "database":
                yield {
                    **base,
                    "level": "ERROR",
                    "message": f"connection refused: could not connect to server at 10.0.5.12:5432 "
                    f"(attempt {rng.randint(1, 5)}/5)",
                }
            elif service == "payments":
                yield {
                    **base,
                    "level": "ERROR",
                    "message": f"HikariPool-1 - Connection is not available, request timed out after "
                    f"{rng.randint(30000, 30050)}ms",
                    "meta": {"user": user, "order_id": f"ord_{rng.randint(10000, 99999)}"},
                }
            else:
                yield {
                    **base,
                    "level": "ERROR",
                    "message": f"upstream payments returned 503 for POST /api/v1/payments from {ip}",
                    "meta": {"status": 503, "latency_ms": rng.randint(5000, 30000)},
                }
            return

        if ts - self.start_us > NEW_PATTERN_AFTER_S * 1_000_000 and service == "payments" and rng.random() < 0.04:
            yield {
                **base,
                "level": "ERROR",
                "message": "NullPointerException in CouponService.apply(): coupon "
                f"{rng.choice(['SPRING', 'VIP', 'XMAS'])}{rng.randint(10, 99)} has no expiry date",
                "meta": {"user": user},
            }
            return

        if service == "api-gateway":
            path = rng.choice(PATHS)
            latency = rng.randint(800, 4000) if slow else max(2, int(rng.lognormvariate(3.2, 0.6)))
            status = rng.choices([200, 201, 304, 404, 500], weights=[80, 8, 5, 6, 1])[0]
            level = "ERROR" if status >= 500 else ("WARN" if latency > 1000 else "INFO")
            yield {
                **base,
                "level": level,
                "message": f"{rng.choice(['GET', 'POST'])} {path} {status} {latency}ms from {ip}",
                "meta": {"status": status, "latency_ms": latency, "path": path, "client_ip": ip},
            }
        elif service == "auth":
            r = rng.random()
            if r < 0.85:
                yield {
                    **base,
                    "level": "INFO",
                    "message": f"user {user} logged in from {ip}",
                    "meta": {"user": user},
                }
            elif r < 0.97:
                yield {
                    **base,
                    "level": "WARN",
                    "message": f"failed login for user {user} from {ip}: invalid password",
                    "meta": {"user": user},
                }
            else:
                yield {
                    **base,
                    "level": "INFO",
                    "message": f"token refreshed for user {user}",
                    "meta": {"user": user},
                }
        elif service == "payments":
            amount = round(rng.uniform(3, 400), 2)
            if rng.random() < 0.95:
                yield {
                    **base,
                    "level": "INFO",
                    "message": f"payment accepted order=ord_{rng.randint(10000, 99999)} amount={amount} currency=EUR",
                    "meta": {"user": user, "amount": amount},
                }
            else:
                yield {
                    **base,
                    "level": "WARN",
                    "message": f"card declined for user {user}: insufficient funds (amount={amount})",
                    "meta": {"user": user},
                }
        elif service == "database":
            ms = rng.randint(1, 40) if not slow else rng.randint(400, 2500)
            yield {
                **base,
                "level": "WARN" if ms > 300 else "DEBUG",
                "message": f"query executed in {ms} ms rows={rng.randint(0, 500)} "
                f"table={rng.choice(['orders', 'users', 'carts'])}",
            }
        else:
            job = f"job-{rng.randint(1000, 9999)}"
            if rng.random() < 0.9:
                yield {
                    **base,
                    "level": "INFO",
                    "message": f"processed {job} kind={rng.choice(['email', 'invoice', 'thumbnail'])} "
                    f"in {rng.randint(20, 900)} ms",
                }
            else:
                yield {
                    **base,
                    "level": "ERROR",
                    "message": f"{job} failed: Traceback (most recent call last):\n"
                    f'  File "/app/worker.py", line {rng.randint(40, 90)}, in run\n'
                    "    result = handler(payload)\n"
                    "TimeoutError: SMTP server did not answer within 10s",
                }
