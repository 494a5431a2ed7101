"""What a run fixes at its start, beyond the agent version: the managed prompt version a
spec's ``prompt: name@label`` names now, and, when an online experiment covers the agent,
the thread's variant (another prompt version or model).

The result rides in the run's input (``setup``), so the graph, a resumed run and the
run's trace span (:mod:`roost.runs.executor`) all see the same choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from roost.agents.spec import AgentSpec
from roost.errors import Overloaded
from roost.prompts.store import PromptVersion
from roost.prompts.template import render


@dataclass(frozen=True, slots=True)
class Variant:
    """The variant of an experiment a thread is assigned to."""

    experiment: str
    name: str
    prompt: str | None = None
    model: str | None = None


class PromptResolver(Protocol):
    async def resolve(self, tenant_id: str, reference: str) -> PromptVersion: ...


class VariantPicker(Protocol):
    async def assign(self, tenant_id: str, agent: str, thread_id: str) -> Variant | None: ...

    async def record(
        self, tenant_id: str, variant: Variant, run_id: str, thread_id: str, model: str
    ) -> None: ...


async def run_setup(
    spec: AgentSpec,
    tenant_id: str,
    thread_id: str,
    variables: dict[str, Any] | None,
    *,
    prompts: PromptResolver | None,
    experiments: VariantPicker | None,
) -> tuple[dict[str, Any], Variant | None]:
    """The run's ``setup`` and the experiment variant (recorded once the run exists).
    Missing template variables are refused here, before anything is queued."""
    variant = await experiments.assign(tenant_id, spec.name, thread_id) if experiments else None
    reference = (variant.prompt if variant else None) or spec.prompt
    setup: dict[str, Any] = {}
    if reference:
        if prompts is None:
            raise Overloaded("prompt management is not running in this process")
        version = await prompts.resolve(tenant_id, reference)
        render(version.template, {**spec.variables, **(variables or {})})
        setup["prompt"] = {
            "name": version.name,
            "version": version.version,
            "reference": reference,
            "template": version.template,
            "config": version.config.model_dump(exclude_none=True),
        }
    model = (variant.model if variant else None) or setup.get("prompt", {}).get("config", {}).get(
        "model"
    )
    if model:
        setup["model"] = model
    if variant is not None:
        setup["experiment"] = {"name": variant.experiment, "variant": variant.name}
    return setup, variant


def system_prompt(spec: AgentSpec, setup: dict[str, Any], variables: dict[str, Any]) -> str:
    """The run's system prompt: its managed prompt rendered, else the spec's instructions."""
    prompt = setup.get("prompt")
    if prompt:
        return render(str(prompt["template"]), {**spec.variables, **variables})
    return spec.render_instructions(variables)
