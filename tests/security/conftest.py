"""Fixtures shared with the agents and server suites: a platform on a fresh home, the
default tenant, the tool service, runtimes over scripted models, and the app factory."""

from tests.agents.conftest import make_runtime, platform, tenant_id, tool_log, tools  # noqa: F401
from tests.api.conftest import engine  # noqa: F401
from tests.server.conftest import auth, make_app  # noqa: F401
