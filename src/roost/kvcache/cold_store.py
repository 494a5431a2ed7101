"""The cold tier: one safetensors file per session cache, under ``<home>/kv/<model digest>/``.

A file holds the quantized K/V parts as tensors and everything else as safetensors
metadata (str -> str): the identity, model and tokenizer digests, scheme, dtype, shape,
token ids, timestamps, a format version and a blake2b checksum over the tensor bytes and
every other metadata field. File names are keyed blake2b hashes of (tenant, session), so a
directory listing reveals neither; inside, the header carries that keyed hash and, sealed
with AES-GCM under a key derived from the same per-home secret, the ids and the token ids
(the conversation, as tokens): a copy of the file alone reveals no tenant, session or
text. Files of format 2 (ids and tokens in the clear) are still read, and resealed when
the store lists its files at start.

Writes are atomic (temporary file in the same directory, fsync, ``os.replace``). A load
checks the checksum, then the digests, before returning anything. The API is synchronous
(callers run it off the event loop) and safe for concurrent calls.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import json
import os
import secrets
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from roost.engine.session_cache import CacheIdentity
from roost.errors import RoostError
from roost.kvcache.quantize import QuantizedKV, from_parts
from roost.observe.logging import get_logger

log = get_logger("roost.kvcache.cold")
FORMAT_VERSION = "3"  # 2: int8 keys per channel over 16 tokens; 3: ids and tokens sealed
_READABLE = ("2", "3")
_SUFFIX = ".safetensors"
_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_S = 3600  # temporary files this old were left by a crash; younger ones may be live
_SECRET_BYTES = 32
_MAX_HEADER = 100 * 2**20  # a larger safetensors header means the file is not ours
RejectReason = Literal[
    "model_mismatch", "tokenizer_mismatch", "unsupported_format", "outdated_format", "corrupt"
]


@dataclass(slots=True)
class ColdEntry:
    identity: CacheIdentity
    token_ids: list[int]
    kv: QuantizedKV
    model_digest: str
    tokenizer_digest: str
    created_ms: int
    last_used_ms: int


@dataclass(slots=True)
class ColdFileInfo:
    """A file as listed from its header alone (no tensor is read)."""

    identity: CacheIdentity
    num_tokens: int
    nbytes: int  # size of the file
    scheme: str
    last_used_ms: int
    path: Path


class CacheRejected(RoostError):
    """A cache file was not used: another model or tokenizer, a newer format, or corrupt."""

    code = "kv_cache_rejected"
    status = 409
    title = "KV cache rejected"

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class ColdStore:
    """Session caches of one model on disk."""

    def __init__(
        self,
        root: Path,
        *,
        model_digest: str,
        tokenizer_digest: str,
        secret: bytes | None = None,
    ) -> None:
        self.root = Path(root)
        self.model_digest = model_digest
        self.tokenizer_digest = tokenizer_digest
        self.root.mkdir(parents=True, exist_ok=True)
        self._secret = secret if secret is not None else _install_secret(self.root.parent)
        self._seal = AESGCM(
            hashlib.blake2b(self._secret, digest_size=32, person=b"roost-kv-seal").digest()
        )
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._remove_stale_temporaries()

    def file_id(self, identity: CacheIdentity) -> str:
        """The opaque name of ``identity``'s file (also its id in listings)."""
        h = hashlib.blake2b(key=self._secret, digest_size=16)
        for part in (identity.tenant_id, identity.session_id):
            encoded = part.encode()
            h.update(struct.pack("<Q", len(encoded)) + encoded)  # length-prefixed: no ambiguity
        return h.hexdigest()

    def path_of(self, identity: CacheIdentity) -> Path:
        return self.root / (self.file_id(identity) + _SUFFIX)

    def save(self, entry: ColdEntry) -> int:
        """Write ``entry`` atomically (replacing any older file); returns the bytes written."""
        if (entry.model_digest, entry.tokenizer_digest) != (
            self.model_digest,
            self.tokenizer_digest,
        ):
            raise ValueError("the entry belongs to another model or tokenizer than this store")
        kv = entry.kv
        file_id = self.file_id(entry.identity)
        identity = json.dumps([entry.identity.tenant_id, entry.identity.session_id])
        metadata = {
            "format_version": FORMAT_VERSION,
            "identity_hash": file_id,
            "identity": self._sealed(identity.encode(), file_id, "identity"),
            "model_digest": entry.model_digest,
            "tokenizer_digest": entry.tokenizer_digest,
            "scheme": kv.scheme,
            "dtype": str(kv.dtype).removeprefix("torch."),
            "shape": json.dumps(list(kv.shape)),
            "token_ids": self._sealed(_token_bytes(entry.token_ids), file_id, "token_ids"),
            "num_tokens": str(kv.num_tokens),
            "created_ms": str(entry.created_ms),
            "last_used_ms": str(entry.last_used_ms),
        }
        if len(entry.token_ids) != kv.num_tokens:
            raise ValueError(f"{len(entry.token_ids)} token ids for {kv.num_tokens} K/V tokens")
        parts = {name: t.contiguous() for name, t in kv.parts.items()}
        metadata["checksum"] = _checksum(parts, metadata)
        data = save_tensors(parts, metadata)
        path = self.path_of(entry.identity)
        with self._lock_for(path.name):
            _write_atomically(path, data)
        return len(data)

    def load(self, identity: CacheIdentity) -> ColdEntry | None:
        """The entry of ``identity``; None when there is no file. Raises :class:`CacheRejected`."""
        path = self.path_of(identity)
        with self._lock_for(path.name):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return None
            try:
                return self._decode(identity, data)
            except CacheRejected as exc:
                if exc.reason in ("corrupt", "outdated_format"):
                    log.warning("unusable KV cache file deleted", path=str(path), error=str(exc))
                    path.unlink(missing_ok=True)
                raise

    def delete(self, identity: CacheIdentity) -> bool:
        """Remove ``identity``'s file; whether there was one."""
        path = self.path_of(identity)
        with self._lock_for(path.name):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            return True

    def list(self) -> list[ColdFileInfo]:
        """Every readable cache file, from headers only; unreadable files are skipped."""
        infos = []
        for path in self.root.glob("*" + _SUFFIX):
            try:
                metadata = _read_header_metadata(path)
                if metadata.get("format_version") == "2":
                    metadata = self._reseal(path)
                infos.append(
                    ColdFileInfo(
                        identity=self._identity_of(metadata),
                        num_tokens=int(metadata["num_tokens"]),
                        nbytes=path.stat().st_size,
                        scheme=metadata["scheme"],
                        last_used_ms=int(metadata["last_used_ms"]),
                        path=path,
                    )
                )
            except (OSError, ValueError, KeyError, CacheRejected) as exc:
                log.warning("unreadable KV cache file skipped", path=str(path), error=str(exc))
        return infos

    def total_bytes(self) -> int:
        total = 0
        for path in self.root.glob("*" + _SUFFIX):
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # deleted meanwhile
                continue
        return total

    def evict_to(self, budget_bytes: int) -> builtins.list[CacheIdentity]:
        """Delete least recently used files until the total fits ``budget_bytes``."""
        infos = sorted(self.list(), key=lambda info: info.last_used_ms)
        total = sum(info.nbytes for info in infos)
        evicted = []
        for info in infos:
            if total <= budget_bytes:
                break
            if self.delete(info.identity):
                evicted.append(info.identity)
            total -= info.nbytes
        return evicted

    # -- internals ---------------------------------------------------------------------------

    def _decode(self, identity: CacheIdentity, data: bytes) -> ColdEntry:
        try:
            tensors = load_tensors(data)
            metadata = _metadata_of(data)
        except Exception as exc:  # safetensors raises its own error types for bad bytes
            raise CacheRejected("corrupt", f"unreadable file ({exc})") from exc
        version = metadata.get("format_version")
        if version not in _READABLE:
            if str(version).isdigit() and int(str(version)) < int(FORMAT_VERSION):
                # Written by an older Roost: never readable again, so it only takes space.
                raise CacheRejected("outdated_format", f"format {version!r}")
            raise CacheRejected("unsupported_format", f"format {version!r}")
        if metadata.get("checksum") != _checksum(tensors, metadata):
            raise CacheRejected("corrupt", "checksum mismatch")
        if metadata["model_digest"] != self.model_digest:
            raise CacheRejected("model_mismatch", "the file was written for another model")
        if metadata["tokenizer_digest"] != self.tokenizer_digest:
            raise CacheRejected("tokenizer_mismatch", "the file was written for another tokenizer")
        try:
            stored = self._identity_of(metadata)
        except (KeyError, ValueError) as exc:
            raise CacheRejected("corrupt", f"unreadable identity ({exc})") from exc
        if stored != identity:
            raise CacheRejected("corrupt", "the file belongs to another session")
        try:
            shape = tuple(int(n) for n in json.loads(metadata["shape"]))
            dtype = getattr(torch, metadata["dtype"])
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"not a dtype: {metadata['dtype']!r}")
            kv = from_parts(metadata["scheme"], shape, dtype, tensors)
            token_ids = self._token_ids_of(metadata)
            if len(token_ids) != kv.num_tokens:
                raise ValueError("token ids do not match the K/V length")
            return ColdEntry(
                identity=stored,
                token_ids=token_ids,
                kv=kv,
                model_digest=metadata["model_digest"],
                tokenizer_digest=metadata["tokenizer_digest"],
                created_ms=int(metadata["created_ms"]),
                last_used_ms=int(metadata["last_used_ms"]),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CacheRejected("corrupt", f"inconsistent file ({exc})") from exc

    def _sealed(self, plain: bytes, file_id: str, field: str) -> str:
        """``plain`` encrypted and bound to this file and field (a sealed value moved to
        another file or field does not open)."""
        nonce = secrets.token_bytes(12)
        sealed = self._seal.encrypt(nonce, plain, f"{file_id}:{field}".encode())
        return base64.b64encode(nonce + sealed).decode()

    def _opened(self, metadata: dict[str, str], field: str) -> bytes:
        raw = base64.b64decode(metadata[field], validate=True)
        aad = f"{metadata['identity_hash']}:{field}".encode()
        try:
            return self._seal.decrypt(raw[:12], raw[12:], aad)
        except InvalidTag:
            raise ValueError(f"{field} does not open with this home's key") from None

    def _identity_of(self, metadata: dict[str, str]) -> CacheIdentity:
        if metadata.get("format_version") == "2":  # written before ids were sealed
            return CacheIdentity(metadata["tenant_id"], metadata["session_id"])
        tenant_id, session_id = json.loads(self._opened(metadata, "identity"))
        identity = CacheIdentity(str(tenant_id), str(session_id))
        if self.file_id(identity) != metadata["identity_hash"]:
            raise ValueError("the sealed identity does not match its hash")
        return identity

    def _token_ids_of(self, metadata: dict[str, str]) -> builtins.list[int]:
        if metadata.get("format_version") == "2":
            return _decode_tokens(metadata["token_ids"])
        return _tokens_of_bytes(self._opened(metadata, "token_ids"))

    def _reseal(self, path: Path) -> dict[str, str]:
        """Rewrite a format-2 file (ids and tokens in the clear) sealed; its new header."""
        metadata = _read_header_metadata(path)
        identity = self._identity_of(metadata)
        entry = self.load(identity)
        if entry is None:
            raise ValueError("the file went away while it was resealed")
        self.save(entry)
        log.info("KV cache file resealed", file=self.file_id(identity))
        return _read_header_metadata(self.path_of(identity))

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def _remove_stale_temporaries(self) -> None:
        cutoff = time.time() - _STALE_TEMP_S
        for path in self.root.glob(_TEMP_PREFIX + "*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                continue


def _install_secret(directory: Path) -> bytes:
    """The per-install naming key at ``directory/.secret``, created (mode 0600) on first use."""
    path = directory / ".secret"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX)  # mode 0600
        try:
            os.write(fd, secrets.token_bytes(_SECRET_BYTES))
            os.fsync(fd)
            os.close(fd)
            # Fails if another process created it first: then theirs is the secret.
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            os.unlink(temp)
    secret = path.read_bytes()
    if len(secret) != _SECRET_BYTES:
        raise RoostError(f"{path} is damaged ({len(secret)} bytes); KV cache names depend on it")
    return secret


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    h = hashlib.blake2b(digest_size=32)
    for key in sorted(metadata):
        if key != "checksum":
            h.update(json.dumps([key, metadata[key]]).encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        h.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _metadata_of(data: bytes) -> dict[str, str]:
    (size,) = struct.unpack("<Q", data[:8])
    return _parse_header(data[8 : 8 + size])


def _read_header_metadata(path: Path) -> dict[str, str]:
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) != 8:
            raise ValueError("truncated header")
        (size,) = struct.unpack("<Q", prefix)
        if size > _MAX_HEADER:
            raise ValueError("header too large")
        header = file.read(size)
    if len(header) != size:
        raise ValueError("truncated header")
    return _parse_header(header)


def _parse_header(header: bytes) -> dict[str, str]:
    metadata = json.loads(header).get("__metadata__")
    if not isinstance(metadata, dict):
        raise ValueError("no metadata")
    return metadata


def _token_bytes(token_ids: list[int]) -> bytes:
    return struct.pack(f"<{len(token_ids)}i", *token_ids)


def _decode_tokens(text: str) -> list[int]:
    return _tokens_of_bytes(base64.b64decode(text, validate=True))


def _tokens_of_bytes(raw: bytes) -> list[int]:
    if len(raw) % 4:
        raise ValueError("token ids are not whole int32 values")
    return list(struct.unpack(f"<{len(raw) // 4}i", raw))
