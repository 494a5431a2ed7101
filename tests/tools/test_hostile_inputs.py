"""The hostile-input suite: each attack is refused with a clear error and changes nothing.

Every case runs through the executor (the path agents and the API take) against a
workspace holding a file, a symlink to a directory outside it, and a symlink to a file
outside it; the workspace and the outside directory are compared byte for byte after.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from roost.platform import Platform
from roost.tools.builtin.files import delete_file
from roost.tools.executor import ToolCall
from roost.tools.permissions import Caller
from roost.tools.service import ToolService
from roost.tools.toolsets import RenamedToolset, StaticToolset
from tests.tools.conftest import snapshot

# (case id, tool, arguments, expected error type, fragment of the message)
REFUSED: list[tuple[str, str, dict[str, Any], str, str]] = [
    # path traversal
    ("dotdot", "read_file", {"path": "../outside/secret.txt"}, "path_refused", "'..'"),
    ("dotdot-deep", "read_file", {"path": "a/../../outside/secret.txt"}, "path_refused", "'..'"),
    ("url-encoded", "read_file", {"path": "..%2foutside%2fsecret.txt"}, "path_refused", "percent"),
    ("double-encoded", "read_file", {"path": "%252e%252e%252fsecret"}, "path_refused", "percent"),
    ("absolute", "read_file", {"path": "/etc/passwd"}, "path_refused", "absolute"),
    ("home", "read_file", {"path": "~/.ssh/id_rsa"}, "path_refused", "absolute"),
    ("nul", "read_file", {"path": "notes.txt\x00.png"}, "path_refused", "NUL"),
    (
        "fullwidth-dots",
        "write_file",
        {"path": "\uff0e\uff0e\uff0fx", "content": "x"},
        "path_refused",
        "normalise",
    ),
    ("symlink-dir-read", "read_file", {"path": "escape/secret.txt"}, "path_refused", "outside"),
    (
        "symlink-dir-write",
        "write_file",
        {"path": "escape/new.txt", "content": "x"},
        "path_refused",
        "outside",
    ),
    (
        "symlink-file-edit",
        "edit_file",
        {"path": "secret-link", "old_text": "s", "new_text": "x"},
        "path_refused",
        "outside",
    ),
    ("symlink-list", "list_dir", {"path": "escape"}, "path_refused", "outside"),
    ("delete-outside", "delete_file", {"path": "../outside/secret.txt"}, "path_refused", "'..'"),
    ("glob-up", "glob_files", {"pattern": "../outside/*"}, "path_refused", "'..'"),
    ("search-up", "search_text", {"pattern": "s", "path": "../outside"}, "path_refused", "'..'"),
    ("control-chars", "write_file", {"path": "a\nb", "content": "x"}, "path_refused", "control"),
    # command injection: argv[0] is checked whole, never split by a shell
    ("semicolon", "run_command", {"argv": ["ls; rm -rf ."]}, "command_refused", "not allowed"),
    ("and-and", "run_command", {"argv": ["true && rm -rf ."]}, "command_refused", "not allowed"),
    ("subshell", "run_command", {"argv": ["$(rm -rf .)"]}, "command_refused", "not allowed"),
    ("backticks", "run_command", {"argv": ["`rm -rf .`"]}, "command_refused", "not allowed"),
    ("newline", "run_command", {"argv": ["ls\nrm -rf ."]}, "command_refused", "not allowed"),
    ("shell", "run_command", {"argv": ["sh", "-c", "rm -rf ."]}, "command_refused", "not allowed"),
    (
        "absolute-binary",
        "run_command",
        {"argv": ["/bin/rm", "-rf", "."]},
        "command_refused",
        "not allowed",
    ),
    ("rm", "run_command", {"argv": ["rm", "-rf", "."]}, "command_refused", "not allowed"),
    ("cwd-escape", "run_command", {"argv": ["ls"], "cwd": "escape"}, "path_refused", "outside"),
    # option injection into git and grep
    ("git-log-option", "git_log", {"ref": "--output=pwned.txt"}, "invalid_ref", "not a valid name"),
    ("git-branch-option", "git_branch", {"create": "-D"}, "invalid_ref", "not a valid name"),
    ("git-diff-option", "git_diff", {"paths": ["--output=pwned.txt"]}, "path_refused", "'-'"),
    (
        "git-commit-option",
        "git_commit",
        {"message": "m", "paths": ["--all"]},
        "path_refused",
        "'-'",
    ),
    (
        "git-push-upload-pack",
        "git_push",
        {"remote": "--upload-pack=touch pwned"},
        "invalid_ref",
        "not a valid name",
    ),
    (
        "grep-path-option",
        "search_text",
        {"pattern": "x", "path": "--include=*"},
        "path_refused",
        "'-'",
    ),
    ("test-path-option", "run_tests", {"paths": ["--rootdir=/"]}, "path_refused", "'-'"),
    # server-side request forgery
    (
        "metadata",
        "http_fetch",
        {"url": "http://169.254.169.254/latest/meta-data/"},
        "network_refused",
        "link-local",
    ),
    ("ipv6-loopback", "http_fetch", {"url": "http://[::1]:8000/"}, "network_refused", "loopback"),
    ("decimal-ip", "http_fetch", {"url": "http://2130706433/"}, "network_refused", "loopback"),
    ("octal-ip", "http_fetch", {"url": "http://0177.0.0.1/"}, "network_refused", "loopback"),
    ("private", "http_fetch", {"url": "http://10.0.0.1/"}, "network_refused", "private"),
    ("file-scheme", "http_fetch", {"url": "file:///etc/passwd"}, "network_refused", "only http"),
]


@pytest.fixture
async def arena(service: ToolService, caller: Caller, tmp_path: Path) -> tuple[Path, Path]:
    """A workspace with bait, and a directory outside it that must stay untouched."""
    root = service.executor.workspace_for(caller).root
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s3cret")
    (root / "notes.txt").write_text("notes")
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.txt", root / "secret-link")
    (root / "outside").symlink_to(outside)  # so "../outside" from a subdir would also point out
    return root, outside


@pytest.mark.parametrize(
    ("case", "tool", "arguments", "error_type", "fragment"), REFUSED, ids=[c[0] for c in REFUSED]
)
async def test_hostile_call_is_refused_and_changes_nothing(
    service: ToolService,
    caller: Caller,
    arena: tuple[Path, Path],
    case: str,
    tool: str,
    arguments: dict[str, Any],
    error_type: str,
    fragment: str,
) -> None:
    root, outside = arena
    before = (snapshot(root), snapshot(outside))
    call = ToolCall(tool, arguments)
    result = await service.executor.execute(caller, call)
    if result.status == "pending_approval":  # destructive: even approved, the tool must refuse
        assert result.approval_id
        await service.executor.decide(
            caller.tenant_id, result.approval_id, "approve", decided_by="key:boss"
        )
        result = await service.executor.execute(
            caller, dataclasses.replace(call, approval_id=result.approval_id)
        )
    assert result.status == "error", result
    assert result.error_type == error_type, result
    assert fragment in (result.error_message or ""), result.error_message
    assert (snapshot(root), snapshot(outside)) == before
    if error_type == "path_refused":  # refused up front: nobody is asked to approve it
        assert await service.approvals.list(caller.tenant_id) == []


async def test_shell_metacharacters_in_arguments_are_plain_data(
    service: ToolService, caller: Caller, arena: tuple[Path, Path]
) -> None:
    root, _ = arena
    before = snapshot(root)
    payload = "x; rm -rf . && $(rm -rf .) `rm -rf .`"
    result = await service.executor.execute(
        caller, ToolCall("run_command", {"argv": ["echo", payload]})
    )
    assert result.status == "ok" and result.output["stdout"] == payload + "\n"
    assert snapshot(root) == before


async def test_api_keys_are_not_visible_to_tools(
    service: ToolService, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-leak")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-leak")
    monkeypatch.setenv("ROOST_API_KEY", "roost-leak-0123456789")
    script = "import os; print(os.environ)"
    result = await service.executor.execute(
        caller, ToolCall("run_command", {"argv": ["python3", "-c", script]})
    )
    assert result.status == "ok"
    assert "leak" not in result.output["stdout"] and "API_KEY" not in result.output["stdout"]


@pytest.mark.parametrize(
    ("case", "script", "expect"),
    [
        (
            "fork-bomb",
            "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
            "timed_out",
        ),
        ("memory-hog", "x = bytearray(8 << 30)", "exit_code"),
        ("infinite-output", "while True: print('z' * 4096)", "output_limit_exceeded"),
    ],
)
async def test_resource_abuse_is_stopped_by_limits(
    service: ToolService,
    caller: Caller,
    arena: tuple[Path, Path],
    case: str,
    script: str,
    expect: str,
) -> None:
    root, _ = arena
    service.executor.sandbox.policy = service.executor.sandbox.policy.narrowed(
        timeout_s=2, max_processes=16, memory_bytes=512 << 20, kill_after_output_bytes=1 << 20
    )
    before = snapshot(root)
    result = await service.executor.execute(
        caller, ToolCall("run_command", {"argv": ["python3", "-c", script]})
    )
    assert result.status == "ok"
    output = result.output
    assert output[expect], output
    assert output["exit_code"] != 0 and len(output["stdout"]) <= 64 * 1024
    assert snapshot(root) == before


async def test_approval_bypass_attempts_are_refused(
    service: ToolService, caller: Caller, arena: tuple[Path, Path], platform: Platform
) -> None:
    root, _ = arena
    # The same handler offered under another name.
    service.registry.add_for_tenant(
        caller.tenant_id, RenamedToolset(StaticToolset([delete_file]), {"delete_file": "remove"})
    )
    before = snapshot(root)
    approved = ToolCall("delete_file", {"path": "notes.txt"})
    pending = await service.executor.execute(caller, approved)
    assert pending.status == "pending_approval" and pending.approval_id
    approval_id = pending.approval_id
    # Used before anyone decided.
    early = await service.executor.execute(
        caller, dataclasses.replace(approved, approval_id=approval_id)
    )
    assert early.error_type == "approval_invalid" and "pending" in (early.error_message or "")
    await service.executor.decide(caller.tenant_id, approval_id, "approve", decided_by="key:boss")
    attempts = {
        "arguments changed": ToolCall(
            "delete_file", {"path": "secret-link"}, approval_id=approval_id
        ),
        "other tool": ToolCall(
            "write_file", {"path": "notes.txt", "content": ""}, approval_id=approval_id
        ),
        "tool renamed": ToolCall("remove", {"path": "notes.txt"}, approval_id=approval_id),
    }
    for label, call in attempts.items():
        result = await service.executor.execute(caller, call)
        assert result.status == "error", label
        assert result.error_type == "approval_invalid", label
    other_run = dataclasses.replace(caller, run_id="someone-else")
    stolen = await service.executor.execute(
        other_run, dataclasses.replace(approved, approval_id=approval_id)
    )
    assert stolen.error_type == "approval_invalid"
    other_tenant = await platform.tenants.create("other")
    foreign = dataclasses.replace(caller, tenant_id=other_tenant.id)
    result = await service.executor.execute(
        foreign, dataclasses.replace(approved, approval_id=approval_id)
    )
    assert result.error_type == "approval_invalid" and "not found" in (result.error_message or "")
    assert snapshot(root) == before
