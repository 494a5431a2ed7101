"""Worker subprocesses for the durable-run tests (each test gets its own databases)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roost.runs import RunService

ROOT = Path(__file__).parents[2]
StartWorker = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def system_db(workdir: Path, request: pytest.FixtureRequest) -> str:
    """DBOS's system database: SQLite, or PostgreSQL for tests marked ``postgres``."""
    if request.node.get_closest_marker("postgres"):
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{workdir / 'dbos.db'}"


@pytest.fixture
def start_worker(workdir: Path, system_db: str) -> Iterator[StartWorker]:
    started: list[subprocess.Popen[str]] = []

    def start(
        name: str,
        *,
        concurrency: int = 1,
        recover: str | None = None,
        wait: bool = True,
        **env: str,
    ) -> subprocess.Popen[str]:
        # The command users run: `roost worker`.
        args = [
            str(Path(sys.executable).parent / "roost"),
            "worker",
            "--graphs",
            "tests.runs.graphs_for_workers:build",
            "--db",
            system_db,
            "--executor-id",
            name,
            "--concurrency",
            str(concurrency),
        ]
        if recover:
            args += ["--recover", recover]
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RUNS_TEST_WORKDIR": str(workdir),
            "RUNS_TEST_WORKER": name,
            **env,
        }
        worker = subprocess.Popen(
            args, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started.append(worker)
        if wait:
            wait_ready(worker)
        return worker

    yield start
    (workdir / "release").touch()  # lets hanging nodes return so workers stop promptly
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()


def wait_ready(worker: subprocess.Popen[str]) -> None:
    assert worker.stdout is not None
    line = worker.stdout.readline()
    assert "worker ready" in line, line + worker.stdout.read()


@pytest.fixture
def runs(system_db: str) -> Iterator[RunService]:
    service = RunService(system_db)
    yield service
    service.close()
