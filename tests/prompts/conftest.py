"""The server's app fixtures for the prompt API tests."""

from tests.server.conftest import auth, make_app  # noqa: F401
