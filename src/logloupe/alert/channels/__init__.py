"""Notification channels. Each one takes a ``Notification`` and either returns the target it
reached or raises ``DeliveryError`` (retryable or not). HTTP channels take an ``httpx.Client``."""

from __future__ import annotations

from typing import Protocol

import httpx

from logloupe.alert.notification import DeliveryError, Notification


class Channel(Protocol):
    name: str

    def send(self, notification: Notification) -> str: ...


def post_json(client: httpx.Client, url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    """POST and map failures: connection errors, 429 and 5xx may pass on retry; other 4xx will not."""
    try:
        response = client.post(url, content=body, headers={"content-type": "application/json", **(headers or {})})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    if response.status_code >= 300:
        retryable = response.status_code == 429 or response.status_code >= 500
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}", retryable=retryable)


def url_host(url: str) -> str:
    """The part of a webhook URL safe to record (webhook paths often embed secrets)."""
    try:
        return httpx.URL(url).host or url[:40]
    except httpx.InvalidURL:
        return "invalid-url"
