"""Data at rest: the home is 0700 and what Roost keeps in it is owner-only, including what
an older Roost left world-readable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from roost.config import load_settings
from roost.platform import Platform
from roost.platform.wiring import webhook_secret
from roost.tools.paths import Workspace


def modes(home: Path) -> dict[str, int]:
    return {
        str(path.relative_to(home)): stat.S_IMODE(path.lstat().st_mode)
        for path in [home, *home.rglob("*")]
    }


async def test_home_databases_and_keys_are_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    old_db = home / "memory.db"
    old_db.write_bytes(b"")
    old_db.chmod(0o644)  # as an older Roost created it
    settings = load_settings(env={"ROOST_HOME": str(home), "ROOST_ENGINE__ENABLED": "false"})
    platform = await Platform.open(settings)
    try:
        webhook_secret(settings)
        (home / "kv").mkdir(exist_ok=True)
        (home / "kv" / "made-later.bin").write_bytes(b"x")
        workspace = Workspace(home / "workspaces" / "ten_a" / "agent")
    finally:
        await platform.close()
    found = modes(home)
    assert {"roost.db", "agent-webhook.key", "memory.db", "kv/made-later.bin"} <= set(found)
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert loose == {}
    assert found["."] == 0o700 and found["roost.db"] == 0o600
    assert os.access(workspace.root, os.W_OK)
