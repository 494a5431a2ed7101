"""Procedural memory for ReAct runs: what worked before, offered again for similar tasks.

A run that succeeds after calling tools is recorded (task, the tool calls in order with
their arguments and a short result) in the memory layer's procedural store, keyed by the
run id so a re-executed node records it once. A later run on a similar task gets those
procedures as hints in its user message: the thread's transcript still only grows at its
end, so the KV cache keeps matching.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from roost.agents.runtime import AgentMemory, RunContext
from roost.memory.procedural import Step

RESULT_CHARS = 200  # enough of a tool result to show what came back, not to flood the prompt
# Cosine below which a procedure (sharing no discriminating word with the task) is not a
# hint: unrelated procedures mislead a model more than none.
MIN_SIMILARITY = 0.5
HINTS_HEADER = "Procedures that worked for similar tasks before (adapt them, do not copy blindly):"


@runtime_checkable
class ProcedureStore(Protocol):
    """The part of :class:`roost.memory.procedural.ProceduralMemory` runs use."""

    async def record(
        self, tenant_id: str, agent_id: str, task: str, steps: Sequence[Step], *,
        success: bool, notes: str = "", source: Mapping[str, Any] | None = None,
        procedure_id: str | None = None,
    ) -> Any: ...  # fmt: skip

    async def examples(
        self, tenant_id: str, agent_id: str, task: str, *, k: int = 2,
        min_similarity: float | None = None,
    ) -> str: ...  # fmt: skip


def procedure_store(memory: AgentMemory | None) -> ProcedureStore | None:
    """The procedural store of the runtime's memory, when it has one."""
    store = getattr(memory, "procedural", None)
    return store if isinstance(store, ProcedureStore) else None


def steps_of_run(messages: Sequence[Mapping[str, Any]], task_id: str | None) -> list[Step]:
    """The tool calls made after the run's task message, in order, with their results."""
    start = 0
    if task_id is not None:
        start = next((i for i, m in enumerate(messages) if m.get("id") == task_id), 0)
    results = {str(m.get("tool_call_id")): m for m in messages[start:] if m.get("role") == "tool"}
    steps: list[Step] = []
    for message in messages[start:]:
        for call in message.get("tool_calls") or ():
            result = results.get(str(call.get("id")))
            steps.append(
                Step(
                    tool=str(call.get("name")),
                    arguments=_arguments(call.get("arguments")),
                    result=str((result or {}).get("content") or "")[:RESULT_CHARS],
                    ok=result is not None and not result.get("is_error", False),
                )
            )
    return steps


async def record_procedure(
    store: ProcedureStore, run: RunContext, task: str, steps: Sequence[Step]
) -> None:
    """Record a succeeded run's tool sequence (nothing when it called no tool)."""
    if not steps or not task.strip():
        return
    await store.record(
        run.tenant_id, run.agent, task, steps, success=True,
        source={"thread_id": run.thread_id, "run_id": run.run_id},
        procedure_id=f"proc_{run.run_id}",
    )  # fmt: skip


async def procedure_hints(store: ProcedureStore, run: RunContext, task: str, k: int) -> str:
    """Hint text for the run's user message, or "" when nothing similar was recorded."""
    examples = await store.examples(
        run.tenant_id, run.agent, task, k=k, min_similarity=MIN_SIMILARITY
    )
    return f"{HINTS_HEADER}\n{examples}" if examples else ""


def _arguments(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"raw": raw}
