"""Realistic generated traffic for ``logloupe demo``: five services and four kinds of incident.

Deterministic for a seed and its times, so the same demo tells the same story:
- a database outage burst (connection refused / pool exhausted, upstream 503s),
- a brand-new error pattern that never appeared before,
- a latency spike at the gateway (and slow queries at the database),
- a worker service that goes silent.
Incidents repeat every ``CYCLE_S`` seconds, timed from the start of live traffic (``live_us``), so
that a live demo shows each of them within its first quarter of an hour, and the history before
it holds earlier cycles of the same story (after a calm first half hour, ``CALM_S``). The new
error pattern starts once, at ``new_pattern_us`` (by default ``NEW_PATTERN_AFTER_S`` after
``live_us``), and goes on from there.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from logloupe.model import iso_micros

CYCLE_S = 15 * 60
# Seconds into each cycle. The silence lasts long enough to be told from a slow minute whatever the
# rate: ``OnlineDetector`` sums the expected events over the silent minutes (docs/anomaly.md).
OUTAGE = (120, 210)
LATENCY = (300, 420)
SILENCE = (480, 840)
NEW_PATTERN_AFTER_S = 60  # after live traffic starts
# The story's first half hour is calm: the detectors judge a series after 30 minutes of it
# (``OnlineSettings.min_history``) and would learn an incident before that as normal.
CALM_S = 30 * 60

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
    """``start_us``: where the generated story begins (the start of the history); ``live_us``: when
    live traffic starts (default ``start_us``); cycles are timed from it, backwards too."""

    def __init__(
        self, start_us: int, seed: int = 7, live_us: int | None = None, new_pattern_us: int | None = None
    ) -> None:
        self.start_us = start_us
        self.live_us = start_us if live_us is None else live_us
        self.new_pattern_us = (
            self.live_us + NEW_PATTERN_AFTER_S * 1_000_000 if new_pattern_us is None else new_pattern_us
        )
        self.rng = random.Random(seed)

    def _phase(self, ts_us: int) -> int:
        # Cycles start on the whole minute at or before live_us: the detectors count per minute, and
        # an incident that fills whole minutes is not blurred by the normal traffic of its edges.
        origin = self.live_us - self.live_us % 60_000_000
        return ((ts_us - origin) // 1_000_000) % CYCLE_S

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
        phase = self._phase(ts) if ts - self.start_us >= CALM_S * 1_000_000 else -1
        outage = OUTAGE[0] <= phase < OUTAGE[1]
        slow = LATENCY[0] <= phase < LATENCY[1]
        silent = SILENCE[0] <= phase < SILENCE[1]
        service = rng.choices(["api-gateway", "auth", "payments", "database", "workers"], weights=[40, 20, 15, 15, 10])[
            0
        ]
        if service == "workers" and silent:
            return  # gone: the other services carry on as usual
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

        if ts >= self.new_pattern_us and service == "payments" and rng.random() < 0.04:
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
            # A few slow requests at any time: the usual level of WARN events a latency spike stands out from.
            slow_one = slow or rng.random() < 0.01
            latency = rng.randint(800, 4000) if slow_one else max(2, int(rng.lognormvariate(3.2, 0.6)))
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
            ms = rng.randint(400, 2500) if slow or rng.random() < 0.01 else rng.randint(1, 40)
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
