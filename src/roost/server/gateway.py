"""Gateway mode: ``/v1/chat/completions`` and ``/v1/messages`` requests that name a model
group of the LLM router go through :class:`~roost.llm.gateway_chat.GatewayChat` instead
of the local engine.

Only names the operator configured (groups and routing policies) are served this way:
a caller naming a bare ``provider:model`` id would otherwise reach any upstream with
the operator's credentials.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from roost.llm.service import LLMService


def gateway_service(request: Request, model: str) -> LLMService | None:
    """The LLM service when ``model`` is a configured group or policy, else None."""
    service: LLMService | None = getattr(request.app.state, "llm", None)
    if service is not None and service.router.is_served(model):
        return service
    return None


def gateway_models(app: FastAPI) -> list[str]:
    """The model names served through the gateway (for ``/v1/models`` and 404 messages)."""
    service: LLMService | None = getattr(app.state, "llm", None)
    return service.router.served_names() if service is not None else []
