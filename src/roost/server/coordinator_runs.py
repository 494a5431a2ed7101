"""``/v1/coordinator/runs``: a task planned, worked by several agents, then synthesized,
as a durable run of the run service (any worker executes it; cancel, events and resume
are the runs API's: ``/v1/runs/{id}``, ``/v1/runs/{id}/events``, ``/v1/runs/{id}/cancel``).

POST /v1/coordinator/runs          {"task", "agents"?, "model"?, "plan"?, "max_revisions"?,
                                    "thread_id"?, "mode"?, "webhook"?, "timeout_s"?}
GET  /v1/coordinator/runs/{id}     the run (404 for a run that is not a coordinator run)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from roost.agents.coordinator_runs import COORDINATOR_AGENT
from roost.errors import NotFound
from roost.server.agents import agents_service
from roost.server.threads import Mode, respond

router = APIRouter(tags=["coordinator"])


class CoordinatorRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=100_000)
    agents: list[str] | None = Field(
        None, min_length=1, max_length=64, description="Worker agents; default: all"
    )
    model: str | None = Field(None, description="Planner/synthesizer; default: first agent's")
    plan: dict[str, Any] | None = Field(None, description="A ready plan: skip the planner")
    max_revisions: int = Field(1, ge=0, le=5, description="Quality-check revision rounds")
    thread_id: str | None = Field(None, description="Run on this thread; default: a new one")
    mode: Mode = "wait"
    webhook: str | None = Field(None, description="POSTed the run when it settles (signed)")
    timeout_s: float = Field(300.0, gt=0, le=3600, description="How long mode=wait waits")


@router.post("/v1/coordinator/runs", response_model=None)
async def create_coordinator_run(
    body: CoordinatorRunBody, request: Request
) -> Response | dict[str, Any]:
    service = agents_service(request.app)
    tenant_id = str(request.state.principal.tenant_id)
    thread_id = body.thread_id or (await service.create_thread(tenant_id)).id
    run = await service.start_coordinator_run(
        tenant_id, thread_id, body.task, agents=body.agents, model=body.model,
        plan=body.plan, max_revisions=body.max_revisions, webhook=body.webhook,
    )  # fmt: skip
    return await respond(service, tenant_id, run, body.mode, body.timeout_s)


@router.get("/v1/coordinator/runs/{run_id}")
async def get_coordinator_run(run_id: str, request: Request) -> dict[str, Any]:
    tenant_id = str(request.state.principal.tenant_id)
    run = await agents_service(request.app).get_run(tenant_id, run_id)
    if run.agent != COORDINATOR_AGENT:
        raise NotFound(f"no coordinator run {run_id!r}", param="run_id")
    return run.to_dict()
