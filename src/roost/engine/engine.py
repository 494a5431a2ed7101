"""The public engine: load a model, accept requests from any thread, stream results.

One worker thread owns the model. Requests arrive through :meth:`Engine.submit` (or the
``generate`` / ``stream`` conveniences built on it); each step the worker admits waiting
requests, runs one prefill chunk and one decode token for every running sequence, samples,
and delivers :class:`EngineEvent` objects to each request's sink.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from collections.abc import Sequence as Seq
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from roost.engine.block_pool import BlockPool, salt_for
from roost.engine.continuation import ContinuationMemory
from roost.engine.detokenizer import IncrementalDetokenizer
from roost.engine.engine_config import EngineConfig
from roost.engine.grammar import GrammarCompiler
from roost.engine.loader import load_checkpoint
from roost.engine.memory_budget import check_pool_fits, plan_memory
from roost.engine.metrics import EngineMetrics
from roost.engine.model_config import ModelConfig
from roost.engine.model_runner import ModelRunner, kv_bytes_per_block
from roost.engine.outputs import EngineEvent, RequestOutput, assemble_output, usage_of
from roost.engine.prompt_encoder import PromptEncoder, splits_cleanly
from roost.engine.sampler import sample
from roost.engine.sampling_params import SamplingParams
from roost.engine.scheduler import Scheduler
from roost.engine.sequence import Sequence
from roost.engine.session_cache import (
    CacheIdentity,
    SessionCacheHost,
    SessionCacheInfo,
    SessionCacheStore,
    SessionStoreFactory,
)
from roost.engine.stopping import advance_and_check_stop
from roost.engine.tokenizer import Tokenizer
from roost.engine.weights import build_model
from roost.errors import InvalidRequest, Overloaded
from roost.observe.logging import get_logger

Prompt = str | list[int]
T = TypeVar("T")
log = get_logger("roost.engine")
EventSink = Callable[[EngineEvent], None]
_DETOKENIZER_CONTEXT = 4  # prompt tokens kept for decoding the first output tokens


@dataclass(slots=True)
class _Request:
    seq: Sequence
    sink: EventSink
    stop_token_ids: frozenset[int]
    session: CacheIdentity | None = None
    is_restored: bool = False  # its session's cache was brought back for admission


class Engine:
    """A loaded model plus its scheduler thread. Thread-safe; close it when done.

    ``session_store`` opens the per-session KV cache store (``roost.kvcache.open_session_store``
    for the platform's tiered one); without it, or with ``config.session_cache`` off,
    requests keep no K/V for their session beyond the shared prefix cache.
    """

    def __init__(
        self, config: EngineConfig, *, session_store: SessionStoreFactory | None = None
    ) -> None:
        self.config = config
        if config.kv_cache_gb is not None:  # fail before spending seconds on the weights
            check_pool_fits(config.kv_cache_gb, config.kv_cache_fraction)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        device = config.torch_device()
        self.dtype = config.torch_dtype(device)
        checkpoint = load_checkpoint(config.model, config.home)
        self.model_config: ModelConfig = checkpoint.config
        self.model_name = checkpoint.name
        self.model_digest = checkpoint.digest
        self.tokenizer_digest = checkpoint.tokenizer_digest
        self.tokenizer = Tokenizer(checkpoint.tokenizer)
        specials = splits_cleanly(checkpoint.tokenizer.tokenizer_json)
        # Chat prompts repeat the history every turn: its messages' ids are reused.
        self.prompt_encoder = PromptEncoder(self.tokenizer.encode, specials or [])
        limit = checkpoint.config.max_position_embeddings
        self.context_length = min(limit, config.max_model_len or limit)
        model, self.weight_quantization = build_model(
            checkpoint.config,
            checkpoint.state,
            dtype=self.dtype,
            device=device,
            max_positions=self.context_length,
            quantization=config.weight_quantization,
            prefill_dtype=config.prefill_dtype,
        )
        log.info("engine weights", detail=self.weight_quantization.summary)
        del checkpoint
        block_bytes = kv_bytes_per_block(model, config.block_size, self.dtype)
        blocks_per_seq = -(-self.context_length // config.block_size)
        self.memory = plan_memory(
            kv_cache_gb=config.kv_cache_gb,
            kv_cache_fraction=config.kv_cache_fraction,
            warm_gb=config.session_warm_gb,
            warm_fraction=config.session_warm_fraction,
            useful_pool_bytes=block_bytes * blocks_per_seq * config.max_num_seqs,
        )
        num_blocks = self.memory.pool_bytes // block_bytes
        if num_blocks < 2:
            raise InvalidRequest(
                "engine.kv_cache_gb is too small for one sequence", param="engine.kv_cache_gb"
            )
        # A sequence can never be longer than the whole pool.
        self.context_length = min(self.context_length, num_blocks * config.block_size)
        self.pool = BlockPool(
            num_blocks, config.block_size, enable_prefix_cache=config.enable_prefix_cache
        )
        self.runner = ModelRunner(
            model, num_blocks=num_blocks, block_size=config.block_size, dtype=self.dtype
        )
        self.scheduler = Scheduler(
            self.pool,
            max_num_seqs=config.max_num_seqs,
            prefill_chunk_tokens=config.prefill_chunk_tokens,
            is_fair=config.fair_scheduling,
            tenant_weights=config.tenant_weights,
        )
        self.scheduler.before_admit = self._restore_for_admission
        self.grammars = GrammarCompiler(self.tokenizer, self.model_config.vocab_size)
        self.metrics = EngineMetrics()
        self.sessions: SessionCacheStore | None = None
        if session_store is not None and config.session_cache and config.enable_prefix_cache:
            self.sessions = session_store(
                SessionCacheHost(
                    config=config,
                    pool=self.pool,
                    kv_cache=self.runner.kv_cache,
                    model_digest=self.model_digest,
                    tokenizer_digest=self.tokenizer_digest,
                    metrics_registry=self.metrics.registry,
                    warm_bytes=self.memory.warm_bytes,
                )
            )
        # A session's next prompt reuses the ids it generated when the text comes back as is.
        self.continuations = ContinuationMemory(
            self.tokenizer.piece,
            lambda ids: self.tokenizer.decode(ids, skip_special_tokens=False),
        )
        self._requests: dict[str, _Request] = {}
        self._inbox: list[_Request] = []
        self._parked: dict[str, _Request] = {}  # waiting for their session's cache to load
        self._cancel_when_unparked: set[str] = set()
        self._control: list[Callable[[], None]] = []  # work for the worker thread
        self._cancelled: set[str] = set()
        self._arrivals = itertools.count()
        self._wakeup = threading.Condition()
        self._closing = False
        self._worker = threading.Thread(target=self._run, name="roost-engine", daemon=True)
        self._worker.start()

    @classmethod
    def from_config(
        cls,
        settings: Any = None,
        *,
        session_store: SessionStoreFactory | None = None,
        **overrides: Any,
    ) -> Engine:
        """Build from ``roost.config.Settings`` / ``EngineSettings`` (default: load_settings())."""
        if settings is None:
            from roost.config import load_settings

            settings = load_settings()
        config = EngineConfig.from_settings(settings)
        for key, value in overrides.items():
            setattr(config, key, value)
        config.__post_init__()
        return cls(config, session_store=session_store)

    # -- public API -------------------------------------------------------------------------

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> list[int]:
        """Token ids of ``messages`` rendered with the model's chat template."""
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools, add_generation_prompt=add_generation_prompt, **kwargs
        )
        return self.prompt_encoder.encode(text)

    def submit(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        sink: EventSink | None = None,
        *,
        request_id: str | None = None,
        tenant_id: str | None = None,
        session_id: str | None = None,
    ) -> str:
        """Queue a request; ``sink`` receives its events on the worker thread (must not block).

        Validates everything up front: a bad request raises here and never reaches the queue.
        ``tenant_id`` scopes prefix-cache sharing to one tenant; ``session_id`` (an agent,
        thread or conversation) keeps this request's KV for the session's next request.
        """
        params = params or SamplingParams()
        token_ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not token_ids:
            raise InvalidRequest("prompt is empty", param="prompt")
        vocab = self.model_config.vocab_size
        if any(not 0 <= t < vocab for t in token_ids):
            raise InvalidRequest(f"prompt token ids must be in [0, {vocab})", param="prompt")
        if len(token_ids) >= self.context_length:
            raise InvalidRequest(
                f"prompt has {len(token_ids)} tokens; this model's context is "
                f"{self.context_length} tokens (including the reply)",
                param="prompt",
            )
        params = self._within_ceiling(params)
        session = None
        if session_id and self.sessions is not None:
            session = CacheIdentity(tenant_id or "", session_id)
            token_ids = self.continuations.align(session, token_ids)
        grammar = None
        if params.structured is not None:
            grammar = self.grammars.matcher(self.grammars.validate(params.structured))
        request_id = request_id or uuid.uuid4().hex
        seq = Sequence(
            request_id=request_id,
            prompt_token_ids=token_ids,
            params=params,
            arrival_index=next(self._arrivals),
            max_total_tokens=self.context_length,
        )
        seq.grammar = grammar
        seq.cache_salt = salt_for(tenant_id)
        seq.tenant = tenant_id or ""
        seq.detokenizer = IncrementalDetokenizer(
            self.tokenizer,
            token_ids[-_DETOKENIZER_CONTEXT:],
            params.stop_strings,
            skip_special_tokens=params.skip_special_tokens,
            include_stop_str=params.include_stop_str_in_output,
        )
        generator = torch.Generator()
        generator.manual_seed(params.seed if params.seed is not None else torch.seed())
        seq.generator = generator
        stops = set(params.stop_token_ids)
        if not params.ignore_eos:
            stops |= self.tokenizer.stop_token_ids
        request = _Request(seq, sink or (lambda _event: None), frozenset(stops), session)
        with self._wakeup:
            if self._closing:
                raise Overloaded("engine is shutting down")
            if (
                request_id in self._requests
                or request_id in self._parked
                or any(r.seq.request_id == request_id for r in self._inbox)
            ):
                raise InvalidRequest(f"request id {request_id!r} is in use", param="request_id")
            loading = None
            if session is not None and self.sessions is not None:
                loading = self.sessions.ensure_loaded(session, self._on_worker)
            if loading is None:
                self._inbox.append(request)
                self._wakeup.notify()
            else:
                self._parked[request_id] = request
        if loading is not None:
            loading.add_done_callback(lambda _done: self._unpark(request_id))
        return request_id

    @property
    def max_tokens_ceiling(self) -> int | None:
        """The most tokens one request may generate (``engine.max_tokens``)."""
        return self.config.max_tokens

    def _within_ceiling(self, params: SamplingParams) -> SamplingParams:
        """Refuse a max_tokens over the ceiling (400); an unset one becomes the ceiling."""
        ceiling = self.config.max_tokens
        if ceiling is None:
            return params
        if params.max_tokens is None:
            return dataclasses.replace(params, max_tokens=ceiling)
        if params.max_tokens > ceiling:
            raise InvalidRequest(
                f"max_tokens is {params.max_tokens}; this server allows at most {ceiling}"
                " (engine.max_tokens)",
                param="max_tokens",
            )
        return params

    def _unpark(self, request_id: str) -> None:
        with self._wakeup:
            request = self._parked.pop(request_id, None)
            if request is None:
                return
            self._inbox.append(request)
            if request_id in self._cancel_when_unparked:
                self._cancel_when_unparked.discard(request_id)
                self._cancelled.add(request_id)
            self._wakeup.notify()

    def _on_worker(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the worker thread between steps (it owns the pool)."""
        with self._wakeup:
            self._control.append(work)
            self._wakeup.notify()

    def _call_on_worker(self, work: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(work())
            except Exception as exc:
                future.set_exception(exc)

        with self._wakeup:
            if self._closing:
                raise Overloaded("engine is shutting down")
            self._control.append(run)
            self._wakeup.notify()
        return future

    # -- session caches (admin) ---------------------------------------------------------------

    def session_caches(self) -> list[SessionCacheInfo]:
        """Every session cache with its tier, size and last use (any thread)."""
        return self.sessions.describe() if self.sessions is not None else []

    def delete_session_cache(self, cache_id: str) -> Future[bool]:
        """Drop a session's cache from every tier; resolves to whether it existed."""
        store = self._require_sessions()
        identity = store.find(cache_id)
        if identity is None:
            done: Future[bool] = Future()
            done.set_result(False)
            return done
        return self._chain(self._call_on_worker(lambda: store.delete(identity)))

    def clear_prefix_cache(self) -> Future[int]:
        """Drop the shared prefix cache's unused blocks (on the worker, which owns the pool)."""
        return self._call_on_worker(self.pool.drop_cached)

    def offload_session_caches(self) -> Future[None]:
        """Write every hot and warm session cache to disk; resolves once they are saved."""
        store = self._require_sessions()
        return self._chain(self._call_on_worker(lambda: _after(store.offload_all, store.flushed)))

    def warm_session_cache(self, cache_id: str) -> Future[bool]:
        """Read a session's cache from disk into memory ahead of its next request."""
        store = self._require_sessions()
        identity = store.find(cache_id)
        done: Future[bool] = Future()
        if identity is None:
            done.set_result(False)
            return done
        loading = store.ensure_loaded(identity, self._on_worker)
        if loading is None:
            done.set_result(True)
        else:
            loading.add_done_callback(lambda _f: done.set_result(True))
        return done

    def _require_sessions(self) -> SessionCacheStore:
        if self.sessions is None:
            raise InvalidRequest(
                "session caches are off (engine.session_cache.enabled)", param="session"
            )
        return self.sessions

    @staticmethod
    def _chain(outer: Future[Future[T]]) -> Future[T]:
        """Flatten a future of a future (work queued on the worker that starts more work)."""
        result: Future[T] = Future()

        def inner_done(inner: Future[T]) -> None:
            error = inner.exception()
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(inner.result())

        def outer_done(done: Future[Future[T]]) -> None:
            error = done.exception()
            if error is not None:
                result.set_exception(error)
            else:
                done.result().add_done_callback(inner_done)

        outer.add_done_callback(outer_done)
        return result

    def cancel(self, request_id: str) -> None:
        """Stop a request; its blocks are freed before the next step. Unknown ids are ignored."""
        with self._wakeup:
            if request_id in self._parked:
                self._cancel_when_unparked.add(request_id)
                return
            self._cancelled.add(request_id)
            self._wakeup.notify()

    def generate(
        self,
        prompts: Prompt | Seq[Prompt],
        params: SamplingParams | Seq[SamplingParams] | None = None,
    ) -> list[RequestOutput]:
        """Run prompts (text or token ids) to completion, batched together; blocks the caller."""
        batch = _as_prompt_list(prompts)
        param_list: list[SamplingParams]
        if isinstance(params, SamplingParams) or params is None:
            param_list = [params or SamplingParams()] * len(batch)
        else:
            param_list = list(params)
        if len(param_list) != len(batch):
            raise InvalidRequest("one SamplingParams per prompt, or a single one", param="params")
        events: queue.SimpleQueue[EngineEvent] = queue.SimpleQueue()
        ids = [self.submit(p, sp, events.put) for p, sp in zip(batch, param_list, strict=True)]
        collected: dict[str, list[EngineEvent]] = {rid: [] for rid in ids}
        remaining = set(ids)
        while remaining:
            event = events.get()
            collected[event.request_id].append(event)
            if event.finished:
                remaining.discard(event.request_id)
        prompt_ids = {rid: self._prompt_of(p) for rid, p in zip(ids, batch, strict=True)}
        return [assemble_output(rid, prompt_ids[rid], collected[rid]) for rid in ids]

    def stream(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        tenant_id: str | None = None,
        session_id: str | None = None,
    ) -> AsyncIterator[EngineEvent]:
        """Submit now (bad input raises here) and return the request's events as they come.

        Call it from a coroutine. Leaving the ``async for`` early, or closing the iterator,
        cancels the request and frees its KV blocks.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[EngineEvent] = asyncio.Queue()

        def deliver(event: EngineEvent) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the consumer's loop is gone
                self.cancel(event.request_id)

        rid = self.submit(
            prompt,
            params,
            deliver,
            request_id=request_id,
            tenant_id=tenant_id,
            session_id=session_id,
        )
        return self._events(rid, events)

    async def _events(
        self, request_id: str, events: asyncio.Queue[EngineEvent]
    ) -> AsyncIterator[EngineEvent]:
        finished = False
        try:
            while not finished:
                event = await events.get()
                finished = event.finished
                yield event
        finally:
            if not finished:
                self.cancel(request_id)

    def stats(self) -> dict[str, float]:
        """A snapshot of queue and KV cache state (approximate: read without locking)."""
        pool = self.pool
        return {
            "num_running": self.scheduler.num_running,
            "num_waiting": self.scheduler.num_waiting + len(self._inbox),
            "kv_blocks_total": pool.num_blocks,
            "kv_blocks_used": pool.num_used_blocks,
            "kv_blocks_free": pool.num_free_blocks,
            "prefix_cache_blocks": pool.num_cached_blocks,
            "session_caches": len(self.sessions) if self.sessions is not None else 0,
        }

    def close(self) -> None:
        """Cancel everything, stop the worker thread, and write session caches to disk."""
        with self._wakeup:
            self._closing = True
            parked = list(self._parked.values())
            self._parked.clear()
            self._wakeup.notify()
        self._worker.join()
        for request in parked:
            request.sink(
                EngineEvent(
                    request.seq.request_id, [], "", [], finished=True, finish_reason="cancelled"
                )
            )
        if self.sessions is not None:
            self.sessions.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not (
                    self._closing
                    or self._inbox
                    or self._cancelled
                    or self._control
                    or self.scheduler.has_work
                ):
                    self._wakeup.wait()
                control, self._control = self._control, []
                inbox, self._inbox = self._inbox, []
                cancelled, self._cancelled = self._cancelled, set()
                closing = self._closing
            for work in control:
                _log_failure(work, "engine control task failed")
            for request in inbox:
                self._requests[request.seq.request_id] = request
                self.scheduler.add(request.seq)
            for request_id in cancelled:
                if request_id in self._requests:
                    self._finish(self._requests[request_id], "cancelled")
            if closing:
                for request in list(self._requests.values()):
                    self._finish(request, "cancelled")
                return
            if self.scheduler.has_work:
                try:
                    self._step()
                except Exception as exc:
                    for request in list(self._requests.values()):
                        self._finish(request, "error", error=f"{type(exc).__name__}: {exc}")

    def _step(self) -> None:
        started = time.perf_counter()
        if self.sessions is not None:
            self.sessions.relieve_pool(self._blocks_wanted())
        plan = self.scheduler.schedule()
        self._update_gauges()
        if plan.is_empty:
            # Nothing fits (all blocks pinned by sequences being admitted): fail loudly.
            head = self.scheduler.next_waiting()
            if not self.scheduler.num_running and head is not None:
                self._finish(
                    self._requests[head.request_id],
                    "error",
                    error="request does not fit in the KV cache",
                )
            return
        if plan.block_copies:
            self.runner.copy_blocks(plan.block_copies)
        sampled_seqs: list[Sequence] = []
        logits_parts: list[torch.Tensor] = []
        if plan.prefill:
            logits_parts.append(self.runner.prefill(plan.prefill))
            sampled_seqs += [chunk.seq for chunk in plan.prefill if chunk.is_last]
        if plan.decode:
            logits_parts.append(self.runner.decode(plan.decode))
            sampled_seqs += plan.decode
        self.scheduler.after_forward(plan)
        for chunk in plan.prefill:
            if chunk.is_last:
                self.scheduler.mark_decoding(chunk.seq)
        if not sampled_seqs:
            return
        logits = torch.cat(logits_parts) if len(logits_parts) > 1 else logits_parts[0]
        now = time.perf_counter()
        for seq, (token, logprob) in zip(sampled_seqs, sample(logits, sampled_seqs), strict=True):
            self._accept_token(self._requests[seq.request_id], token, logprob, now)
        self.metrics.record_step(len(sampled_seqs), time.perf_counter() - started)

    def _accept_token(self, request: _Request, token: int, logprob: Any, now: float) -> None:
        seq = request.seq
        if seq.first_token_time is None:
            seq.first_token_time = now
            self.metrics.time_to_first_token.observe(now - seq.arrival_time)
            self.metrics.record_admission(seq.num_prompt_tokens, seq.num_cached_prompt_tokens)
            if request.session is not None and self.sessions is not None:
                self.sessions.record_prompt(seq.num_prompt_tokens, seq.num_cached_prompt_tokens)
        seq.output_token_ids.append(token)
        if logprob is not None:
            seq.logprobs.append(logprob)
        reason, stop_reason = advance_and_check_stop(seq, token, request.stop_token_ids)
        if reason is not None:
            self._finish(
                request, reason, stop_reason=stop_reason, last_token=token, logprob=logprob
            )
            return
        assert seq.detokenizer is not None
        request.sink(
            EngineEvent(
                seq.request_id,
                [token],
                seq.detokenizer.take_delta(final=False),
                [logprob] if logprob is not None else [],
            )
        )

    def _finish(
        self,
        request: _Request,
        reason: str,
        *,
        stop_reason: str | int | None = None,
        last_token: int | None = None,
        logprob: Any = None,
        error: str | None = None,
    ) -> None:
        seq = request.seq
        if request.session is not None and self.sessions is not None and reason != "error":
            # Before the blocks are released: the session pins what this request computed.
            num_blocks = seq.num_computed_tokens // self.pool.block_size
            self.sessions.remember(
                request.session,
                seq.cache_salt,
                seq.block_hashes[:num_blocks],
                seq.token_ids()[: num_blocks * self.pool.block_size],
            )
            self.continuations.remember(request.session, seq.token_ids())
        self.scheduler.finish(seq, reason)
        self._requests.pop(seq.request_id, None)
        seq.finish_time = time.perf_counter()
        self.metrics.requests_finished.labels(reason=reason).inc()
        self.metrics.preemptions.inc(seq.num_preemptions)
        usage = usage_of(seq)
        detok = seq.detokenizer
        text = detok.take_delta(final=True) if detok is not None else ""
        request.sink(
            EngineEvent(
                seq.request_id,
                [last_token] if last_token is not None else [],
                text,
                [logprob] if logprob is not None else [],
                finished=True,
                finish_reason=reason,
                stop_reason=stop_reason,
                usage=usage,
                error=error,
            )
        )

    def _update_gauges(self) -> None:
        m = self.metrics
        m.num_running.set(self.scheduler.num_running)
        m.num_waiting.set(self.scheduler.num_waiting)
        m.kv_blocks_used.set(self.pool.num_used_blocks)
        m.kv_blocks_free.set(self.pool.num_free_blocks)

    def _restore_for_admission(self, seq: Sequence) -> None:
        """Before admission looks for ``seq``'s cached blocks: restore its session's cache
        once, when the whole sequence would fit in the pool as well (else restored K/V would
        only push running sequences out, or be demoted again before admission)."""
        request = self._requests.get(seq.request_id)
        if request is None or request.session is None or request.is_restored:
            return
        needed = -(-seq.num_tokens // self.pool.block_size) + len(self.scheduler.decoding)
        if not self.pool.can_allocate(needed):
            return  # try again next step, after relieve_pool has made room
        request.is_restored = True
        self._restore_session(request)

    def _restore_session(self, request: _Request) -> None:
        """Put the session's cached K/V back into the pool; failing only costs a prefill."""
        if request.session is None or self.sessions is None:
            return
        try:
            self.sessions.promote(request.session, request.seq.token_ids())
        except Exception as exc:
            log.error("session cache restore failed", error=f"{type(exc).__name__}: {exc}")

    def _blocks_wanted(self) -> int:
        """Free blocks the next step needs: one per decoding sequence, plus the next prompt."""
        wanted = len(self.scheduler.decoding)
        head = self.scheduler.next_waiting()
        if head is not None:
            wanted += -(-head.num_tokens // self.pool.block_size)
        return wanted

    def _prompt_of(self, prompt: Prompt) -> list[int]:
        return self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)


def _log_failure(work: Callable[[], None], message: str) -> None:
    try:
        work()
    except Exception as exc:
        log.error(message, error=f"{type(exc).__name__}: {exc}")


def _after(first: Callable[[], None], then: Callable[[], Future[T]]) -> Future[T]:
    first()
    return then()


def _as_prompt_list(prompts: Prompt | Seq[Prompt]) -> list[Prompt]:
    if isinstance(prompts, str):
        return [prompts]
    items = list(prompts)
    if items and all(isinstance(p, int) for p in items):
        return [items]  # type: ignore[list-item]
    return items  # type: ignore[return-value]
