"""What a ReAct run brings in before its first step and leaves behind when it succeeds.

Before: the learned router's pick of model (a spec with ``route:``), recalled long-term
memories (``memory.recall``) and procedures that worked for similar tasks
(``memory.procedures``). After: the question and answer as an episode
(``memory.remember``) and the run's tool sequence as a procedure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from roost.agents.procedures import (
    procedure_hints,
    procedure_store,
    record_procedure,
    steps_of_run,
)
from roost.agents.run_routing import RouteChoice, fallback_choice
from roost.agents.runtime import AgentRuntime, RunContext
from roost.agents.spec import AgentSpec


class RunExtras:
    """Memory and routing around one agent version's runs."""

    def __init__(self, spec: AgentSpec, runtime: AgentRuntime) -> None:
        self.spec = spec
        self.runtime = runtime

    async def route(self, run: RunContext, task: str) -> RouteChoice | None:
        """The model for this run when the spec routes (None: the spec's ``model``)."""
        policy = self.spec.route
        if policy is None:
            return None
        name = policy.router or run.agent
        if self.runtime.routing is None:
            arm = fallback_choice(policy, task)
            return RouteChoice(name, arm, "fallback", task, tuple(policy.candidates), 0)
        choice = await self.runtime.call(
            self.runtime.routing.choose(run.tenant_id, name, policy, task)
        )
        self.runtime.emit(run.run_id, {"event": "route", "model": choice.arm,
                                       "source": choice.source})  # fmt: skip
        return choice

    async def hints(self, run: RunContext, task: str) -> str:
        """Recalled memories, then procedure hints, as text to put before the task ("" if none)."""
        parts: list[str] = []
        memories = await self._recall(run, task)
        if memories:
            parts.append("Relevant memories:\n" + "\n".join(f"- {m}" for m in memories))
        procedures = await self._procedure_hints(run, task)
        if procedures:
            parts.append(procedures)
        return "\n\n".join(parts)

    async def remember(self, run: RunContext, task: str, output: Any) -> None:
        memory = self.runtime.memory
        if memory is None or not self.spec.memory.remember:
            return
        answer = output if isinstance(output, str) else json.dumps(output)
        await self.runtime.call(
            memory.remember(
                run.tenant_id, run.agent, f"Asked: {task}\nAnswered: {answer}",
                kind="episode", source={"thread_id": run.thread_id, "run_id": run.run_id},
            )
        )  # fmt: skip

    async def record_procedure(
        self,
        run: RunContext,
        task: str,
        messages: Sequence[Mapping[str, Any]],
        task_id: str | None,
    ) -> None:
        store = procedure_store(self.runtime.memory)
        if store is None or not self.spec.memory.procedures:
            return
        steps = steps_of_run(messages, task_id)
        await self.runtime.call(record_procedure(store, run, task, steps))

    async def _procedure_hints(self, run: RunContext, task: str) -> str:
        store = procedure_store(self.runtime.memory)
        if store is None or not self.spec.memory.procedures or not self.spec.tools:
            return ""
        return await self.runtime.call(
            procedure_hints(store, run, task, self.spec.memory.max_procedures)
        )

    async def _recall(self, run: RunContext, query: str) -> list[str]:
        memory = self.runtime.memory
        if memory is None or not self.spec.memory.recall:
            return []
        found = await self.runtime.call(
            memory.recall(run.tenant_id, run.agent, query, k=self.spec.memory.max_recalled)
        )
        return [str(getattr(getattr(r, "memory", r), "text", r)) for r in found]
