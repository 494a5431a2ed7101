"""Durable runs across processes, on DBOS Transact.

:mod:`roost.runs.executor` executes runs as DBOS workflows on the shared queue;
:mod:`roost.runs.events` carries their events to subscribers in any process;
:mod:`roost.runs.workers` makes live workers take over the runs of dead ones. The run
service that ties them to agents and graphs is :class:`roost.agents.service.AgentRunService`,
opened by the platform kernel.
"""
