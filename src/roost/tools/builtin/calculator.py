"""Arithmetic and unit conversion: exact answers a small model cannot compute itself.

``calculate`` evaluates arithmetic by walking the expression's syntax tree (numbers,
``+ - * / // % **`` and parentheses; never ``eval``), with exponents and results bounded
so that no expression can pin a CPU. ``convert_units`` reads "26.2 miles to kilometers", a
string shaped by a pattern, so a grammar-constrained call is always parseable.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool
from roost.tools.context import ToolContext

MAX_EXPRESSION = 200
MAX_EXPONENT = 1_000
MAX_MAGNITUDE = 1e100

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}  # fmt: skip
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}  # fmt: skip

# unit -> (dimension, factor to the dimension's base unit); temperatures are affine.
# Whole words, as questions spell them: a small model copies "miles" from the question.
_UNITS: dict[str, tuple[str, float]] = {
    "millimeters": ("length", 0.001), "centimeters": ("length", 0.01),
    "meters": ("length", 1.0), "kilometers": ("length", 1000.0), "inches": ("length", 0.0254),
    "feet": ("length", 0.3048), "yards": ("length", 0.9144), "miles": ("length", 1609.344),
    "milligrams": ("mass", 1e-6), "grams": ("mass", 0.001), "kilograms": ("mass", 1.0),
    "ounces": ("mass", 0.028349523125), "pounds": ("mass", 0.45359237),
    "milliliters": ("volume", 0.001), "liters": ("volume", 1.0), "gallons": ("volume", 3.785411784),
    "seconds": ("time", 1.0), "minutes": ("time", 60.0), "hours": ("time", 3600.0),
    "days": ("time", 86400.0),
    "kilometers per hour": ("speed", 1 / 3.6), "meters per second": ("speed", 1.0),
    "miles per hour": ("speed", 0.44704),
    "celsius": ("temperature", 1.0), "fahrenheit": ("temperature", 1.0),
    "kelvin": ("temperature", 1.0),
}  # fmt: skip
# Other spellings of the units above: singulars, abbreviations, symbols.
_ALIASES: dict[str, str] = {
    **{name[:-1]: name for name in _UNITS if name.endswith("s")},
    "foot": "feet", "inch": "inches", "mm": "millimeters", "cm": "centimeters", "m": "meters",
    "km": "kilometers", "in": "inches", "ft": "feet", "yd": "yards", "mi": "miles",
    "mg": "milligrams", "g": "grams", "kg": "kilograms", "oz": "ounces", "lb": "pounds",
    "lbs": "pounds", "ml": "milliliters", "l": "liters", "gal": "gallons", "s": "seconds",
    "sec": "seconds", "min": "minutes", "h": "hours", "hr": "hours", "day": "days",
    "km/h": "kilometers per hour", "kph": "kilometers per hour", "m/s": "meters per second",
    "mph": "miles per hour", "c": "celsius", "f": "fahrenheit", "k": "kelvin",
    "degrees celsius": "celsius", "degrees fahrenheit": "fahrenheit",
}  # fmt: skip
# "<number> <unit> to <unit>": one string the model copies from the question, which a
# small model does far more reliably than filling three fields; the grammar enforces it.
CONVERSION_PATTERN = r"^-?[0-9]+(\.[0-9]+)? [a-zA-Z /]+ to [a-zA-Z /]+$"
_CONVERSION = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?) (.+?) to (.+)$")
# What an arithmetic expression may contain: the grammar of a tool call enforces it.
EXPRESSION_PATTERN = r"^[0-9.+*/%() -]+$"


@tool(risk=RiskLevel.READ, idempotent=True, timeout_s=5, tags=frozenset({"math"}))
async def calculate(
    ctx: ToolContext,
    expression: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_EXPRESSION,
            pattern=EXPRESSION_PATTERN,
            description="Arithmetic with numbers only, e.g. 12*(3+4)",
        ),
    ],
) -> dict[str, Any]:
    """Evaluate an arithmetic expression (+ - * / // % ** and parentheses) exactly."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolFailure(
            f"not an arithmetic expression: {exc.msg}", type="invalid_arguments"
        ) from exc
    value = _evaluate(tree.body)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return {"expression": expression, "result": value, "text": f"{expression} = {value}"}


@tool(risk=RiskLevel.READ, idempotent=True, timeout_s=5, tags=frozenset({"math"}))
async def convert_units(
    ctx: ToolContext,
    conversion: Annotated[
        str,
        Field(max_length=80, pattern=CONVERSION_PATTERN,
              description='"<number> <unit> to <unit>", e.g. "3 feet to meters"'),
    ],
) -> dict[str, Any]:  # fmt: skip
    """Convert a quantity between units of length, mass, volume, time, speed or temperature."""
    matched = _CONVERSION.match(conversion.strip())
    if matched is None:
        raise ToolFailure('write "<number> <unit> to <unit>"', type="invalid_arguments")
    value = float(matched.group(1))
    from_unit, to_unit = _unit(matched.group(2)), _unit(matched.group(3))
    source, target = _UNITS[from_unit], _UNITS[to_unit]
    if source[0] != target[0]:
        raise ToolFailure(f"cannot convert {source[0]} ({from_unit}) to {target[0]} ({to_unit})",
                          type="invalid_arguments")  # fmt: skip
    if source[0] == "temperature":
        result = _from_kelvin(_to_kelvin(value, from_unit), to_unit)
    else:
        result = value * source[1] / target[1]
    rounded = round(result, 4)
    return {"value": value, "from_unit": from_unit, "to_unit": to_unit, "result": rounded,
            "text": f"{value:g} {from_unit} is {rounded:g} {to_unit}"}  # fmt: skip


def _unit(text: str) -> str:
    name = " ".join(text.lower().replace("°", "").split())
    name = _ALIASES.get(name, name)
    if name not in _UNITS:
        known = ", ".join(_UNITS)
        raise ToolFailure(f"unknown unit {text!r}; known: {known}", type="invalid_arguments")
    return name


def calculator_tools() -> list[Tool]:
    return [calculate, convert_units]


def _evaluate(node: ast.expr) -> int | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):  # True/False are ints to Python, not numbers here
            raise ToolFailure("only numbers are allowed", type="invalid_arguments")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolFailure(f"exponent {right} is larger than {MAX_EXPONENT}",
                              type="invalid_arguments")  # fmt: skip
        try:
            return _checked(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolFailure("division by zero", type="invalid_arguments") from None
    raise ToolFailure(f"only numbers and + - * / // % ** are allowed, not {ast.unparse(node)!r}",
                      type="invalid_arguments")  # fmt: skip


def _checked(value: int | float) -> int | float:
    if (
        isinstance(value, complex)
        or abs(value) > MAX_MAGNITUDE
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise ToolFailure("the result is not a finite real number within 1e100",
                          type="invalid_arguments")  # fmt: skip
    return value


def _to_kelvin(value: float, unit: str) -> float:
    return {"celsius": value + 273.15, "fahrenheit": (value - 32) * 5 / 9 + 273.15}.get(unit, value)


def _from_kelvin(value: float, unit: str) -> float:
    return {"celsius": value - 273.15, "fahrenheit": (value - 273.15) * 9 / 5 + 32}.get(unit, value)
