"""Durable graph runs across processes, on DBOS Transact.

A run is (graph name, thread id, input). :class:`RunService` queues runs; worker
processes (:mod:`roost.runs.worker`) claim them, run the graph and checkpoint each
superstep; a crashed worker's runs are recovered and continue from the last
checkpoint. Runs on one thread never execute at the same time.
"""

from roost.runs.service import RunInfo, RunService

__all__ = ["RunInfo", "RunService"]
