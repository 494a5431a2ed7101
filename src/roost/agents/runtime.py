"""What an agent graph calls out to: the LLM layer, the tool layer, guardrails.

The graph nodes see these through small protocols so tests can pass scripted models
(``TestModel``/``FunctionModel`` behind an ``LLMService``) and the real tool executor.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from roost.agents.guardrails import GuardrailRegistry
from roost.agents.run_routing import RunRouting
from roost.agents.run_setup import PromptResolver
from roost.errors import RoostError
from roost.llm.base import RequestContext
from roost.llm.messages import Message, ModelSettings, StreamEvent, ToolDefinition
from roost.tools.approvals import Approval
from roost.tools.executor import ToolCall, ToolResult
from roost.tools.permissions import Caller
from roost.tools.service import ToolService

T = TypeVar("T")


class RunCancelled(RoostError):
    """The run was cancelled; raised at the next node boundary."""

    code = "run_cancelled"
    status = 409


@dataclass(frozen=True, slots=True)
class RunContext:
    """Who a step runs for: stored in the graph state so every node (and a resumed run) has it."""

    tenant_id: str
    thread_id: str
    run_id: str
    agent: str
    version: int
    # The principal who started the run and its tenant role: an approval its tool calls
    # ask for counts as that principal's request (separation of duties).
    started_by: str | None = None
    started_by_role: str | None = None

    @classmethod
    def from_state(cls, value: dict[str, Any]) -> RunContext:
        return cls(
            str(value["tenant_id"]),
            str(value["thread_id"]),
            str(value["run_id"]),
            str(value["agent"]),
            int(value["version"]),
            value.get("started_by"),
            value.get("started_by_role"),
        )

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "agent": self.agent,
            "version": self.version,
        }
        if self.started_by is not None:  # runs without one keep their old state shape
            state["started_by"] = self.started_by
            state["started_by_role"] = self.started_by_role
        return state

    def request_context(self) -> RequestContext:
        # The thread id is the cache identity: the local engine finds the thread's KV
        # cache again on every iteration and only prefills what was appended.
        return RequestContext(
            self.tenant_id,
            agent_id=self.agent,
            run_id=self.run_id,
            cache_identity=self.thread_id,
        )


class ModelCaller(Protocol):
    """The part of :class:`roost.llm.service.LLMService` agents use."""

    def request_stream(
        self,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings = ...,
        tools: Sequence[ToolDefinition] = (),
        *,
        context: RequestContext,
    ) -> AsyncIterator[StreamEvent]: ...


class ToolRunner(Protocol):
    """How the act node lists and calls tools for one run."""

    async def definitions(
        self, run: RunContext, patterns: Sequence[str]
    ) -> list[ToolDefinition]: ...

    async def execute_many(
        self, run: RunContext, patterns: Sequence[str], calls: Sequence[ToolCall]
    ) -> list[ToolResult]: ...

    async def resume(
        self, run: RunContext, patterns: Sequence[str], approval_id: str, call_id: str | None
    ) -> ToolResult: ...


class ExecutorToolRunner:
    """Tools through the tool layer's executor: permissions, approvals, sandbox, audit.

    Each run gets a capability token for the agent's tool globs, so the executor refuses
    anything the spec did not list even if the model invents it.
    """

    def __init__(self, service: ToolService, *, ttl_s: float = 3600.0) -> None:
        self.service = service
        self.ttl_s = ttl_s

    def _caller(self, run: RunContext, patterns: Sequence[str]) -> Caller:
        token = self.service.minter.mint(
            tenant_id=run.tenant_id,
            agent_id=run.agent,
            run_id=run.run_id,
            tools=tuple(patterns),
            ttl_s=self.ttl_s,
        )
        return Caller(
            tenant_id=run.tenant_id,
            actor=f"agent:{run.agent}",
            agent_id=run.agent,
            run_id=run.run_id,
            capability=token,
            role=run.started_by_role,
            on_behalf_of=run.started_by,
        )

    async def definitions(self, run: RunContext, patterns: Sequence[str]) -> list[ToolDefinition]:
        if not patterns:
            return []
        tools = await self.service.executor.list_tools(self._caller(run, patterns))
        return [
            ToolDefinition(t.name, t.description, t.input_schema)
            for t in tools
            if any(fnmatch.fnmatchcase(t.name, p) for p in patterns)
        ]

    async def execute_many(
        self, run: RunContext, patterns: Sequence[str], calls: Sequence[ToolCall]
    ) -> list[ToolResult]:
        return await self.service.executor.execute_many(self._caller(run, patterns), calls)

    async def resume(
        self, run: RunContext, patterns: Sequence[str], approval_id: str, call_id: str | None
    ) -> ToolResult:
        caller = self._caller(run, patterns)
        return await self.service.executor.resume(caller, approval_id, call_id)

    async def prepare(self, run: RunContext, patterns: Sequence[str], approval: Approval) -> None:
        """Start what the approved call will need while ``approval`` is pending."""
        await self.service.executor.prepare(self._caller(run, patterns), approval)


class ContentScreen(Protocol):
    """The security layer's PII/injection guard (:class:`roost.security.content_guard.
    ContentGuard`): returns the text to use, or raises GuardrailBlocked."""

    async def screen_text(
        self, tenant_id: str, stage: str, text: str, *, actor: str,
        agent: Mapping[str, Any] | None = None, target: str | None = None, source: str = "tool",
    ) -> str: ...  # fmt: skip


class EventSink(Protocol):
    """Where a run's events go (:class:`roost.runs.events.RunEventLog` in the kernel)."""

    def publish(self, run_id: str, event: dict[str, Any]) -> None: ...


class AgentMemory(Protocol):
    """The part of :class:`roost.memory.service.MemoryServices` agents use."""

    async def recall(self, tenant_id: str, agent_id: str, query: str, *, k: int = 5) -> Any: ...

    async def remember(
        self, tenant_id: str, agent_id: str, text: str, *, kind: str = "fact",
        importance: float = 0.5, source: Any = None,
    ) -> Any: ...  # fmt: skip


@dataclass(slots=True)
class AgentRuntime:
    """Services an agent graph needs; one per process."""

    llm: ModelCaller
    tools: ToolRunner | None = None
    guardrails: GuardrailRegistry = field(default_factory=GuardrailRegistry)
    # PII masking/blocking and injection marking per stage; None: no such guard here.
    content_guard: ContentScreen | None = None
    memory: AgentMemory | None = None
    events: EventSink | None = None
    # Picks models for specs with ``route:`` and learns from run outcomes; None: the
    # spec's keyword rules pick and nothing is learned.
    routing: RunRouting | None = None
    # The loop that owns the model, tool and database clients. Durable runs execute
    # graphs on worker threads with loops of their own; node I/O hops back here.
    home_loop: asyncio.AbstractEventLoop | None = None
    cancelled: set[str] = field(default_factory=set)
    # Resolves ``prompt: name@label`` for runs that start inside another (coordinator
    # subtasks); the kernel sets it with the run service's.
    prompts: PromptResolver | None = None

    async def call(self, work: Awaitable[T]) -> T:
        """Await ``work`` on the home loop (directly when already on it)."""
        home = self.home_loop
        if home is None or home is asyncio.get_running_loop():
            return await work

        async def on_home() -> T:
            return await work

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_home(), home))

    def emit(self, run_id: str, event: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.publish(run_id, event)

    def check_cancelled(self, run_id: str) -> None:
        if run_id in self.cancelled:
            raise RunCancelled(f"run {run_id!r} was cancelled")
