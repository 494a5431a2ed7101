"""Backups of a Roost home: one archive with a manifest, verified, restorable, scheduled."""

from roost.backup.errors import ArchiveCorrupt, BackupRefused

__all__ = ["ArchiveCorrupt", "BackupRefused"]
