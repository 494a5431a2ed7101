"""The ReAct agent as a prebuilt graph on ``roost.graph``:

    guard_input → think ─(tool calls)→ act ─→ think …
                        ─(approval needed)→ act → approve (interrupt) → think
                        ─(answer)→ reflect? ─(critique)→ think
                                           └→ finalize (schema + repair, output guardrails)
                        ─(tool calls after max_iterations)→ stop

Every superstep is checkpointed on the thread, so a run survives restarts and an
approval pause is durable. The model is called with the thread id as its cache identity.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypedDict

from roost.agents.context_window import ContextKeeper
from roost.agents.guardrails import GuardrailBlocked
from roost.agents.output import repair_prompt, validate_output
from roost.agents.run_extras import RunExtras
from roost.agents.run_setup import system_prompt
from roost.agents.runtime import AgentRuntime, RunContext
from roost.agents.spec import AgentSpec
from roost.agents.transcript import (
    from_response,
    last_assistant,
    to_llm,
    tool_message,
    user_message,
)
from roost.graph import END, START, StateGraph, add_messages, interrupt
from roost.llm.messages import (
    Message,
    ModelSettings,
    Response,
    ResponseDone,
    TextDelta,
    ToolDefinition,
)
from roost.observe.tracing import get_tracer
from roost.tools.executor import ToolCall, ToolResult

Node = Callable[["AgentState"], Awaitable[dict[str, Any]]]
_tracer = get_tracer("roost.agents")

REFLECT_PROMPT = (
    "Check your last answer against the task. If it is correct and complete, reply with"
    " exactly APPROVE. Otherwise reply with a short critique of what to fix."
)


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """One model call of a node: the response, the state update that moves the thread's
    context window, and any summary calls the window made (their usage counts too)."""

    response: Response
    window: dict[str, Any]
    summary_calls: list[Response]


class AgentState(TypedDict, total=False):
    """The thread's state. Per-run keys are reset by each run's input."""

    messages: Annotated[list[dict[str, Any]], add_messages]
    run: dict[str, Any]
    variables: dict[str, Any]
    iteration: int
    reflections: int
    revise: bool
    awaiting: list[dict[str, Any]]
    output: Any
    status: str
    error: str | None
    usage: dict[str, int]
    calls: list[dict[str, int]]
    task: str  # the run's input after input guardrails, before hints are added
    task_id: str | None  # id of the run's input message
    route: dict[str, Any] | None  # the learned router's pick (RouteChoice) for a routed spec
    setup: dict[str, Any]  # fixed at the run's start: managed prompt, experiment variant
    # Per thread, not reset by runs: where the context window starts, and the running
    # summary of what it left behind (see roost.agents.context_window).
    context_start: str | None
    context_summary: str


def run_input(
    run: RunContext,
    message: str | dict[str, Any],
    variables: dict[str, Any] | None = None,
    setup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The graph input that starts one run on a thread."""
    content = message if isinstance(message, str) else json.dumps(message)
    return {
        "messages": [user_message(content)],
        "run": run.to_state(),
        "variables": variables or {},
        "iteration": 0,
        "reflections": 0,
        "revise": False,
        "awaiting": [],
        "output": None,
        "status": "running",
        "error": None,
        "usage": {},
        "calls": [],
        "route": None,
        "setup": setup or {},
    }


def add_usage(total: dict[str, int], *responses: Response) -> dict[str, int]:
    for response in responses:
        total = _plus(total, response)
    return total


def _plus(total: dict[str, int], response: Response) -> dict[str, int]:
    usage = response.usage
    return {
        "input_tokens": total.get("input_tokens", 0) + usage.input_tokens,
        "output_tokens": total.get("output_tokens", 0) + usage.output_tokens,
        "cached_input_tokens": total.get("cached_input_tokens", 0) + usage.cached_input_tokens,
        "model_calls": total.get("model_calls", 0) + 1,
    }


def _call_usage(response: Response) -> dict[str, int]:
    return {
        "input_tokens": response.usage.input_tokens,
        "cached_input_tokens": response.usage.cached_input_tokens,
        "output_tokens": response.usage.output_tokens,
    }


def _result_text(result: ToolResult) -> str:
    if result.status == "ok":
        output = result.output
        return output if isinstance(output, str) else json.dumps(output, default=str)
    return json.dumps({"error": result.error_type, "message": result.error_message})


class ReactAgent:
    """Builds and holds the node functions of one agent version's graph."""

    def __init__(self, spec: AgentSpec, runtime: AgentRuntime) -> None:
        self.spec = spec
        self.runtime = runtime
        self.settings = ModelSettings(
            max_tokens=spec.max_tokens,
            temperature=spec.temperature,
            output_schema=spec.output_schema,  # the local engine makes answers match it
        )
        self.context = ContextKeeper(spec.context, spec.max_tokens, runtime)
        self.extras = RunExtras(spec, runtime)

    def builder(self) -> StateGraph:
        g = StateGraph(AgentState)
        for name, node in (
            ("guard_input", self.guard_input),
            ("think", self.think),
            ("act", self.act),
            ("approve", self.approve),
            ("reflect", self.reflect),
            ("finalize", self.finalize),
            ("stop", self.stop),
        ):
            g.add_node(name, self._reporting(name, node))
        g.add_edge(START, "guard_input")
        g.add_conditional_edges(
            "guard_input", lambda s: END if s.get("status") == "blocked" else "think"
        )
        g.add_conditional_edges("think", self.after_think, ["act", "reflect", "finalize", "stop"])
        g.add_conditional_edges("act", lambda s: "approve" if s.get("awaiting") else "think")
        g.add_edge("approve", "think")
        g.add_conditional_edges("reflect", lambda s: "think" if s.get("revise") else "finalize")
        g.add_edge("finalize", END)
        g.add_edge("stop", END)
        return g

    def _reporting(self, name: str, node: Node) -> Node:
        """``node`` that also sends a ``node`` event (which state keys it updated)."""

        async def run(state: AgentState) -> dict[str, Any]:
            update = await node(state)
            run_id = str(state["run"]["run_id"])
            self.runtime.emit(run_id, {"event": "node", "node": name, "updated": sorted(update)})
            return update

        return run

    # -- routing ----------------------------------------------------------------------
    def after_think(self, state: AgentState) -> str:
        last = state["messages"][-1]
        if last.get("tool_calls"):
            return "stop" if state.get("iteration", 0) >= self.spec.max_iterations else "act"
        if self.spec.reflect and state.get("reflections", 0) < self.spec.max_reflections:
            return "reflect"
        return "finalize"

    # -- nodes ------------------------------------------------------------------------
    async def guard_input(self, state: AgentState) -> dict[str, Any]:
        last = state["messages"][-1]
        run = RunContext.from_state(state["run"])
        try:
            text = await self._guard(last.get("content") or "", "input")
            text = await self._screen(run, "input", text)
        except GuardrailBlocked as exc:
            return {"status": "blocked", "error": exc.message}
        update: dict[str, Any] = {"task": text, "task_id": last.get("id")}
        route = await self.extras.route(run, text)
        if route is not None:
            update["route"] = route.to_state()
        # Recalled memories and procedure hints ride in this run's user message, not the
        # system prompt, so the transcript only grows at its end and the KV cache matches.
        hints = await self.extras.hints(run, text)
        if hints:
            text = f"{hints}\n\n{text}"
        if text != last.get("content"):
            update["messages"] = [{**last, "content": text}]
        return update

    async def think(self, state: AgentState) -> dict[str, Any]:
        run = RunContext.from_state(state["run"])
        self.runtime.check_cancelled(run.run_id)
        tools = await self._tool_definitions(run)
        iteration = state.get("iteration", 0)
        choice = self.spec.first_tool_choice if iteration == 0 else None
        if tools and self.spec.tool_turns is not None and iteration >= self.spec.tool_turns:
            # Tools stay in the prompt (its prefix, and so the KV cache, is unchanged);
            # the grammar just allows no call now.
            choice = "none"
        turn = await self._call_model(state, state["messages"], tools, tool_choice=choice)
        response = turn.response
        message = from_response(response)
        self.runtime.emit(run.run_id, {"event": "message", "node": "think", "message": message})
        return {
            **turn.window,
            "messages": [message],
            "iteration": state.get("iteration", 0) + 1,
            "usage": add_usage(state.get("usage", {}), *turn.summary_calls, response),
            "calls": [*state.get("calls", []), _call_usage(response)],
        }

    async def act(self, state: AgentState) -> dict[str, Any]:
        run = RunContext.from_state(state["run"])
        self.runtime.check_cancelled(run.run_id)
        requested = state["messages"][-1].get("tool_calls") or []
        calls = [ToolCall(c["name"], _arguments(c["arguments"]), c["id"]) for c in requested]
        if self.runtime.tools is None:
            results = [
                ToolResult("error", error_type="unknown_tool", error_message="no tools here",
                           call_id=c.call_id)
                for c in calls
            ]  # fmt: skip
        else:
            for call in calls:
                self.runtime.emit(run.run_id, {"event": "tool_call", "call_id": call.call_id,
                                               "tool": call.name, "arguments": call.arguments})  # fmt: skip
            results = await self.runtime.call(
                self.runtime.tools.execute_many(run, self.spec.tools, calls)
            )
        messages: list[dict[str, Any]] = []
        awaiting: list[dict[str, Any]] = []
        for call, result in zip(calls, results, strict=True):
            if result.status == "pending_approval":
                awaiting.append(
                    {
                        "approval_id": result.approval_id,
                        "call_id": call.call_id,
                        "tool": call.name,
                        "arguments": dict(call.arguments),
                    }
                )
                continue
            self.runtime.emit(run.run_id, {"event": "tool_result", "call_id": call.call_id,
                                           "tool": call.name, "status": result.status})  # fmt: skip
            messages.append(await self._tool_message(run, call.call_id, call.name, result))
        return {"messages": messages, "awaiting": awaiting}

    async def approve(self, state: AgentState) -> dict[str, Any]:
        awaiting = state.get("awaiting", [])
        # Pauses the run durably; whoever decides the approvals resumes it. Nothing
        # with side effects happens before this line, because the node re-runs on resume.
        interrupt({"type": "approval", "approvals": awaiting})
        run = RunContext.from_state(state["run"])
        self.runtime.check_cancelled(run.run_id)
        messages = []
        for item in awaiting:
            assert self.runtime.tools is not None
            result = await self.runtime.call(
                self.runtime.tools.resume(
                    run, self.spec.tools, item["approval_id"], item["call_id"]
                )
            )
            self.runtime.emit(run.run_id, {"event": "tool_result", "call_id": item["call_id"],
                                           "tool": item["tool"], "status": result.status})  # fmt: skip
            messages.append(await self._tool_message(run, item["call_id"], item["tool"], result))
        return {"messages": messages, "awaiting": []}

    async def reflect(self, state: AgentState) -> dict[str, Any]:
        check = [*state["messages"], user_message(REFLECT_PROMPT)]
        turn = await self._call_model(state, check, [])
        verdict = turn.response.text.strip()
        update: dict[str, Any] = {
            **turn.window,
            "reflections": state.get("reflections", 0) + 1,
            "usage": add_usage(state.get("usage", {}), *turn.summary_calls, turn.response),
            "revise": not verdict.upper().startswith("APPROVE"),
        }
        if update["revise"]:
            update["messages"] = [
                user_message(f"A reviewer found a problem with your answer: {verdict}\n"
                             "Give a corrected answer.")
            ]  # fmt: skip
        return update

    async def finalize(self, state: AgentState) -> dict[str, Any]:
        last = last_assistant(state["messages"]) or {}
        text = str(last.get("content") or "")
        update: dict[str, Any] = {}
        output: Any = text
        schema = self.spec.output_schema
        if schema is not None:
            transcript = list(state["messages"])
            added: list[dict[str, Any]] = []
            usage = state.get("usage", {})
            for attempt in range(self.spec.output_retries + 1):
                output, error = validate_output(text, schema)
                if error is None:
                    break
                if attempt == self.spec.output_retries:
                    update.update(status="failed", error=f"output does not match the schema: "
                                  f"{error}", messages=added, usage=usage)  # fmt: skip
                    return update
                ask = user_message(repair_prompt(error, schema))
                turn = await self._call_model(state, [*transcript, *added, ask], [])
                usage = add_usage(usage, *turn.summary_calls, turn.response)
                update.update(turn.window)
                added += [ask, from_response(turn.response)]
                text = turn.response.text
            update.update(messages=added, usage=usage)
        run = RunContext.from_state(state["run"])
        try:
            rendered = output if isinstance(output, str) else json.dumps(output)
            checked = await self._guard(rendered, "output")
            checked = await self._screen(run, "output", checked)
        except GuardrailBlocked as exc:
            update.update(status="blocked", error=exc.message, output=None)
            return update
        if checked != rendered:
            output = checked if isinstance(output, str) else _parsed_or_text(checked)
        # Runs checkpointed before "task" existed: their newest user message.
        task = state.get("task") or next(
            (m.get("content") for m in reversed(state["messages"]) if m.get("role") == "user"), ""
        )
        await self.extras.remember(run, task, output)
        await self.extras.record_procedure(run, task, state["messages"], state.get("task_id"))
        update.update(status="succeeded", output=output)
        return update

    async def stop(self, state: AgentState) -> dict[str, Any]:
        last = last_assistant(state["messages"]) or {}
        return {
            "status": "failed",
            "error": f"max_iterations: stopped after {self.spec.max_iterations} model turns",
            "output": last.get("content") or None,
        }

    # -- helpers ----------------------------------------------------------------------
    async def _tool_definitions(self, run: RunContext) -> list[ToolDefinition]:
        if self.runtime.tools is None or not self.spec.tools:
            return []
        return await self.runtime.call(self.runtime.tools.definitions(run, self.spec.tools))

    async def _call_model(
        self,
        state: AgentState,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[ToolDefinition],
        *,
        tool_choice: str | None = None,
        max_tokens: int | None = None,
    ) -> ModelTurn:
        """One model turn; ``max_tokens`` caps this turn below the spec's (a plan)."""
        run = RunContext.from_state(state["run"])
        setup = state.get("setup") or {}
        model = str((state.get("route") or {}).get("arm") or setup.get("model") or self.spec.model)
        system = system_prompt(self.spec, setup, state.get("variables") or {})
        fitted = await self.context.fit(run, model, state, system, messages, tools)
        conversation = [Message.system(fitted.system), *to_llm(fitted.messages)]
        settings = self.settings
        config = (setup.get("prompt") or {}).get("config") or {}
        if "temperature" in config or "max_tokens" in config:
            settings = replace(
                settings,
                temperature=config.get("temperature", settings.temperature),
                max_tokens=config.get("max_tokens", settings.max_tokens),
            )
        if tool_choice is not None and tools:
            settings = replace(settings, tool_choice=tool_choice)
        if max_tokens is not None:
            settings = replace(settings, max_tokens=max_tokens)

        async def stream() -> Response:
            response: Response | None = None
            async for event in self.runtime.llm.request_stream(
                model, conversation, settings, tools, context=run.request_context()
            ):
                if isinstance(event, TextDelta):
                    self.runtime.emit(run.run_id, {"event": "token", "text": event.text})
                elif isinstance(event, ResponseDone):
                    response = event.response
            assert response is not None, "a model stream ends with ResponseDone"
            return response

        response = await self.runtime.call(stream())
        return ModelTurn(response, fitted.update, fitted.summary_calls)

    async def _screen(self, run: RunContext, stage: str, text: str, source: str = "") -> str:
        """``text`` through the PII/injection guard (GuardrailBlocked when it blocks)."""
        guard = self.runtime.content_guard
        if guard is None:
            return text
        policy = self.spec.pii.model_dump() if self.spec.pii is not None else None
        return await self.runtime.call(
            guard.screen_text(
                run.tenant_id, stage, text, actor=f"agent:{run.agent}", agent=policy,
                target=run.run_id, source=source or "tool",
            )
        )  # fmt: skip

    async def _tool_message(
        self, run: RunContext, call_id: str | None, tool: str, result: ToolResult
    ) -> dict[str, Any]:
        """The tool role message of a result: PII policy applied, delimited as untrusted
        data; a result the guard blocks reaches the model as an error, not as content."""
        is_error = result.status != "ok"
        try:
            text = await self._screen(run, "tool_output", _result_text(result), f"tool:{tool}")
        except GuardrailBlocked as exc:
            text = json.dumps({"error": "guardrail_blocked", "message": exc.message})
            is_error = True
        return tool_message(call_id or "", tool, text, is_error=is_error)

    async def _guard(self, text: str, stage: str) -> str:
        for ref in self.spec.guardrails:
            if ref.stage != stage:
                continue
            check = self.runtime.guardrails.get(ref.name)
            with _tracer.start_as_current_span(f"guardrail {ref.name}") as span:
                result = await self.runtime.call(check(text, ref.options))
                # A decision in the run's trace: allowed, repaired or blocked, and why.
                repairs = ref.on_fail == "repair" and result.repaired is not None
                decision = "allow" if result.ok else "repair" if repairs else "block"
                span.set_attribute("roost.guardrail.stage", stage)
                span.set_attribute("roost.guardrail.decision", decision)
                if not result.ok:
                    span.set_attribute("roost.guardrail.reason", result.reason[:200])
            if result.ok:
                continue
            if ref.on_fail == "repair" and result.repaired is not None:
                text = result.repaired
                continue
            raise GuardrailBlocked(f"{stage} guardrail {ref.name!r} refused: {result.reason}")
        return text


def _parsed_or_text(text: str) -> Any:
    """A structured answer a guardrail rewrote: parsed again when it is still JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"__invalid_json__": raw}
    return value if isinstance(value, dict) else {"__invalid_json__": raw}


def build_react_graph(spec: AgentSpec, runtime: AgentRuntime) -> StateGraph:
    """The uncompiled ReAct graph of ``spec``; compile it with a checkpointer to run."""
    return ReactAgent(spec, runtime).builder()
