"""LLM providers behind one small interface; HTTP through an injected ``httpx.Client``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import httpx

from logloupe.analyse.llm.anthropic import AnthropicProvider
from logloupe.analyse.llm.base import Completion, LLMError, Provider
from logloupe.analyse.llm.openai import HuggingFaceProvider, OpenAIProvider

if TYPE_CHECKING:
    from logloupe.settings import Settings

PROVIDERS = ("offline", "openai", "anthropic", "huggingface")

__all__ = [
    "PROVIDERS",
    "AnthropicProvider",
    "Completion",
    "HuggingFaceProvider",
    "LLMError",
    "OpenAIProvider",
    "Provider",
    "make_provider",
    "provider_from_settings",
]


def make_provider(
    name: str,
    client: httpx.Client,
    model: str = "",
    base_url: str = "",
    api_key: str = "",
    max_retries: int = 2,
    timeout_s: float = 60.0,
) -> Provider:
    """A provider by name; ``offline`` is not an HTTP provider and is handled by the caller."""
    kinds: dict[str, type[OpenAIProvider] | type[AnthropicProvider]] = {
        "openai": OpenAIProvider,
        "anthropic": AnthropicProvider,
        "huggingface": HuggingFaceProvider,
    }
    if name not in kinds:
        raise LLMError(f"unknown provider {name!r}; one of {', '.join(PROVIDERS)}")
    cls = kinds[name]
    return cls(
        client,
        model=model or cls.default_model,
        base_url=base_url or cls.default_base_url,
        api_key=api_key,
        max_retries=max_retries,
        timeout_s=timeout_s,
    )


def provider_from_settings(
    name: str, client: httpx.Client, settings: Settings, *, model: str = "", base_url: str = ""
) -> Provider:
    """``make_provider`` with the ``llm_*`` settings; the key falls back to ``<NAME>_API_KEY`` in the
    environment (``OPENAI_API_KEY`` …). ``model``/``base_url`` override the settings when given."""
    return make_provider(
        name,
        client,
        model=model or settings.llm_model,
        base_url=base_url or settings.llm_base_url,
        api_key=settings.llm_api_key or os.environ.get(f"{name.upper()}_API_KEY", ""),
        max_retries=settings.llm_max_retries,
        timeout_s=settings.llm_timeout_s,
    )
