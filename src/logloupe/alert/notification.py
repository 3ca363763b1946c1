"""What a notification carries to every channel, and the link helpers the channels share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from logloupe.store.query import phrase

FIRING = "firing"
RESOLVED = "resolved"
SUPPRESSED = "suppressed"
SILENCED = "silenced"


@dataclass
class Notification:
    """One message about one alert (tenant, rule, group key). Log text in here is untrusted."""

    tenant: str
    rule_id: str
    rule_name: str
    rule_type: str
    group_key: str
    state: str  # firing | resolved
    title: str
    severity: str = "warning"
    summary: str = ""
    matches: int = 0
    suppressed: int = 0  # repeats folded into this notification since the previous one
    value: float | None = None
    threshold: float | None = None
    service: str = ""
    pattern_id: str = ""
    pattern: str = ""
    samples: list[str] = field(default_factory=list)
    insight: str = ""  # the insight summary, when the analysis stage produced one
    explanation: str = ""
    first_ts: float = 0.0
    at: float = 0.0
    history_id: int = 0
    public_url: str = ""
    # False when redaction changed the group key: the silence link then leaves the key out rather
    # than carry the value it was redacted from.
    silence_key: bool = True

    @property
    def alert_url(self) -> str:
        return f"{self.public_url}/app/alerts?{urlencode({'tab': 'history', 'id': self.history_id})}"

    @property
    def search_url(self) -> str:
        if self.pattern_id:
            q = f"pattern_id:{self.pattern_id}"
        elif self.service:
            q = f"service:{phrase(self.service)}"
        else:
            q = ""
        return f"{self.public_url}/app/discover?{urlencode({'q': q})}"

    @property
    def silence_url(self) -> str:
        params = {"tab": "silences", "rule_id": self.rule_id}
        if self.silence_key:
            params["group_key"] = self.group_key
        return f"{self.public_url}/app/alerts?{urlencode(params)}"

    def redacted(self, apply: Callable[[str], str]) -> Notification:
        """A copy with ``apply`` (the tenant's redaction) run over every field that can carry log text.

        Service names, rule names, pattern ids, counts and links are ours, not log text, and are kept.
        """
        key = apply(self.group_key)
        return replace(
            self,
            title=apply(self.title),
            summary=apply(self.summary),
            group_key=key,
            pattern=apply(self.pattern),
            samples=[apply(s) for s in self.samples],
            insight=apply(self.insight),
            explanation=apply(self.explanation),
            silence_key=self.silence_key and key == self.group_key,
        )

    def to_json(self) -> dict[str, Any]:
        """The generic webhook body and the history payload."""
        return {
            "tenant": self.tenant,
            "rule": {"id": self.rule_id, "name": self.rule_name, "type": self.rule_type},
            "group_key": self.group_key,
            "state": self.state,
            "severity": self.severity,
            "title": self.title,
            "summary": self.summary,
            "matches": self.matches,
            "suppressed": self.suppressed,
            "value": self.value,
            "threshold": self.threshold,
            "service": self.service,
            "pattern_id": self.pattern_id,
            "pattern": self.pattern,
            "samples": self.samples,
            "insight": self.insight,
            "explanation": self.explanation,
            "first_ts": self.first_ts,
            "at": self.at,
            "alert_id": self.history_id,
            "links": {"alert": self.alert_url, "search": self.search_url, "silence": self.silence_url},
        }

    def text(self) -> str:
        """Plain-text rendering shared by the email text part and logs."""
        lines = [f"[{self.state.upper()}] {self.title}", f"Rule: {self.rule_name} ({self.rule_type})"]
        if self.summary:
            lines.append(self.summary)
        if self.service:
            lines.append(f"Service: {self.service}")
        lines.append(
            f"Matches: {self.matches}" + (f" (+{self.suppressed} repeats suppressed)" if self.suppressed else "")
        )
        if self.pattern:
            lines.append(f"Pattern: {self.pattern}")
        if self.insight:
            lines.append(f"Insight: {self.insight}")
        if self.explanation:
            lines.append(f"Why: {self.explanation}")
        if self.samples:
            lines.append("Sample lines:")
            lines.extend(f"  {s}" for s in self.samples)
        lines.append(f"Open: {self.alert_url}")
        lines.append(f"Search: {self.search_url}")
        return "\n".join(lines)


class DeliveryError(Exception):
    """A channel failed to deliver; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
