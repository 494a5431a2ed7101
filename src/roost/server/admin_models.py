"""``/admin/models``: the named models of this installation, and swapping the served one."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from roost.engine.registry import ModelEntry, ModelRegistry
from roost.errors import RoostError
from roost.platform.model_swap import ModelSwap
from roost.server.admin_auth import require_admin
from roost.server.error_format import error_body
from roost.server.sse import event_stream, sse_event

router = APIRouter(prefix="/admin/models", tags=["admin"], dependencies=[Depends(require_admin)])


class SwapRequest(BaseModel):
    model: str = Field(min_length=1, description="A name from GET /admin/models")
    drain_timeout_s: float | None = Field(
        None, ge=0, description="How long running requests may finish (engine.swap_drain_timeout_s)"
    )
    stream: bool = Field(False, description="Report the phases as server-sent events")


def model_swap(request: Request) -> ModelSwap:
    """The app's swapper, made on first use (one per app: it serialises swaps)."""
    app = request.app
    swap: ModelSwap | None = getattr(app.state, "model_swap", None)
    if swap is None:
        settings = app.state.platform.settings
        registry = ModelRegistry.from_settings(settings)
        swap = ModelSwap(app.state.inference, registry, settings)
        app.state.model_swap = swap
    return swap


@router.get("")
async def list_models(request: Request) -> dict[str, Any]:
    """Every named model: kind, source, local availability, size on disk, which is loaded."""
    swap = model_swap(request)
    entries = await asyncio.to_thread(swap.registry.entries)
    engine: Any = request.app.state.inference.engine
    loaded = engine.model_name if engine is not None else None
    return {
        "object": "list",
        "data": [_row(entry, loaded) for entry in entries],
        "loaded": loaded,
        "swap": swap.progress,
    }


@router.post("/swap", response_model=None)
async def swap_model(body: SwapRequest, request: Request) -> Response | dict[str, Any]:
    """Serve another model: load it (the old one keeps serving), drain, unload, publish.

    A failed load leaves the old model serving (400 saying why); a swap while another runs
    gets 409. With ``stream`` the phases arrive as ``phase`` events, then ``done`` or
    ``error``.
    """
    swap = model_swap(request)
    if not body.stream:
        return await swap.swap(body.model, body.drain_timeout_s)
    return event_stream(_swap_events(swap, body, request.url.path))


async def _swap_events(swap: ModelSwap, body: SwapRequest, path: str) -> AsyncIterator[bytes]:
    phases: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    running = asyncio.ensure_future(swap.swap(body.model, body.drain_timeout_s, phases.put_nowait))
    # The swap goes on when the client disconnects; its outcome is then logged, not raised.
    running.add_done_callback(lambda task: task.cancelled() or task.exception())
    while not running.done() or not phases.empty():
        next_phase = asyncio.ensure_future(phases.get())
        await asyncio.wait({running, next_phase}, return_when=asyncio.FIRST_COMPLETED)
        if next_phase.done():
            yield sse_event("phase", next_phase.result())
        else:
            next_phase.cancel()
    try:
        result = running.result()
    except RoostError as exc:
        _, _, problem = error_body(exc, path=path, request_id=None)
        yield f"event: error\ndata: {problem.decode()}\n\n".encode()
        return
    yield sse_event("done", result)


def _row(entry: ModelEntry, loaded: str | None) -> dict[str, Any]:
    row = dataclasses.asdict(entry)
    row["path"] = str(entry.path) if entry.path is not None else None
    row["is_loaded"] = entry.name == loaded
    return row
