"""What a backup, a verification or a restore reports when it cannot go on."""

from __future__ import annotations

from roost.errors import RoostError


class ArchiveCorrupt(RoostError):
    """The archive is truncated, tampered with, or not a Roost backup. ``path`` names the
    member whose checksum (or decryption) failed, when one can be named."""

    code = "backup_corrupt"
    status = 400
    title = "Backup archive corrupt"

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class BackupRefused(RoostError):
    """The archive is sound but cannot be used here: a newer schema, another backend, a
    home that holds data, a missing passphrase."""

    code = "backup_refused"
    status = 409
    title = "Backup refused"
