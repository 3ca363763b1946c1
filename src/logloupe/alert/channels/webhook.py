"""Generic webhook: the notification as JSON, signed with HMAC-SHA256 over the exact body bytes.

Receivers verify ``X-LogLoupe-Signature: sha256=<hex>`` with ``verify_signature`` (or its
equivalent: ``hmac.compare_digest``) before trusting the body.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson

from logloupe.alert.channels import post_json, url_host
from logloupe.alert.notification import Notification

SIGNATURE_HEADER = "X-LogLoupe-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header)


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, secret: str, client: httpx.Client) -> None:
        self.url = url
        self.secret = secret
        self.client = client

    def payload(self, n: Notification) -> bytes:
        return orjson.dumps(n.to_json())

    def send(self, notification: Notification) -> str:
        body = self.payload(notification)
        headers = {"X-LogLoupe-Event": notification.state}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        post_json(self.client, self.url, body, headers)
        return url_host(self.url)
