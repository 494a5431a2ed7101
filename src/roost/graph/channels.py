"""Channels hold the state between supersteps, one per state key.

A channel decides how the writes of one superstep combine: ``LastValue`` accepts a
single write per step, ``BinaryOperatorAggregate`` folds writes through a reducer,
``Topic`` appends. Channels whose history only grows (``Topic``, messages) are
*delta-logged*: the checkpointer stores each step's writes and never a full copy
of the value, which keeps storage linear in the history.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from roost.graph.errors import InvalidUpdate
from roost.graph.messages import MessageLog, RemoveMessage, as_message_list, with_id


class EmptyChannel(Exception):
    """The channel has no value yet."""


class Channel(ABC):
    """One state key's storage. ``update`` receives all writes of one superstep."""

    is_delta_logged = False
    """True when snapshots omit this channel and it is rebuilt from every write since the start."""

    def __init__(self, key: str) -> None:
        self.key = key

    @abstractmethod
    def get(self) -> Any:
        """The current value; raises :class:`EmptyChannel` when unset."""

    @abstractmethod
    def update(self, values: Sequence[Any]) -> None:
        """Apply the writes of one superstep, in task order."""

    @abstractmethod
    def snapshot(self) -> Any:
        """A serialisable copy of the value (unused for delta-logged channels)."""

    @abstractmethod
    def restore(self, saved: Any) -> None:
        """Load a value produced by :meth:`snapshot`."""

    @abstractmethod
    def fresh(self) -> Channel:
        """An empty channel of the same kind."""

    def normalize_write(self, value: Any) -> Any:
        """Make a write deterministic before it is logged (e.g. give messages their ids)."""
        return value

    # Delta-logged channels only: a snapshot stores what was appended since the previous
    # snapshot (a segment), or the full value when something older was replaced.
    def segment(self) -> tuple[bool, list[Any]]:
        """``(is_full, items)`` since the last :meth:`mark`."""
        raise NotImplementedError

    def mark(self) -> None:
        """Remember the current length as the start of the next segment."""
        raise NotImplementedError

    def extend_segment(self, items: list[Any]) -> None:
        """Append a stored segment while rebuilding (a full segment follows a reset)."""
        raise NotImplementedError

    def is_set(self) -> bool:
        try:
            self.get()
        except EmptyChannel:
            return False
        return True


_UNSET: Any = object()


class LastValue(Channel):
    """Keeps the last value written; two writes in one superstep are an error."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self._value: Any = _UNSET

    def get(self) -> Any:
        if self._value is _UNSET:
            raise EmptyChannel(self.key)
        return self._value

    def update(self, values: Sequence[Any]) -> None:
        if not values:
            return
        if len(values) > 1:
            raise InvalidUpdate(
                f"state key {self.key!r} received {len(values)} writes in one superstep; "
                "it keeps only one value. Annotate it with a reducer to combine writes, "
                f"e.g. Annotated[list, operator.add] (key: {self.key})"
            )
        self._value = values[0]

    def snapshot(self) -> Any:
        return self._value if self._value is not _UNSET else None

    def restore(self, saved: Any) -> None:
        self._value = saved

    def fresh(self) -> LastValue:
        return LastValue(self.key)


class BinaryOperatorAggregate(Channel):
    """Folds every write into the value with ``reducer(current, write)``."""

    def __init__(self, key: str, reducer: Callable[[Any, Any], Any], initial: Any = _UNSET):
        super().__init__(key)
        self.reducer = reducer
        self._initial = initial
        self._value: Any = copy.copy(initial)

    def get(self) -> Any:
        if self._value is _UNSET:
            raise EmptyChannel(self.key)
        return self._value

    def update(self, values: Sequence[Any]) -> None:
        for value in values:
            self._value = value if self._value is _UNSET else self.reducer(self._value, value)

    def snapshot(self) -> Any:
        return self._value if self._value is not _UNSET else None

    def restore(self, saved: Any) -> None:
        self._value = saved

    def fresh(self) -> BinaryOperatorAggregate:
        return BinaryOperatorAggregate(self.key, self.reducer, self._initial)


class Topic(Channel):
    """An append-only list: each write (an item or a list of items) is appended."""

    is_delta_logged = True

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self._items: list[Any] = []
        self._mark = 0

    def get(self) -> Any:
        return list(self._items)

    def is_set(self) -> bool:
        return True

    def segment(self) -> tuple[bool, list[Any]]:
        return False, self._items[self._mark :]

    def mark(self) -> None:
        self._mark = len(self._items)

    def extend_segment(self, items: list[Any]) -> None:
        self._items.extend(items)

    def update(self, values: Sequence[Any]) -> None:
        for value in values:
            if isinstance(value, (list, tuple)):
                self._items.extend(value)
            else:
                self._items.append(value)

    def snapshot(self) -> Any:
        return list(self._items)

    def restore(self, saved: Any) -> None:
        self._items = list(saved or ())
        self._mark = 0

    def fresh(self) -> Topic:
        return Topic(self.key)


class MessagesChannel(Channel):
    """A chat history with ``add_messages`` semantics, updated in O(update) per write."""

    is_delta_logged = True

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self._log = MessageLog()
        self._mark = 0

    def get(self) -> Any:
        return self._log.to_list()

    def is_set(self) -> bool:
        return True

    def segment(self) -> tuple[bool, list[Any]]:
        if self._log.num_rewrites:
            return True, self._log.to_list()
        return False, self._log.tail(self._mark)

    def mark(self) -> None:
        self._mark = len(self._log)
        self._log.num_rewrites = 0

    def extend_segment(self, items: list[Any]) -> None:
        self._log.extend_stored(items)

    def update(self, values: Sequence[Any]) -> None:
        for value in values:
            self._log.apply(as_message_list(value))

    def normalize_write(self, value: Any) -> Any:
        return [
            item if isinstance(item, RemoveMessage) else with_id(item)
            for item in as_message_list(value)
        ]

    def snapshot(self) -> Any:
        return self._log.to_list()

    def restore(self, saved: Any) -> None:
        self._log = MessageLog(saved or ())
        self._mark = 0

    def fresh(self) -> MessagesChannel:
        return MessagesChannel(self.key)
