"""Passphrase encryption of an archive as a stream of authenticated chunks.

The archive may be gigabytes (KV files), so it is never held whole: the writer seals
1 MiB chunks with AES-256-GCM under a key derived from the passphrase by scrypt. Each
chunk's nonce and associated data carry its index, and the last chunk is flagged in
its authenticated length word, so reordered, dropped, appended or truncated chunks all
fail to decrypt rather than yield a shorter archive.

Layout: ``MAGIC | salt (16) | nonce prefix (8) | chunk*`` where a chunk is a 4-byte
big-endian word (bit 31: last chunk; low bits: ciphertext length) then the ciphertext
with its 16-byte tag.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from roost.backup.errors import ArchiveCorrupt, BackupRefused

MAGIC = b"ROOSTENC1\n"
CHUNK_BYTES = 1 << 20
_LAST = 1 << 31
_TAG = 16
# scrypt at 2**15 costs ~32 MiB and ~0.1 s once per archive: cheap to use, dear to guess.
_SCRYPT_N = 1 << 15


def is_encrypted(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _key(passphrase: str, salt: bytes) -> AESGCM:
    if not passphrase:
        raise BackupRefused("an empty passphrase cannot protect an archive")
    kdf = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1)
    return AESGCM(kdf.derive(passphrase.encode()))


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">QB", index, last)


class EncryptingWriter:
    """A write-only file object that encrypts into ``sink``; :meth:`close` seals the end."""

    def __init__(self, sink: BinaryIO, passphrase: str) -> None:
        salt, self._prefix = os.urandom(16), os.urandom(8)
        self._aead = _key(passphrase, salt)
        self._sink = sink
        self._buffer = bytearray()
        self._index = 0
        self.closed = False
        sink.write(MAGIC + salt + self._prefix)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            # Strictly more than a chunk: the final chunk is never empty unless the stream is.
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()
            self.closed = True

    def _seal(self, plain: bytes, *, last: bool) -> None:
        sealed = self._aead.encrypt(
            _nonce(self._prefix, self._index), plain, _aad(self._index, last)
        )
        self._sink.write(struct.pack(">I", len(sealed) | (_LAST if last else 0)) + sealed)
        self._index += 1


class DecryptingReader:
    """A read-only file object over an encrypted archive; raises :class:`ArchiveCorrupt`
    on a wrong passphrase, a tampered chunk or a missing end."""

    def __init__(self, source: BinaryIO, passphrase: str) -> None:
        header = source.read(len(MAGIC) + 24)
        if len(header) < len(MAGIC) + 24 or not is_encrypted(header):
            raise ArchiveCorrupt("not an encrypted Roost archive")
        salt, self._prefix = header[len(MAGIC) : len(MAGIC) + 16], header[len(MAGIC) + 16 :]
        self._aead = _key(passphrase, salt)
        self._source = source
        self._buffer = b""
        self._index = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._buffer += self._open_chunk()
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _open_chunk(self) -> bytes:
        word = self._source.read(4)
        if len(word) < 4:
            raise ArchiveCorrupt("encrypted archive truncated: its last chunk is missing")
        (value,) = struct.unpack(">I", word)
        last, length = bool(value & _LAST), value & ~_LAST
        sealed = self._source.read(length)
        if length < _TAG or len(sealed) < length:
            raise ArchiveCorrupt("encrypted archive truncated mid-chunk")
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, self._index), sealed, _aad(self._index, last)
            )
        except InvalidTag:
            raise ArchiveCorrupt(
                f"cannot decrypt chunk {self._index}: wrong passphrase or tampered archive"
            ) from None
        self._index += 1
        self._done = last
        return plain
