"""The durable run as a DBOS workflow: record the input once, then run the graph.

DBOS stores each step's result, so when a worker dies the recovered workflow skips
the finished "record input" step and only continues the graph, which itself
resumes from its last checkpoint (finished nodes do not run again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbos import DBOS, Queue

from roost.graph import CompiledGraph

QUEUE_NAME = "roost-runs"
WORKFLOW_NAME = "roost.run"
_graphs: dict[str, CompiledGraph] = {}


def register_graphs(graphs: Mapping[str, CompiledGraph]) -> None:
    """Graphs this worker can run, by the name runs are submitted with."""
    for name, graph in graphs.items():
        if graph.checkpointer is None:
            raise ValueError(f"graph {name!r} needs a checkpointer to run durably")
        _graphs[name] = graph


def _graph(name: str) -> CompiledGraph:
    try:
        return _graphs[name]
    except KeyError:
        raise LookupError(f"this worker has no graph named {name!r}") from None


@DBOS.step(name="roost.run.record_input")
def record_input(graph_name: str, thread_id: str, run_input: Any) -> None:
    _graph(graph_name).prepare(run_input, thread_id=thread_id)


@DBOS.step(name="roost.run.execute")
def execute(graph_name: str, thread_id: str, recursion_limit: int) -> dict[str, Any]:
    output = _graph(graph_name).invoke(None, thread_id=thread_id, recursion_limit=recursion_limit)
    interrupts = output.pop("__interrupt__", [])
    return {
        "status": "interrupted" if interrupts else "done",
        "interrupts": [{"id": i.id, "value": i.value} for i in interrupts],
        "values": output,
    }


@DBOS.workflow(name=WORKFLOW_NAME)
def run_graph(
    graph_name: str, thread_id: str, run_input: Any, recursion_limit: int
) -> dict[str, Any]:
    if run_input is not None:
        record_input(graph_name, thread_id, run_input)
    return execute(graph_name, thread_id, recursion_limit)


def register_queue(concurrency: int) -> Queue:
    """One queue for all runs; each thread is a partition, so its runs go one at a time."""
    return DBOS.register_queue(
        QUEUE_NAME,
        worker_concurrency=concurrency,
        partition_concurrency=1,
        polling_interval_sec=0.05,
        on_conflict="always_update",
    )
