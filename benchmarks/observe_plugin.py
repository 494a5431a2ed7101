"""A plugin for ``benchmarks/observe.py --mode served``: a zero-latency scripted provider
model ``function:fast`` that answers "ok", and the model group ``fast`` routed to it (added
here: configured groups are resolved before plugins load), so a gateway request measures Roost's own path (auth, router, spans, encoding) and
not a model. Loaded with ``ROOST_PLUGINS='["benchmarks.observe_plugin"]'``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.llm.testing import FunctionModel

if TYPE_CHECKING:
    from roost.platform.kernel import Roost

MODEL_ID = "function:fast"


def register(kernel: Roost) -> None:
    router = kernel.llm.router
    router.registry.register(FunctionModel(lambda _info: "ok", MODEL_ID))
    router.add_group("fast", [(MODEL_ID, 1.0)])
