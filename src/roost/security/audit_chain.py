"""The audit log's hash chain: how a record is hashed and how a tenant's chain is checked.

Each record carries ``prev_hash`` (the hash of the tenant's previous record, or
:data:`GENESIS` for the first) and ``hash`` = SHA-256 of the record's canonical JSON, which
includes ``prev_hash``. Changing, removing or reordering a record therefore breaks the
link to every later one; the per-tenant head row catches a truncated tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
# The fields a hash covers, in the order they are documented; canonical JSON sorts them anyway.
HASHED_FIELDS = (
    "id", "tenant_id", "seq", "at", "actor", "principal_role", "action", "target",
    "outcome", "request_id", "details", "prev_hash",
)  # fmt: skip


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``record``'s hashed fields."""
    body = {name: record.get(name) for name in HASHED_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Break:
    """The first record where a tenant's chain stops adding up, and why."""

    tenant_id: str
    event_id: str | None  # None when the break is after the last record (a cut tail)
    seq: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "event_id": self.event_id, "seq": self.seq,
                "reason": self.reason}  # fmt: skip


@dataclass(slots=True)
class ChainCheck:
    """Walks one tenant's chained records in ``seq`` order, fed in pages."""

    tenant_id: str
    checked: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    broken: Break | None = None

    def feed(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            if self.broken is not None:
                return
            self._check(record)

    def _check(self, record: Mapping[str, Any]) -> None:
        seq = int(record["seq"])
        if seq != self.last_seq + 1:
            self._break(record, f"sequence jumps from {self.last_seq} to {seq}: records removed")
        elif record.get("prev_hash") != self.last_hash:
            self._break(record, "prev_hash does not match the previous record's hash")
        elif record_hash(record) != record.get("hash"):
            self._break(record, "hash does not match the record's contents: it was changed")
        else:
            self.checked += 1
            self.last_seq, self.last_hash = seq, str(record["hash"])

    def finish(self, head: Mapping[str, Any] | None) -> None:
        """Compare the end of the walk with the tenant's head row (catches a cut-off tail)."""
        if self.broken is not None or head is None:
            return
        if int(head["seq"]) != self.last_seq or head["hash"] != self.last_hash:
            self.broken = Break(
                self.tenant_id, None, int(head["seq"]),
                f"the chain ends at seq {self.last_seq} but its head says {int(head['seq'])}:"
                " the newest records were removed or changed",
            )  # fmt: skip

    def _break(self, record: Mapping[str, Any], reason: str) -> None:
        self.broken = Break(self.tenant_id, str(record["id"]), int(record["seq"]), reason)
