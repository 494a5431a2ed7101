"""The kernel's graph factory: which compiled graph serves a run. One ReAct graph per
(tenant, agent, version), built on first use from the registry, plus plain graphs
configured by name (``agents.graphs``), plus one coordinator graph per tenant. Any process of the deployment builds the same
graph from the same run name, so whichever worker claims a run can execute it.

Checkpoints live where every worker reaches them: the deployment's PostgreSQL database
when it has one, else a SQLite file under the Roost home."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path

from roost.agents.coordinator_runs import COORDINATOR_AGENT, DurableCoordinator
from roost.agents.react import ReactAgent
from roost.agents.registry import AgentRegistry
from roost.agents.runtime import AgentRuntime
from roost.agents.spec import AgentSpec
from roost.errors import NotFound
from roost.graph import Checkpointer, CompiledGraph, SqliteCheckpointer

GRAPH_PREFIX = "graph:"


def load_graphs(spec: str) -> Mapping[str, CompiledGraph]:
    """``module:attribute`` naming a dict of compiled graphs or a function returning one."""
    module_name, _, attribute = spec.partition(":")
    target = getattr(importlib.import_module(module_name), attribute or "GRAPHS")
    graphs = target() if callable(target) else target
    if not isinstance(graphs, Mapping):
        raise TypeError(f"{spec} must be a dict of name -> compiled graph")
    for name, graph in graphs.items():
        if graph.checkpointer is None:
            raise ValueError(f"graph {name!r} of {spec} needs a checkpointer to run durably")
    return graphs


class RunGraphs:
    """Run names (``agent/<host>/<tenant>/<agent or graph:name>/<version>``) to graphs."""

    def __init__(
        self,
        registry: AgentRegistry,
        runtime: AgentRuntime,
        *,
        checkpoints_path: Path,
        checkpoints_url: str | None = None,
        host_key: str = "local",
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.checkpoints_path = checkpoints_path
        self.checkpoints_url = checkpoints_url
        self.host_key = host_key
        self.plain: dict[str, CompiledGraph] = {}
        # Graph classes for specs labelled ``kind: <name>`` (the kernel adds ``coder``).
        self.kinds: dict[str, Callable[[AgentSpec, AgentRuntime], ReactAgent]] = {}
        self._built: dict[str, CompiledGraph] = {}
        self._checkpointers: dict[str, Checkpointer] = {}

    def name(self, tenant_id: str, agent: str, version: int) -> str:
        return f"agent/{self.host_key}/{tenant_id}/{agent}/{version}"

    def has(self, graph_name: str) -> bool:
        return graph_name in self._built

    async def get(self, graph_name: str) -> CompiledGraph:
        graph = self._built.get(graph_name)
        if graph is not None:
            return graph
        _, _, tenant_id, agent, version = graph_name.split("/")
        if agent == COORDINATOR_AGENT:
            graph = (
                DurableCoordinator(self.registry, self.runtime)
                .builder()
                .compile(checkpointer=self._checkpointer(tenant_id), name=graph_name)
            )
        elif agent.startswith(GRAPH_PREFIX):
            try:
                graph = self.plain[agent.removeprefix(GRAPH_PREFIX)]
            except KeyError:
                raise NotFound(f"no graph named {agent!r} in this process") from None
        else:
            found = await self.registry.get(tenant_id, agent, int(version))
            agent_class = self.kinds.get(found.spec.labels.get("kind", ""), ReactAgent)
            graph = (
                agent_class(found.spec, self.runtime)
                .builder()
                .compile(checkpointer=self._checkpointer(tenant_id), name=graph_name)
            )
        self._built[graph_name] = graph
        return graph

    def _checkpointer(self, tenant_id: str) -> Checkpointer:
        checkpointer = self._checkpointers.get(tenant_id)
        if checkpointer is None:
            if self.checkpoints_url is not None:
                from roost.graph.checkpoint.postgres import PostgresCheckpointer

                checkpointer = PostgresCheckpointer(self.checkpoints_url, tenant_id=tenant_id)
            else:
                self.checkpoints_path.parent.mkdir(parents=True, exist_ok=True)
                checkpointer = SqliteCheckpointer(self.checkpoints_path, tenant_id=tenant_id)
            self._checkpointers[tenant_id] = checkpointer
        return checkpointer

    def close(self) -> None:
        for checkpointer in self._checkpointers.values():
            close = getattr(checkpointer, "close", None)
            if close is not None:
                close()
