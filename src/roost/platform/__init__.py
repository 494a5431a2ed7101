"""The platform: its storage core (:class:`Platform`) and the kernel (:class:`Roost`) that
opens every service once, for the server, the CLI and ``roost worker`` alike.

The kernel is imported lazily: layers below it (tools, memory) take the storage core
from here without pulling in every service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roost.platform.core import BootstrapReport, Platform, bootstrap

if TYPE_CHECKING:
    from roost.platform.kernel import Roost

__all__ = ["BootstrapReport", "Platform", "Roost", "bootstrap"]


def __getattr__(name: str) -> Any:
    if name == "Roost":
        from roost.platform.kernel import Roost

        return Roost
    raise AttributeError(name)
