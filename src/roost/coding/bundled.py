"""Wiring the coder into a kernel: its tools, its graph kind, its bundled spec.

The spec ships as ``coder.yaml`` beside this module and is registered for a tenant the
first time that tenant names ``coder`` (``AgentRegistry.bundled``): every tenant has it
without a set-up step, and a tenant may register its own ``coder`` versions over it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from roost.agents.spec import AgentSpec, load_spec_file
from roost.coding.agent import CoderAgent
from roost.coding.tools import ModelRequester, coding_toolset
from roost.memory.knowledge import KnowledgeBase

if TYPE_CHECKING:
    from roost.platform.kernel import Roost

CODER = "coder"
SPEC_FILE = Path(__file__).with_name("coder.yaml")


@cache
def coder_spec() -> AgentSpec:
    return load_spec_file(SPEC_FILE)


def register(kernel: Roost) -> None:
    """Add the coding tools for every tenant, the ``coder`` graph kind and the bundled spec."""

    def assist() -> tuple[ModelRequester, str]:
        return kernel.llm, coder_spec().model

    def knowledge() -> KnowledgeBase | None:
        return kernel.memory.knowledge if kernel.memory is not None else None

    kernel.tools.registry.add_shared(coding_toolset(assist, knowledge))
    kernel.runs.registry.bundled[CODER] = coder_spec()
    kernel.runs.graph_factory.kinds[CODER] = CoderAgent
