"""Durable runs across worker processes: sharing a queue, SIGKILL recovery, ordering, cancel."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from roost.errors import Conflict
from roost.graph import Command
from roost.runs import RunService
from tests.runs.conftest import StartWorker, wait_ready

pytestmark = pytest.mark.slow


def _effects(workdir: Path) -> list[str]:
    path = workdir / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def _wait_for(path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_workers_share_one_queue(
    backend: str, start_worker: StartWorker, runs: RunService
) -> None:
    # Each worker takes one run at a time, and each run waits until two are in progress:
    # both runs can only finish if the two workers each took one.
    workers = [start_worker(name, wait=False, RUNS_TEST_MEET="2") for name in ("w1", "w2")]
    for worker in workers:
        wait_ready(worker)
    run_ids = [runs.submit("steps", f"thread-{i}", {"done": []}) for i in range(2)]
    results = [runs.wait(run_id) for run_id in run_ids]
    assert [r.status for r in results] == ["SUCCESS", "SUCCESS"]
    ran_on = {r.output["values"]["done"][0].split("@")[1] for r in results}
    assert ran_on == {"w1", "w2"}
    assert {r.run_id for r in runs.list(status="SUCCESS")} == set(run_ids)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_killed_worker_run_completes_on_another_without_repeating_finished_nodes(
    backend: str, start_worker: StartWorker, runs: RunService, workdir: Path, system_db: str
) -> None:
    # on PostgreSQL both DBOS's queue and the graph's checkpoints live in the database
    graph_db = {"RUNS_TEST_GRAPH_DB": system_db} if backend == "postgres" else {}
    doomed = start_worker("w1", RUNS_TEST_HANG="1", **graph_db)
    run_id = runs.submit("steps", "t", {"done": []})
    _wait_for(workdir / "second-started")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    assert runs.get(run_id).status == "PENDING"

    start_worker("w2", recover="w1", **graph_db)
    result = runs.wait(run_id)
    assert result.status == "SUCCESS"
    assert result.output["values"]["done"] == ["first@w1", "second@w2", "third@w2"]
    ran = [line.split()[0] for line in _effects(workdir)]
    assert ran == ["first", "second", "third"]  # each node's side effect exactly once


def test_runs_on_one_thread_go_one_at_a_time(start_worker: StartWorker, runs: RunService) -> None:
    start_worker("w1", concurrency=4)
    run_ids = [runs.submit("steps", "shared", {"done": []}) for _ in range(2)]
    lengths = sorted(len(runs.wait(run_id).output["values"]["done"]) for run_id in run_ids)
    # one run saw the other's finished state: they never overlapped on the thread
    assert lengths == [3, 6]


def test_busy_thread_can_reject_and_runs_can_be_cancelled(
    start_worker: StartWorker, system_db: str, workdir: Path
) -> None:
    rejecting = RunService(system_db, on_busy_thread="reject")
    try:
        start_worker("w1", RUNS_TEST_HANG="1")
        run_id = rejecting.submit("steps", "busy", {"done": []})
        _wait_for(workdir / "second-started")
        with pytest.raises(Conflict, match="already has a run in progress"):
            rejecting.submit("steps", "busy", {"done": []})
        rejecting.cancel(run_id)
        assert rejecting.get(run_id).status == "CANCELLED"
        assert [r.run_id for r in rejecting.list(thread_id="busy", status="CANCELLED")] == [run_id]
    finally:
        rejecting.close()


def test_a_paused_run_is_resumed_by_a_second_run(
    start_worker: StartWorker, runs: RunService
) -> None:
    start_worker("w1")
    paused = runs.wait(runs.submit("approval", "hitl", {"done": []}))
    assert paused.output["status"] == "interrupted"
    (question,) = paused.output["interrupts"]
    assert question["value"] == "ship it?"
    answer = Command(resume={question["id"]: "yes"})
    done = runs.wait(runs.submit("approval", "hitl", answer))
    assert done.output == {"status": "done", "interrupts": [], "values": {"done": ["answer=yes"]}}
