"""What a compiled graph is made of: nodes, channels, edges, barriers and branches.

``StateGraph.compile()`` freezes its builder's pieces into a :class:`GraphSpec`; the
runtime (``compiled``, ``loop``, ``runner``, ``tasks``) reads only this, never the builder.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from roost.graph.channels import Channel
from roost.graph.plan import Barrier
from roost.graph.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    fn: Any
    """A sync or async callable taking the state, or a compiled graph (a subgraph)."""
    retry: RetryPolicy | None
    timeout: float | None

    is_subgraph: bool = False
    is_async: bool = False


@dataclass(frozen=True, slots=True)
class Branch:
    """A conditional edge: ``route(state)`` names where to go, optionally via ``path_map``."""

    source: str
    route: Callable[..., Any]
    path_map: Mapping[Hashable, str] | None

    @property
    def is_async(self) -> bool:
        return is_async_callable(self.route)


def is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """A validated graph, in the order it was built (node order breaks ties at runtime)."""

    nodes: Mapping[str, NodeSpec]
    channels: Mapping[str, Channel]  # prototypes: each run starts from fresh copies
    edges: tuple[tuple[str, str], ...]
    barriers: tuple[Barrier, ...]
    branches: tuple[Branch, ...]
