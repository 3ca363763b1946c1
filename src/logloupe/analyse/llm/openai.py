"""OpenAI-compatible chat completions: OpenAI, Groq, Ollama, vLLM, llama.cpp, LM Studio, HF router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from logloupe.analyse.llm.base import Completion, HTTPProvider, LLMError
from logloupe.analyse.tokens import count_tokens


class OpenAIProvider(HTTPProvider):
    name = "openai"
    default_model = "gpt-4o-mini"
    default_base_url = "https://api.openai.com/v1"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _body(self, system: str, user: str, max_tokens: int, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": stream,
        }

    def complete(self, system: str, user: str, max_tokens: int = 1024) -> Completion:
        data = self._post("/chat/completions", self._body(system, user, max_tokens, False))
        try:
            text = str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.name}: no choices in response") from exc
        usage = data.get("usage") or {}
        return Completion(
            text,
            int(usage.get("prompt_tokens") or count_tokens(system + user)),
            int(usage.get("completion_tokens") or count_tokens(text)),
            self.name,
            self.model,
        )

    def stream(self, system: str, user: str, max_tokens: int = 1024) -> Iterator[str]:
        for event in self._sse("/chat/completions", self._body(system, user, max_tokens, True)):
            choices = event.get("choices") or []
            if choices:
                piece = (choices[0].get("delta") or {}).get("content")
                if piece:
                    yield str(piece)


class HuggingFaceProvider(OpenAIProvider):
    """Hugging Face Inference Providers through their OpenAI-compatible router."""

    name = "huggingface"
    default_model = "meta-llama/Llama-3.1-8B-Instruct"
    default_base_url = "https://router.huggingface.co/v1"
