"""``calculate`` and ``convert_units``: exact answers, bounded work, clear refusals."""

from __future__ import annotations

import re
from typing import Any

import pytest

from roost.errors import InvalidRequest
from roost.tools.base import ToolFailure
from roost.tools.builtin.calculator import (
    CONVERSION_PATTERN,
    EXPRESSION_PATTERN,
    calculate,
    convert_units,
)
from roost.tools.context import ToolContext


async def calc(ctx: ToolContext, expression: str) -> Any:
    return await calculate.handler(ctx, calculate.validate_arguments({"expression": expression}))


async def convert(ctx: ToolContext, conversion: str) -> Any:
    arguments = convert_units.validate_arguments({"conversion": conversion})
    return await convert_units.handler(ctx, arguments)


async def test_arithmetic_is_exact(ctx: ToolContext) -> None:
    assert (await calc(ctx, "17*23"))["result"] == 391
    assert (await calc(ctx, "1250 / 5"))["result"] == 250  # a whole float reads as an int
    assert (await calc(ctx, "(2 + 3) * -4 % 7"))["result"] == (2 + 3) * -4 % 7
    assert (await calc(ctx, "7 / 2"))["text"] == "7 / 2 = 3.5"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("9**9**9", "exponent"),  # would run for hours: refused before computing
        ("10**99 * 10**99", "1e100"),
        ("1/0", "division by zero"),
        ("(-8) ** 0.5", "finite real"),
        ("2 +", "not an arithmetic expression"),
    ],
)
async def test_expressions_that_would_hang_or_fail_are_refused(
    ctx: ToolContext, expression: str, reason: str
) -> None:
    with pytest.raises(ToolFailure, match=reason):
        await calc(ctx, expression)


def test_only_arithmetic_characters_pass_the_schema() -> None:
    # The same pattern is the grammar of a model's call: names cannot even be written.
    assert re.match(EXPRESSION_PATTERN, "12*(3+4)")
    assert not re.match(EXPRESSION_PATTERN, "__import__('os')")
    with pytest.raises(InvalidRequest, match="should match pattern"):
        calculate.validate_arguments({"expression": "abs(-1)"})


@pytest.mark.parametrize(
    ("conversion", "text"),
    [
        ("26.2 miles to kilometers", "26.2 miles is 42.1648 kilometers"),
        ("100 fahrenheit to celsius", "100 fahrenheit is 37.7778 celsius"),
        ("3 foot to m", "3 feet is 0.9144 meters"),
        ("5 lbs to kg", "5 pounds is 2.268 kilograms"),
        ("-40 c to f", "-40 celsius is -40 fahrenheit"),
    ],
)
async def test_conversions_accept_words_abbreviations_and_singulars(
    ctx: ToolContext, conversion: str, text: str
) -> None:
    assert (await convert(ctx, conversion))["text"] == text


async def test_conversions_between_dimensions_or_unknown_units_are_refused(
    ctx: ToolContext,
) -> None:
    with pytest.raises(ToolFailure, match=r"cannot convert length \(miles\) to mass"):
        await convert(ctx, "1 mile to kg")
    with pytest.raises(ToolFailure, match="unknown unit 'furlongs'"):
        await convert(ctx, "1 furlongs to meters")
    assert not re.match(CONVERSION_PATTERN, "miles to kilometers")
