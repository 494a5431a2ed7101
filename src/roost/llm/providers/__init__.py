"""Provider registry: ``provider:model`` ids → :class:`~roost.llm.base.Model` objects.

A provider is a configured endpoint with credentials (``[llm.providers.NAME]``); its
``kind`` picks the SDK. ``openai``, ``anthropic`` and ``gemini`` exist without any
configuration, reading their keys from the usual environment variables. SDK clients
are made once per provider and shared by its models.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from roost.config import LLMProviderSettings
from roost.llm.base import Model, split_model_id
from roost.llm.errors import UnknownModel
from roost.observe.propagation import inject_into

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
BUILTIN_PROVIDERS = ("openai", "anthropic", "gemini")
# A placeholder key for servers that want none (vLLM, llama.cpp, Ollama); the SDK insists on one.
NO_KEY = "not-needed"

LocalFactory = Callable[[str], Model]


class ProviderRegistry:
    """Builds and caches models for every configured provider."""

    def __init__(
        self,
        providers: Mapping[str, LLMProviderSettings] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        local_factory: LocalFactory | None = None,
    ) -> None:
        self.providers: dict[str, LLMProviderSettings] = {
            name: LLMProviderSettings() for name in BUILTIN_PROVIDERS
        }
        self.providers.update(providers or {})
        self.env = os.environ if env is None else env
        self.local_factory = local_factory
        self._clients: dict[str, Any] = {}
        self._models: dict[str, Model] = {}

    def register(self, model: Model) -> None:
        """Serve ``model`` under its own id (tests, custom providers, the local engine)."""
        self._models[model.model_id] = model

    def model_ids(self) -> list[str]:
        """Ids of the models registered here or built so far (``function:x``, plugins')."""
        return sorted(self._models)

    def model(self, model_id: str) -> Model:
        """The model for ``provider:model``; raises :class:`UnknownModel` for an unknown provider."""
        cached = self._models.get(model_id)
        if cached is not None:
            return cached
        try:
            provider, name = split_model_id(model_id)
        except ValueError as exc:
            raise UnknownModel(str(exc)) from exc
        model = self._build(model_id, provider, name)
        self._models[model_id] = model
        return model

    def kind(self, provider: str) -> str:
        settings = self.providers.get(provider)
        if settings is None:
            return provider
        return settings.kind or provider

    def _build(self, model_id: str, provider: str, name: str) -> Model:
        settings = self.providers.get(provider)
        if settings is None and provider != "local":
            known = ", ".join(sorted([*self.providers, "local"]))
            raise UnknownModel(f"unknown provider {provider!r} in {model_id!r}; known: {known}")
        kind = (settings.kind if settings else None) or provider
        if kind == "local":
            if self.local_factory is None:
                raise UnknownModel(f"{model_id}: the local engine is not available in this process")
            return self.local_factory(name)
        assert settings is not None
        key = self._api_key(provider, kind, settings)
        if kind == "openai":
            from roost.llm.providers.openai import OpenAIModel

            return OpenAIModel(
                model_id, name, self._client(provider, kind, settings, key),
                is_compatible=settings.base_url is not None,
            )  # fmt: skip
        if kind == "anthropic":
            from roost.llm.providers.anthropic import AnthropicModel

            return AnthropicModel(model_id, name, self._client(provider, kind, settings, key))
        if kind == "gemini":
            from roost.llm.providers.gemini import GeminiModel

            return GeminiModel(model_id, name, self._client(provider, kind, settings, key), key)
        raise UnknownModel(f"provider {provider!r} has unknown kind {kind!r}")

    def _api_key(self, provider: str, kind: str, settings: LLMProviderSettings) -> str:
        if settings.api_key is not None:
            key = settings.api_key.get_secret_value()
            if key.startswith("secret:"):
                # Only the kernel resolves stored secrets; never send the reference itself.
                raise UnknownModel(
                    f"provider {provider!r}: api_key {key!r} names a stored secret, which only"
                    " the platform kernel resolves"
                )
            return key
        variable = settings.api_key_env or DEFAULT_KEY_ENV.get(kind, "")
        key = self.env.get(variable, "") if variable else ""
        if not key and kind == "gemini":
            key = self.env.get("GOOGLE_API_KEY", "")
        # Self-hosted servers need no key; a missing key for a cloud API fails at call time
        # as an auth error, which the router treats as "try the next deployment".
        return key or NO_KEY

    def _client(self, provider: str, kind: str, settings: LLMProviderSettings, key: str) -> Any:
        client = self._clients.get(provider)
        if client is None:
            client = make_client(kind, settings, key)
            self._clients[provider] = client
        return client

    async def aclose(self) -> None:
        """Close every SDK client this registry opened."""
        for client in self._clients.values():
            aio = getattr(client, "aio", None)
            if aio is not None:  # google-genai: an async face over a sync client
                await aio.aclose()
                client.close()
            else:
                await client.close()
        self._clients.clear()
        self._models.clear()


# Every request to a provider carries the caller's traceparent: a provider (or a proxy in
# front of it) that traces joins the same trace.
_TRACE_HOOKS: dict[str, list[Any]] = {"request": [inject_into]}


def make_client(kind: str, settings: LLMProviderSettings, key: str) -> Any:
    """The SDK client for ``kind`` with its own retries off (the router retries)."""
    headers = dict(settings.headers)
    if kind == "openai":
        import openai

        return openai.AsyncOpenAI(
            api_key=key, base_url=settings.base_url, timeout=settings.timeout_s,
            max_retries=0, default_headers=headers or None,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks=_TRACE_HOOKS),
        )  # fmt: skip
    if kind == "anthropic":
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=key, base_url=settings.base_url, timeout=settings.timeout_s,
            max_retries=0, default_headers=headers or None,
            http_client=anthropic.DefaultAsyncHttpxClient(event_hooks=_TRACE_HOOKS),
        )  # fmt: skip
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        base_url=settings.base_url,
        timeout=int(settings.timeout_s * 1000),
        headers=headers or None,
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=key, http_options=options)
