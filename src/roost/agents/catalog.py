"""Registering agent specs, checked first against what this deployment offers: a spec
that names a model nobody serves or a tool that does not exist is refused at create
time with every problem listed, instead of failing (or quietly running on another
model) later. The HTTP API and the CLI both register through here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from roost.agents.registry import AgentRegistry, AgentVersion
from roost.agents.spec import AgentSpec
from roost.agents.spec_check import Offer, invalid_spec, offer_problems, shape_problems
from roost.errors import InvalidRequest

OfferFor = Callable[[str], Awaitable[Offer]]  # tenant id -> what its specs may name


class AgentCatalog:
    """Check specs (:meth:`check`) and register them as versions (:meth:`create`)."""

    def __init__(self, registry: AgentRegistry, offer_for: OfferFor) -> None:
        self.registry = registry
        self.offer_for = offer_for

    async def check(self, tenant_id: str, data: Any) -> AgentSpec:
        """The validated spec; :class:`InvalidRequest` lists every problem otherwise."""
        if not isinstance(data, dict):
            raise InvalidRequest("an agent spec must be an object")
        problems = shape_problems(data) + offer_problems(data, await self.offer_for(tenant_id))
        if problems:
            raise invalid_spec(problems)
        return AgentSpec.model_validate(data)

    async def create(
        self, tenant_id: str, data: Any, tags: Sequence[str] = ()
    ) -> tuple[AgentVersion, bool]:
        """Check, then register: a new version when it differs from the newest."""
        spec = await self.check(tenant_id, data)
        return await self.registry.create(tenant_id, spec, tags=tuple(tags))
