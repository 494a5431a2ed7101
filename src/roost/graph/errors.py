"""Errors the graph engine raises on purpose."""

from __future__ import annotations

from roost.errors import InvalidRequest, RequestTimeout, RoostError


class InvalidGraph(InvalidRequest):
    """The graph's definition is inconsistent (unknown node, missing entry point, ...)."""

    code = "invalid_graph"


class InvalidUpdate(InvalidRequest):
    """A node returned something the state cannot take (unknown key, clashing writes)."""

    code = "invalid_update"


class GraphRecursionError(RoostError):
    """A run took more supersteps than its ``recursion_limit``."""

    code = "graph_recursion_limit"
    status = 500
    title = "Graph recursion limit reached"


class NodeTimeout(RequestTimeout):
    """A node ran longer than the ``timeout`` it was added with."""

    code = "node_timeout"


class CheckpointWriteFailed(RoostError):
    """The checkpointer kept failing after its retries; the run stops rather than lose state."""

    code = "checkpoint_write_failed"
    status = 503
    title = "Checkpoint write failed"
