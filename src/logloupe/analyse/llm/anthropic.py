"""Anthropic Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from logloupe.analyse.llm.base import Completion, HTTPProvider, LLMError
from logloupe.analyse.tokens import count_tokens


class AnthropicProvider(HTTPProvider):
    name = "anthropic"
    default_model = "claude-3-5-haiku-latest"
    default_base_url = "https://api.anthropic.com"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": "2023-06-01"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def _body(self, system: str, user: str, max_tokens: int, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": stream,
        }

    def complete(self, system: str, user: str, max_tokens: int = 1024) -> Completion:
        data = self._post("/v1/messages", self._body(system, user, max_tokens, False))
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise LLMError(f"{self.name}: no content in response")
        text = "".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        usage = data.get("usage") or {}
        return Completion(
            text,
            int(usage.get("input_tokens") or count_tokens(system + user)),
            int(usage.get("output_tokens") or count_tokens(text)),
            self.name,
            self.model,
        )

    def stream(self, system: str, user: str, max_tokens: int = 1024) -> Iterator[str]:
        for event in self._sse("/v1/messages", self._body(system, user, max_tokens, True)):
            if event.get("type") == "content_block_delta":
                piece = (event.get("delta") or {}).get("text")
                if piece:
                    yield str(piece)
