"""Runs and threads: the tenant's runs with filters, a run's live timeline (htmx polls
the timeline fragment every second until the run settles), cancel and resume."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.agents.service import AgentRunService
from roost.agents.store import FINISHED
from roost.errors import InvalidRequest, NotFound
from roost.security.principal import Principal, Role
from roost.server.agents import agents_service
from roost.server.ui.render import page
from roost.server.ui.session import Posted, posted, require_role, see_other, signed_in
from roost.server.ui.timeline import timeline_entries

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
Acting = Annotated[Posted, Depends(posted)]
STATUSES = ("queued", "running", "interrupted", "succeeded", "failed", "cancelled")
SETTLED = FINISHED | {"interrupted"}
PAGE_SIZE = 50


def _cursor(value: str | None) -> tuple[int, str] | None:
    if not value:
        return None
    created, _, run_id = value.partition(":")
    if not created.isdigit() or not run_id:
        raise InvalidRequest("bad page cursor", param="before")
    return int(created), run_id


@router.get("/ui")
async def home(principal: SignedIn) -> Response:
    return see_other("/ui/runs")


@router.get("/ui/runs")
async def runs_page(
    request: Request,
    principal: SignedIn,
    status: Annotated[str | None, Query(max_length=20)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    service = agents_service(request.app)
    status = status if status in STATUSES else None
    agent = agent or None
    runs = await service.store.list_tenant_runs(
        principal.tenant_id, status=status, agent=agent, before=_cursor(before), limit=PAGE_SIZE
    )
    agents = [a.name for a in await service.registry.list(principal.tenant_id)]
    more = f"{runs[-1].created_at}:{runs[-1].id}" if len(runs) == PAGE_SIZE else None
    return page(
        request, "runs.html", title="Runs", section="runs", runs=runs, statuses=STATUSES,
        agents=agents, status=status or "", agent=agent or "", more=more,
    )  # fmt: skip


async def _run_view(service: AgentRunService, principal: Principal, run_id: str) -> dict[str, Any]:
    run = await service.get_run(principal.tenant_id, run_id)
    await service.events.flush()
    events = [event for _, event in await service.events.read(run_id)]
    return {
        "messages": await _messages(service, principal, run.thread_id),
        "run": run,
        "entries": timeline_entries(events, run),
        "live": run.status not in SETTLED,
        "can_act": principal.role.includes(Role.MEMBER),
        "finished": run.status in FINISHED,
    }


async def _messages(
    service: AgentRunService, principal: Principal, thread_id: str
) -> list[dict[str, Any]]:
    """The thread's conversation: tool outputs and whole answers live there, not in the
    events. A thread whose agent can no longer be built shows its runs without it."""
    try:
        state = await service.thread_state(principal.tenant_id, thread_id)
    except NotFound:
        return []
    return list((state.get("values") or {}).get("messages") or [])


@router.get("/ui/runs/{run_id}")
async def run_page(run_id: str, request: Request, principal: SignedIn) -> Response:
    view = await _run_view(agents_service(request.app), principal, run_id)
    return page(request, "run.html", title=f"Run {run_id}", section="runs", **view)


@router.get("/ui/runs/{run_id}/timeline")
async def run_timeline(run_id: str, request: Request, principal: SignedIn) -> Response:
    """The live part of the run page, fetched again by htmx while the run executes."""
    view = await _run_view(agents_service(request.app), principal, run_id)
    return page(request, "run_live.html", **view)


@router.post("/ui/runs/{run_id}/cancel")
async def cancel_run(run_id: str, request: Request, acting: Acting) -> Response:
    require_role(acting.principal, Role.MEMBER, "cancel runs")
    await agents_service(request.app).cancel(acting.principal.tenant_id, run_id)
    return see_other(f"/ui/runs/{run_id}")


@router.post("/ui/runs/{run_id}/resume")
async def resume_run(run_id: str, request: Request, acting: Acting) -> Response:
    require_role(acting.principal, Role.MEMBER, "resume runs")
    await agents_service(request.app).resume(acting.principal.tenant_id, run_id)
    return see_other(f"/ui/runs/{run_id}")


@router.get("/ui/threads/{thread_id}")
async def thread_page(thread_id: str, request: Request, principal: SignedIn) -> Response:
    service = agents_service(request.app)
    thread = await service.store.get_thread(principal.tenant_id, thread_id)
    runs = await service.store.list_runs(principal.tenant_id, thread_id, 100)
    messages = await _messages(service, principal, thread_id)
    return page(
        request, "thread.html", title=f"Thread {thread_id}", section="runs", thread=thread,
        runs=runs, messages=messages,
    )  # fmt: skip
