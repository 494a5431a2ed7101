"""Engine fixtures: the bundled model loaded once per session, tiny random checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.engine import Engine, EngineConfig
from roost.engine.loader import Checkpoint, load_checkpoint


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Roost home shared by the session, so the bundled GGUF is converted only once."""
    return tmp_path_factory.mktemp("roost-home")


@pytest.fixture(scope="session")
def smollm_checkpoint(model_home: Path) -> Checkpoint:
    return load_checkpoint("smollm2-135m-instruct", model_home)


@pytest.fixture(scope="session")
def smollm_engine(model_home: Path) -> Iterator[Engine]:
    """The bundled model in float32 (comparable with the reference), shared by slow tests."""
    engine = Engine(
        EngineConfig(home=model_home, dtype="float32", kv_cache_gb=0.25, max_num_seqs=16)
    )
    yield engine
    engine.close()
