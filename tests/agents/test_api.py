"""The threads/runs API through httpx, with scripted models and the durable run worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from roost.agents.webhooks import SIGNATURE_HEADER, WebhookSender, verify
from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import CallInfo, FunctionModel, ModelFunction
from tests.agents.conftest import ToolLog, make_test_tools
from tests.server.conftest import AppFactory
from tests.support.tool_results import tool_texts

Client = httpx.AsyncClient


def answer_with_tools(info: CallInfo) -> Message | str:
    """Calls ``add`` once, then answers with the tool's result."""
    results = tool_texts(info)
    if not results:
        return Message("assistant", (ToolCallPart("call_0", "add", '{"a": 2, "b": 40}'),))
    return f"the sum is {results[-1]}"


@asynccontextmanager
async def agent_app(
    make_app: AppFactory,
    auth: dict[str, str],
    script: ModelFunction,
    *,
    more_models: tuple[str, ...] = (),
    **spec: Any,
) -> AsyncIterator[tuple[FastAPI, Client, ToolLog]]:
    """An app serving ``script`` as ``function:agent`` (and as each of ``more_models``)
    with agent ``calc`` registered: specs may name only models that are served."""
    async with make_app() as (app, client):
        client.headers.update(auth)
        for model_id in ("function:agent", *more_models):
            app.state.llm.router.registry.register(FunctionModel(script, model_id))
        log = ToolLog()
        app.state.tools.registry.add_for_tenant(app.state.default_tenant_id, make_test_tools(log))
        body = {"name": "calc", "model": "function:agent", "tools": ["add", "drop_table"], **spec}
        created = await client.post("/v1/agents", json={"spec": body, "tags": ["prod"]})
        assert created.status_code == 201, created.text
        yield app, client, log


async def new_thread(client: Client) -> str:
    response = await client.post("/v1/threads", json={"metadata": {"user": "ada"}})
    assert response.status_code == 201
    return str(response.json()["id"])


async def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    events = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


async def test_run_waits_and_the_thread_keeps_the_conversation(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with agent_app(make_app, auth, answer_with_tools) as (_, client, log):
        thread = await new_thread(client)
        run = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "2+40?", "mode": "wait"}
        )
        assert run.status_code == 200, run.text
        body = run.json()
        assert body["status"] == "succeeded", body
        assert body["output"] == "the sum is 42"
        assert body["usage"]["model_calls"] == 2 and body["agent_version"] == 1
        assert log.calls == [("add", {"a": 2, "b": 40})]
        assert (await client.get(f"/v1/runs/{body['id']}")).json()["status"] == "succeeded"

        state = (await client.get(f"/v1/threads/{thread}")).json()
        assert [m["role"] for m in state["values"]["messages"]] == [
            "user", "assistant", "tool", "assistant",
        ]  # fmt: skip
        history = (await client.get(f"/v1/threads/{thread}/history")).json()["data"]
        assert len(history) >= 4 and history[0]["values"]["output"] == "the sum is 42"

        second = await client.post(
            f"/v1/threads/{thread}/runs",
            json={"agent": "calc", "version": "prod", "input": "again"},
        )
        assert second.json()["status"] == "succeeded"
        state = (await client.get(f"/v1/threads/{thread}")).json()
        # the second run continued the thread: the model saw the first run's tool result
        assert [m["content"] for m in state["values"]["messages"][4:]] == ["again", "the sum is 42"]
        runs = (await client.get(f"/v1/threads/{thread}/runs")).json()["data"]
        assert [r["id"] for r in runs] == [second.json()["id"], body["id"]]


async def test_background_and_stream_modes_deliver_events(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with agent_app(make_app, auth, answer_with_tools) as (_, client, _log):
        thread = await new_thread(client)
        queued = await client.post(
            f"/v1/threads/{thread}/runs",
            json={"agent": "calc", "input": "hi", "mode": "background"},
        )
        assert queued.status_code == 202 and queued.json()["status"] == "queued"
        run_id = queued.json()["id"]
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            events = await sse_events(response)
        assert events[-1]["event"] == "run_end"
        assert events[-1]["run"]["status"] == "succeeded"

        fresh = await new_thread(client)  # so that the model calls its tool again
        async with client.stream(
            "POST",
            f"/v1/threads/{fresh}/runs",
            json={"agent": "calc", "input": "stream it", "mode": "stream"},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = await sse_events(response)
        kinds = [e["event"] for e in events]
        for kind in ("run_start", "message", "tool_call", "tool_result", "token", "run_end"):
            assert kind in kinds, kinds
        nodes = [e["node"] for e in events if e["event"] == "node"]
        assert nodes == ["guard_input", "think", "act", "think", "finalize"]
        tokens = "".join(e["text"] for e in events if e["event"] == "token")
        assert tokens == "the sum is 42"
        assert events[-1]["run"]["output"] == "the sum is 42"


async def test_cancel_stops_a_running_run(make_app: AppFactory, auth: dict[str, str]) -> None:
    entered = asyncio.Event()
    never = asyncio.Event()

    async def stuck(info: CallInfo) -> Message | str:
        entered.set()
        await never.wait()  # a model call that would never end on its own
        return answer_with_tools(info)

    async with agent_app(make_app, auth, stuck) as (_, client, log):
        thread = await new_thread(client)
        queued = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "x", "mode": "background"}
        )
        run_id = queued.json()["id"]
        await asyncio.wait_for(entered.wait(), 30)
        cancelled = await client.post(f"/v1/runs/{run_id}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        # The run is stopped mid-call: its stream ends, and the thread (one run at a time)
        # is free for the next run, which could not start while the stuck one ran.
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            events = await sse_events(response)
        assert events[-1]["run"]["status"] == "cancelled"
        entered.clear()
        never.set()
        after = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "y", "mode": "wait"}
        )
        assert after.json()["status"] == "succeeded"
        again = await client.post(f"/v1/runs/{run_id}/cancel")
        assert again.status_code == 409
        assert (await client.get(f"/v1/runs/{run_id}")).json()["status"] == "cancelled"
        assert log.calls == [("add", {"a": 2, "b": 40})]  # the second run's, not the first's


async def test_approval_interrupt_then_resume_through_the_api(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    def dba(info: CallInfo) -> Message | str:
        results = tool_texts(info)
        if not results:
            return Message("assistant", (ToolCallPart("c1", "drop_table", '{"table": "old"}'),))
        return results[-1]

    async with agent_app(make_app, auth, dba) as (app, client, log):
        thread = await new_thread(client)
        run = (
            await client.post(f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "drop"})
        ).json()
        assert run["status"] == "interrupted", run
        (interrupt,) = run["interrupts"]
        (approval,) = interrupt["value"]["approvals"]
        assert log.calls == []
        state = (await client.get(f"/v1/threads/{thread}")).json()
        assert state["interrupts"][0]["id"] == interrupt["id"]

        early = await client.post(f"/v1/runs/{run['id']}/cancel")
        assert early.json()["status"] == "cancelled"
        # a cancelled run cannot be resumed; start again and approve this time
        run = (
            await client.post(f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "drop"})
        ).json()
        assert run["status"] == "interrupted", run
        approval = run["interrupts"][0]["value"]["approvals"][0]
        # the key that started the run asked for the call: it may not approve it itself
        own = await client.post(
            f"/v1/approvals/{approval['approval_id']}", json={"decision": "approve"}
        )
        assert own.status_code == 403 and "separation of duties" in own.text
        _, second_key = await app.state.platform.api_keys.create(
            app.state.default_tenant_id, "second approver"
        )
        decided = await client.post(
            f"/v1/approvals/{approval['approval_id']}", json={"decision": "approve"},
            headers={"Authorization": f"Bearer {second_key}"},
        )  # fmt: skip
        assert decided.status_code == 200, decided.text
        record = decided.json()
        assert record["requested_by"] == "agent:calc"
        assert record["requested_for"].startswith("key:")
        assert record["decided_by"] not in (record["requested_for"], "")
        assert (record["requester_role"], record["decider_role"]) == ("owner", "owner")
        # the decision resumed the run; follow it to its end
        async with client.stream("GET", f"/v1/runs/{run['id']}/events") as response:
            events = await sse_events(response)
        assert events[-1]["run"]["status"] == "succeeded", events[-1]
        assert events[-1]["run"]["output"] == "dropped old"
        again = await client.post(f"/v1/runs/{run['id']}/resume")
        assert again.status_code == 409  # nothing left to resume

        # decided elsewhere (not through the endpoint): resumed explicitly; a denial reaches
        # the model as a tool error
        other = await new_thread(client)
        run = (
            await client.post(f"/v1/threads/{other}/runs", json={"agent": "calc", "input": "drop"})
        ).json()
        approval_id = run["interrupts"][0]["value"]["approvals"][0]["approval_id"]
        await app.state.tools.executor.decide(
            app.state.default_tenant_id, approval_id, "deny", decided_by="key:x", reason="no"
        )
        resumed = await client.post(f"/v1/runs/{run['id']}/resume", json={"mode": "wait"})
        assert resumed.json()["status"] == "succeeded", resumed.json()
        assert json.loads(resumed.json()["output"])["error"] == "approval_denied"
        assert log.calls == [("drop_table", {"table": "old"})]


async def test_webhook_is_signed_and_retried(make_app: AppFactory, auth: dict[str, str]) -> None:
    received: list[httpx.Request] = []
    delivered: asyncio.Future[httpx.Request] = asyncio.get_running_loop().create_future()

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        if len(received) < 3:
            return httpx.Response(503)
        delivered.set_result(request)
        return httpx.Response(204)

    async def no_wait(_seconds: float) -> None:
        return None

    async with agent_app(make_app, auth, answer_with_tools) as (app, client, _log):
        secret = b"s3cret"
        app.state.agents.webhooks = WebhookSender(
            secret, max_attempts=4, transport=httpx.MockTransport(receiver), sleep=no_wait
        )
        thread = await new_thread(client)
        run = await client.post(
            f"/v1/threads/{thread}/runs",
            json={"agent": "calc", "input": "hook", "webhook": "https://hooks.example/run"},
        )
        request = await asyncio.wait_for(delivered, 30)
        assert len(received) == 3
        assert request.headers["X-Roost-Delivery-Attempt"] == "3"
        assert verify(secret, request.content, request.headers[SIGNATURE_HEADER])
        assert not verify(b"wrong", request.content, request.headers[SIGNATURE_HEADER])
        payload = json.loads(request.content)
        assert payload["type"] == "run.succeeded" and payload["run"]["id"] == run.json()["id"]


async def test_errors_and_aliases(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with agent_app(make_app, auth, answer_with_tools) as (_, client, _log):
        assert (await client.get("/v1/threads/thr_nope")).status_code == 404
        thread = await new_thread(client)
        unknown = await client.post(f"/v1/threads/{thread}/runs", json={"agent": "x", "input": "y"})
        assert unknown.status_code == 404
        executed = await client.post(
            "/execute", json={"agent": "calc", "input": "2+40", "session_id": "sess-1"}
        )
        assert executed.json()["status"] == "succeeded"
        session = (await client.get("/session/sess-1")).json()
        assert session["values"]["output"] == "the sum is 42"
        listed = (await client.get("/v1/agents")).json()["data"]
        assert [(a["name"], a["tags"]) for a in listed] == [("calc", ["prod"])]


async def test_a_run_is_an_invoke_agent_span_around_its_tool_spans(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    from roost.observe.tracing import RECENT_SPANS

    async with agent_app(make_app, auth, answer_with_tools) as (_, client, _log):
        thread = await new_thread(client)
        run = await client.post(f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "x"})
        assert run.json()["status"] == "succeeded"
    spans = RECENT_SPANS.spans()
    (agent_span,) = [s for s in spans if s.name == "invoke_agent calc"
                     and s.attributes and s.attributes["roost.run_id"] == run.json()["id"]]  # fmt: skip
    assert agent_span.attributes is not None
    assert agent_span.attributes["gen_ai.conversation.id"] == thread
    tool_spans = [s for s in spans if s.name == "execute_tool add"
                  and s.context.trace_id == agent_span.context.trace_id]  # fmt: skip
    assert len(tool_spans) == 1 and tool_spans[0].parent is not None


async def test_webhooks_to_internal_addresses_are_refused_without_retrying() -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    sender = WebhookSender(b"k", max_attempts=3, sleep=record)
    result = await sender.deliver("http://127.0.0.1:9/hook", {"type": "run.succeeded"})
    assert not result.delivered and result.attempts == 1 and sleeps == []
    assert result.error is not None and "NetworkRefused" in result.error
