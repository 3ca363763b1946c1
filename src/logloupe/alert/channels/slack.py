"""Slack incoming webhooks, rendered as Block Kit blocks."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from logloupe.alert.channels import post_json, url_host
from logloupe.alert.notification import RESOLVED, Notification

# Slack's limits: 3000 characters per section text, 50 blocks per message.
_SECTION_MAX = 2900


def escape_mrkdwn(text: str) -> str:
    """Slack's required escapes; log text must never become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(lines: list[str]) -> str:
    body = "\n".join(escape_mrkdwn(line).replace("```", "`\u200b``") for line in lines)
    return "```" + body[:_SECTION_MAX] + "```"


def blocks(n: Notification) -> list[dict[str, Any]]:
    icon = ":white_check_mark:" if n.state == RESOLVED else ":rotating_light:"
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{n.state.upper()}: {n.title}"[:150]}},
    ]
    facts = [f"{icon} *{escape_mrkdwn(n.rule_name)}* ({n.rule_type}, {n.severity})"]
    if n.summary:
        facts.append(escape_mrkdwn(n.summary))
    count = f"*Matches:* {n.matches}"
    if n.suppressed:
        count += f" (+{n.suppressed} repeats suppressed)"
    facts.append(count)
    if n.service:
        facts.append(f"*Service:* {escape_mrkdwn(n.service)}")
    out.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)[:_SECTION_MAX]}})
    if n.pattern:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Pattern*\n" + _code([n.pattern])}})
    if n.insight:
        text = "*Insight*\n" + escape_mrkdwn(n.insight)
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:_SECTION_MAX]}})
    if n.explanation:
        text = "*Why*\n" + escape_mrkdwn(n.explanation)
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:_SECTION_MAX]}})
    if n.samples:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Sample lines*\n" + _code(n.samples)}})
    out.append(
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open alert"}, "url": n.alert_url},
                {"type": "button", "text": {"type": "plain_text", "text": "Search logs"}, "url": n.search_url},
                {"type": "button", "text": {"type": "plain_text", "text": "Silence"}, "url": n.silence_url},
            ],
        }
    )
    return out


class SlackChannel:
    name = "slack"

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.client = client

    def payload(self, n: Notification) -> dict[str, Any]:
        return {"text": f"{n.state.upper()}: {escape_mrkdwn(n.title)}", "blocks": blocks(n)}

    def send(self, notification: Notification) -> str:
        post_json(self.client, self.url, orjson.dumps(self.payload(notification)))
        return url_host(self.url)
