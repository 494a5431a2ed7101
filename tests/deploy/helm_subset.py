"""Render the Roost Helm chart with the subset of Go templates it uses, for tests.

``helm`` itself is not installable here (no registry ships it), so this renders what
the chart needs — values, ``include`` of its own defines, ``if``/``if not``/``end``,
``quote``, ``nindent`` and ``toYaml`` — and raises on anything else, so a template that
grows beyond the subset fails its test instead of being checked wrongly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)


def render_chart(chart: Path, values: dict[str, Any] | None = None) -> dict[str, str]:
    """template file name -> rendered text (helpers excluded)."""
    context = {
        "Values": values
        if values is not None
        else yaml.safe_load((chart / "values.yaml").read_text()),
        "Release": {"Name": "test"},
        "Chart": {"AppVersion": yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]},
    }
    defines: dict[str, list[tuple[str, str]]] = {}
    helpers = chart / "templates" / "_helpers.tpl"
    _render(_tokens(helpers.read_text()), context, defines)
    return {
        path.name: _render(_tokens(path.read_text()), context, defines)
        for path in sorted((chart / "templates").glob("*.yaml"))
    }


def _tokens(source: str) -> list[tuple[str, str]]:
    """("text", s) and ("action", expr) in order, with ``{{-``/``-}}`` trimming applied."""
    tokens: list[tuple[str, str]] = []
    position, trim_next = 0, False
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        tokens.append(("text", text))
        tokens.append(("action", match.group(2)))
        trim_next = bool(match.group(3))
        position = match.end()
    tail = source[position:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    return tokens


def _render(tokens: list[tuple[str, str]], context: dict[str, Any], defines: dict[str, Any]) -> str:
    out: list[str] = []
    stack: list[tuple[str, Any]] = []  # ("if", emitting) or ("define", name, start)
    emitting = True
    index = 0
    while index < len(tokens):
        kind, value = tokens[index]
        index += 1
        if kind == "text":
            if emitting and not any(frame[0] == "define" for frame in stack):
                out.append(value)
            elif stack and stack[-1][0] == "define" and emitting:
                defines[stack[-1][1]].append((kind, value))
            continue
        head = value.split()[0]
        if head == "define":
            name = json.loads(value.split()[1])
            defines[name] = []
            stack.append(("define", name))
        elif head == "if":
            condition = value.removeprefix("if").strip()
            negate = condition.startswith("not ")
            truth = bool(_value(condition.removeprefix("not ").strip(), context))
            stack.append(("if", emitting))
            emitting = emitting and (truth != negate)
        elif head == "end":
            frame = stack.pop()
            if frame[0] == "if":
                emitting = frame[1]
        elif stack and stack[-1][0] == "define":
            defines[stack[-1][1]].append((kind, value))
        elif emitting:
            out.append(_pipeline(value, context, defines))
    assert not stack, f"unclosed {stack}"
    return "".join(out)


def _pipeline(expression: str, context: dict[str, Any], defines: dict[str, Any]) -> str:
    first, *filters = [part.strip() for part in expression.split("|")]
    words = first.split()
    if words[0] == "include":
        value: Any = _render(defines[json.loads(words[1])], context, defines)
    elif words[0] == "toYaml":
        value = yaml.safe_dump(_value(words[1], context), default_flow_style=False).rstrip()
    elif len(words) == 1:
        value = _value(words[0], context)
    else:
        raise ValueError(f"template action outside the tested subset: {expression!r}")
    for item in filters:
        name, *args = item.split()
        if name == "quote":
            value = json.dumps(str(value))
        elif name == "nindent":
            pad = " " * int(args[0])
            value = "\n" + "\n".join(
                pad + line if line else line for line in str(value).splitlines()
            )
        else:
            raise ValueError(f"template function outside the tested subset: {name!r}")
    return str(value)


def _value(path: str, context: dict[str, Any]) -> Any:
    if not path.startswith("."):
        raise ValueError(f"template value outside the tested subset: {path!r}")
    node: Any = context
    for part in path.strip(".").split("."):
        node = node[part]
    return node
