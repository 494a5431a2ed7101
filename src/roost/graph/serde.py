"""Compact JSON serialisation for state, writes and snapshots (orjson).

JSON keeps stored state readable by any tool. Values JSON lacks are tagged:
bytes, tuples, sets, datetimes, the graph's own types, dataclasses and pydantic
models. Decoding never imports a module: a tagged class must already be loaded,
so a tampered database cannot make the process import code.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import sys
import zlib
from typing import Any

import orjson

from roost.graph.messages import RemoveMessage
from roost.graph.types import Interrupt, Send

_TAG = "__roost__"
_BUILTIN_TYPES: dict[str, type] = {
    "Send": Send,
    "Interrupt": Interrupt,
    "RemoveMessage": RemoveMessage,
}


def _encode(value: Any) -> Any:
    if isinstance(value, (Send, Interrupt, RemoveMessage)):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {_TAG: type(value).__name__, "v": fields}
    if isinstance(value, bytes):
        return {_TAG: "bytes", "v": base64.b64encode(value).decode()}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": list(value)}
    if isinstance(value, (set, frozenset)):
        return {_TAG: "set", "v": sorted(value, key=repr)}
    if isinstance(value, dt.datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if hasattr(value, "model_dump") and hasattr(type(value), "model_validate"):
        return {_TAG: "pydantic", "cls": _class_path(value), "v": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {_TAG: "dataclass", "cls": _class_path(value), "v": fields}
    raise TypeError(f"cannot store a {type(value).__name__} in graph state: {value!r:.80}")


def _class_path(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}:{cls.__qualname__}"


def _loaded_class(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        raise ValueError(f"stored state needs {path}, whose module is not imported")
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _decode(obj: dict[str, Any]) -> Any:
    tag = obj.get(_TAG)
    if tag is None:
        return obj
    value = obj["v"]
    if tag in _BUILTIN_TYPES:
        return _BUILTIN_TYPES[tag](**value)
    if tag == "bytes":
        return base64.b64decode(value)
    if tag == "tuple":
        return tuple(value)
    if tag == "set":
        return set(value)
    if tag == "datetime":
        return dt.datetime.fromisoformat(value)
    cls = _loaded_class(obj["cls"])
    if tag == "pydantic":
        return cls.model_validate(value)
    if tag == "dataclass" and isinstance(cls, type) and dataclasses.is_dataclass(cls):
        return cls(**value)
    raise ValueError(f"unknown stored type tag {tag!r}")


def _revive(value: Any) -> Any:
    # Bottom-up, like json's object_hook: inner tagged values first.
    if isinstance(value, list):
        return [_revive(item) for item in value]
    if isinstance(value, dict):
        return _decode({key: _revive(item) for key, item in value.items()})
    return value


def _prepare(value: Any) -> Any:
    # orjson writes tuples as lists and dataclasses as dicts; tag them so they come back.
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {_TAG: "tuple", "v": [_prepare(item) for item in value]}
    if isinstance(value, list):
        return [_prepare(item) for item in value]
    if isinstance(value, dict):
        return {key: _prepare(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _prepare(_encode(value))
    return value


_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_MARKER = _TAG.encode()


def dumps(value: Any) -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON."""
    return orjson.dumps(_prepare(value), default=_encode, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    """Inverse of :func:`dumps`."""
    value = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    return _revive(value) if _MARKER in raw else value


def dumps_compressed(value: Any) -> bytes:
    """:func:`dumps` then zlib: for snapshots, written rarely and mostly text."""
    return zlib.compress(dumps(value), 6)


def loads_compressed(data: bytes) -> Any:
    return loads(zlib.decompress(data))
