"""The coding agent: the ReAct graph with a plan before, tests after, and guards around.

    guard_input → plan → think ─(tool calls)→ act ─→ think …
                                              ├→ approve (interrupt) → think
                                              └→ report (a loop seen twice, or the budget)
                       think ─(answer)→ verify ─(tests pass)→ finalize
                                               ├→ think (reflect: the failures go back)
                                               └→ report (no reflections left)
                       think ─(budget spent)→ report

- **plan** reads the repository map (the ``repo_map`` tool) and asks the model for a
  numbered plan; the files it names are "in the plan" for the approval rules.
- **act** asks a human first (``roost.coding.policy``) for commands outside the
  allow-list, overwrites of files the plan does not name and deletions, through the tool
  layer's approvals, so the run pauses durably like any approval.
- **verify** runs the tests in the sandbox (``run_tests``); the run succeeds only when
  they pass. **report** ends the run ``failed`` with what was done (the diff) and what
  remains (the last test failures, the reason it stopped).

Per-run state lives in ``coder`` (plan, started_at, loop counts, approvals asked).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from roost.agents.react import AgentState, ModelTurn, ReactAgent, add_usage
from roost.agents.runtime import ExecutorToolRunner, RunContext
from roost.agents.transcript import from_response, last_assistant, tool_message, user_message
from roost.coding.policy import Budget, CoderPolicy, check_loops, plan_paths
from roost.errors import InvalidRequest, NotFound
from roost.graph import END, START, StateGraph
from roost.llm.messages import ToolDefinition
from roost.tools.executor import ToolCall, ToolResult
from roost.tools.permissions import Caller

PLAN_PROMPT = (
    "PLAN: before changing anything, write a short numbered plan: which files you will"
    " read and change (name them by path), what you will change, and how you will check"
    " it (the tests). Reply with the plan only."
)
EXECUTE_PROMPT = (
    "Now carry out the plan with the tools, one step at a time. Change files with"
    " apply_edit (search/replace) or apply_patch (unified diff). When you are done, reply"
    " with a one-paragraph summary; the tests then run by themselves."
)
LOOP_PROMPT = (
    "STOP REPEATING: {what}. Doing the same thing again will fail again. Change strategy:"
    " read the file again, search the code, or make a different edit."
)
MAX_TEST_OUTPUT = 3000


class CoderState(AgentState, total=False):
    coder: dict[str, Any]  # this run's plan, start time, loop counts, tests, approvals


class CoderAgent(ReactAgent):
    """A :class:`ReactAgent` with the coder's nodes; build it like one."""

    def builder(self) -> StateGraph:
        g = StateGraph(CoderState)
        for name, node in (
            ("guard_input", self.guard_input),
            ("plan", self.plan),
            ("think", self.think),
            ("act", self.act),
            ("approve", self.approve),
            ("verify", self.verify),
            ("finalize", self.finalize),
            ("report", self.report),
        ):
            g.add_node(name, self._reporting(name, node))
        g.add_edge(START, "guard_input")
        g.add_conditional_edges(
            "guard_input", lambda s: END if s.get("status") == "blocked" else "plan"
        )
        g.add_edge("plan", "think")
        g.add_conditional_edges("think", self.after_think, ["act", "verify", "report"])
        g.add_conditional_edges("act", self.after_act, ["approve", "think", "report"])
        g.add_edge("approve", "think")
        g.add_conditional_edges("verify", self.after_verify, ["think", "finalize", "report"])
        g.add_edge("finalize", END)
        g.add_edge("report", END)
        return g

    # -- routing ------------------------------------------------------------------------
    def _stop_reason(self, state: AgentState) -> str | None:
        coder = _coder(state)
        if coder.get("stop"):
            return str(coder["stop"])
        budget = Budget.from_variables(self._variables(state))
        return budget.exceeded(time.time() - float(coder.get("started_at", time.time())),
                               state.get("usage", {}))  # fmt: skip

    def after_think(self, state: AgentState) -> str:
        if self._stop_reason(state):
            return "report"
        if state["messages"][-1].get("tool_calls"):
            return "report" if state.get("iteration", 0) >= self.spec.max_iterations else "act"
        return "verify"

    def after_act(self, state: AgentState) -> str:
        if state.get("awaiting"):
            return "approve"
        return "report" if self._stop_reason(state) else "think"

    def after_verify(self, state: AgentState) -> str:
        coder = _coder(state)
        if coder.get("tests_passed"):
            return "finalize"
        if self._stop_reason(state) or coder.get("verifications", 0) > self.spec.max_reflections:
            return "report"
        return "think"

    # -- nodes --------------------------------------------------------------------------
    async def think(self, state: AgentState) -> dict[str, Any]:
        try:
            return await super().think(state)
        except TurnOverBudget as exc:
            # The in-flight model call was cancelled: no new message, straight to report.
            return {"coder": {**_coder(state), "stop": str(exc)}}

    async def plan(self, state: AgentState) -> dict[str, Any]:
        run = RunContext.from_state(state["run"])
        self.runtime.check_cancelled(run.run_id)
        started = {"started_at": time.time(), "failures": {}, "loops": 0, "verifications": 0,
                   "approvals": 0, "loop_triggers": 0}  # fmt: skip
        repo = await self._tool(run, "repo_map", {"max_symbols": 200})
        listing = _result_text(repo)[:4000] if repo.status == "ok" else "(no repository map)"
        ask = user_message(f"{PLAN_PROMPT}\n\nRepository map:\n{listing}")
        planning: AgentState = {**state, "coder": started}  # type: ignore[typeddict-unknown-key]
        # A plan is short; a small model that rambles would otherwise spend the turn's
        # whole token budget on it (variable plan_max_tokens; default the spec's).
        limit = self._variables(state).get("plan_max_tokens")
        try:
            turn = await self._call_model(planning, [*state["messages"], ask], [],
                                          max_tokens=int(limit) if limit else None)  # fmt: skip
        except TurnOverBudget as exc:
            return {"messages": [ask], "coder": {**started, "plan": "", "stop": str(exc)}}
        plan = turn.response.text.strip()
        self.runtime.emit(run.run_id, {"event": "plan", "plan": plan})
        return {
            **turn.window,
            "messages": [ask, from_response(turn.response), user_message(EXECUTE_PROMPT)],
            "usage": add_usage(state.get("usage", {}), *turn.summary_calls, turn.response),
            "coder": {**started, "plan": plan},
        }

    async def act(self, state: AgentState) -> dict[str, Any]:
        run = RunContext.from_state(state["run"])
        self.runtime.check_cancelled(run.run_id)
        requested = state["messages"][-1].get("tool_calls") or []
        calls = [ToolCall(c["name"], _arguments(c["arguments"]), c["id"]) for c in requested]
        coder = dict(_coder(state))
        policy = CoderPolicy.from_variables(self._variables(state))
        planned = plan_paths(str(coder.get("plan", "")))
        exists = self._exists(run)
        gated: list[tuple[ToolCall, str]] = []
        free: list[ToolCall] = []
        for call in calls:
            reason = policy.approval_reason(call.name, call.arguments, planned, exists)
            (gated.append((call, reason)) if reason else free.append(call))
        for call in calls:
            self.runtime.emit(run.run_id, {"event": "tool_call", "call_id": call.call_id,
                                           "tool": call.name, "arguments": call.arguments})  # fmt: skip
        results = await self._execute(run, free) if free else []
        awaiting = [await self._ask_approval(run, call, reason) for call, reason in gated]
        messages: list[dict[str, Any]] = []
        failed: list[tuple[str, Any, str]] = []
        for call, result in zip(free, results, strict=True):
            if result.status == "pending_approval":
                awaiting.append({"approval_id": result.approval_id, "call_id": call.call_id,
                                 "tool": call.name, "arguments": dict(call.arguments),
                                 "reason": "the tool is destructive"})  # fmt: skip
                continue
            self._emit_result(run, call, result)
            if result.status != "ok":
                failed.append((call.name, call.arguments, str(result.error_type)))
            messages.append(tool_message(call.call_id or "", call.name, _result_text(result),
                                         is_error=result.status != "ok"))  # fmt: skip
        verdict = check_loops(coder.get("failures", {}), failed)
        coder["failures"] = verdict.failures
        coder["approvals"] = int(coder.get("approvals", 0)) + len(awaiting)
        if verdict.is_loop:
            coder["loop_triggers"] = int(coder.get("loop_triggers", 0)) + 1
            what = "; ".join(verdict.triggered)
            self.runtime.emit(run.run_id, {"event": "loop", "what": what,
                                           "count": coder["loop_triggers"]})  # fmt: skip
            if coder["loop_triggers"] >= 2:
                coder["stop"] = f"loop: {what}"
            else:
                messages.append(user_message(LOOP_PROMPT.format(what=what)))
        return {"messages": messages, "awaiting": awaiting, "coder": coder}

    async def verify(self, state: AgentState) -> dict[str, Any]:
        run = RunContext.from_state(state["run"])
        coder = dict(_coder(state))
        variables = self._variables(state)
        arguments: dict[str, Any] = {"runner": str(variables.get("test_runner") or "unittest")}
        self.runtime.emit(run.run_id, {"event": "tool_call", "call_id": None,
                                       "tool": "run_tests", "arguments": arguments})  # fmt: skip
        result = await self._tool(run, "run_tests", arguments)
        self._emit_result(run, ToolCall("run_tests", arguments, None), result)
        output = result.output if isinstance(result.output, dict) else {}
        passed = result.status == "ok" and bool(output.get("passed"))
        tail = (str(output.get("stdout", "")) + str(output.get("stderr", "")))[-MAX_TEST_OUTPUT:]
        coder.update(tests_passed=passed, verifications=int(coder.get("verifications", 0)) + 1,
                     tests={"passed": passed, "summary": output.get("summary", {}),
                            "error": result.error_message, "output": tail})  # fmt: skip
        update: dict[str, Any] = {"coder": coder}
        if not passed:
            why = tail or result.error_message or "the tests did not pass"
            update["messages"] = [user_message(
                f"REFLECT: the tests fail:\n{why}\nFind the cause, fix it, then reply again."
            )]  # fmt: skip
        return update

    async def finalize(self, state: AgentState) -> dict[str, Any]:
        update = await super().finalize(state)
        if update.get("status") == "succeeded":
            update["output"] = await self._report(state, "solved", str(update.get("output")))
        return update

    async def report(self, state: AgentState) -> dict[str, Any]:
        reason = self._stop_reason(state)
        if reason is None:
            coder = _coder(state)
            if state.get("iteration", 0) >= self.spec.max_iterations:
                reason = f"step budget: {self.spec.max_iterations} model turns"
            elif not coder.get("tests_passed"):
                reason = "the tests still fail after the allowed reflections"
            else:
                reason = "stopped"
        last = last_assistant(state["messages"]) or {}
        output = await self._report(state, "stopped", str(last.get("content") or ""), reason)
        return {"status": "failed", "error": reason, "output": output}

    # -- helpers ------------------------------------------------------------------------
    async def _call_model(
        self,
        state: AgentState,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[ToolDefinition],
        *,
        tool_choice: str | None = None,
        max_tokens: int | None = None,
    ) -> ModelTurn:
        """The model call, cancelled when the run's time budget runs out mid-turn.

        The budget is otherwise checked between nodes, so one long turn of a slow local
        model would overrun it by minutes; cancelling the stream frees the engine too.
        """
        coder = _coder(state)
        budget = Budget.from_variables(self._variables(state))
        started = float(coder.get("started_at", time.time()))
        left = budget.max_seconds - (time.time() - started)
        if left <= 0:
            raise TurnOverBudget(_time_spent(time.time() - started, budget))
        call = super()._call_model(
            state, messages, tools, tool_choice=tool_choice, max_tokens=max_tokens
        )
        try:
            return await asyncio.wait_for(call, left)
        except TimeoutError:
            raise TurnOverBudget(_time_spent(time.time() - started, budget)) from None

    async def _report(
        self, state: AgentState, outcome: str, summary: str, reason: str | None = None
    ) -> dict[str, Any]:
        run = RunContext.from_state(state["run"])
        coder = _coder(state)
        diff = await self._tool(run, "git_diff", {})
        tests = coder.get("tests") or {}
        report: dict[str, Any] = {
            "outcome": outcome,
            "summary": summary,
            "plan": coder.get("plan", ""),
            "diff": (diff.output or {}).get("diff", "") if diff.status == "ok" else "",
            "tests": tests,
            "steps": state.get("iteration", 0),
            "approvals_requested": coder.get("approvals", 0),
            "loop_triggers": coder.get("loop_triggers", 0),
            "elapsed_s": round(time.time() - float(coder.get("started_at", time.time())), 3),
        }
        if reason is not None:
            report["stopped_because"] = reason
            report["remaining"] = (
                "make the tests pass: " + str(tests.get("output", ""))[-800:]
                if tests and not tests.get("passed") else "verify the change with the tests"
            )  # fmt: skip
        self.runtime.emit(run.run_id, {"event": "report", "report": report})
        return report

    def _variables(self, state: AgentState) -> dict[str, Any]:
        return {**self.spec.variables, **(state.get("variables") or {})}

    async def _execute(self, run: RunContext, calls: list[ToolCall]) -> list[ToolResult]:
        assert self.runtime.tools is not None
        return await self.runtime.call(self.runtime.tools.execute_many(run, self.spec.tools, calls))

    async def _tool(self, run: RunContext, name: str, arguments: dict[str, Any]) -> ToolResult:
        if self.runtime.tools is None:
            return ToolResult("error", error_type="unavailable", error_message="no tools here")
        return (await self._execute(run, [ToolCall(name, arguments, None)]))[0]

    def _emit_result(self, run: RunContext, call: ToolCall, result: ToolResult) -> None:
        event: dict[str, Any] = {"event": "tool_result", "call_id": call.call_id,
                                 "tool": call.name, "status": result.status}  # fmt: skip
        if isinstance(result.output, dict) and result.output.get("diff"):
            event["diff"] = result.output["diff"]
        if result.error_message:
            event["error"] = result.error_message
        self.runtime.emit(run.run_id, event)

    def _exists(self, run: RunContext) -> Callable[[str], bool]:
        runner = self.runtime.tools
        if not isinstance(runner, ExecutorToolRunner):
            return lambda path: True  # unknown workspace: treat every named file as existing
        caller = Caller(tenant_id=run.tenant_id, actor=f"agent:{run.agent}",
                        agent_id=run.agent, run_id=run.run_id)  # fmt: skip
        workspace = runner.service.executor.workspace_for(caller)

        def exists(path: str) -> bool:
            try:
                return workspace.resolve(path).exists()
            except Exception:  # a hostile path: the tool refuses it; asking costs nothing
                return True

        return exists

    async def _ask_approval(self, run: RunContext, call: ToolCall, reason: str) -> dict[str, Any]:
        runner = self.runtime.tools
        if not isinstance(runner, ExecutorToolRunner):
            raise RuntimeError("the coder's approvals need the tool layer's executor")
        arguments = await self._checked_arguments(runner, run, call)
        approval = await self.runtime.call(runner.service.approvals.request(
            run.tenant_id, call.name, arguments, risk="destructive",
            requested_by=f"agent:{run.agent}", agent_id=run.agent, run_id=run.run_id,
            call_id=call.call_id,
        ))  # fmt: skip
        # The jail the command will run in starts now, so the decision only releases it.
        await self.runtime.call(runner.prepare(run, self.spec.tools, approval))
        return {"approval_id": approval.id, "call_id": call.call_id, "tool": call.name,
                "arguments": dict(call.arguments), "reason": reason}  # fmt: skip

    async def _checked_arguments(
        self, runner: ExecutorToolRunner, run: RunContext, call: ToolCall
    ) -> dict[str, Any]:
        """The arguments as the executor will see them when it runs the approved call
        (schema defaults filled in): the approval is bound to their hash, so binding it to
        the model's raw arguments made every approved call fail as "other arguments"."""
        try:
            tool = await self.runtime.call(runner.service.registry.get(run.tenant_id, call.name))
            return tool.validate_arguments(call.arguments)
        except (NotFound, InvalidRequest):
            return dict(call.arguments)  # the executor reports it when the call is resumed


class TurnOverBudget(Exception):
    """The run's time budget ran out during a model call (which was cancelled)."""


def _time_spent(elapsed_s: float, budget: Budget) -> str:
    return f"time budget: {elapsed_s:.0f} s of {budget.max_seconds:g} s (model turn cancelled)"


def _coder(state: Mapping[str, Any]) -> dict[str, Any]:
    value = state.get("coder")
    return value if isinstance(value, dict) else {}


def _result_text(result: ToolResult) -> str:
    if result.status == "ok":
        output = result.output
        return output if isinstance(output, str) else json.dumps(output, default=str)
    return json.dumps({"error": result.error_type, "message": result.error_message})


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"__invalid_json__": raw}
    return value if isinstance(value, dict) else {"__invalid_json__": raw}
