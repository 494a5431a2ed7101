"""Which answers a chat request's model: a gateway model group or the local engine.

The OpenAI and Anthropic adapters both ask here, so the choice is made in one place.
"""

from __future__ import annotations

from fastapi import Request

from roost.chat import ChatTarget
from roost.chat.traced import TracedChat
from roost.llm.base import RequestContext
from roost.llm.gateway_chat import GatewayChat
from roost.llm.local_chat import MeteredChat
from roost.security.guarded_chat import GuardedChat
from roost.server.gateway import gateway_service
from roost.server.inference import local_chat_service
from roost.server.usage import llm_service


async def chat_target(request: Request, model: str) -> ChatTarget:
    """The target for ``model`` behind the tenant's PII/injection guardrails."""
    target = await _unguarded(request, model)
    guard = getattr(request.app.state, "guard", None)
    if guard is None:
        return target
    principal = request.state.principal
    return GuardedChat(target, guard, principal.tenant_id, principal.actor)


async def _unguarded(request: Request, model: str) -> ChatTarget:
    """A configured gateway group or policy wins; any other name must be the local model
    (404 listing every served name otherwise, 503 while it loads)."""
    llm = gateway_service(request, model)
    if llm is not None:
        principal = request.state.principal
        return GatewayChat(llm, model, tenant_id=principal.tenant_id, key_id=principal.key_id)
    # The router makes the gateway's model-call spans; the local engine's are made here.
    return TracedChat(await local_chat(request, model), model)


async def local_chat(request: Request, model: str) -> MeteredChat:
    """The local model for this caller, metered (usage, budgets, tokens per minute)."""
    service = await local_chat_service(request, model)
    principal = request.state.principal
    context = RequestContext(principal.tenant_id, key_id=principal.key_id)
    return llm_service(request.app).local_chat(service, context)
