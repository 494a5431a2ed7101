"""Atomic edits: exact conflicts, nothing half-written, diffs shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.coding.edits import (
    EditConflict,
    commit,
    plan_search_replace,
    plan_unified_diff,
    render,
    workspace_reader,
)
from roost.coding.policy import CoderPolicy, plan_paths
from roost.tools.paths import PathRefused, Workspace


def make(tmp_path: Path, files: dict[str, str]) -> Workspace:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return Workspace(tmp_path)


def test_search_replace_over_two_files_is_all_or_nothing(tmp_path: Path) -> None:
    ws = make(tmp_path, {"a.py": "x = 1\n", "b.py": "y = 2\n"})
    read = workspace_reader(ws)
    with pytest.raises(EditConflict, match=r"edit 2: the search text was not found in b.py"):
        plan_search_replace(read, [{"path": "a.py", "search": "x = 1", "replace": "x = 10"},
                                   {"path": "b.py", "search": "y = 3", "replace": "y = 30"}])  # fmt: skip
    assert (tmp_path / "a.py").read_text() == "x = 1\n"
    changes = plan_search_replace(read, [{"path": "a.py", "search": "x = 1", "replace": "x = 10"},
                                         {"path": "b.py", "search": "y = 2", "replace": "y = 20"}])  # fmt: skip
    commit(ws, changes)
    assert (tmp_path / "a.py").read_text() == "x = 10\n"
    assert (tmp_path / "b.py").read_text() == "y = 20\n"
    assert "-x = 1\n+x = 10" in render(changes)
    assert not list(tmp_path.glob(".roost-edit-*"))


def test_ambiguous_search_is_refused(tmp_path: Path) -> None:
    ws = make(tmp_path, {"a.py": "x = 1\nx = 1\n"})
    with pytest.raises(EditConflict, match="occurs 2 times"):
        plan_search_replace(workspace_reader(ws), [{"path": "a.py", "search": "x = 1",
                                                    "replace": "x = 2"}])  # fmt: skip


def test_a_hunk_that_does_not_apply_names_expected_and_found_lines(tmp_path: Path) -> None:
    ws = make(tmp_path, {"m.py": "def f():\n    return 1\n", "n.py": "a = 1\n"})
    diff = (
        "--- a/n.py\n+++ b/n.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
        "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def f():\n-    return 2\n+    return 3\n"
    )
    with pytest.raises(EditConflict) as caught:
        plan_unified_diff(workspace_reader(ws), diff)
    message = caught.value.message
    assert "m.py: hunk @@ -1,2 +1,2 @@ does not apply" in message
    assert "expected at line 1:\ndef f():\n    return 2\nfound:\ndef f():\n    return 1" in message
    assert (tmp_path / "n.py").read_text() == "a = 1\n"  # the first file was not written


def test_unified_diff_creates_modifies_and_deletes(tmp_path: Path) -> None:
    ws = make(tmp_path, {"keep.py": "a\nb\nc\n", "old.py": "gone\n"})
    diff = (
        "--- a/keep.py\n+++ b/keep.py\n@@ -2,1 +2,1 @@\n-b\n+B\n"
        "--- /dev/null\n+++ b/new/mod.py\n@@ -0,0 +1,1 @@\n+print('hi')\n"
        "--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n"
    )
    changes = plan_unified_diff(workspace_reader(ws), diff)
    commit(ws, changes)
    assert (tmp_path / "keep.py").read_text() == "a\nB\nc\n"
    assert (tmp_path / "new/mod.py").read_text() == "print('hi')\n"
    assert not (tmp_path / "old.py").exists()


def test_edits_never_leave_the_workspace(tmp_path: Path) -> None:
    ws = make(tmp_path / "ws", {"a.py": "x\n"})
    with pytest.raises(PathRefused):
        plan_search_replace(workspace_reader(ws), [{"path": "../escape.py", "search": "",
                                                    "replace": "boom"}])  # fmt: skip


def test_policy_gates_unlisted_commands_overwrites_outside_the_plan_and_deletions() -> None:
    policy = CoderPolicy()
    planned = plan_paths("1. Fix calc/ops.py\n2. run tests")
    assert planned == {"calc/ops.py"}
    exists = {"calc/ops.py", "README.md"}.__contains__
    assert policy.approval_reason("run_command", {"argv": ["python3", "-m", "unittest"]},
                                  planned, exists) is None  # fmt: skip
    assert "allow-list" in str(policy.approval_reason(
        "run_command", {"argv": ["rm", "-rf", "."]}, planned, exists))  # fmt: skip
    assert policy.approval_reason("write_file", {"path": "calc/ops.py"}, planned, exists) is None
    assert policy.approval_reason("write_file", {"path": "new.py"}, planned, exists) is None
    assert "plan does not name" in str(
        policy.approval_reason("write_file", {"path": "README.md"}, planned, exists))  # fmt: skip
    deletion = "--- a/calc/ops.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    assert policy.approval_reason("apply_patch", {"diff": deletion}, planned, exists) == (
        "deletes calc/ops.py"
    )
