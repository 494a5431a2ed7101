"""The chat playground: talk to any served model or model group and see, per turn, how
many prompt tokens came from the KV cache. It calls the same chat target as
``/v1/chat/completions`` (roost.server.chat_target), as the signed-in principal."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from roost.errors import InvalidRequest, RoostError
from roost.security.principal import Principal, Role
from roost.server import gateway
from roost.server.chat_target import chat_target
from roost.server.openai_schema import ChatCompletionRequest
from roost.server.ui.render import page
from roost.server.ui.session import Posted, field, posted, require_role, signed_in

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
Acting = Annotated[Posted, Depends(posted)]
MAX_TURNS = 50


def served_models(request: Request) -> list[str]:
    inference = getattr(request.app.state, "inference", None)
    engine = getattr(inference, "engine", None)
    local = [str(engine.model_name)] if engine is not None else []
    return local + gateway.gateway_models(request.app)


def _history(raw: str) -> list[dict[str, Any]]:
    """The conversation so far, as the page sent it back: only roles and text survive."""
    if not raw:
        return []
    try:
        turns = json.loads(raw)
    except ValueError:
        raise InvalidRequest("the conversation field is not JSON", param="history") from None
    if not isinstance(turns, list) or len(turns) > 2 * MAX_TURNS:
        raise InvalidRequest("the conversation is too long or malformed", param="history")
    kept = []
    for turn in turns:
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise InvalidRequest("a turn of the conversation is malformed", param="history")
        kept.append(
            {
                "role": turn["role"],
                "content": str(turn.get("content", "")),
                "prompt_tokens": int(turn.get("prompt_tokens") or 0),
                "cached_tokens": int(turn.get("cached_tokens") or 0),
            }
        )
    return kept


def _render(
    request: Request, model: str, session: str, turns: list[dict[str, Any]], error: str = ""
) -> Response:
    return page(
        request, "playground.html", title="Playground", section="playground",
        models=served_models(request), model=model, session=session, turns=turns,
        history=json.dumps(turns), error=error,
    )  # fmt: skip


@router.get("/ui/playground")
async def playground_page(request: Request, principal: SignedIn) -> Response:
    models = served_models(request)
    return _render(request, models[0] if models else "", f"ui-{secrets.token_hex(8)}", [])


@router.post("/ui/playground")
async def send(request: Request, acting: Acting) -> Response:
    require_role(acting.principal, Role.MEMBER, "chat with models")
    form = acting.form
    model, text = field(form, "model"), field(form, "message")
    session = field(form, "session") or f"ui-{secrets.token_hex(8)}"
    turns = _history(field(form, "history"))
    if not text:
        return _render(request, model, session, turns, "Write a message.")
    turns.append({"role": "user", "content": text, "prompt_tokens": 0, "cached_tokens": 0})
    body = ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": t["role"], "content": t["content"]} for t in turns]}
    )
    try:
        target = await chat_target(request, model)
        result = await target.complete(
            body.to_chat_request(tenant_id=acting.principal.tenant_id, session_id=session)
        )
    except RoostError as exc:
        turns.pop()
        return _render(request, model, session, turns, exc.message)
    usage = result.usage
    turns.append(
        {
            "role": "assistant",
            "content": result.choices[0].text if result.choices else "",
            "prompt_tokens": usage.input_tokens,
            "cached_tokens": usage.cached_input_tokens,
        }
    )
    return _render(request, model, session, turns)
