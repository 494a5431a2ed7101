"""Coding sessions in this process, on a repository the user names: what ``roost code``
and the benchmark drive.

A session is a thread of the coder graph, checkpointed in ``$ROOST_HOME/code-sessions.db``
(so ``--resume SESSION`` continues it after a restart, approvals pending included). Its
runs use the kernel's model and tool services; the tool layer's workspace for the
session's runs is the repository itself (bound per run id), so edits land there and
commands run in the sandbox with the repository at ``/workspace``.

Approvals are asked through ``decide`` (a terminal prompt, ``--yes``, or a test's
function) and recorded in the approvals store like any other decision.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from roost.agents.react import run_input
from roost.agents.runtime import AgentRuntime, ExecutorToolRunner, RunContext
from roost.agents.spec import AgentSpec
from roost.coding.agent import CoderAgent
from roost.errors import InvalidRequest, NotFound
from roost.graph import Command, CompiledGraph, SqliteCheckpointer
from roost.storage.ids import new_id
from roost.tools.paths import Workspace
from roost.tools.permissions import Caller
from roost.tools.service import ToolService

Decision = Literal["approve", "deny"]
Decide = Callable[[dict[str, Any]], Awaitable[Decision]]
OnEvent = Callable[[dict[str, Any]], None]


class NotARepository(InvalidRequest):
    """The workspace is not a git repository."""


def check_repository(path: Path, *, init: bool = False) -> Path:
    """``path`` resolved, if it is the top of a git work tree (made one when ``init``)."""
    root = path.resolve()
    if not root.is_dir():
        raise NotARepository(f"{root} is not a directory")
    if not (root / ".git").exists():
        if not init:
            raise NotARepository(
                f"{root} is not a git repository; run `git init` there (or pass --init) so"
                " every change the agent makes can be seen and undone"
            )
        # The user asked for it (--init), on their own machine: not a tenant's command.
        subprocess.run(["git", "init", "-q", str(root)], check=True)  # noqa: S603, S607
    return root


class BoundWorkspaces:
    """The executor's workspace choice, with some runs bound to a directory of their own."""

    def __init__(self, fallback: Callable[[Caller], Workspace]) -> None:
        self.fallback = fallback
        self.bound: dict[str, Path] = {}

    def __call__(self, caller: Caller) -> Workspace:
        root = self.bound.get(caller.run_id or "")
        if root is None:
            return self.fallback(caller)
        return Workspace(root, quota_root=root)

    @classmethod
    def install(cls, tools: ToolService) -> BoundWorkspaces:
        current = tools.executor.workspace_for
        if isinstance(current, BoundWorkspaces):
            return current
        bound = cls(current)
        tools.executor.workspace_for = bound
        return bound


@dataclass(slots=True)
class SessionResult:
    session_id: str
    run_id: str
    status: str  # succeeded | failed | interrupted (an approval left undecided)
    output: Any
    error: str | None
    usage: dict[str, int]
    approvals: int
    wall_s: float
    events: list[dict[str, Any]] = field(default_factory=list)


class _Sink:
    def __init__(self, on_event: OnEvent | None, events: list[dict[str, Any]]) -> None:
        self.on_event = on_event
        self.events = events

    def publish(self, run_id: str, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)


class CodingSessions:
    """Runs the coder graph on repositories for one tenant of a kernel's services."""

    def __init__(
        self,
        llm: Any,
        tools: ToolService,
        spec: AgentSpec,
        checkpoints: Path,
        *,
        tenant_id: str,
    ) -> None:
        self.llm = llm
        self.tools = tools
        self.spec = spec
        self.tenant_id = tenant_id
        self.workspaces = BoundWorkspaces.install(tools)
        checkpoints.parent.mkdir(parents=True, exist_ok=True)
        self.checkpointer = SqliteCheckpointer(checkpoints, tenant_id=tenant_id)
        self.events: list[dict[str, Any]] = []
        self.on_event: OnEvent | None = None
        runtime = AgentRuntime(llm, ExecutorToolRunner(tools), events=_Sink(self._event, []))
        runtime.home_loop = asyncio.get_running_loop()
        self.graph: CompiledGraph = (
            CoderAgent(spec, runtime).builder().compile(checkpointer=self.checkpointer)
        )

    def _event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def close(self) -> None:
        self.checkpointer.close()

    async def run(
        self,
        repository: Path,
        task: str,
        *,
        decide: Decide,
        session_id: str | None = None,
        variables: dict[str, Any] | None = None,
        on_event: OnEvent | None = None,
    ) -> SessionResult:
        """A new run of ``task`` on a new session, or on ``session_id`` (its transcript
        continues)."""
        session_id = session_id or new_id("ses")
        run = RunContext(self.tenant_id, session_id, new_id("run"), self.spec.name, 1)
        values = run_input(run, task, variables)
        values["coder"] = {"workspace": str(repository)}
        return await self._drive(repository, run, values, decide, on_event)

    async def resume(
        self, session_id: str, *, decide: Decide, on_event: OnEvent | None = None
    ) -> SessionResult:
        """Continue a session whose run waits for approvals (after a restart too)."""
        snapshot = await self.graph.aget_state(thread_id=session_id)
        values = snapshot.values
        if not values:
            raise NotFound(f"no coding session {session_id!r}")
        if not snapshot.interrupts:
            raise InvalidRequest(f"session {session_id!r} waits for nothing; give a new task")
        run = RunContext.from_state(values["run"])
        repository = Path(str(values.get("coder", {}).get("workspace", ".")))
        return await self._drive(repository, run, None, decide, on_event)

    async def workspace_of(self, session_id: str) -> Path | None:
        values = (await self.graph.aget_state(thread_id=session_id)).values
        workspace = (values or {}).get("coder", {}).get("workspace")
        return Path(workspace) if workspace else None

    async def _drive(
        self,
        repository: Path,
        run: RunContext,
        graph_input: Any,
        decide: Decide,
        on_event: OnEvent | None,
    ) -> SessionResult:
        started = time.perf_counter()
        self.events = []
        self.on_event = on_event
        self.workspaces.bound[run.run_id] = repository
        asked = 0
        limit = 6 * self.spec.max_iterations + 4 * self.spec.max_reflections + 40
        try:
            output = await self.graph.ainvoke(
                graph_input, thread_id=run.thread_id, recursion_limit=limit
            )
            while output.get("__interrupt__"):
                interrupts = output.pop("__interrupt__")
                for item in interrupts:
                    for approval in (item.value or {}).get("approvals", []):
                        asked += 1
                        decision = await decide(approval)
                        await self.tools.executor.decide(
                            self.tenant_id, approval["approval_id"], decision,
                            decided_by="user:cli",
                        )  # fmt: skip
                        self._event({"event": "approval", "decision": decision,
                                     "approval_id": approval["approval_id"]})  # fmt: skip
                resume = {item.id: "resume" for item in interrupts}
                output = await self.graph.ainvoke(
                    Command(resume=resume), thread_id=run.thread_id, recursion_limit=limit
                )
        finally:
            self.workspaces.bound.pop(run.run_id, None)
        return SessionResult(
            session_id=run.thread_id,
            run_id=run.run_id,
            status=str(output.get("status", "failed")),
            output=output.get("output"),
            error=output.get("error"),
            usage=dict(output.get("usage") or {}),
            approvals=asked,
            wall_s=time.perf_counter() - started,
            events=list(self.events),
        )


async def open_sessions(
    kernel: Any,
    *,
    tenant: str = "default",
    model: str | None = None,
    spec: AgentSpec | None = None,
) -> CodingSessions:
    """Coding sessions of ``tenant`` on an open kernel, with the bundled spec (``model``
    overrides the spec's model)."""
    from roost.coding.bundled import coder_spec

    found, _ = await kernel.platform.tenants.ensure(tenant)
    spec = spec or coder_spec()
    if model is not None:
        spec = spec.model_copy(update={"model": model})
    path = kernel.settings.home / "code-sessions.db"
    return CodingSessions(kernel.llm, kernel.tools, spec, path, tenant_id=found.id)
