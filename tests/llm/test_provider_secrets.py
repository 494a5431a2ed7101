"""``api_key = "secret:NAME"``: the kernel resolves it from the secret store and the
official SDK sends the stored value; an unresolvable reference stops the start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from roost.config import LLMProviderSettings, load_settings
from roost.errors import ConfigError
from roost.llm.errors import UnknownModel
from roost.llm.messages import Message
from roost.llm.providers import ProviderRegistry
from roost.platform import Platform, Roost
from tests.llm.upstream import MockUpstream

VALUE = "sk-h-audit-0123456789abcdef"


async def test_the_kernel_resolves_provider_references_and_the_sdk_sends_the_value(
    roost_home: Path, upstream: MockUpstream
) -> None:
    env = {
        "ROOST_HOME": str(roost_home),
        "ROOST_ENGINE__ENABLED": "false",
        "ROOST_LLM__PROVIDERS__OA__KIND": "openai",
        "ROOST_LLM__PROVIDERS__OA__BASE_URL": f"{upstream.url}/v1",
        "ROOST_LLM__PROVIDERS__OA__API_KEY": "secret:oa-key",
    }
    settings = load_settings(env=env)
    # Not stored yet: the start stops, naming the provider, instead of sending the reference.
    with pytest.raises(ConfigError, match=r"llm\.providers\.oa\.api_key"):
        await Roost.open_for_command(settings)
    platform = await Platform.open(settings)
    try:
        await platform.secrets().set(await platform.default_tenant_id(), "oa-key", VALUE,
                                     actor="cli")  # fmt: skip
    finally:
        await platform.close()
    kernel = await Roost.open_for_command(settings)
    try:
        registry: ProviderRegistry = kernel.llm.router.registry
        await registry.model("oa:gpt-mock").request([Message.user("hi")])
        assert upstream.seen[-1].headers["authorization"] == f"Bearer {VALUE}"
        assert VALUE not in repr(registry.providers["oa"])
    finally:
        await kernel.close()


def test_an_unresolved_reference_is_never_sent() -> None:
    registry = ProviderRegistry(
        {"oa": LLMProviderSettings(kind="openai", api_key=SecretStr("secret:oa-key"))}
    )
    with pytest.raises(UnknownModel, match="stored secret"):
        registry.model("oa:gpt")
