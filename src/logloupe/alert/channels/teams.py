"""Microsoft Teams incoming webhooks (Workflows or classic connectors): one Adaptive Card with
facts, the pattern, sample lines and buttons back to the UI."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from logloupe.alert.channels import post_json, url_host
from logloupe.alert.notification import RESOLVED, Notification

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")


def escape_markdown(text: str) -> str:
    """TextBlocks render a Markdown subset: log text must not turn into links or formatting."""
    return _MARKDOWN.sub(r"\\\1", text)


def card(n: Notification) -> dict[str, Any]:
    style = "good" if n.state == RESOLVED else "attention"
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Large",
            "weight": "Bolder",
            "color": style,
            "wrap": True,
            "text": escape_markdown(f"{n.state.upper()}: {n.title}"),
        },
    ]
    if n.summary:
        body.append({"type": "TextBlock", "wrap": True, "text": escape_markdown(n.summary)})
    facts = [
        {"title": "Rule", "value": escape_markdown(f"{n.rule_name} ({n.rule_type})")},
        {"title": "Severity", "value": n.severity},
        {"title": "Matches", "value": str(n.matches)},
    ]
    if n.suppressed:
        facts.append({"title": "Suppressed repeats", "value": str(n.suppressed)})
    if n.service:
        facts.append({"title": "Service", "value": escape_markdown(n.service)})
    body.append({"type": "FactSet", "facts": facts})
    if n.pattern:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Pattern"})
        body.append({"type": "TextBlock", "wrap": True, "fontType": "Monospace", "text": escape_markdown(n.pattern)})
    if n.insight:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Insight"})
        body.append({"type": "TextBlock", "wrap": True, "text": escape_markdown(n.insight)})
    if n.explanation:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Why"})
        body.append({"type": "TextBlock", "wrap": True, "text": escape_markdown(n.explanation)})
    if n.samples:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Sample lines"})
        for line in n.samples:
            body.append(
                {
                    "type": "TextBlock",
                    "wrap": True,
                    "fontType": "Monospace",
                    "size": "Small",
                    "text": escape_markdown(line),
                }
            )
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open alert", "url": n.alert_url},
            {"type": "Action.OpenUrl", "title": "Search logs", "url": n.search_url},
            {"type": "Action.OpenUrl", "title": "Silence", "url": n.silence_url},
        ],
    }


class TeamsChannel:
    name = "teams"

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.client = client

    def payload(self, n: Notification) -> dict[str, Any]:
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card(n)}
            ],
        }

    def send(self, notification: Notification) -> str:
        post_json(self.client, self.url, orjson.dumps(self.payload(notification)))
        return url_host(self.url)
