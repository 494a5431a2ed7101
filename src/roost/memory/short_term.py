"""Short-term memory: the working context of one thread, held to a token budget.

Turns are appended in order and stay stored until consolidation has moved them to
long-term memory; :meth:`ShortTermMemory.window` is what a model sees: every pinned turn
(system prompts are pinned by default and never evicted) plus the newest unpinned turns
that fit the budget. Threads expire ``ttl_s`` after their last write.

Token counts come from a ``count_tokens`` callable, so the serving model's own tokenizer
decides; :func:`approximate_tokens` is only the fallback when none is given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from roost.errors import InvalidRequest
from roost.storage import new_id

TokenCounter = Callable[[str], int]
Clock = Callable[[], float]
ROLES = frozenset({"system", "user", "assistant", "tool"})


def approximate_tokens(text: str) -> int:
    """About four characters a token: English BPE vocabularies average close to that."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a thread as short-term memory keeps it."""

    id: str
    role: str
    content: str
    tokens: int
    pinned: bool = False
    seq: int = 0  # position in the thread, assigned by the store
    created_at: int = 0  # epoch ms
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def with_seq(self, seq: int) -> Turn:
        return replace(self, seq=seq)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "tokens": self.tokens,
            "pinned": self.pinned,
            "seq": self.seq,
            "created_at": self.created_at,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Turn:
        return cls(
            id=data["id"],
            role=data["role"],
            content=data["content"],
            tokens=int(data["tokens"]),
            pinned=bool(data["pinned"]),
            seq=int(data["seq"]),
            created_at=int(data["created_at"]),
            metadata=dict(data.get("metadata") or {}),
        )


@runtime_checkable
class ShortTermStore(Protocol):
    """Where the turns of threads are kept: in-process, SQL or Redis."""

    async def append(
        self, tenant_id: str, thread_id: str, turns: Sequence[Turn], *, ttl_s: float | None
    ) -> list[Turn]:
        """Store turns at the end of the thread (assigning ``seq``); restart the thread's TTL."""
        ...

    async def turns(self, tenant_id: str, thread_id: str) -> list[Turn]:
        """Every stored turn in order; empty when the thread does not exist or expired."""
        ...

    async def remove(self, tenant_id: str, thread_id: str, turn_ids: Sequence[str]) -> int:
        """Remove turns by id; removing a turn that is gone already is not an error."""
        ...

    async def clear(self, tenant_id: str, thread_id: str) -> None: ...

    async def threads(self, tenant_id: str) -> list[str]:
        """Ids of the live threads of a tenant."""
        ...

    async def close(self) -> None: ...


class InProcessShortTermStore:
    """Turns in a dict: for one process, tests, and agents that need no durability."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._threads: dict[tuple[str, str], tuple[list[Turn], int, float | None]] = {}

    def _live(self, key: tuple[str, str]) -> tuple[list[Turn], int, float | None] | None:
        entry = self._threads.get(key)
        if entry is not None and entry[2] is not None and entry[2] <= self._clock():
            del self._threads[key]
            return None
        return entry

    async def append(
        self, tenant_id: str, thread_id: str, turns: Sequence[Turn], *, ttl_s: float | None
    ) -> list[Turn]:
        key = (tenant_id, thread_id)
        stored, next_seq, _ = self._live(key) or ([], 1, None)
        added = [turn.with_seq(next_seq + n) for n, turn in enumerate(turns)]
        expires = None if ttl_s is None else self._clock() + ttl_s
        self._threads[key] = ([*stored, *added], next_seq + len(added), expires)
        return added

    async def turns(self, tenant_id: str, thread_id: str) -> list[Turn]:
        entry = self._live((tenant_id, thread_id))
        return list(entry[0]) if entry else []

    async def remove(self, tenant_id: str, thread_id: str, turn_ids: Sequence[str]) -> int:
        entry = self._live((tenant_id, thread_id))
        if entry is None:
            return 0
        gone = set(turn_ids)
        kept = [t for t in entry[0] if t.id not in gone]
        self._threads[(tenant_id, thread_id)] = (kept, entry[1], entry[2])
        return len(entry[0]) - len(kept)

    async def clear(self, tenant_id: str, thread_id: str) -> None:
        self._threads.pop((tenant_id, thread_id), None)

    async def threads(self, tenant_id: str) -> list[str]:
        return [
            t
            for (tenant, t) in list(self._threads)
            if tenant == tenant_id and self._live((tenant, t))
        ]

    async def close(self) -> None:
        self._threads.clear()


class ShortTermMemory:
    """Token-budgeted windows over a :class:`ShortTermStore`."""

    def __init__(
        self,
        store: ShortTermStore,
        *,
        max_tokens: int = 4096,
        count_tokens: TokenCounter = approximate_tokens,
        overhead_tokens: int = 4,
        ttl_s: float | None = 24 * 3600,
        clock: Clock = time.time,
    ) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be positive")
        self.store = store
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        # Chat templates spend a few tokens per message on role markers.
        self.overhead_tokens = overhead_tokens
        self.ttl_s = ttl_s
        self._clock = clock

    async def add(
        self,
        tenant_id: str,
        thread_id: str,
        role: str,
        content: str,
        *,
        pinned: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
        turn_id: str | None = None,
    ) -> Turn:
        """Append one message; system messages are pinned unless ``pinned=False``."""
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {sorted(ROLES)}", param="role")
        turn = Turn(
            id=turn_id or new_id("turn"),
            role=role,
            content=content,
            tokens=self.count_tokens(content) + self.overhead_tokens,
            pinned=(role == "system") if pinned is None else pinned,
            created_at=int(self._clock() * 1000),
            metadata=dict(metadata or {}),
        )
        (stored,) = await self.store.append(tenant_id, thread_id, [turn], ttl_s=self.ttl_s)
        return stored

    async def turns(self, tenant_id: str, thread_id: str) -> list[Turn]:
        """Everything stored for the thread, including turns that no longer fit the window."""
        return await self.store.turns(tenant_id, thread_id)

    async def window(self, tenant_id: str, thread_id: str) -> list[Turn]:
        """Pinned turns plus the newest unpinned turns within the budget, in thread order."""
        turns = await self.store.turns(tenant_id, thread_id)
        budget = self.max_tokens - sum(t.tokens for t in turns if t.pinned)
        kept: set[str] = set()
        for turn in reversed(turns):
            if turn.pinned:
                continue
            if turn.tokens > budget:
                break  # older turns would leave a gap in the conversation
            budget -= turn.tokens
            kept.add(turn.id)
        return [t for t in turns if t.pinned or t.id in kept]

    async def total_tokens(self, tenant_id: str, thread_id: str) -> int:
        return sum(t.tokens for t in await self.store.turns(tenant_id, thread_id))

    def overflow(self, turns: Sequence[Turn], *, target_tokens: int | None = None) -> list[Turn]:
        """The oldest unpinned turns whose removal brings the total to ``target_tokens``."""
        target = self.max_tokens if target_tokens is None else target_tokens
        excess = sum(t.tokens for t in turns) - target
        chosen: list[Turn] = []
        for turn in turns:
            if excess <= 0:
                break
            if not turn.pinned:
                chosen.append(turn)
                excess -= turn.tokens
        return chosen

    async def evict(self, tenant_id: str, thread_id: str, turn_ids: Sequence[str]) -> int:
        """Drop turns by id; pinned turns are never dropped."""
        pinned = {t.id for t in await self.store.turns(tenant_id, thread_id) if t.pinned}
        return await self.store.remove(
            tenant_id, thread_id, [i for i in turn_ids if i not in pinned]
        )

    async def clear(self, tenant_id: str, thread_id: str) -> None:
        await self.store.clear(tenant_id, thread_id)
