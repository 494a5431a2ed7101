"""A scripted coder model that follows a known-good plan: for tests, the benchmark and
as a plugin (``plugins = ["roost.coding.scripted"]`` registers ``scripted:coder``, which
reads its plan from the JSON file named by ``CODER_SCRIPT``).

A plan is the plan text (naming the files it changes), the tool calls in order, and the
summary. The model answers the coder's PLAN request with the plan, then makes one call
per turn, then answers with the summary; everything else (tools, sandbox, approvals,
tests) is real.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.llm.messages import Message, TextPart, ToolCallPart
from roost.llm.testing import CallInfo, FunctionModel, ModelFunction

if TYPE_CHECKING:
    from roost.platform.kernel import Roost

MODEL_ID = "scripted:coder"


@dataclass(frozen=True, slots=True)
class KnownGoodPlan:
    plan: str
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    summary: str = "done"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KnownGoodPlan:
        steps = [(str(s["tool"]), dict(s["arguments"])) for s in data["steps"]]
        return cls(str(data["plan"]), steps, str(data.get("summary", "done")))


def _text(message: Message) -> str:
    return "".join(p.text for p in message.parts if isinstance(p, TextPart))


def follow(plan: KnownGoodPlan) -> ModelFunction:
    """The model function: the plan, then ``plan.steps`` one per turn, then the summary."""

    def answer(info: CallInfo) -> Message | str:
        users = [m for m in info.messages if m.role == "user"]
        if users and _text(users[-1]).startswith("PLAN:"):
            return plan.plan
        start = max((i for i, m in enumerate(info.messages)
                     if m.role == "user" and _text(m).startswith("Now carry out")), default=0)  # fmt: skip
        done = sum(
            any(isinstance(p, ToolCallPart) for p in m.parts)
            for m in info.messages[start:]
            if m.role == "assistant"
        )
        if done >= len(plan.steps):
            return plan.summary
        tool, arguments = plan.steps[done]
        return Message(
            "assistant", (ToolCallPart(f"call_{done + 1}", tool, json.dumps(arguments)),)
        )

    return answer


def register(kernel: Roost) -> None:
    path = os.environ.get("CODER_SCRIPT")
    if not path:
        return
    plan = KnownGoodPlan.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    kernel.llm.router.registry.register(FunctionModel(follow(plan), MODEL_ID))
