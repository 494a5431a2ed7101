"""The model registry: named models, what is on disk, pulls, and loading under a name."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from roost.config import load_settings
from roost.engine.loader import load_checkpoint
from roost.engine.registry import ModelRegistry, source_kind
from roost.errors import InvalidRequest, ModelUnavailable, NotFound
from tests.support.servers import free_port
from tests.support.tiny_model import write_tiny_llama

BUILTIN = "smollm2-135m-instruct"


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (BUILTIN, "builtin"),
        ("/models/llama.Q4_K_M.gguf", "gguf"),
        ("/models/qwen-dir", "hf-dir"),
        ("./relative/dir", "hf-dir"),
        ("HuggingFaceTB/SmolLM2-360M-Instruct", "hf-repo"),
    ],
)
def test_source_kinds(source: str, kind: str) -> None:
    assert source_kind(source) == kind


def test_an_existing_directory_wins_over_a_repo_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert source_kind("org/name") == "hf-dir"


def test_lists_builtin_configured_and_missing_models(tmp_path: Path) -> None:
    tiny = write_tiny_llama(tmp_path / "tiny")
    registry = ModelRegistry(
        tmp_path / "home",
        {"tiny": str(tiny), "gone": str(tmp_path / "nope"), "remote": "org/some-model"},
        default="tiny",
    )
    rows = {entry.name: entry for entry in registry.entries()}
    assert list(rows) == [BUILTIN, "tiny", "gone", "remote"]
    builtin = rows[BUILTIN]
    assert (builtin.kind, builtin.is_available, builtin.is_default) == ("builtin", True, False)
    assert builtin.path is not None and builtin.path.suffix == ".gguf"
    assert "not converted yet" in builtin.note  # a fresh home: nothing converted
    assert (rows["tiny"].kind, rows["tiny"].is_available, rows["tiny"].is_default) == (
        "hf-dir",
        True,
        True,
    )
    on_disk = sum(f.stat().st_size for f in tiny.iterdir())
    assert rows["tiny"].size_bytes == on_disk
    assert (rows["gone"].is_available, rows["gone"].size_bytes) == (False, 0)
    assert rows["gone"].note.startswith("missing")
    remote = rows["remote"]
    assert (remote.kind, remote.is_available, remote.path) == ("hf-repo", False, None)
    assert "roost models pull remote" in remote.note
    with pytest.raises(InvalidRequest, match="roost models pull remote"):
        _ = remote.load_spec
    with pytest.raises(NotFound, match="known models: 'smollm2-135m-instruct', 'tiny'"):
        registry.get("other")


def test_a_path_as_engine_model_is_listed_under_the_path(tmp_path: Path) -> None:
    tiny = write_tiny_llama(tmp_path / "tiny")
    [_, entry] = ModelRegistry(tmp_path / "home", default=str(tiny)).entries()
    assert (entry.name, entry.kind, entry.is_default) == (str(tiny), "hf-dir", True)


def test_pull_converts_a_gguf_and_conversions_without_a_name_stay_listed(
    model_home: Path, tmp_path: Path
) -> None:
    shared = ModelRegistry(model_home).pull(BUILTIN)  # converts once per test session
    assert (shared.note, shared.is_available) == ("converted", True)
    assert shared.path is not None
    [converted] = [d for d in (model_home / "models").iterdir() if (d / "complete").is_file()]
    assert shared.size_bytes == sum(f.stat().st_size for f in converted.iterdir())
    # Another home holding only the conversion, under a digest no name refers to.
    orphan = tmp_path / "home" / "models" / "0123456789abcdef01234567"
    orphan.mkdir(parents=True)
    for item in converted.iterdir():
        (orphan / item.name).symlink_to(item)
    rows = {e.name: e for e in ModelRegistry(tmp_path / "home").entries()}
    entry = rows["SmolLM2-135M-Instruct.Q4_1"]  # the GGUF file's stem, from source.json
    assert (entry.kind, entry.path, entry.note) == ("gguf", orphan, "converted")
    checkpoint = load_checkpoint(entry.load_spec, tmp_path / "home")
    assert checkpoint.digest == orphan.name
    assert checkpoint.config.num_layers == 30


def test_open_engine_serves_under_the_registry_name(tmp_path: Path) -> None:
    tiny = write_tiny_llama(tmp_path / "tiny")
    settings = load_settings(
        env={
            "ROOST_HOME": str(tmp_path / "home"),
            "ROOST_ENGINE__MODELS__TINY": str(tiny),
            "ROOST_ENGINE__DTYPE": "float32",
            "ROOST_ENGINE__KV_CACHE_GB": "0.01",
            "ROOST_ENGINE__SESSION_CACHE__ENABLED": "false",
        }
    )
    registry = ModelRegistry.from_settings(settings)
    engine = registry.open_engine(settings, "tiny")
    try:
        assert engine.model_name == "tiny"
        assert engine.model_config.num_layers == 2
    finally:
        engine.close()


def test_offline_pull_of_a_repo_fails_fast_naming_it(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: like a machine offline
    registry = ModelRegistry(tmp_path, {"qwen": "Qwen/Qwen2.5-0.5B-Instruct"}, hf_endpoint=closed)
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as failure:
        registry.pull("qwen")
    assert time.monotonic() - started < 30
    message = failure.value.message
    assert "cannot download 'Qwen/Qwen2.5-0.5B-Instruct'" in message and closed in message
    assert "[engine.models]" in message
    entry = registry.get("qwen")
    assert (entry.is_available, entry.path) == (False, None)  # nothing half-downloaded counts


def test_pull_reports_a_missing_directory(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path, {"gone": str(tmp_path / "nope")})
    with pytest.raises(InvalidRequest, match="model 'gone': missing"):
        registry.pull("gone")


def test_a_downloaded_repo_is_ready_and_loadable(tmp_path: Path) -> None:
    # What a finished pull leaves behind, without the network: the files plus the marker.
    directory = write_tiny_llama(tmp_path / "home" / "models" / "hf" / "org--tiny")
    (directory / "roost-download.json").write_text(json.dumps({"repo": "org/tiny"}))
    registry = ModelRegistry(tmp_path / "home", {"tiny": "org/tiny"})
    entry = registry.get("tiny")
    assert (entry.kind, entry.is_available, entry.path) == ("hf-repo", True, directory)
    assert load_checkpoint(entry.load_spec, tmp_path / "home").config.vocab_size == 96
    unnamed = {e.name: e for e in ModelRegistry(tmp_path / "home").entries()}
    assert unnamed["org/tiny"].path == directory
