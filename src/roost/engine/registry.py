"""Named models: the built-in ones, the operator's ``engine.models``, and what is on disk.

A source is a ``.gguf`` file (converted once under ``<home>/models/<digest>/``), a Hugging
Face directory (``config.json`` + ``*.safetensors``) or a Hugging Face repo id
``org/name``, which :meth:`ModelRegistry.pull` downloads into ``<home>/models/hf/``.
Conversions and downloads already on disk that no name claims are listed too, under the
GGUF file's stem or the repo id, so they stay loadable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from roost.engine.loader import (
    REGISTERED_MODELS,
    converted_dir,
    ensure_converted,
    is_converted_dir,
    resolve_model_path,
)
from roost.errors import InvalidRequest, ModelUnavailable, NotFound, RoostError

if TYPE_CHECKING:
    from roost.config import Settings
    from roost.engine.engine import Engine
    from roost.engine.session_cache import SessionStoreFactory

ModelKind = Literal["builtin", "gguf", "hf-dir", "hf-repo"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
# What the engine reads from a Hugging Face repo; the rest (other formats, docs) stays remote.
_HF_PATTERNS = ["*.json", "*.safetensors", "tokenizer*"]
_DOWNLOADED = "roost-download.json"  # written last: a download without it is incomplete


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One named model and where it stands on this machine."""

    name: str
    source: str
    kind: ModelKind
    path: Path | None  # what the engine loads; None while an HF repo is not downloaded
    is_available: bool  # loadable without the network
    size_bytes: int  # on disk: the converted or downloaded weights, else the source file
    note: str  # for people: "converted", "not downloaded: roost models pull NAME", …
    is_default: bool = False  # the one engine.model names (loaded at start)

    @property
    def load_spec(self) -> str:
        """What :func:`roost.engine.loader.load_checkpoint` takes for this model."""
        if self.kind == "builtin":
            return self.source
        if self.path is None:
            raise InvalidRequest(
                f"model {self.name!r} ({self.source}) is not downloaded; "
                f"run `roost models pull {self.name}` first",
                param="model",
            )
        return str(self.path)


def source_kind(source: str) -> ModelKind:
    """How to read ``source``: an existing path wins over a repo id that looks the same."""
    if source in REGISTERED_MODELS:
        return "builtin"
    if source.endswith(".gguf"):
        return "gguf"
    if _REPO_ID.match(source) and not Path(source).expanduser().exists():
        return "hf-repo"
    return "hf-dir"


class ModelRegistry:
    """The models this installation can serve, by name."""

    def __init__(
        self,
        home: Path,
        configured: Mapping[str, str] | None = None,
        *,
        default: str | None = None,
        hf_endpoint: str | None = None,
    ) -> None:
        self.home = Path(home).expanduser()
        self.configured = dict(configured or {})
        self.default = default
        self.hf_endpoint = hf_endpoint  # None: huggingface_hub's (HF_ENDPOINT or the Hub)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        return cls(settings.home, settings.engine.models, default=settings.engine.model)

    @property
    def hf_root(self) -> Path:
        return self.home / "models" / "hf"

    def entries(self) -> list[ModelEntry]:
        """Built-ins, then configured names, then unclaimed conversions and downloads."""
        named: dict[str, str] = {name: name for name in REGISTERED_MODELS}
        named.update(self.configured)
        if self.default is not None and self.default not in named:
            named[self.default] = self.default  # engine.model given as a path
        found = [self._entry(name, source) for name, source in named.items()]
        found += self._unclaimed(found)
        return [replace(entry, is_default=entry.name == self.default) for entry in found]

    def get(self, name: str) -> ModelEntry:
        """The entry called ``name``; NotFound listing the known names otherwise."""
        for entry in self.entries():
            if entry.name == name:
                return entry
        known = ", ".join(repr(entry.name) for entry in self.entries())
        raise NotFound(f"no model named {name!r}; known models: {known}", param="model")

    def pull(self, name: str) -> ModelEntry:
        """Make ``name`` loadable offline: convert a GGUF file, download an HF repo."""
        entry = self.get(name)
        if entry.kind == "hf-repo":
            self._download(entry.source)
        elif entry.kind in ("builtin", "gguf") and entry.path is not None:
            if not entry.path.is_file():  # already a conversion directory
                return entry
            ensure_converted(entry.path, self.home)
        elif not entry.is_available:
            raise InvalidRequest(f"model {name!r}: {entry.note}", param="model")
        return self.get(name)

    def open_engine(
        self,
        settings: Settings,
        name: str,
        *,
        session_store: SessionStoreFactory | None = None,
    ) -> Engine:
        """Load ``name`` with the engine settings of ``settings``, served under that name;
        ``session_store`` opens its per-session KV caches (see :class:`Engine`)."""
        from roost.engine.engine import Engine

        entry = self.get(name)
        engine = Engine.from_config(settings, session_store=session_store, model=entry.load_spec)
        # Paths load under their path; clients ask for the registry name.
        engine.model_name = entry.name
        return engine

    # -- one entry per kind ------------------------------------------------------------------

    def _entry(self, name: str, source: str) -> ModelEntry:
        kind = source_kind(source)
        if kind == "hf-repo":
            return self._repo_entry(name, source)
        try:
            path = resolve_model_path(source)
        except RoostError as exc:  # a built-in whose package is not installed
            return ModelEntry(name, source, kind, None, False, 0, exc.message)
        if kind in ("builtin", "gguf"):
            return self._gguf_entry(name, source, kind, path)
        is_loadable = (path / "config.json").is_file() and any(path.glob("*.safetensors"))
        note = "ready" if is_loadable else f"missing: {path} has no config.json + *.safetensors"
        return ModelEntry(name, source, kind, path, is_loadable, _size(path), note)

    def _gguf_entry(self, name: str, source: str, kind: ModelKind, path: Path) -> ModelEntry:
        if not path.is_file():
            return ModelEntry(name, source, kind, None, False, 0, f"missing: {path} not found")
        cache = converted_dir(path, self.home)
        if is_converted_dir(cache):
            return ModelEntry(name, source, kind, path, True, _size(cache), "converted")
        note = "not converted yet: the first load or a pull converts it"
        return ModelEntry(name, source, kind, path, True, _size(path), note)

    def _repo_entry(self, name: str, repo: str) -> ModelEntry:
        directory = self.hf_root / repo.replace("/", "--")
        if (directory / _DOWNLOADED).is_file():
            return ModelEntry(name, repo, "hf-repo", directory, True, _size(directory), "ready")
        note = f"not downloaded: roost models pull {name}"
        return ModelEntry(name, repo, "hf-repo", None, False, 0, note)

    def _unclaimed(self, claimed: list[ModelEntry]) -> list[ModelEntry]:
        """Conversions and downloads on disk that no name above refers to."""
        taken = {entry.name for entry in claimed}
        used = {_resolved(entry.path) for entry in claimed if entry.path is not None}
        used |= {
            _resolved(converted_dir(entry.path, self.home))
            for entry in claimed
            if entry.kind in ("builtin", "gguf") and entry.path is not None
        }
        found: list[ModelEntry] = []
        models = self.home / "models"
        for directory in sorted(models.iterdir()) if models.is_dir() else []:
            if not is_converted_dir(directory) or _resolved(directory) in used:
                continue
            source = _read_json(directory / "source.json").get("path", "")
            name = _free_name(Path(source).stem or directory.name, directory.name, taken)
            size = _size(directory)
            found.append(ModelEntry(name, source, "gguf", directory, True, size, "converted"))
        for directory in sorted(self.hf_root.iterdir()) if self.hf_root.is_dir() else []:
            repo = _read_json(directory / _DOWNLOADED).get("repo")
            if not repo or _resolved(directory) in used:
                continue
            name = _free_name(repo, directory.name, taken)
            size = _size(directory)
            found.append(ModelEntry(name, repo, "hf-repo", directory, True, size, "ready"))
        return found

    def _download(self, repo: str) -> None:
        from huggingface_hub import snapshot_download

        directory = self.hf_root / repo.replace("/", "--")
        where = self.hf_endpoint or "the Hugging Face Hub"
        try:
            snapshot_download(
                repo, local_dir=directory, allow_patterns=_HF_PATTERNS, endpoint=self.hf_endpoint
            )
        except OSError as exc:  # huggingface_hub's network and not-found errors are OSErrors
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelUnavailable(
                f"cannot download {repo!r} from {where}: {reason}. Without network access, "
                "copy the model directory here and name it in [engine.models]",
                param="model",
            ) from exc
        (directory / _DOWNLOADED).write_text(json.dumps({"repo": repo}))


def _free_name(preferred: str, fallback: str, taken: set[str]) -> str:
    name = preferred if preferred not in taken else f"{preferred}@{fallback[:8]}"
    taken.add(name)
    return name


def _resolved(path: Path) -> Path:
    return path.expanduser().resolve()


def _read_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return 0
