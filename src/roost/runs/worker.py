"""A worker process: claims runs from the shared queue and executes them.

    python -m roost.runs.worker --graphs myapp.graphs:GRAPHS --db sqlite:///runs.db \\
        --concurrency 4 [--executor-id host-1] [--recover dead-executor-id ...]

DBOS recovers, on start, the unfinished runs of this worker's own executor id, so
a worker restarted under a stable id (default: the host name) picks up where it
died; ``--recover`` takes over the runs of another, dead, executor. Two live
workers must never share an id: each would recover the other's runs on start.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import socket
import threading
from collections.abc import Mapping, Sequence

from dbos import DBOS

from roost.graph import CompiledGraph
from roost.runs.workflow import register_graphs, register_queue

APP_NAME = "roost"
APP_VERSION = "roost-runs-1"
"""Fixed so every worker can recover any run (DBOS matches runs to code versions)."""


def load_graphs(spec: str) -> Mapping[str, CompiledGraph]:
    """``module:attribute`` naming a dict of graphs or a function returning one."""
    module_name, _, attribute = spec.partition(":")
    target = getattr(importlib.import_module(module_name), attribute or "GRAPHS")
    graphs = target() if callable(target) else target
    if not isinstance(graphs, Mapping):
        raise TypeError(f"{spec} must be a dict of name -> compiled graph")
    return graphs


def start_worker(
    graphs: Mapping[str, CompiledGraph],
    *,
    system_database_url: str,
    concurrency: int = 4,
    executor_id: str | None = None,
    recover: Sequence[str] = (),
) -> None:
    """Launch DBOS in this process and start taking runs (returns once running)."""
    register_graphs(graphs)
    config = {
        "name": APP_NAME,
        "system_database_url": system_database_url,
        "application_version": APP_VERSION,
        "log_level": "WARNING",
    }
    config["executor_id"] = executor_id or socket.gethostname()
    DBOS(config=config)  # type: ignore[arg-type]
    DBOS.launch()
    register_queue(concurrency)
    if recover:
        DBOS._recover_pending_workflows(list(recover))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run graph runs from the Roost queue.")
    parser.add_argument("--graphs", required=True, help="module:attribute with the graphs")
    parser.add_argument("--db", required=True, help="DBOS system database URL")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--executor-id",
        default=socket.gethostname(),
        help="stable id of this worker (default: host name); one per live worker process",
    )
    parser.add_argument("--recover", action="append", default=[], help="a dead executor id")
    args = parser.parse_args(argv)
    start_worker(
        load_graphs(args.graphs),
        system_database_url=args.db,
        concurrency=args.concurrency,
        executor_id=args.executor_id,
        recover=args.recover,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("worker ready", flush=True)
    stop.wait()
    DBOS.destroy()


if __name__ == "__main__":
    main()
