"""Run ``roost serve`` and ``roost worker`` as real processes for end-to-end tests."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import free_port

ROOST = str(Path(sys.executable).parent / "roost")


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    _pump: threading.Thread = field(default_factory=threading.Thread)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        """SIGTERM, wait for the graceful shutdown (and the log pump) to finish; the exit code."""
        self.process.terminate()
        try:
            code = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._pump.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def start_server(
    env: dict[str, str],
    *,
    ready_marker: str = "Application startup complete",
    timeout_s: float = 60,
) -> ServerProcess:
    """Start ``roost serve`` on a free port; return once its log says it is serving.

    Raises with everything the process printed when it exits or stalls instead.
    """
    port = free_port()
    return _start([ROOST, "serve", "--port", str(port)], env, port, ready_marker, timeout_s)


def start_worker(
    env: dict[str, str], *args: str, timeout_s: float = 60, ready_marker: str = "ready:"
) -> ServerProcess:
    """Start ``roost worker``; return once it says it is ready (its port is unused: 0)."""
    return _start([ROOST, "worker", *args], env, 0, ready_marker, timeout_s)


def start_command(
    argv: list[str], port: int, *, ready_marker: str, timeout_s: float = 60
) -> ServerProcess:
    """Start any server command listening on ``port``; return once its log shows
    ``ready_marker`` (benchmarks use it for peers such as llama-cpp-python's server)."""
    return _start(argv, {}, port, ready_marker, timeout_s)


def _start(
    argv: list[str], env: dict[str, str], port: int, ready_marker: str, timeout_s: float
) -> ServerProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    full_env.update(env)
    process = subprocess.Popen(
        argv,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = ServerProcess(process, port)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line)
            lines.put(line)
        lines.put(None)

    server._pump = threading.Thread(target=pump, daemon=True)
    server._pump.start()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            server.stop()
            raise TimeoutError(f"{argv[1]} not ready in {timeout_s}s:\n{server.output}") from None
        if line is None:
            code = server.stop()
            raise RuntimeError(f"{argv[1]} exited with {code}:\n{server.output}")
        if ready_marker in line:
            return server


def run_roost(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    full_env.update(env)
    return subprocess.run(
        [ROOST, *args], env=full_env, capture_output=True, text=True, timeout=120, check=False
    )
