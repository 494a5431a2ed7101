"""Which compiled graph serves a run: one ReAct graph per (tenant, agent, version), built on
first use from the registry, plus plain graphs registered by name. Each is registered with
the run layer under its run name, so a worker (or a recovering process) can find it."""

from __future__ import annotations

from pathlib import Path

from roost.agents.react import ReactAgent
from roost.agents.registry import AgentRegistry
from roost.agents.runtime import AgentRuntime
from roost.errors import NotFound
from roost.graph import Checkpointer, CompiledGraph, SqliteCheckpointer
from roost.runs.workflow import register_graphs

GRAPH_PREFIX = "graph:"


class RunGraphs:
    """Run names (``agent/<host>/<tenant>/<agent or graph:name>/<version>``) to graphs."""

    def __init__(
        self,
        registry: AgentRegistry,
        runtime: AgentRuntime,
        *,
        checkpoints_path: Path,
        host_key: str,
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.checkpoints_path = checkpoints_path
        self.host_key = host_key
        self.plain: dict[str, CompiledGraph] = {}
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
        if agent.startswith(GRAPH_PREFIX):
            try:
                graph = self.plain[agent.removeprefix(GRAPH_PREFIX)]
            except KeyError:
                raise NotFound(f"no graph named {agent!r} in this process") from None
        else:
            found = await self.registry.get(tenant_id, agent, int(version))
            graph = (
                ReactAgent(found.spec, self.runtime)
                .builder()
                .compile(checkpointer=self._checkpointer(tenant_id), name=graph_name)
            )
        self._built[graph_name] = graph
        register_graphs({graph_name: graph})
        return graph

    def _checkpointer(self, tenant_id: str) -> Checkpointer:
        checkpointer = self._checkpointers.get(tenant_id)
        if checkpointer is None:
            self.checkpoints_path.parent.mkdir(parents=True, exist_ok=True)
            checkpointer = SqliteCheckpointer(self.checkpoints_path, tenant_id=tenant_id)
            self._checkpointers[tenant_id] = checkpointer
        return checkpointer

    def close(self) -> None:
        for checkpointer in self._checkpointers.values():
            close = getattr(checkpointer, "close", None)
            if close is not None:
                close()
