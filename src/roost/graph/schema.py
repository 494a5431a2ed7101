"""Turn a state schema (a TypedDict with ``Annotated`` reducers) into channels."""

from __future__ import annotations

import operator
import typing
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from roost.graph.channels import BinaryOperatorAggregate, Channel, LastValue, MessagesChannel, Topic
from roost.graph.errors import InvalidGraph
from roost.graph.messages import add_messages

_EMPTY_BY_TYPE: dict[Any, Callable[[], Any]] = {
    list: list,
    dict: dict,
    set: set,
    int: int,
    float: float,
    str: str,
    tuple: tuple,
}


def _initial_for(annotation: Any) -> Any:
    base = get_origin(annotation) or annotation
    factory = _EMPTY_BY_TYPE.get(base)
    return factory() if factory else None


def channel_for(key: str, annotation: Any) -> Channel:
    """The channel a schema field asks for: a reducer in ``Annotated[T, reducer]``, else LastValue."""
    if get_origin(annotation) is not Annotated:
        return LastValue(key)
    base, *extras = get_args(annotation)
    reducer = next((extra for extra in extras if callable(extra)), None)
    if reducer is None:
        return LastValue(key)
    if reducer is add_messages:
        return MessagesChannel(key)
    is_list = (get_origin(base) or base) is list
    if reducer is operator.add and is_list:
        # list + list only ever appends: log deltas instead of re-storing the list
        return Topic(key)
    initial = _initial_for(base)
    if initial is None:
        return BinaryOperatorAggregate(key, reducer)
    return BinaryOperatorAggregate(key, reducer, initial)


def channels_from_schema(schema: type) -> dict[str, Channel]:
    """One channel per field of ``schema`` (a TypedDict or annotated class)."""
    try:
        hints = get_type_hints(schema, include_extras=True)
    except (NameError, TypeError) as exc:
        raise InvalidGraph(f"cannot read the state schema {schema!r}: {exc}") from exc
    if not hints:
        raise InvalidGraph(f"state schema {schema!r} declares no fields")
    return {key: channel_for(key, annotation) for key, annotation in hints.items()}


def is_typed_dict(schema: Any) -> bool:
    return typing.is_typeddict(schema)
