"""A real uvicorn server on a loopback port, run in a thread of the test process."""

from __future__ import annotations

import threading
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
