"""The local engine of a process: loaded in the background at start (requests meanwhile
wait, or are told to retry), swapped on request, closed at the end. Chat adapters, the
LLM service's ``local:`` models and agent runs all reach the engine through it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from roost.errors import Overloaded, RoostError
from roost.observe.logging import get_logger
from roost.observe.model_metrics import mark_loaded, mark_unloaded
from roost.platform.in_flight import InFlightRequests

if TYPE_CHECKING:
    # Imported where used: roost.chat loads torch, which commands without an engine skip.
    from roost.chat import ChatService
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

    async def open(self, settings: Settings, engine: Any = None) -> None:
        """Serve ``engine`` when given (not closed here), else load the configured model
        in the background, unless the engine is disabled."""
        if engine is not None:
            from roost.chat import ChatService

            self.service = ChatService(engine)
            mark_loaded(engine)
            self.loaded.set()
        elif settings.engine.enabled:
            self.owned = True
            self._loader = asyncio.ensure_future(_load(self, settings))
        else:
            self.disable("the local engine is disabled (engine.enabled = false)")

    def disable(self, reason: str) -> None:
        """Serve no local model in this process; requests for one are told ``reason``."""
        self.is_disabled = True
        self.error = reason
        self.loaded.set()

    async def close(self) -> None:
        loader = getattr(self, "_loader", None)
        if loader is not None:
            loader.cancel()
        if self.service is not None:
            mark_unloaded(self.service.engine)
        if self.owned and self.service is not None:
            await asyncio.to_thread(self.service.engine.close)  # type: ignore[attr-defined]


async def _load(state: InferenceState, settings: Settings) -> None:
    from roost.chat import ChatService
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
