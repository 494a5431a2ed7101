"""What a scripted model read back from its tools. Tool results reach a model wrapped as
untrusted data when ``guardrails.injection = "mark"``; a scripted model, like a
real one, takes the tool's answer from inside that envelope."""

from __future__ import annotations

from roost.llm.messages import ToolResultPart
from roost.llm.testing import CallInfo
from roost.security.injection import untrusted_body


def tool_results(info: CallInfo) -> list[ToolResultPart]:
    """Every tool result in the conversation the model was given, as sent (enveloped)."""
    return [p for m in info.messages for p in m.parts if isinstance(p, ToolResultPart)]


def tool_texts(info: CallInfo) -> list[str]:
    """The content of every tool result the model was given, out of its envelope."""
    return [untrusted_body(p.content) for p in tool_results(info)]
