"""Swapping the served local model: load the new one, drain, unload the old one, publish.

The new model is loaded while the old one keeps serving, so a load that fails changes
nothing, and clients wait only for the drain and the unload (not for the load). The cost
is memory: both models, each with its KV pool, are resident while the new one loads.
One swap runs at a time; it runs as its own task, so a caller that disconnects does not
stop it halfway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from roost.chat import ChatService
from roost.errors import Conflict, InvalidRequest, RoostError
from roost.observe.logging import get_logger
from roost.observe.model_metrics import MODEL_SWAP_DURATION, mark_loaded, mark_unloaded

if TYPE_CHECKING:
    from roost.config import Settings
    from roost.engine.registry import ModelEntry, ModelRegistry
    from roost.platform.inference import InferenceState

log = get_logger("roost.inference")
SwapPhase = Literal["loading", "draining", "unloading", "ready"]
PhaseListener = Callable[[dict[str, Any]], None]


class ModelSwap:
    """The server's model swaps: at most one at a time; ``progress`` is the running one's."""

    def __init__(self, state: InferenceState, registry: ModelRegistry, settings: Settings) -> None:
        self.state = state
        self.registry = registry
        self.settings = settings
        self.progress: dict[str, Any] | None = None
        self._task: asyncio.Task[dict[str, Any]] | None = None

    async def swap(
        self, name: str, drain_timeout_s: float | None = None, listener: PhaseListener | None = None
    ) -> dict[str, Any]:
        """Serve ``name`` instead of the current model; returns the phases it went through.

        Waits for the start-up load first. Asking for the model already served changes
        nothing. Raises Conflict while another swap runs, NotFound for an unknown name, InvalidRequest when the load fails (the
        old model then keeps serving).
        """
        if self._task is not None and not self._task.done():
            target = self.progress["model"] if self.progress else "another model"
            raise Conflict(f"a swap to {target!r} is in progress; retry when it is done")
        current = await self._current_name()
        entry = await asyncio.to_thread(self.registry.get, name)
        if current == entry.name:
            return {"status": "unchanged", "model": name, "previous": name, "phases": []}
        if not entry.is_available:
            raise InvalidRequest(f"cannot swap to {name!r}: {entry.note}", param="model")
        timeout = self.settings.engine.swap_drain_timeout_s
        timeout = timeout if drain_timeout_s is None else drain_timeout_s
        self._task = asyncio.ensure_future(self._run(entry, current, timeout, listener))
        # Retrieved here too, for when the caller went away and nobody awaits the task.
        self._task.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.shield(self._task)

    async def _current_name(self) -> str | None:
        """The served model's name, once the start-up load is over (None if it failed)."""
        state = self.state
        if state.is_disabled:
            raise Conflict("the local engine is disabled (engine.enabled = false)")
        await state.loaded.wait()
        return None if state.service is None else str(state.service.engine.model_name)

    async def _run(
        self,
        entry: ModelEntry,
        previous: str | None,
        drain_timeout_s: float,
        listener: PhaseListener | None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        phases: list[dict[str, Any]] = []

        def enter(phase: SwapPhase, **facts: Any) -> None:
            record = {"phase": phase, "elapsed_s": round(time.perf_counter() - started, 3)}
            record.update(facts)
            phases.append(record)
            self.progress = {"model": entry.name, "previous": previous, **record}
            log.info("model swap", model=entry.name, previous=previous, **record)
            if listener is not None:
                listener(record)

        outcome = "failed"
        try:
            enter("loading")
            engine = await self._load(entry, previous)
            num_held = await self._replace(engine, drain_timeout_s, enter)
            enter("ready", held=num_held)
            outcome = "ok"
        finally:
            duration = time.perf_counter() - started
            MODEL_SWAP_DURATION.labels(outcome).observe(duration)
            self.progress = None
        return {
            "status": "swapped",
            "model": entry.name,
            "previous": previous,
            "phases": phases,
            "duration_s": round(duration, 3),
        }

    async def _load(self, entry: ModelEntry, previous: str | None) -> Any:
        try:
            from roost.kvcache import open_session_store

            return await asyncio.to_thread(
                self.registry.open_engine,
                self.settings,
                entry.name,
                session_store=open_session_store,
            )
        # A load fails in many libraries' ways (safetensors, tokenizers, torch, our loader);
        # whichever it is, the old model keeps serving and the caller learns why.
        except Exception as exc:
            reason = exc.message if isinstance(exc, RoostError) else f"{type(exc).__name__}: {exc}"
            still = f"still serving {previous!r}" if previous else "no model is loaded"
            log.error("model swap failed", model=entry.name, error=reason)
            raise InvalidRequest(
                f"cannot swap to {entry.name!r}: {reason}; {still}", param="model"
            ) from exc

    async def _replace(
        self, engine: Any, drain_timeout_s: float, enter: Callable[..., None]
    ) -> int:
        """Drain, unload the old model, publish ``engine``; returns how many requests waited."""
        state = self.state
        old = state.service
        held_before = state.num_held
        enter("draining", in_flight=state.in_flight.count(old) if old else 0)
        state.hold(f"swapping to {engine.model_name!r}")
        try:
            is_drained = old is None or await state.in_flight.wait_idle(old, drain_timeout_s)
            enter("unloading", cancelled=0 if is_drained else state.in_flight.count(old))
            if old is not None:
                await self._unload(old)
            state.publish(ChatService(engine))
            mark_loaded(engine)
        finally:
            state.resume()
        return state.num_held - held_before

    async def _unload(self, old: ChatService) -> None:
        """Close the old engine (cancelling what still runs); an engine the embedding
        program handed in is its to close."""
        engine: Any = old.engine
        mark_unloaded(engine)
        if not self.state.owned:
            return
        try:
            await asyncio.to_thread(engine.close)
        # The new model is loaded: serve it even when the old one does not close cleanly.
        except Exception as exc:
            log.error("closing the old model failed", model=engine.model_name, error=str(exc))
