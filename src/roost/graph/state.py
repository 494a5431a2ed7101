"""``StateGraph``: the builder users write graphs with. ``compile()`` turns it into a runtime."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from roost.graph.checkpoint.base import Checkpointer
from roost.graph.errors import InvalidGraph
from roost.graph.plan import RESERVED_KEYS, Barrier
from roost.graph.retry import Clock, RetryPolicy, SystemClock
from roost.graph.schema import channels_from_schema
from roost.graph.spec import Branch, GraphSpec, NodeSpec, is_async_callable
from roost.graph.types import END, START, Durability

if TYPE_CHECKING:
    from roost.graph.compiled import CompiledGraph


class StateGraph:
    """A graph whose nodes read a shared state and return partial updates to it.

    ``state_schema`` is a TypedDict; each field is a channel. Fields annotated
    ``Annotated[T, reducer]`` combine writes with the reducer (``operator.add``,
    :func:`~roost.graph.add_messages`, any ``f(current, update)``); plain fields keep
    the last value written.
    """

    def __init__(self, state_schema: type) -> None:
        self.state_schema = state_schema
        self.channels = channels_from_schema(state_schema)
        clash = RESERVED_KEYS.intersection(self.channels)
        if clash:
            raise InvalidGraph(f"state keys {sorted(clash)} are reserved by the graph engine")
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.barriers: list[Barrier] = []
        self.branches: list[Branch] = []

    def add_node(
        self,
        name: str | Callable[..., Any],
        fn: Any = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> StateGraph:
        """Add a node: ``fn(state)`` returns a partial update, a ``Command``, a list of
        ``Send``, or None. ``fn`` may be async or a compiled graph (a subgraph).
        ``retry`` re-runs it on failure; ``timeout`` (seconds) bounds each attempt."""
        if fn is None:
            if isinstance(name, str):
                raise InvalidGraph(f"node {name!r} needs a function")
            fn, name = name, getattr(name, "__name__", repr(name))
        if not isinstance(name, str):
            raise InvalidGraph("node names must be strings")
        if name in (START, END) or name in self.nodes:
            raise InvalidGraph(f"node name {name!r} is reserved or already used")
        if timeout is not None and timeout <= 0:
            raise InvalidGraph(f"node {name!r}: timeout must be positive")
        is_subgraph = hasattr(fn, "_is_roost_graph")
        is_async = not is_subgraph and is_async_callable(fn)
        self.nodes[name] = NodeSpec(name, fn, retry, timeout, is_subgraph, is_async)
        return self

    def add_edge(self, start: str | Sequence[str], end: str) -> StateGraph:
        """Run ``end`` after ``start``. With a list of starts, ``end`` waits for all of them."""
        if isinstance(start, str):
            self.edges.append((start, end))
            return self
        sources = list(start)
        if not sources:
            raise InvalidGraph("add_edge needs at least one start node")
        if len(sources) == 1:
            self.edges.append((sources[0], end))
            return self
        key = f"{end}<-{'+'.join(sorted(sources))}"
        self.barriers.append(Barrier(key, frozenset(sources), end))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After ``source``, call ``path(state)`` and go where it says: a node name, END,
        a ``Send``, or a list of these. ``path_map`` maps its return values to nodes."""
        if path_map is not None and not isinstance(path_map, Mapping):
            path_map = {name: name for name in path_map}
        self.branches.append(Branch(source, path, path_map))
        return self

    def set_entry_point(self, node: str) -> StateGraph:
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        return self.add_edge(node, END)

    def validate(self) -> None:
        known = set(self.nodes) | {START, END}
        sources = [s for s, _ in self.edges] + [b.source for b in self.branches]
        sources += [s for barrier in self.barriers for s in barrier.sources]
        targets = [t for _, t in self.edges] + [b.target for b in self.barriers]
        for branch in self.branches:
            targets += list(branch.path_map.values()) if branch.path_map else []
        for name in sources:
            if name not in known or name == END:
                raise InvalidGraph(f"edge starts at unknown node {name!r}")
        for name in targets:
            if name not in known or name == START:
                raise InvalidGraph(f"edge leads to unknown node {name!r}")
        if START not in sources:
            raise InvalidGraph("graph has no entry point: add_edge(START, 'first_node')")

    def spec(self) -> GraphSpec:
        """A frozen copy of what is built so far (later additions do not change it)."""
        return GraphSpec(
            nodes=dict(self.nodes),
            channels=dict(self.channels),
            edges=tuple(self.edges),
            barriers=tuple(self.barriers),
            branches=tuple(self.branches),
        )

    def compile(
        self,
        checkpointer: Checkpointer | None = None,
        *,
        durability: Durability = "sync",
        name: str | None = None,
        clock: Clock | None = None,
    ) -> CompiledGraph:
        """Check the graph and return its runtime.

        ``durability``: ``"sync"`` persists each superstep before the next starts,
        ``"async"`` persists in the background while the next runs, ``"exit"`` writes
        the whole run when it ends (or pauses, or fails). ``clock`` is what retries
        wait on (tests inject a fake one).
        """
        from roost.graph.compiled import CompiledGraph

        self.validate()
        if durability not in ("sync", "async", "exit"):
            raise InvalidGraph(f"durability must be 'sync', 'async' or 'exit', not {durability!r}")
        return CompiledGraph(
            spec=self.spec(),
            checkpointer=checkpointer,
            durability=durability,
            name=name or str(getattr(self.state_schema, "__name__", "graph")),
            clock=clock or SystemClock(),
        )
