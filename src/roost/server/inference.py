"""FastAPI dependencies that hand the OpenAI and Anthropic adapters the kernel's chat
service (:class:`roost.platform.inference.InferenceState`), 503 while the model loads."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from roost.chat import ChatService
from roost.errors import NotFound
from roost.platform.inference import InferenceState
from roost.server.gateway import gateway_models

__all__ = ["InferenceState", "chat_service", "check_model", "local_chat_service"]


async def chat_service(request: Request) -> ChatService:
    """FastAPI dependency: the chat service once the model is ready (503 while it loads)."""
    state: InferenceState = request.app.state.inference
    return await state.ready_service()


async def local_chat_service(request: Request, requested: str) -> ChatService:
    """The chat service for a request naming the local model (503 while it loads); 404
    listing every served name, gateway model groups included, for any other name."""
    state: InferenceState = request.app.state.inference
    if state.is_disabled:
        raise _not_served(requested, gateway_models(request.app))
    service = await state.ready_service()
    served = service.engine.model_name
    if requested not in (served, f"local:{served}"):
        # Listing the groups costs a sort; only refusals pay it.
        raise _not_served(requested, [served, *gateway_models(request.app)])
    return service


def check_model(service: ChatService, requested: str) -> None:
    """Refuse a model name the server does not serve, the way each API does (404)."""
    served = service.engine.model_name
    if requested not in (served, f"local:{served}"):
        raise _not_served(requested, [served])


def _not_served(requested: str, served: Sequence[str]) -> NotFound:
    names = ", ".join(repr(name) for name in served) or "no models"
    return NotFound(f"model {requested!r} not found; this server serves {names}", param="model")
