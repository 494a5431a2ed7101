"""The five orchestration patterns of the design, run from examples/graph/."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).parents[2] / "examples" / "graph"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # state schemas resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_sequential(tmp_path: Path) -> None:
    result = load("sequential").main(tmp_path)
    assert result["summary"] == "2 facts; first: report from q3 sales: sales up 12%"
    assert (tmp_path / "sequential.db").exists()


async def test_parallel() -> None:
    result = await load("parallel").main()
    assert result["report"] == (
        "code: notes on vector databases | papers: notes on vector databases | "
        "web: notes on vector databases"
    )


def test_conditional() -> None:
    results = load("conditional").main()
    assert [r["kind"] for r in results] == ["billing", "bug", "other"]
    assert results[2]["reply"].startswith("Thanks!")


def test_hierarchical() -> None:
    module = load("hierarchical")
    result = module.main()
    assert result["answer"] == (
        "add tests: done (1 note); research the API: done (1 note); write the client: done (1 note)"
    )
    assert "notes" not in result  # worker-only state stays in the workers


def test_react_with_reflection_pauses_for_approval_and_resumes(tmp_path: Path) -> None:
    result = load("react_reflection").main(tmp_path)
    contents = [m["content"] for m in result["messages"]]
    assert "deleted build/old.tmp" in contents
    assert contents[-1] == "plan: finish cleaned up the stale build file"
    assert result["iterations"] == 3
