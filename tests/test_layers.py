"""The layering rules of docs (ARCHITECTURE: arrows point down only), checked on the source.

Every ``import`` in ``src/roost`` counts, including those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency. A new rule is one line in RULES.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


@dataclass(frozen=True)
class Rule:
    """Modules matching ``importers`` may import only ``only`` (of roost) and never
    ``forbidden``. A pattern matches a module and everything under it."""

    importers: tuple[str, ...]
    why: str
    only: tuple[str, ...] | None = None
    forbidden: tuple[str, ...] = ()


GRAPH_RUNTIME = ("roost.graph.compiled", "roost.graph.loop", "roost.graph.runner")
RULES = [
    Rule(("roost.engine",), "the engine is a library on its own",
         only=("roost.engine", "roost.config", "roost.errors", "roost.observe")),
    Rule(("roost.kvcache",), "the session store sees the engine through its seam only",
         only=("roost.kvcache", "roost.engine.session_cache", "roost.errors", "roost.observe")),
    Rule(("roost.tools",), "tools sit below security and the kernel; both are injected",
         forbidden=("roost.security", "roost.platform")),
    Rule((*GRAPH_RUNTIME, "roost.graph.tasks"), "the runtime reads a GraphSpec, not the builder",
         forbidden=("roost.graph.state",)),
    Rule(("roost",), "measurement harnesses (benchmarks/kv_quality.py) stay out of the package",
         forbidden=("benchmarks", "tests")),
]  # fmt: skip


def matches(module: str, patterns: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in patterns)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def breaks(rule: Rule, target: str) -> bool:
    if matches(target, rule.forbidden):
        return True
    # An allow-list speaks of roost only: third-party libraries are the layer's own business.
    return rule.only is not None and matches(target, ("roost",)) and not matches(target, rule.only)


@cache
def imports_by_module() -> dict[str, frozenset[str]]:
    """Each module of roost -> what it imports (``from a import b`` counts as ``a.b``)."""
    found: dict[str, frozenset[str]] = {}
    for path in sorted((SRC / "roost").rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        found[name] = frozenset(targets)
    return found


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.importers[0])
def test_layer_rule(rule: Rule) -> None:
    governed = {m: i for m, i in imports_by_module().items() if matches(m, rule.importers)}
    assert governed, f"no module matches {rule.importers}: update the rule"
    broken = sorted(
        f"{module} imports {target}"
        for module, targets in governed.items()
        for target in targets
        if breaks(rule, target)
    )
    assert not broken, f"{rule.why}:\n" + "\n".join(broken)


def test_importing_the_engine_loads_no_session_store_or_measurement() -> None:
    """What the static rules cannot see (importlib, plugins): check the modules loaded."""
    code = (
        "import sys, roost.engine, roost.engine.registry\n"
        "print('\\n'.join(m for m in sys.modules"
        " if m.startswith(('roost.kvcache', 'benchmarks', 'roost.server', 'roost.security'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
