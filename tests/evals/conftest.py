"""The server's app fixtures for the evaluation and experiment tests."""

from tests.server.conftest import auth, make_app  # noqa: F401
