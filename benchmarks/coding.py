"""The coding agent on generated repository tasks (benchmarks/coding_tasks.py).

Each task is a tiny git repository with a failing test (a planted bug, a missing
function, a rename across files), run as a coder session: the real graph, tool executor,
approvals store and bubblewrap sandbox; scored by the repository's own tests (run in the
sandbox by the agent's verify step). Two models:

- ``scripted``: follows the task's known-good plan (loop correctness: must solve all, with
  no approvals asked);
- ``bundled``: SmolLM2-135M on the local engine (reported, not expected to solve much).

    python benchmarks/coding.py [--bundled N] [--json out.json]
    python benchmarks/coding.py --humaneval [--limit N] [--offset N] [--max-seconds S]
                                [--concurrency K] [--full-coder]
    python benchmarks/coding.py --approvals N

``--humaneval`` and ``--approvals`` drive ``roost serve`` over HTTP (see
benchmarks/coding_served.py): HumanEval pass@1 of the bundled model as coder sessions, and
the p95 time from an approval decision to the session's next action. Their results go
to benchmarks/results/coding-*.json.

Prints one table per model: solved, steps, tokens, wall time, approvals requested, loop
triggers, and the tool success rate over the whole run (seed 004's figure: >= 95 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.coding_tasks import RepoTask, make_tasks

from roost.coding.scripted import follow
from roost.coding.session import SessionResult, open_sessions
from roost.config import load_settings
from roost.llm.testing import FunctionModel
from roost.platform.kernel import Roost, RunExecution


async def approve(_: dict[str, Any]) -> Any:
    return "approve"


def _row(task: RepoTask, result: SessionResult | None, error: str | None = None) -> dict[str, Any]:
    if result is None:
        return {"task": task.name, "kind": task.kind, "solved": False, "error": error}
    report = result.output if isinstance(result.output, dict) else {}
    tool_results = [e for e in result.events if e.get("event") == "tool_result"]
    return {
        "task": task.name,
        "kind": task.kind,
        "solved": result.status == "succeeded" and bool((report.get("tests") or {}).get("passed")),
        "steps": report.get("steps"),
        "tokens": result.usage.get("input_tokens", 0) + result.usage.get("output_tokens", 0),
        "wall_s": round(result.wall_s, 2),
        "approvals": result.approvals,
        "loop_triggers": report.get("loop_triggers", 0),
        "tool_calls": len(tool_results),
        "tool_ok": sum(e.get("status") == "ok" for e in tool_results),
        "error": result.error,
    }


async def run_model(
    kernel: Roost, tasks: list[RepoTask], root: Path, model: str | None, timeout_s: float
) -> list[dict[str, Any]]:
    rows = []
    for number, task in enumerate(tasks):
        repo = task.materialise(root / (model or "scripted").replace(":", "-"))
        if model is None:
            model_id = f"scripted:task{number}"
            kernel.llm.router.registry.register(FunctionModel(follow(task.solution), model_id))
        else:
            model_id = model
        sessions = await open_sessions(kernel, model=model_id)
        try:
            result = await asyncio.wait_for(
                sessions.run(repo, task.task, decide=approve,
                             variables={"max_seconds": str(timeout_s)}),
                timeout_s + 60,
            )  # fmt: skip
            rows.append(_row(task, result))
        except TimeoutError:
            rows.append(_row(task, None, "timeout"))
        finally:
            sessions.close()
    return rows


def print_table(title: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    print(f"\n{title}")
    print(f"{'task':<24} {'solved':>6} {'steps':>5} {'tokens':>7} {'wall s':>7} {'appr':>4} "
          f"{'loops':>5} {'tools ok':>8}  error")  # fmt: skip
    for r in rows:
        print(f"{r['task']:<24} {'yes' if r['solved'] else 'no':>6} {r.get('steps') or '-':>5} "
              f"{r.get('tokens', '-'):>7} {r.get('wall_s', '-'):>7} {r.get('approvals', '-'):>4} "
              f"{r.get('loop_triggers', '-'):>5} {r.get('tool_ok', 0)}/{r.get('tool_calls', 0):<6}"
              f"  {(r.get('error') or '')[:50]}")  # fmt: skip
    calls = sum(r.get("tool_calls", 0) for r in rows)
    ok = sum(r.get("tool_ok", 0) for r in rows)
    summary = {
        "solved": sum(r["solved"] for r in rows),
        "tasks": len(rows),
        "tool_success_rate": round(ok / calls, 4) if calls else None,
        "approvals": sum(r.get("approvals", 0) for r in rows),
        "loop_triggers": sum(r.get("loop_triggers", 0) for r in rows),
        "wall_s": round(sum(r.get("wall_s", 0) for r in rows), 1),
    }
    print(f"solved {summary['solved']}/{summary['tasks']}, tool success"
          f" {summary['tool_success_rate']}, approvals {summary['approvals']}, loop triggers"
          f" {summary['loop_triggers']}, wall {summary['wall_s']} s")  # fmt: skip
    return summary


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tasks = make_tasks()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="h-coder-bench-") as tmp:
        root = Path(tmp)
        env = {"ROOST_HOME": str(root / "home"), "ROOST_ENGINE__ENABLED": "false"}
        async with await Roost.open(
            load_settings(env=env), execution=RunExecution(0), connect_mcp=False
        ) as kernel:
            started = time.perf_counter()
            rows = await run_model(kernel, tasks, root / "repos", None, args.timeout)
            out["scripted"] = {
                "rows": rows,
                "summary": print_table("scripted (known-good plan)", rows),
            }
            out["scripted"]["summary"]["bench_wall_s"] = round(time.perf_counter() - started, 1)
        if args.bundled > 0:
            from roost.engine import Engine, EngineConfig

            home = Path(args.model_home) if args.model_home else root / "model-home"
            engine = Engine(EngineConfig(home=home, dtype="float32", kv_cache_gb=0.25))
            try:
                env = {"ROOST_HOME": str(root / "home2")}
                async with await Roost.open(
                    load_settings(env=env), engine=engine, execution=RunExecution(0),
                    connect_mcp=False,
                ) as kernel:  # fmt: skip
                    model = f"local:{engine.model_name}"
                    rows = await run_model(kernel, tasks[: args.bundled], root / "repos2", model,
                                           args.timeout)  # fmt: skip
                    out["bundled"] = {"rows": rows,
                                      "summary": print_table(f"bundled ({model})", rows)}  # fmt: skip
            finally:
                engine.close()
    return out


def served_main(args: argparse.Namespace) -> int:
    """The HTTP-driven parts: HumanEval and approval latency (a server each)."""
    import os
    import platform

    from benchmarks import coding_served

    results = Path(__file__).with_name("results")
    results.mkdir(exist_ok=True)
    machine = {
        "cpu": _cpu_model(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="h-coder-served-") as tmp:
        if args.approvals:
            home = Path(tmp) / "approvals" / "home"
            home.mkdir(parents=True)
            latency = coding_served.approval_latency(home, args.approvals)
            print(f"\napproval -> next action over HTTP: {json.dumps(latency)}")
            out = {"approval_latency": latency, "machine": machine}
            (results / "coding-approvals.json").write_text(json.dumps(out, indent=2))
        if args.humaneval:
            home = Path(args.model_home) if args.model_home else Path(tmp) / "he" / "home"
            home.mkdir(parents=True, exist_ok=True)
            server_env = dict(item.split("=", 1) for item in args.server_env)
            he = coding_served.humaneval(
                home, args.limit, args.max_seconds, server_env,
                concurrency=args.concurrency, short=not args.full_coder, offset=args.offset,
                wall_budget_s=args.wall_budget,
            )  # fmt: skip
            summary = he["summary"]
            print(f"\nHumanEval (bundled model, coder sessions over HTTP, settings"
                  f" {json.dumps(he['settings'])}): pass@1"
                  f" {summary['passed']}/{summary['tasks']} = {summary['pass_at_1']},"
                  f" finished in budget {summary['finished_in_budget']}/{summary['tasks']},"
                  f" tool success {summary['tool_success_rate']} ({summary['tool_calls']} calls),"
                  f" mean steps {summary['steps_mean']}, tokens {summary['tokens']}, wall"
                  f" {summary['wall_s']} s")  # fmt: skip
            out = {"humaneval": he, "limit": args.limit, "offset": args.offset,
                   "server_env": server_env,
                   "machine": {**machine, "load_avg_end": os.getloadavg()}}  # fmt: skip
            name = "coding-humaneval" + ("-diagnostic" if server_env else "") + ".json"
            (results / name).write_text(json.dumps(out, indent=2))
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundled", type=int, default=6, help="tasks for the bundled model")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per task")
    parser.add_argument("--model-home", default=None, help="a Roost home with the model")
    parser.add_argument("--json", default=None)
    parser.add_argument("--humaneval", action="store_true",
                        help="HumanEval pass@1 as coder sessions through roost serve")  # fmt: skip
    parser.add_argument("--limit", type=int, default=None, help="the first N HumanEval tasks")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N HumanEval tasks")
    parser.add_argument("--wall-budget", type=float, default=None,
                        help="HumanEval: start no task after this many seconds")  # fmt: skip
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="time budget of one HumanEval session")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=1,
                        help="HumanEval sessions at once (the engine batches their turns)")  # fmt: skip
    parser.add_argument("--full-coder", action="store_true",
                        help="HumanEval with the bundled coder spec as shipped (not the short"
                             " settings of coding_served.SHORT_SETTINGS)")  # fmt: skip
    parser.add_argument("--approvals", type=int, default=0,
                        help="sessions timing approval decision -> next action over HTTP")  # fmt: skip
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="a server setting for a labelled diagnostic (not the figure)")  # fmt: skip
    arguments = parser.parse_args()
    if arguments.humaneval or arguments.approvals:
        raise SystemExit(served_main(arguments))
    result = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(result, indent=2))
    scripted = result["scripted"]["summary"]
    raise SystemExit(0 if scripted["solved"] == scripted["tasks"] else 1)
