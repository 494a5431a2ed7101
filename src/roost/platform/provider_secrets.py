"""``api_key = "secret:NAME"`` in ``[llm.providers.X]``: resolved from the secret store.

Resolution happens once, when the kernel opens the LLM layer; a reference that cannot be
resolved (no such secret, no master key, wrong key) stops the start with the provider
named, rather than sending a placeholder to the provider. Provider secrets are the
platform's: they live in the default tenant's namespace.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from roost.config import LLMProviderSettings
from roost.errors import ConfigError
from roost.security.secrets import SecretStore, SecretUnavailable, referenced_secret


async def resolve_provider_secrets(
    providers: Mapping[str, LLMProviderSettings], store: SecretStore, tenant_id: str
) -> dict[str, LLMProviderSettings]:
    """The providers with every ``secret:NAME`` api_key replaced by the stored value."""
    resolved: dict[str, LLMProviderSettings] = {}
    problems: list[tuple[str, str]] = []
    for name, provider in providers.items():
        reference = (
            referenced_secret(provider.api_key.get_secret_value()) if provider.api_key else None
        )
        if reference is None:
            resolved[name] = provider
            continue
        try:
            value = await store.reveal(tenant_id, reference)
        except SecretUnavailable as exc:
            problems.append((f"llm.providers.{name}.api_key", exc.message))
            continue
        resolved[name] = provider.model_copy(update={"api_key": SecretStr(value)})
    if problems:
        raise ConfigError(problems)
    return resolved
