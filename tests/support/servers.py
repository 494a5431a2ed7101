"""Real PostgreSQL and Redis servers for integration tests, started on loopback.

Both come from Debian packages (``make test-services`` installs what is missing). They
listen on 127.0.0.1 on free ports, keep their data in a temporary directory, and are
stopped and deleted when the test session ends.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user() -> list[str]:
    # initdb and postgres refuse to run as root; the Debian package made a 'postgres' user.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> PostgresServer:
        """Debian's PostgreSQL (installed by ``make test-services``)."""
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            raise RuntimeError("PostgreSQL is not installed: run `make test-services`")
        return cls.start_from(Path(candidates[-1]).parent)

    @classmethod
    def start_from(cls, bin_dir: Path) -> PostgresServer:
        """initdb + pg_ctl start with the binaries in ``bin_dir``, on a free loopback port."""
        # Outside pytest's tmp dir: that one is private to root, and postgres must read it.
        root = Path(tempfile.mkdtemp(prefix="roost-pg-"))
        root.chmod(0o755)
        data_dir = root / "data"
        data_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(data_dir, "postgres")
        run_as = _as_postgres_user()
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options,
             "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        return cls(bin_dir, data_dir, port)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"test_{secrets.token_hex(6)}"
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
             "-c", f"CREATE DATABASE {name}"],
            check=True, capture_output=True,
        )  # fmt: skip
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            [*_as_postgres_user(), str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
             "-m", "immediate", "stop"],
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    drain: threading.Thread

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test-services`")
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        # Redis announces readiness on its log; read until it does (or exits).
        for raw in process.stdout:
            if b"Ready to accept connections" in raw:
                # Keep reading its log so that a full pipe never stalls the server.
                drain = threading.Thread(target=process.stdout.read, daemon=True)
                drain.start()
                return cls(process, port, drain)
        process.stdout.close()
        raise RuntimeError(f"redis-server exited with {process.wait()} before it was ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.drain.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
