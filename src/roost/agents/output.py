"""Structured final answers: find the JSON in a model's text and check it against a schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema


def extract_json(text: str) -> Any:
    """The first JSON value in ``text`` (models wrap JSON in prose or code fences)."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for index, char in enumerate(stripped):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(stripped[index:])
            except json.JSONDecodeError:
                continue
            return value
    raise ValueError("the answer contains no JSON value")


def validate_output(text: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """``(value, None)`` when ``text`` holds JSON valid for ``schema``, else ``(None, why)``."""
    try:
        value = extract_json(text)
    except ValueError as exc:
        return None, str(exc)
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "the value"
        return None, f"{where}: {exc.message}"
    return value, None


def repair_prompt(error: str, schema: dict[str, Any]) -> str:
    return (
        f"Your answer is not valid: {error}. Reply with only a JSON value that matches"
        f" this JSON Schema, nothing else:\n{json.dumps(schema)}"
    )
