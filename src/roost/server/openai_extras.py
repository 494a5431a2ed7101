"""OpenAI-compatible /v1/completions (plain prompts) and /v1/embeddings."""

from __future__ import annotations

import base64
import time
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.chat.text_completion import Prompt
from roost.errors import InvalidRequest, NotFound
from roost.llm.base import RequestContext
from roost.llm.embeddings import shared_minilm_embedder
from roost.security.guarded_chat import GuardedText
from roost.server.chat_target import local_chat
from roost.server.openai_schema import CompletionRequest
from roost.server.usage import llm_service
from roost.storage.ids import new_id

# Mounted under /v1 by roost.server.openai.
router = APIRouter(tags=["openai"])
EMBEDDING_MODELS = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
MAX_EMBEDDING_INPUTS = 2048


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request) -> dict[str, Any]:
    """Text in, text out: no chat template. Streaming is not offered on this legacy path."""
    body.refuse_unsupported()
    if body.stream:
        raise InvalidRequest(
            "streaming is not supported on /v1/completions; use /v1/chat/completions",
            param="stream",
        )
    sampling = body.sampling(
        max_tokens=body.max_tokens or 16,
        logprobs=body.logprobs is not None,
        top_logprobs=body.logprobs or 0,
    )
    target = await local_chat(request, body.model)
    prompts = _prompts(body.prompt)
    guard = getattr(request.app.state, "guard", None)
    guarded = None
    if guard is not None:
        principal = request.state.principal
        guarded = GuardedText(guard, principal.tenant_id, principal.actor)
        prompts = await guarded.prompts(prompts)
    result = await target.complete_text(prompts, sampling, n=body.n, echo=body.echo)
    texts = [c.text if guarded is None else await guarded.output(c.text) for c in result.choices]
    usage = result.usage
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [
            {"index": i, "text": text, "logprobs": None, "finish_reason": c.finish_reason}
            for i, (c, text) in enumerate(zip(result.choices, texts, strict=True))
        ],
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        },
    }


def _prompts(prompt: str | list[str] | list[int]) -> list[Prompt]:
    if isinstance(prompt, str):
        return [prompt]
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]  # type: ignore[arg-type]
    return list(prompt)  # type: ignore[arg-type]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    """Vectors from the bundled all-MiniLM-L6-v2 (384 dimensions, unit length)."""
    if body.model not in EMBEDDING_MODELS:
        raise NotFound(
            f"embedding model {body.model!r} not found; this server has {EMBEDDING_MODELS[0]!r}",
            param="model",
        )
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "input must be a string or a non-empty list of strings (token arrays are not"
            " supported by this embedding model)",
            param="input",
        )
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"at most {MAX_EMBEDDING_INPUTS} inputs per request", param="input")
    if any(not t for t in texts):
        raise InvalidRequest("inputs must not be empty strings", param="input")
    embedder = shared_minilm_embedder()
    if body.dimensions is not None and body.dimensions != embedder.dimension:
        raise InvalidRequest(
            f"this model returns {embedder.dimension} dimensions; 'dimensions' cannot change that",
            param="dimensions",
        )
    principal = request.state.principal
    context = RequestContext(principal.tenant_id, key_id=principal.key_id)
    metered = llm_service(request.app).local_embeddings(embedder, context)
    vectors, tokens = await metered.embed([str(t) for t in texts])
    data = []
    for index, vector in enumerate(vectors):
        values: Any = (
            base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else [float(x) for x in vector]
        )
        data.append({"object": "embedding", "index": index, "embedding": values})
    return {
        "object": "list",
        "data": data,
        "model": EMBEDDING_MODELS[0],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
