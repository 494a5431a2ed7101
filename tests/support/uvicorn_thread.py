"""A real uvicorn server on a loopback port, run in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from tests.support.servers import free_port


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class ThreadedServer:
    """Serve ``app`` on 127.0.0.1 until :meth:`stop`; ``url`` is where it listens."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> ThreadedServer:
        self.thread.start()
        if not self.server.ready.wait(timeout_s):
            raise TimeoutError(f"uvicorn did not start within {timeout_s}s")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@contextmanager
def model_free_server(home: Path, api_key: str) -> Iterator[str]:
    """``roost serve``'s app on a fresh home without the local model (hashing embedder),
    in this process; yields its URL."""
    from roost.config import load_settings
    from roost.server.app import create_app

    settings = load_settings(
        env={"ROOST_HOME": str(home), "ROOST_API_KEY": api_key,
             "ROOST_ENGINE__ENABLED": "false", "ROOST_MEMORY__EMBEDDER": "hashing"}
    )  # fmt: skip
    running = ThreadedServer(create_app(settings)).start()
    try:
        yield running.url
    finally:
        running.stop()
