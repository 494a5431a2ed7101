"""The CLI starts fast: importing it, and asking it for help, loads no heavy library.

Each check runs in a fresh interpreter, since this test process has long imported
everything. Speed figures are in the README (Command line); here we assert the cause,
not a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import roost
from roost import __version__

# Libraries that cost seconds (torch) or a large share of a start (httpx) to import.
HEAVY = (
    "anthropic",
    "dbos",
    "fastapi",
    "google.genai",
    "httpx",
    "llguidance",
    "mcp",
    "openai",
    "safetensors",
    "sentence_transformers",
    "sqlalchemy",
    "torch",
    "transformers",
    "tree_sitter",
    "uvicorn",
)
COMMANDS = (
    "version", "serve", "worker", "doctor", "usage", "config", "keys", "tenants", "kb",
    "memory", "tools", "approvals", "agents", "mcp", "models", "cache", "backup", "migrate-store",
)  # fmt: skip
# Run in the child: prints every heavy module loaded after the given code ran.
REPORT_HEAVY = (
    "import sys; HEAVY = {heavy!r}; {code}; "
    "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') "
    "or (h == 'tree_sitter' and m.startswith(h)) for h in HEAVY)))"
)


def child_env(home: Path) -> dict[str, str]:
    """The environment of a fresh interpreter that imports the Roost under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    return env | {"ROOST_HOME": str(home), "PYTHONPATH": str(Path(roost.__file__).parents[1])}


def python(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
    )


def roost_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roost.cli.main", *args],
        env=child_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
    )


def test_importing_the_cli_loads_no_heavy_library(tmp_path: Path) -> None:
    result = python(REPORT_HEAVY.format(heavy=HEAVY, code="import roost.cli.main"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["version"], ["config", "check"]])
def test_quick_commands_load_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    run = f"from roost.cli.main import app; app({args!r}, standalone_mode=False)"
    result = python(REPORT_HEAVY.format(heavy=HEAVY, code=run), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_help_of_every_command_loads_no_heavy_library(tmp_path: Path) -> None:
    # Rendering each command's help evaluates its signature, so a parameter typed with a
    # name imported only for type checkers, or a heavy default, fails here.
    render_all = (
        "import click, typer; from roost.cli.main import app\n"
        "rendered = []\n"
        "def walk(cmd, ctx):\n"
        "    cmd.get_help(ctx)\n"
        "    rendered.append(ctx.command_path)\n"
        "    for name, sub in getattr(cmd, 'commands', {}).items():\n"
        "        walk(sub, click.Context(sub, info_name=name, parent=ctx))\n"
        "root = typer.main.get_command(app)\n"
        "walk(root, click.Context(root, info_name='roost'))\n"
        "print(len(rendered))"
    )
    result = python(REPORT_HEAVY.format(heavy=HEAVY, code=f"exec({render_all!r})"), tmp_path)
    assert result.returncode == 0, result.stderr
    *helps, rendered, heavy = result.stdout.strip().splitlines()
    assert int(rendered) > len(COMMANDS)  # the root, every group and every leaf command
    assert "\n".join(helps).count("Usage: roost") == int(rendered)
    assert heavy == "[]"


def test_help_lists_every_command_group(tmp_path: Path) -> None:
    result = roost_cli("--help", home=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {line.strip("│ ").split(" ")[0] for line in result.stdout.splitlines()}
    assert set(COMMANDS) <= listed, sorted(set(COMMANDS) - listed)


def test_version_prints_the_version(tmp_path: Path) -> None:
    result = roost_cli("version", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_config_check_reports_a_valid_configuration(tmp_path: Path) -> None:
    result = roost_cli("config", "check", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


@pytest.mark.parametrize("args", [["agents", "list", "--json"], ["approvals", "list", "--json"]])
def test_commands_on_the_local_store_open_the_kernel_without_the_model(
    args: list[str], tmp_path: Path
) -> None:
    # No server runs: the command opens the kernel on this home, in command mode
    # (no local engine, so neither torch nor the model is loaded).
    run = f"from roost.cli.main import app; app({args!r}, standalone_mode=False)"
    result = python(REPORT_HEAVY.format(heavy=("torch", "transformers"), code=run), tmp_path)
    assert result.returncode == 0, result.stderr
    *output, heavy = result.stdout.strip().splitlines()
    assert json.loads("\n".join(output)) == []
    assert heavy == "[]"
