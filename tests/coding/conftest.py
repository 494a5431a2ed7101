from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from roost.config import Settings, load_settings
from roost.platform.kernel import Roost, RunExecution


@pytest.fixture
def coder_settings(roost_home: object) -> Settings:
    return load_settings(env={"ROOST_HOME": str(roost_home), "ROOST_ENGINE__ENABLED": "false"})


@pytest.fixture
async def kernel(coder_settings: Settings) -> AsyncIterator[Roost]:
    kernel = await Roost.open(coder_settings, execution=RunExecution(0), connect_mcp=False)
    try:
        yield kernel
    finally:
        await kernel.close()


from tests.server.conftest import auth, make_app  # noqa: E402, F401
