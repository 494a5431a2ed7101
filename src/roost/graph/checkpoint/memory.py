"""An in-process checkpointer for tests, notebooks and single-process apps."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from roost.graph.checkpoint.base import CheckpointRecord, ThreadLog, WriteRecord, slice_log

_Key = tuple[str, str, str]


class MemoryCheckpointer:
    """Keeps every thread's log in dictionaries; nothing survives the process."""

    def __init__(self, *, tenant_id: str = "default") -> None:
        self.tenant_id = tenant_id
        self._lock = threading.Lock()
        self._checkpoints: dict[_Key, dict[str, CheckpointRecord]] = {}
        self._writes: dict[_Key, dict[tuple[str, str, str], WriteRecord]] = {}

    def _key(self, thread_id: str, ns: str) -> _Key:
        return (self.tenant_id, thread_id, ns)

    def put(self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]) -> None:
        with self._lock:
            for record in checkpoints:
                bucket = self._checkpoints.setdefault(self._key(record.thread_id, record.ns), {})
                bucket[record.checkpoint_id] = record
            for write in writes:
                events = self._writes.setdefault(self._key(write.thread_id, write.ns), {})
                events[(write.checkpoint_id, write.task_id, write.kind)] = write

    def load(self, thread_id: str, ns: str = "", checkpoint_id: str | None = None) -> ThreadLog:
        return slice_log(self.load_all(thread_id, ns), checkpoint_id)

    def load_all(self, thread_id: str, ns: str = "") -> ThreadLog:
        key = self._key(thread_id, ns)
        with self._lock:
            records = sorted(self._checkpoints.get(key, {}).values(), key=_by_id)
            writes = list(self._writes.get(key, {}).values())
        return ThreadLog(checkpoints=records, writes=writes)

    def list_namespaces(self, thread_id: str) -> list[str]:
        with self._lock:
            return sorted(
                ns
                for (tenant, thread, ns) in self._checkpoints
                if tenant == self.tenant_id and thread == thread_id
            )

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            for store in (self._checkpoints, self._writes):
                for key in [k for k in store if k[0] == self.tenant_id and k[1] == thread_id]:
                    del store[key]

    async def aput(
        self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]
    ) -> None:
        self.put(checkpoints, writes)

    async def aload(
        self, thread_id: str, ns: str = "", checkpoint_id: str | None = None
    ) -> ThreadLog:
        return self.load(thread_id, ns, checkpoint_id)

    async def aload_all(self, thread_id: str, ns: str = "") -> ThreadLog:
        return self.load_all(thread_id, ns)

    async def alist_namespaces(self, thread_id: str) -> list[str]:
        return self.list_namespaces(thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    def close(self) -> None:
        """Nothing to release."""


def _by_id(record: CheckpointRecord) -> str:
    return record.checkpoint_id
