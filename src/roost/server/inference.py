"""The local engine inside the server: loaded in the background at start, shared by the
OpenAI and Anthropic adapters through :func:`chat_service`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from roost.chat import ChatService
from roost.errors import NotFound, Overloaded, RoostError
from roost.observe.logging import get_logger
from roost.server.gateway import gateway_models
from roost.server.in_flight import InFlightRequests
from roost.server.model_metrics import mark_loaded, mark_unloaded

if TYPE_CHECKING:
    from roost.config import Settings

log = get_logger("roost.inference")
# How long a request waits for a model that is still loading before it is told to retry.
LOAD_WAIT_S = 120.0


class InferenceState:
    """The engine's lifecycle as requests see it: loading, ready, or failed (with why)."""

    def __init__(self) -> None:
        self.service: ChatService | None = None
        self.error: str | None = None
        self.loaded = asyncio.Event()
        self.owned = False
        self.in_flight = InFlightRequests()
        # Cleared while a model swap drains and unloads: new requests wait, as while loading.
        self.admitting = asyncio.Event()
        self.admitting.set()
        self.held_for: str | None = None
        self.num_held = 0  # requests that had to wait for a swap, since start
        self.is_disabled = False

    @property
    def engine(self) -> object | None:
        return self.service.engine if self.service else None

    async def ready_service(self) -> ChatService:
        """The chat service once loaded and not being swapped; the current HTTP request
        counts as using it until its response is sent (a swap waits for that)."""
        if self.service is None and self.error is None:
            try:
                await asyncio.wait_for(self.loaded.wait(), LOAD_WAIT_S)
            except TimeoutError:
                raise Overloaded("the model is still loading; retry shortly") from None
        if not self.admitting.is_set():
            self.num_held += 1
            try:
                await asyncio.wait_for(self.admitting.wait(), LOAD_WAIT_S)
            except TimeoutError:
                raise Overloaded(f"{self.held_for}; retry shortly") from None
        if self.service is None:
            raise Overloaded(f"the local model failed to load: {self.error}")
        self.in_flight.enter(self.service)
        return self.service

    def hold(self, reason: str) -> None:
        """Make new requests wait (a model swap drains and unloads)."""
        self.held_for = reason
        self.admitting.clear()

    def resume(self) -> None:
        self.held_for = None
        self.admitting.set()

    def publish(self, service: ChatService) -> None:
        """Serve ``service`` from now on; it was loaded here, so it is closed at shutdown."""
        self.service = service
        self.error = None
        self.owned = True
        self.loaded.set()

    def status(self) -> str:
        if self.held_for is not None:
            return self.held_for
        if self.service is not None:
            return "ok"
        return f"failed: {self.error}" if self.error else "loading"


@asynccontextmanager
async def inference_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the engine in a worker thread (the server answers meanwhile); close it at the end.

    A test or embedding program may put a ready engine on ``app.state.engine`` beforehand;
    it is then used and not closed here.
    """
    state = InferenceState()
    app.state.inference = state
    settings = app.state.platform.settings
    given = getattr(app.state, "engine", None)
    loader: asyncio.Task[None] | None = None
    if given is not None:
        state.service = ChatService(given)
        mark_loaded(given)
        state.loaded.set()
    elif settings.engine.enabled:
        state.owned = True
        loader = asyncio.ensure_future(_load(state, settings))
    else:
        state.is_disabled = True
        state.error = "the local engine is disabled (engine.enabled = false)"
        state.loaded.set()
    try:
        yield
    finally:
        if loader is not None:
            loader.cancel()
        if state.service is not None:
            mark_unloaded(state.service.engine)
        if state.owned and state.service is not None:
            await asyncio.to_thread(state.service.engine.close)  # type: ignore[attr-defined]


async def _load(state: InferenceState, settings: Settings) -> None:
    from roost.engine.registry import ModelRegistry
    from roost.kvcache import open_session_store

    try:
        # engine.model may name an [engine.models] entry, served under that name.
        registry = ModelRegistry.from_settings(settings)
        engine = await asyncio.to_thread(
            registry.open_engine,
            settings,
            settings.engine.model,
            session_store=open_session_store,
        )
        mark_loaded(engine)
        state.service = ChatService(engine)
        log.info("model loaded", model=engine.model_name, context=engine.context_length)
    except (RoostError, OSError, ValueError, RuntimeError) as exc:
        state.error = str(exc)
        log.error("model failed to load", error=state.error)
    finally:
        state.loaded.set()


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
