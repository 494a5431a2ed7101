"""Reading and writing backup archives: a gzip'd tar, optionally encrypted.

The manifest is the first member; every other member is checked against it while it is
read, so a reader learns of a tampered or truncated archive at the member that is wrong,
and names it. Writers produce ``<name>.partial`` and rename it only once the archive is
whole, so an interrupted backup never looks like a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from roost.backup.crypto import MAGIC, DecryptingReader, EncryptingWriter, is_encrypted
from roost.backup.errors import ArchiveCorrupt, BackupRefused
from roost.backup.manifest import MANIFEST_NAME, FileEntry, Manifest

PLAIN_SUFFIX = ".tar.gz"
ENCRYPTED_SUFFIX = ".tar.gz.enc"
_COPY_BYTES = 1 << 20
Advance = Callable[[int], None]  # bytes just processed
# What a damaged or cut-off gzip'd tar raises while it is read.
_DAMAGE = (tarfile.TarError, OSError, EOFError, zlib.error)


def archive_id(path: Path) -> str:
    """The name ``backup list`` shows and ``restore`` accepts: the file name sans suffix."""
    for suffix in (ENCRYPTED_SUFFIX, PLAIN_SUFFIX):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_COPY_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def write_archive(
    path: Path,
    manifest: Manifest,
    sources: dict[str, Path],
    *,
    passphrase: str | None,
    advance: Advance | None = None,
) -> None:
    """Write ``manifest`` then each of its files (member name -> file on disk) to ``path``.

    ``gzip`` level 1: SQLite pages compress well even at the fastest level, and KV files
    (already quantized) barely compress at any level.
    """
    partial = path.with_name(path.name + ".partial")
    try:
        with ExitStack() as stack:
            sink: BinaryIO = stack.enter_context(partial.open("wb"))
            if passphrase is not None:
                sink = stack.enter_context(_closing(EncryptingWriter(sink, passphrase)))
            zipped = stack.enter_context(gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1))
            tar = stack.enter_context(tarfile.open(fileobj=zipped, mode="w|"))
            data = manifest.to_json()
            tar.addfile(_info(MANIFEST_NAME, len(data)), io.BytesIO(data))
            for entry in manifest.files:
                source = sources[entry.path]
                with source.open("rb") as file:
                    tar.addfile(_info(entry.path, entry.size), _Counting(file, advance))
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@dataclass(slots=True)
class Member:
    entry: FileEntry
    stream: io.RawIOBase


@contextmanager
def read_archive(path: Path, passphrase: str | None) -> Iterator[tuple[Manifest, Iterator[Member]]]:
    """The manifest and an iterator over the members, each checked when fully read.

    Raises :class:`ArchiveCorrupt` naming the member that is truncated, altered, missing or
    unexpected; :class:`BackupRefused` for an encrypted archive without a passphrase.
    """
    with ExitStack() as stack:
        source: BinaryIO = stack.enter_context(path.open("rb"))
        head = source.read(len(MAGIC))
        source.seek(0)
        if is_encrypted(head):
            if passphrase is None:
                raise BackupRefused(f"{path.name} is encrypted: give its passphrase")
            source = DecryptingReader(source, passphrase)  # type: ignore[assignment]
        zipped = gzip.GzipFile(fileobj=source, mode="rb")
        try:
            tar = stack.enter_context(tarfile.open(fileobj=zipped, mode="r|"))
            first = tar.next()
        except _DAMAGE as exc:
            raise ArchiveCorrupt(
                f"archive damaged or truncated at {MANIFEST_NAME}: {exc}", MANIFEST_NAME
            ) from exc
        if first is None or first.name != MANIFEST_NAME:
            raise ArchiveCorrupt("the archive does not start with its manifest", MANIFEST_NAME)
        manifest_file = tar.extractfile(first)
        assert manifest_file is not None
        manifest = Manifest.from_json(manifest_file.read())
        yield manifest, _members(tar, manifest)


def _members(tar: tarfile.TarFile, manifest: Manifest) -> Iterator[Member]:
    expected = {entry.path: entry for entry in manifest.files}
    seen: set[str] = set()
    current = MANIFEST_NAME
    try:
        while (info := tar.next()) is not None:
            current = info.name
            entry = expected.get(info.name)
            if entry is None or info.name in seen or not info.isfile():
                raise ArchiveCorrupt(f"unexpected member {info.name} in the archive", info.name)
            seen.add(info.name)
            raw = tar.extractfile(info)
            assert raw is not None
            checked = _Checked(raw, entry)
            yield Member(entry, checked)
            checked.finish()  # whatever the consumer left unread is still hashed
    except _DAMAGE as exc:
        raise ArchiveCorrupt(f"archive damaged or truncated at {current}: {exc}", current) from exc
    missing = sorted(set(expected) - seen)
    if missing:
        raise ArchiveCorrupt(
            f"archive truncated: {missing[0]} and {len(missing) - 1} more file(s) missing",
            missing[0],
        )


class _Checked(io.RawIOBase):
    """A member's bytes, hashed as read; the end of the member checks size and SHA-256."""

    def __init__(self, raw: IO[bytes], entry: FileEntry) -> None:
        self._raw = raw
        self._entry = entry
        self._digest = hashlib.sha256()
        self._size = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._read_raw(size)
        self._digest.update(data)
        self._size += len(data)
        if not data or (size < 0):
            self.finish()
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read_raw(self, size: int) -> bytes:
        try:
            return self._raw.read(size)
        except _DAMAGE as exc:
            name = self._entry.path
            raise ArchiveCorrupt(f"archive damaged or truncated at {name}: {exc}", name) from exc

    def finish(self) -> None:
        if self._checked:
            return
        while data := self._read_raw(_COPY_BYTES):
            self._digest.update(data)
            self._size += len(data)
        self._checked = True
        name = self._entry.path
        if self._size != self._entry.size or self._digest.hexdigest() != self._entry.sha256:
            raise ArchiveCorrupt(f"checksum mismatch for {name}: the archive was altered", name)


class _Counting(io.RawIOBase):
    """A file read into the tar, reporting progress in bytes."""

    def __init__(self, file: BinaryIO, advance: Advance | None) -> None:
        self._file = file
        self._advance = advance

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if self._advance is not None and data:
            self._advance(len(data))
        return data


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600  # archives may hold secrets and private conversations
    return info


@contextmanager
def _closing(writer: EncryptingWriter) -> Iterator[BinaryIO]:
    try:
        yield writer  # type: ignore[misc]
    finally:
        writer.close()
