"""Edits as search/replace blocks or unified diffs, applied to a workspace atomically.

Applying is two steps: :func:`plan_search_replace` / :func:`plan_unified_diff` compute
every file's new content in memory (a block that does not match, or a hunk whose context
is not in the file, raises :class:`EditConflict` naming the file, the hunk and the lines
found there), then :func:`commit` stages all new contents as temporary files beside
their targets and renames them into place. Nothing is written unless every file applies,
and a rename that fails puts back the files already renamed.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.tools.base import ToolFailure
from roost.tools.paths import PathRefused, Workspace

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
DEV_NULL = "/dev/null"


class EditConflict(ToolFailure):
    """An edit does not apply; the message says exactly where and what was found."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="edit_conflict")


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file's content before and after (None: the file does not exist)."""

    path: str
    before: str | None
    after: str | None

    @property
    def is_deletion(self) -> bool:
        return self.after is None

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                (self.before or "").splitlines(keepends=True),
                (self.after or "").splitlines(keepends=True),
                f"a/{self.path}" if self.before is not None else DEV_NULL,
                f"b/{self.path}" if self.after is not None else DEV_NULL,
            )
        )


Reader = Callable[[str], str | None]


def workspace_reader(workspace: Workspace) -> Reader:
    """Reads a workspace file's text (None when missing), never through a symlink."""

    def read(path: str) -> str | None:
        target = workspace.resolve(path)
        if not os.path.lexists(target):
            return None
        fd = workspace.open_for_read(path)
        with os.fdopen(fd, "rb") as handle:
            return handle.read().decode("utf-8")

    return read


# -- search/replace ------------------------------------------------------------------------
def plan_search_replace(read: Reader, edits: Sequence[dict[str, Any]]) -> list[FileChange]:
    """Each edit is ``{path, search, replace}``; ``search`` must occur exactly once in the
    file as changed by the edits before it (empty ``search`` creates a new file)."""
    current: dict[str, str | None] = {}
    originals: dict[str, str | None] = {}
    for number, edit in enumerate(edits, 1):
        path, search, replace = str(edit["path"]), str(edit["search"]), str(edit["replace"])
        if path not in current:
            current[path] = originals[path] = read(path)
        text = current[path]
        if search == "":
            if text is not None:
                raise EditConflict(
                    f"edit {number}: {path} exists; an empty search only creates new files"
                )
            current[path] = replace
            continue
        if text is None:
            raise EditConflict(f"edit {number}: {path} does not exist")
        count = text.count(search)
        if count != 1:
            raise EditConflict(_search_conflict(number, path, text, search, count))
        current[path] = text.replace(search, replace, 1)
    return [FileChange(p, originals[p], current[p]) for p in current if originals[p] != current[p]]


def _search_conflict(number: int, path: str, text: str, search: str, count: int) -> str:
    if count > 1:
        return (
            f"edit {number}: the search text occurs {count} times in {path}; add lines"
            " around it so it is unique"
        )
    first = next((line for line in search.splitlines() if line.strip()), search)
    lines = text.splitlines()
    near = difflib.get_close_matches(first, lines, n=1, cutoff=0.5)
    where = ""
    if near:
        index = lines.index(near[0])
        excerpt = "\n".join(lines[max(0, index - 1) : index + len(search.splitlines()) + 1])
        where = f"; the closest text is at line {index + 1}:\n{excerpt}"
    return f"edit {number}: the search text was not found in {path}{where}"


# -- unified diffs -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hunk:
    header: str
    old_start: int
    old: list[str]  # context and removed lines
    new: list[str]  # context and added lines


@dataclass(frozen=True, slots=True)
class FilePatch:
    old_path: str | None  # None: the file is created
    new_path: str | None  # None: the file is deleted
    hunks: list[Hunk]

    @property
    def path(self) -> str:
        path = self.new_path or self.old_path
        assert path is not None
        return path


def _strip_prefix(raw: str) -> str | None:
    name = raw.split("\t", 1)[0].strip()
    if name == DEV_NULL:
        return None
    if name.startswith(("a/", "b/")):
        name = name[2:]
    if not name:
        raise EditConflict("a file header of the diff names no file")
    return name


def parse_unified_diff(text: str) -> list[FilePatch]:
    """The files and hunks of a unified diff (``git diff`` or ``diff -u`` output)."""
    patches: list[FilePatch] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines)):
            i += 1
            continue
        if not lines[i + 1].startswith("+++ "):
            raise EditConflict(f"line {i + 2} of the diff: expected '+++ ' after '---'")
        old_path, new_path = _strip_prefix(lines[i][4:]), _strip_prefix(lines[i + 1][4:])
        i += 2
        hunks: list[Hunk] = []
        while i < len(lines) and lines[i].startswith("@@"):
            match = _HUNK.match(lines[i])
            if match is None:
                raise EditConflict(f"line {i + 1} of the diff is not a hunk header: {lines[i]}")
            header, old, new = lines[i], [], []
            i += 1
            # The line counts of the header are not trusted (models get them wrong): a
            # hunk runs until the next hunk or file header, or a line that is no hunk line.
            while i < len(lines) and not _starts_header(lines, i):
                line = lines[i]
                tag, body = (line[:1], line[1:]) if line else (" ", "")
                if tag == " ":
                    old.append(body)
                    new.append(body)
                elif tag == "-":
                    old.append(body)
                elif tag == "+":
                    new.append(body)
                elif tag != "\\":  # "\ No newline at end of file"
                    break
                i += 1
            hunks.append(Hunk(header, int(match.group(1)), old, new))
            while i < len(lines) and lines[i].startswith("\\"):
                i += 1
        patches.append(FilePatch(old_path, new_path, hunks))
    if not patches:
        raise EditConflict("no file headers ('--- a/path', '+++ b/path') in the diff")
    return patches


def _starts_header(lines: list[str], i: int) -> bool:
    if lines[i].startswith("@@"):
        return True
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def plan_unified_diff(read: Reader, diff: str) -> list[FileChange]:
    changes: list[FileChange] = []
    for patch in parse_unified_diff(diff):
        before = read(patch.old_path) if patch.old_path is not None else None
        if patch.old_path is not None and before is None:
            raise EditConflict(f"{patch.old_path} does not exist")
        if patch.old_path is None and read(patch.path) is not None:
            raise EditConflict(f"{patch.path} exists; the diff creates it (--- /dev/null)")
        if patch.new_path is None:
            changes.append(FileChange(patch.path, before, None))
            continue
        after = _apply_hunks(patch.path, before or "", patch.hunks)
        changes.append(FileChange(patch.path, before, after))
    return changes


def _apply_hunks(path: str, text: str, hunks: Sequence[Hunk]) -> str:
    lines = text.splitlines()
    ends_with_newline = text.endswith("\n") or not text
    offset = 0
    for hunk in hunks:
        start = _locate(lines, hunk.old, max(0, hunk.old_start - 1 + offset))
        if start is None:
            stated = max(0, hunk.old_start - 1)
            found = "\n".join(lines[stated : stated + max(len(hunk.old), 1)]) or "(end of file)"
            expected = "\n".join(hunk.old)
            raise EditConflict(
                f"{path}: hunk {hunk.header} does not apply; expected at line"
                f" {hunk.old_start}:\n{expected}\nfound:\n{found}"
            )
        lines[start : start + len(hunk.old)] = hunk.new
        offset = start - (hunk.old_start - 1) + len(hunk.new) - len(hunk.old)
    body = "\n".join(lines)
    return body + "\n" if ends_with_newline and lines else body


def _locate(lines: list[str], block: list[str], hint: int) -> int | None:
    """Where ``block`` occurs, the occurrence nearest ``hint`` first."""
    if not block:
        return min(hint, len(lines))
    size = len(block)
    found = [i for i in range(len(lines) - size + 1) if lines[i : i + size] == block]
    return min(found, key=lambda i: abs(i - hint)) if found else None


# -- commit ----------------------------------------------------------------------------------
def commit(workspace: Workspace, changes: Sequence[FileChange]) -> None:
    """Write every change or none: stage temporary files, then rename them into place."""
    staged: list[tuple[Path, Path | None, FileChange]] = []
    try:
        for change in changes:
            target = workspace.resolve(change.path)
            if target == workspace.root:
                raise PathRefused("cannot write to the workspace root itself")
            if change.after is None:
                staged.append((target, None, change))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(workspace.root):
                raise PathRefused(f"path {change.path!r} resolves outside the workspace")
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".roost-edit-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(change.after)
            if target.exists() and not target.is_symlink():
                os.chmod(temp_name, target.stat().st_mode & 0o777)
            else:
                os.chmod(temp_name, 0o644)
            staged.append((target, Path(temp_name), change))
    except BaseException:
        for _, temp, _ in staged:
            if temp is not None:
                temp.unlink(missing_ok=True)
        raise
    done: list[FileChange] = []
    try:
        for target, temp, change in staged:
            if temp is None:
                target.unlink()
            else:
                os.replace(temp, target)  # replaces a symlink itself, never its target
            done.append(change)
    except BaseException:
        _roll_back(workspace, done)
        for _, temp, _ in staged:
            if temp is not None:
                temp.unlink(missing_ok=True)
        raise


def _roll_back(workspace: Workspace, done: Sequence[FileChange]) -> None:
    for change in reversed(done):
        target = workspace.resolve(change.path)
        if change.before is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(change.before, encoding="utf-8")


def render(changes: Sequence[FileChange]) -> str:
    """The changes as one unified diff, for the model and for people."""
    return "".join(change.diff() for change in changes)
