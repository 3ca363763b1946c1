"""Auth benchmark: what checking credentials costs per request, against local mode in the same run.

    python benchmarks/auth.py [--requests 300]

Serves the real app in-process twice — single-user local mode (the peer: no credential check) and
with auth on — and times ``GET /api/v1/tenant`` (a cheap endpoint, so the check dominates) with no
credentials, a bearer JWT and an API key. Also times one argon2id verification at the default cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.serve.auth import password_hasher
from logloupe.settings import Settings

PASSWORD = "benchmark password"


def mean_ms(client: TestClient, headers: dict[str, str], n: int) -> float:
    assert client.get("/api/v1/tenant", headers=headers).status_code == 200
    started = time.perf_counter()
    for _ in range(n):
        client.get("/api/v1/tenant", headers=headers)
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with TestClient(create_app(Settings(data_dir=Path(tmp) / "local"))) as c:
            local = mean_ms(c, {}, args.requests)
        settings = Settings(data_dir=Path(tmp) / "auth", auth_enabled=True)
        with TestClient(create_app(settings)) as c:
            body = {"username": "bench", "email": "bench@example.com", "password": PASSWORD, "tenant": "Bench"}
            c.post("/api/v1/auth/register", json=body)
            token = c.post("/api/v1/auth/login", json={"username": "bench", "password": PASSWORD}).json()
            bearer = {"Authorization": f"Bearer {token['access_token']}"}
            key = c.post("/api/v1/keys", json={"name": "k", "role": "viewer"}, headers=bearer).json()["key"]
            jwt_ms = mean_ms(c, bearer, args.requests)
            key_ms = mean_ms(c, {"X-API-Key": key}, args.requests)
    hasher = password_hasher(Settings())
    digest = hasher.hash(PASSWORD)
    started = time.perf_counter()
    hasher.verify(digest, PASSWORD)
    verify_ms = (time.perf_counter() - started) * 1000
    print(f"GET /api/v1/tenant, mean of {args.requests}:")
    print(f"  local mode (peer)  {local:6.2f} ms")
    print(f"  bearer JWT         {jwt_ms:6.2f} ms  ({jwt_ms / local:.2f}x)")
    print(f"  API key            {key_ms:6.2f} ms  ({key_ms / local:.2f}x)")
    print(f"argon2id verify at the default cost (t=3, 64 MiB): {verify_ms:.0f} ms")


if __name__ == "__main__":
    main()
