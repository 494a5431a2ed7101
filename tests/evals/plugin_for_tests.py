"""A plugin (``plugins = ["tests.evals.plugin_for_tests"]``): every process of the test
deployment serves the scripted model its agents name, from its start."""

from __future__ import annotations

from typing import Any

from roost.llm.testing import FunctionModel
from tests.evals.test_evals_api import doubler


def register(kernel: Any) -> None:
    kernel.llm.router.registry.register(FunctionModel(doubler, "function:agent"))
