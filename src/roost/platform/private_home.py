"""Roost's home is private: the directory 0700, everything this process creates in it 0600.

Databases, API-key hashes, the KV naming secret, the webhook key and the KV cache files all
live under the home. A umask of 077 makes every file and directory the process creates
private from the start (no window between create and chmod); a pass over an existing home
tightens what an older Roost left readable. Tenants' workspaces are left alone: the tool
sandbox gives them to the jail's uid.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from roost.observe.logging import get_logger

log = get_logger("roost.home")
_PRIVATE_UMASK = 0o077


def make_home_private(home: Path, *, skip: tuple[Path, ...] = ()) -> int:
    """Create ``home`` 0700 and make what is in it owner-only; returns the entries tightened."""
    os.umask(_PRIVATE_UMASK)
    home.mkdir(parents=True, exist_ok=True)
    skipped = {path.resolve() for path in skip}
    tightened = 0
    for directory, names, files in os.walk(home):
        current = Path(directory)
        names[:] = [n for n in names if (current / n).resolve() not in skipped]
        for path in (current, *(current / name for name in files)):
            with contextlib.suppress(OSError):
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode) or not mode & 0o077:
                    continue
                path.chmod(stat.S_IMODE(mode) & 0o700)
                tightened += 1
    if tightened:
        log.warning("tightened files of the Roost home to owner-only", home=str(home),
                    count=tightened)  # fmt: skip
    return tightened
