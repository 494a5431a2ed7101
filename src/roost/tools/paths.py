"""Confinement of file paths to a workspace root.

Every path a tool receives is checked as text first (NUL bytes, percent-encoding, Unicode
that normalises differently, absolute paths, ``..`` components), then resolved through the
real file system (symlinks followed) and required to stay under the root. Files are opened
with ``O_NOFOLLOW`` so a symlink swapped in after the check is refused rather than followed.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path

from roost.tools.base import ToolFailure

# "%2e", "%2F", "%252f": tools take literal paths, so any escape is a smuggling attempt.
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
MAX_PATH_CHARS = 4096


class PathRefused(ToolFailure):
    """A path that would leave the workspace or is otherwise unsafe."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="path_refused")


class Workspace:
    """A directory a tool may touch; every path is relative to it and stays inside it."""

    def __init__(self, root: Path, *, quota_root: Path | None = None) -> None:
        """``quota_root``: the directory whose size the disk quota caps (default ``root``),
        the tenant's directory of workspaces when there is one per agent."""
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)
        self.quota_root = quota_root.resolve() if quota_root is not None else self.root

    def resolve(self, user_path: str, *, must_exist: bool = False) -> Path:
        """The real path of ``user_path`` inside the workspace; :class:`PathRefused` otherwise."""
        check_path_text(user_path)
        candidate = self.root / user_path if user_path not in ("", ".") else self.root
        resolved = candidate.resolve(strict=False)
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise PathRefused(f"path {user_path!r} resolves outside the workspace")
        if must_exist and not resolved.exists():
            raise ToolFailure(f"{user_path!r} does not exist", type="not_found")
        return resolved

    def relative(self, path: Path) -> str:
        """How tools show a resolved path back to the agent: relative to the root."""
        return path.relative_to(self.root).as_posix() or "."

    def open_for_read(self, user_path: str) -> int:
        """A read-only descriptor of a regular file, never through a final symlink."""
        path = self.resolve(user_path, must_exist=True)
        fd = _open_nofollow(path, os.O_RDONLY, user_path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ToolFailure(f"{user_path!r} is not a regular file", type="not_a_file")
        return fd

    def open_for_write(self, user_path: str, *, create_parents: bool = True) -> int:
        """A truncating write descriptor, created if missing, never through a symlink."""
        path = self.resolve(user_path)
        if path == self.root:
            raise PathRefused("cannot write to the workspace root itself")
        if create_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
            # mkdir follows symlinked parents; check again that they stayed inside.
            if not path.parent.resolve().is_relative_to(self.root):
                raise PathRefused(f"path {user_path!r} resolves outside the workspace")
        return _open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, user_path)


def check_path_text(user_path: str) -> None:
    """Refuse paths whose text alone is suspicious, before touching the file system."""
    if not isinstance(user_path, str):
        raise PathRefused("path must be a string")
    if "\x00" in user_path:
        raise PathRefused("path contains a NUL byte")
    if len(user_path) > MAX_PATH_CHARS:
        raise PathRefused(f"path is longer than {MAX_PATH_CHARS} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in user_path):
        raise PathRefused("path contains control characters")
    if _PERCENT_ESCAPE.search(user_path):
        raise PathRefused("path contains a percent-escape; send the literal path instead")
    if unicodedata.normalize("NFKC", user_path) != user_path:
        raise PathRefused("path contains characters that normalise to others (e.g. fullwidth)")
    if user_path.startswith(("/", "~")):
        raise PathRefused("absolute paths are not allowed; paths are relative to the workspace")
    if user_path.startswith("-"):
        raise PathRefused("paths may not start with '-' (they would read as options)")
    if ".." in user_path.replace("\\", "/").split("/"):
        raise PathRefused("'..' is not allowed in paths")


def _open_nofollow(path: Path, flags: int, user_path: str) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the final component is a symlink
            raise PathRefused(f"{user_path!r} is a symbolic link; refusing to follow it") from exc
        if isinstance(exc, IsADirectoryError):
            raise ToolFailure(f"{user_path!r} is a directory", type="not_a_file") from exc
        if isinstance(exc, FileNotFoundError):
            raise ToolFailure(f"{user_path!r} does not exist", type="not_found") from exc
        raise ToolFailure(f"cannot open {user_path!r}: {exc.strerror}", type="io_error") from exc
