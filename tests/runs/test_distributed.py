"""One platform, many processes: `roost serve` with `runs.workers = 0` enqueues, two
`roost worker` processes execute, all on one real PostgreSQL database. Runs are
submitted and streamed over HTTP; cancel, takeover after SIGKILL and events cross
processes."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.process import ServerProcess, run_roost, start_server, start_worker
from tests.support.servers import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
KEY = "test-distributed-key-0123456789abcdef"
SPEC = {"name": "stepper", "model": "scripted:steps", "tools": ["scripted_step"]}
STEPS = 3


@dataclass
class Deployment:
    server: ServerProcess
    workers: list[ServerProcess]
    effects_dir: Path
    env: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
        )

    def effects(self) -> list[tuple[str, int, int]]:
        path = self.effects_dir / "effects.txt"
        if not path.exists():
            return []
        lines = [line.split() for line in path.read_text().splitlines()]
        return [(run, int(step), int(pid)) for run, step, pid in lines]

    def wait_started(self, run_id: str, step: int, timeout_s: float = 60) -> int:
        """The pid of the worker that started ``step`` of the run (polls a file it writes)."""
        path = self.effects_dir / f"started-{run_id}-{step}"
        deadline = time.monotonic() + timeout_s
        while not (path.exists() and path.read_text()):
            assert time.monotonic() < deadline, f"{path.name} never appeared"
            time.sleep(0.02)
        return int(path.read_text())


def _env(database_url: str, home: Path, effects_dir: Path) -> dict[str, str]:
    return {
        "ROOST_HOME": str(home),
        "ROOST_DATABASE_URL": database_url,
        "ROOST_API_KEY": KEY,
        "ROOST_ENGINE__ENABLED": "false",
        "ROOST_PLUGINS": '["roost.llm.scripted_steps"]',
        "ROOST_RUNS__HEARTBEAT_INTERVAL_S": "0.5",
        "ROOST_RUNS__TAKEOVER_AFTER_S": "5",
        "ROOST_MEMORY__CONSOLIDATION_INTERVAL_S": "0",
        "SCRIPTED_STEPS": str(STEPS),
        "SCRIPTED_STEPS_DIR": str(effects_dir),
    }


@pytest.fixture(scope="module")
def deployment(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    url = postgres_server.create_database()
    root = tmp_path_factory.mktemp("distributed")
    effects_dir = root / "effects"
    effects_dir.mkdir()
    env = _env(url, root / "server-home", effects_dir)
    server = start_server({**env, "ROOST_RUNS__WORKERS": "0"})
    workers = [
        start_worker({**env, "ROOST_HOME": str(root / f"worker-{n}")}, "--concurrency", "1")
        for n in range(2)
    ]
    deployment = Deployment(server, workers, effects_dir, env)
    with deployment.client() as client:
        created = client.post("/v1/agents", json={"spec": SPEC})
        assert created.status_code == 201, created.text
    try:
        yield deployment
    finally:
        for process in [*workers, server]:
            if process.process.poll() is None:
                process.stop()


def _submit(client: httpx.Client, mode: str = "background") -> dict[str, Any]:
    thread = client.post("/v1/threads", json={}).json()["id"]
    run = client.post(
        f"/v1/threads/{thread}/runs", json={"agent": "stepper", "input": "go", "mode": mode}
    )
    assert run.status_code in (200, 202), run.text
    body: dict[str, Any] = run.json()
    return body


def _events(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    events = []
    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return events


def _wait_settled(client: httpx.Client, run_id: str) -> dict[str, Any]:
    events = _events(client, run_id)
    assert events[-1]["event"] == "run_end"
    run: dict[str, Any] = events[-1]["run"]
    return run


def test_runs_execute_on_both_workers_and_stream_through_the_server(
    deployment: Deployment,
) -> None:
    hold = deployment.effects_dir / "hold-1"
    hold.touch()  # each worker takes one run at a time: two held runs need both workers
    with deployment.client() as client:
        runs = [_submit(client) for _ in range(2)]
        pids = {deployment.wait_started(run["id"], 1) for run in runs}
        assert len(pids) == 2
        assert deployment.server.process.pid not in pids  # the server only enqueues
        hold.unlink()
        events = _events(client, runs[0]["id"])
        finished = [_wait_settled(client, run["id"]) for run in runs]
    assert [r["status"] for r in finished] == ["succeeded", "succeeded"]
    assert {r["output"] for r in finished} == {f"done after {STEPS} steps"}
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start"
    assert kinds.count("tool_result") == STEPS
    assert "token" in kinds  # the answer streamed from the worker through the server
    for run in runs:
        steps = [step for run_id, step, _ in deployment.effects() if run_id == run["id"]]
        assert steps == list(range(1, STEPS + 1))


def test_cancel_through_the_server_stops_a_run_executing_in_a_worker(
    deployment: Deployment,
) -> None:
    with deployment.client() as client:
        thread = client.post("/v1/threads", json={}).json()["id"]
        held = deployment.effects_dir / "hold-1"
        held.touch()
        run = client.post(
            f"/v1/threads/{thread}/runs",
            json={"agent": "stepper", "input": "go", "mode": "background"},
        ).json()
        deployment.wait_started(run["id"], 1)
        # Step 2 of this run is held for good; only a cancel can end it.
        (deployment.effects_dir / f"hold-{run['id']}-2").touch()
        held.unlink()
        deployment.wait_started(run["id"], 2)
        cancelled = client.post(f"/v1/runs/{run['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert _wait_settled(client, run["id"])["status"] == "cancelled"
        # Runs on one thread go one at a time: this one can only start once the worker
        # has stopped the cancelled run.
        after = client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "stepper", "input": "again"}
        ).json()
        assert after["status"] == "succeeded"
        assert client.get(f"/v1/runs/{run['id']}").json()["status"] == "cancelled"
    steps = [step for run_id, step, _ in deployment.effects() if run_id == run["id"]]
    assert steps == [1]  # step 2 was stopped mid-call, step 3 never ran


def test_a_killed_workers_run_is_taken_over_without_repeating_finished_steps(
    deployment: Deployment,
) -> None:
    hold = deployment.effects_dir / "hold-2"
    hold.touch()
    with deployment.client() as client:
        run = _submit(client)
        doomed_pid = deployment.wait_started(run["id"], 2)
        doomed = next(w for w in deployment.workers if w.process.pid == doomed_pid)
        survivor = next(w for w in deployment.workers if w is not doomed)
        (deployment.effects_dir / f"started-{run['id']}-2").unlink()
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(10)
        killed_at = time.monotonic()
        doomed.stop()  # reaps it and closes its pipe
        assert deployment.wait_started(run["id"], 2) == survivor.process.pid
        takeover_s = time.monotonic() - killed_at
        hold.unlink()
        finished = _wait_settled(client, run["id"])
    assert finished["status"] == "succeeded"
    done = [(step, pid) for run_id, step, pid in deployment.effects() if run_id == run["id"]]
    # step 1 finished on the killed worker and did not run again; the rest ran once each
    assert done == [(1, doomed_pid), *[(s, survivor.process.pid) for s in range(2, STEPS + 1)]]
    assert takeover_s < 30
    # Bring the deployment back to two workers for later tests.
    deployment.workers[deployment.workers.index(doomed)] = start_worker(
        {**deployment.env, "ROOST_HOME": str(deployment.effects_dir.parent / "worker-new")},
        "--concurrency",
        "1",
    )


def test_a_coordinator_run_executes_on_a_worker_and_streams_through_the_server(
    deployment: Deployment,
) -> None:
    plan = {"subtasks": [
        {"id": "first", "description": "step through", "agent": "stepper"},
        {"id": "second", "description": "again", "agent": "stepper", "depends_on": ["first"]},
    ]}  # fmt: skip
    body = {"task": "two rounds", "plan": plan, "max_revisions": 0, "mode": "stream"}
    with (
        deployment.client() as client,
        client.stream("POST", "/v1/coordinator/runs", json=body) as response,
    ):
        assert response.status_code == 200
        events = [
            json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")
        ]
    run = events[-1]["run"]
    assert run["status"] == "succeeded", run
    assert run["output"]["results"] == {
        "first": f"done after {STEPS} steps", "second": f"done after {STEPS} steps",
    }  # fmt: skip
    assert [e["subtask"] for e in events if e["event"] == "subtask_end"] == ["first", "second"]
    pids = {pid for run_id, _, pid in deployment.effects() if run_id == run["id"]}
    worker_pids = {w.process.pid for w in deployment.workers}
    assert pids and pids <= worker_pids  # executed by a worker, not by the server
    steps = [step for run_id, step, _ in deployment.effects() if run_id == run["id"]]
    assert steps == [*range(1, STEPS + 1), *range(1, STEPS + 1)]


def test_events_of_another_tenants_run_are_404(deployment: Deployment) -> None:
    with deployment.client() as client:
        run = _submit(client, mode="wait")
    assert run_roost("tenants", "create", "other", env=deployment.env).returncode == 0
    created = run_roost("keys", "create", "--tenant", "other", env=deployment.env)
    assert created.returncode == 0, created.stderr
    other_key = next(w for w in created.stdout.split() if w.startswith("roost-"))
    with httpx.Client(
        base_url=deployment.server.url, headers={"Authorization": f"Bearer {other_key}"}
    ) as other:
        response = other.get(f"/v1/runs/{run['id']}/events")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_worker_that_cannot_reach_its_database_exits_naming_it(tmp_path: Path) -> None:
    env = _env("postgresql://roost:s3cret@127.0.0.1:9/nowhere", tmp_path, tmp_path)
    result = run_roost("worker", env=env)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "127.0.0.1:9" in output
    assert "s3cret" not in output
