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
    500 small updates in linear time.
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items: list[Any] = []
        self._index: dict[str, int] = {}
        self.apply(list(items))

    def apply(self, update: Any) -> None:
        for raw in as_message_list(update):
            if isinstance(raw, RemoveMessage):
                self._remove(raw.id)
                continue
            message = with_id(raw)
            key = message_id(message)
            position = self._index.get(key) if key is not None else None
            if position is None:
                if key is not None:
                    self._index[key] = len(self._items)
                self._items.append(message)
            else:
                self._items[position] = message

    def _remove(self, key: str) -> None:
        if key == REMOVE_ALL_MESSAGES:
            self._items.clear()
            self._index.clear()
            return
        if key not in self._index:
            raise ValueError(f"cannot remove message {key!r}: no message has that id")
        del self._items[self._index[key]]
        self._index = {}
        for position, message in enumerate(self._items):
            existing = message_id(message)
            if existing is not None:
                self._index[existing] = position

    def to_list(self) -> list[Any]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


def add_messages(left: Any, right: Any) -> list[Any]:
    """Merge ``right`` into the history ``left``: append new messages, replace by id,
    delete :class:`RemoveMessage` ids. Returns a new list."""
    log = MessageLog(as_message_list(left))
    log.apply(right)
    return log.to_list()
