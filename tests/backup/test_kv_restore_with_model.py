"""With the bundled model: an agent whose home was backed up with --with-kv, wiped and
restored comes back to its cache — the next turn prefills only its new tokens."""

from __future__ import annotations

import shutil
from pathlib import Path

from roost.backup.create import BackupOptions, create_backup
from roost.backup.restore import restore_backup
from roost.config import load_settings
from tests.engine.test_session_cache import (
    TEXT,
    computed_blocks,
    lookups,
    make_engine,
    run,
    second_turn,
)


def test_a_returning_agent_reuses_its_restored_cache(model_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with make_engine(model_home, home / "kv") as engine:
        conversation = engine.tokenizer.encode(TEXT * 3)
        reply, _ = run(engine, conversation, session="agent-7")
        turn2 = second_turn(engine, conversation, reply)
    archive = create_backup(
        load_settings(env={"ROOST_HOME": str(home)}), BackupOptions(with_kv=True)
    ).path
    kept = tmp_path / archive.name
    shutil.move(archive, kept)
    shutil.rmtree(home)  # the home is gone: only the archive is left

    restored = tmp_path / "restored"
    restore_backup(load_settings(env={"ROOST_HOME": str(restored)}), kept, passphrase=None)
    with make_engine(model_home, restored / "kv") as engine:
        _, usage = run(engine, turn2, session="agent-7")
        assert lookups(engine, "cold") == 1
    assert usage.cached_prompt_tokens == computed_blocks(conversation, reply) > 0
