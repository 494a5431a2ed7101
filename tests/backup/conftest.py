"""The in-process server app of tests/server, for filling a home through its API."""

from tests.server.conftest import auth, make_app  # noqa: F401
