"""``add_messages``: the reducer for chat histories.

Messages are dicts (``{"role": ..., "content": ..., "id": ...}``) or objects with an
``id`` attribute. A message whose id is already present replaces it in place, a
:class:`RemoveMessage` deletes one, everything else is appended. Messages without
an id get a fresh one so later updates can address them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RemoveMessage:
    """An update that deletes the message with this id from a messages channel."""

    id: str


REMOVE_ALL_MESSAGES = "__remove_all__"
"""``RemoveMessage(REMOVE_ALL_MESSAGES)`` clears the whole history."""


def message_id(message: Any) -> str | None:
    value = message.get("id") if isinstance(message, dict) else getattr(message, "id", None)
    return None if value is None else str(value)


def with_id(message: Any) -> Any:
    """Return ``message`` carrying an id, assigning a new one if it has none."""
    if message_id(message) is not None:
        return message
    new_id = uuid.uuid4().hex
    if isinstance(message, dict):
        return {**message, "id": new_id}
    if isinstance(message, str):
        return {"role": "user", "content": message, "id": new_id}
    with contextlib.suppress(AttributeError):  # frozen objects: the caller gives ids
        message.id = new_id
    return message


def as_message_list(update: Any) -> list[Any]:
    if update is None:
        return []
    if isinstance(update, (list, tuple)):
        return list(update)
    return [update]


class MessageLog:
    """An ordered message list with an id index, so each update costs O(update), not O(history).

    This is what the messages channel holds; replaying a 500-turn thread applies
    500 small updates in linear time. The index is built on first need, so loading a
    stored history (which only appends) skips it.
    """

    __slots__ = ("_index", "_items", "num_rewrites")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items: list[Any] = []
        self._index: dict[str, int] | None = None
        self.num_rewrites = 0
        """Replacements and removals since reset: a snapshot then stores the full list."""
        self.apply(list(items))

    def _ids(self) -> dict[str, int]:
        if self._index is None:
            self._index = {}
            for position, message in enumerate(self._items):
                key = message_id(message)
                if key is not None:
                    self._index[key] = position
        return self._index

    def extend_stored(self, items: list[Any]) -> None:
        """Append messages read back from storage: they have ids and are new."""
        self._items.extend(items)
        self._index = None

    def apply(self, update: Any) -> None:
        for raw in as_message_list(update):
            if isinstance(raw, RemoveMessage):
                self._remove(raw.id)
                continue
            message = with_id(raw)
            key = message_id(message)
            index = self._ids()
            position = index.get(key) if key is not None else None
            if position is None:
                if key is not None:
                    index[key] = len(self._items)
                self._items.append(message)
            else:
                self._items[position] = message
                self.num_rewrites += 1

    def _remove(self, key: str) -> None:
        self.num_rewrites += 1
        if key == REMOVE_ALL_MESSAGES:
            self._items.clear()
            self._index = None
            return
        position = self._ids().get(key)
        if position is None:
            raise ValueError(f"cannot remove message {key!r}: no message has that id")
        del self._items[position]
        self._index = None

    def to_list(self) -> list[Any]:
        return list(self._items)

    def tail(self, start: int) -> list[Any]:
        return self._items[start:]

    def __len__(self) -> int:
        return len(self._items)


def add_messages(left: Any, right: Any) -> list[Any]:
    """Merge ``right`` into the history ``left``: append new messages, replace by id,
    delete :class:`RemoveMessage` ids. Returns a new list."""
    log = MessageLog(as_message_list(left))
    log.apply(right)
    return log.to_list()
