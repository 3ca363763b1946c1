"""What every provider shares: the request/response types, retries and SSE parsing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from logloupe.errors import Unavailable


class LLMError(Unavailable):
    code = "llm_unavailable"


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    provider: str
    model: str


class Provider(Protocol):
    name: str
    model: str

    def complete(self, system: str, user: str, max_tokens: int = 1024) -> Completion: ...

    def stream(self, system: str, user: str, max_tokens: int = 1024) -> Iterator[str]: ...


_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


class HTTPProvider:
    """Retries transport errors and 429/5xx with exponential backoff (Retry-After honoured)."""

    name = "http"
    default_model = ""
    default_base_url = ""

    def __init__(
        self,
        client: httpx.Client,
        model: str,
        base_url: str,
        api_key: str = "",
        max_retries: int = 2,
        timeout_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.sleep = sleep

    def headers(self) -> dict[str, str]:
        return {}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(path, body, stream=False)
        try:
            data = response.json()
        except ValueError as exc:
            raise LLMError(f"{self.name}: response is not JSON") from exc
        if not isinstance(data, dict):
            raise LLMError(f"{self.name}: unexpected response shape")
        return data

    def _send(self, path: str, body: dict[str, Any], stream: bool) -> httpx.Response:
        url = f"{self.base_url}{path}"
        delay = 0.5
        for attempt in range(self.max_retries + 1):
            try:
                request = self.client.build_request(
                    "POST", url, json=body, headers=self.headers(), timeout=self.timeout_s
                )
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise LLMError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
                self.sleep(delay)
                delay *= 2
                continue
            if response.status_code < 400:
                return response
            if stream:
                response.read()
                response.close()
            if response.status_code in _RETRY_STATUS and attempt < self.max_retries:
                retry_after = response.headers.get("retry-after", "")
                self.sleep(float(retry_after) if retry_after.replace(".", "", 1).isdigit() else delay)
                delay *= 2
                continue
            raise LLMError(f"{self.name}: HTTP {response.status_code}: {response.text[:200]}")
        raise LLMError(f"{self.name}: retries exhausted")  # pragma: no cover - loop always returns or raises

    def _sse(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        response = self._send(path, body, stream=True)
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    event = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield event
        finally:
            response.close()
