"""A chat request's model is routed in one place: a configured gateway group goes to the
LLM service, the local model's name to the local chat service, anything else is a 404."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from roost.chat import ChatService
from roost.errors import NotFound
from roost.llm.cost import PriceTable
from roost.llm.gateway_chat import GatewayChat
from roost.llm.local_chat import MeteredChat
from roost.llm.metering import Meter
from roost.security.principal import Principal
from roost.server.chat_target import chat_target
from roost.server.inference import InferenceState


class FakeRouter:
    def is_served(self, model: str) -> bool:
        return model == "fast"

    def served_names(self) -> list[str]:
        return ["fast"]


def fake_request(*, with_gateway: bool = True) -> Any:
    inference = InferenceState()
    inference.publish(ChatService(SimpleNamespace(model_name="smol")))  # type: ignore[arg-type]
    meter = Meter(PriceTable({}, "test"), None, None, None)
    llm = SimpleNamespace(
        router=FakeRouter() if with_gateway else SimpleNamespace(is_served=lambda _: False,
                                                                 served_names=list),
        local_chat=lambda chat, context: MeteredChat(chat, meter, context),
    )  # fmt: skip
    app = SimpleNamespace(state=SimpleNamespace(inference=inference, llm=llm))
    return SimpleNamespace(app=app, state=SimpleNamespace(principal=Principal("t1", "k1")))


async def test_a_gateway_group_goes_to_the_llm_service_for_the_caller() -> None:
    target = await chat_target(fake_request(), "fast")
    assert isinstance(target, GatewayChat)
    assert (target.model, target.tenant_id, target.key_id) == ("fast", "t1", "k1")


async def test_the_local_model_goes_to_the_local_chat_service_metered_for_the_caller() -> None:
    request = fake_request()
    for name in ("smol", "local:smol"):
        target = await chat_target(request, name)
        assert isinstance(target, MeteredChat)
        assert target.chat is request.app.state.inference.service
        assert (target.context.tenant_id, target.context.key_id) == ("t1", "k1")
        assert target.model_id == "local:smol"


async def test_any_other_name_is_not_found_listing_every_served_model() -> None:
    with pytest.raises(NotFound, match="'smol', 'fast'"):
        await chat_target(fake_request(), "gpt-9")
    with pytest.raises(NotFound, match=r"serves 'smol'$"):
        await chat_target(fake_request(with_gateway=False), "fast")
