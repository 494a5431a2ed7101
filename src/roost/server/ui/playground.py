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
# A reply's length and randomness are the user's choice, but bounded: without a cap a
# sampled reply from a small model can run to the end of its context window.
DEFAULT_MAX_TOKENS = 256
MAX_MAX_TOKENS = 4096
DEFAULT_TEMPERATURE = 0.7


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


def _sampling(form: Any) -> tuple[int, float]:
    """The reply's token cap and temperature from the form, or InvalidRequest naming the field."""
    raw_tokens = field(form, "max_tokens") or str(DEFAULT_MAX_TOKENS)
    raw_temperature = field(form, "temperature") or str(DEFAULT_TEMPERATURE)
    try:
        max_tokens = int(raw_tokens)
    except ValueError:
        max_tokens = 0
    if not 1 <= max_tokens <= MAX_MAX_TOKENS:
        raise InvalidRequest(
            f"Max tokens must be a whole number from 1 to {MAX_MAX_TOKENS}.", param="max_tokens"
        )
    try:
        temperature = float(raw_temperature)
    except ValueError:
        temperature = -1.0
    if not 0.0 <= temperature <= 2.0:
        raise InvalidRequest("Temperature must be a number from 0 to 2.", param="temperature")
    return max_tokens, temperature


def _render(
    request: Request,
    model: str,
    session: str,
    turns: list[dict[str, Any]],
    error: str = "",
    max_tokens: int | str = DEFAULT_MAX_TOKENS,
    temperature: float | str = DEFAULT_TEMPERATURE,
) -> Response:
    return page(
        request, "playground.html", title="Playground", section="playground",
        models=served_models(request), model=model, session=session, turns=turns,
        history=json.dumps(turns), error=error, max_tokens=max_tokens, temperature=temperature,
        max_max_tokens=MAX_MAX_TOKENS,
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
    typed_tokens, typed_temperature = field(form, "max_tokens"), field(form, "temperature")
    try:
        max_tokens, temperature = _sampling(form)
    except InvalidRequest as exc:
        return _render(request, model, session, turns, exc.message, typed_tokens, typed_temperature)
    if not text:
        return _render(request, model, session, turns, "Write a message.", max_tokens, temperature)
    turns.append({"role": "user", "content": text, "prompt_tokens": 0, "cached_tokens": 0})
    body = ChatCompletionRequest.model_validate(
        {
            "model": model,
            "messages": [{"role": t["role"], "content": t["content"]} for t in turns],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
    )
    try:
        target = await chat_target(request, model)
        result = await target.complete(
            body.to_chat_request(tenant_id=acting.principal.tenant_id, session_id=session)
        )
    except RoostError as exc:
        turns.pop()
        return _render(request, model, session, turns, exc.message, max_tokens, temperature)
    usage = result.usage
    turns.append(
        {
            "role": "assistant",
            "content": result.choices[0].text if result.choices else "",
            "prompt_tokens": usage.input_tokens,
            "cached_tokens": usage.cached_input_tokens,
        }
    )
    return _render(request, model, session, turns, "", max_tokens, temperature)
