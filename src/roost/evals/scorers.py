"""Scorers: how an evaluation decides whether one run's output is right.

``exact``, ``regex`` and ``json_schema`` compare with the item's ``expected`` (or the
scorer's own pattern/schema); ``python`` calls an operator-installed ``module:function``
(listed in ``[evals] python_scorers``: a tenant can only pick one of those, never name
arbitrary code); ``llm_judge`` asks a model through the router for a PASS/FAIL verdict.
Each gives a score in [0, 1], passed or not, and a short reason.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jsonschema
import regex
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from roost.errors import InvalidRequest
from roost.evals.datasets import DatasetItem

REGEX_TIMEOUT_S = 0.5  # tenants write patterns: a catastrophic one fails, never hangs


class _Scorer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactScorer(_Scorer):
    type: Literal["exact"] = "exact"
    ignore_case: bool = False
    strip: bool = True


class RegexScorer(_Scorer):
    type: Literal["regex"]
    pattern: str | None = Field(None, max_length=2000, description="Default: the item's expected")


class JsonSchemaScorer(_Scorer):
    type: Literal["json_schema"]
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="Default: the item's expected"
    )


class PythonScorer(_Scorer):
    type: Literal["python"]
    entry_point: str = Field(pattern=r"^[\w.]+:[\w]+$")


class JudgeScorer(_Scorer):
    type: Literal["llm_judge"]
    model: str = Field(min_length=1)
    criteria: str = Field("The answer is correct and agrees with the expected answer.",
                          max_length=4000)  # fmt: skip
    pass_threshold: float = Field(0.5, ge=0, le=1)


ScorerSpec = Annotated[
    ExactScorer | RegexScorer | JsonSchemaScorer | PythonScorer | JudgeScorer,
    Field(discriminator="type"),
]
_SPEC = TypeAdapter(ScorerSpec)


@dataclass(frozen=True, slots=True)
class Score:
    score: float
    passed: bool
    reason: str = ""


Judge = Callable[[str, str], Awaitable[str]]  # (model, prompt) -> the judge's reply


def parse_scorer(data: Any, allowed_python: Sequence[str]) -> ScorerSpec:
    """The scorer of an evaluation request; 400 for an unknown type or a Python scorer
    the operator did not list."""
    try:
        spec: ScorerSpec = _SPEC.validate_python(data if data is not None else {"type": "exact"})
    except ValueError as exc:
        raise InvalidRequest(f"invalid scorer: {exc}", param="scorer") from exc
    if isinstance(spec, PythonScorer) and spec.entry_point not in allowed_python:
        raise InvalidRequest(
            f"python scorer {spec.entry_point!r} is not one of the scorers this deployment"
            " allows ([evals] python_scorers)",
            param="scorer.entry_point",
        )
    if isinstance(spec, JsonSchemaScorer) and spec.json_schema is not None:
        _check_schema(spec.json_schema)
    if isinstance(spec, RegexScorer) and spec.pattern is not None:
        _compile(spec.pattern)
    return spec


async def score(spec: ScorerSpec, item: DatasetItem, output: Any, judge: Judge) -> Score:
    """Score one output; a scorer that cannot score (bad expected, scorer error) fails the
    item with the reason, it never passes it."""
    text = output if isinstance(output, str) else json.dumps(output)
    if isinstance(spec, ExactScorer):
        return _exact(spec, item, text)
    if isinstance(spec, RegexScorer):
        pattern = spec.pattern if spec.pattern is not None else item.expected
        if not isinstance(pattern, str):
            return Score(0.0, False, "no pattern: the item's expected is not a string")
        try:
            found = _compile(pattern).search(text, timeout=REGEX_TIMEOUT_S)
        except (TimeoutError, InvalidRequest) as exc:
            return Score(0.0, False, f"pattern failed: {exc}")
        return Score(1.0, True, "matched") if found else Score(0.0, False, "no match")
    if isinstance(spec, JsonSchemaScorer):
        return _json_schema(spec, item, output)
    if isinstance(spec, PythonScorer):
        return await _python(spec, item, output)
    return await _judge(spec, item, text, judge)


def _exact(spec: ExactScorer, item: DatasetItem, text: str) -> Score:
    expected = item.expected if isinstance(item.expected, str) else json.dumps(item.expected)
    got = text
    if spec.strip:
        got, expected = got.strip(), expected.strip()
    if spec.ignore_case:
        got, expected = got.casefold(), expected.casefold()
    return Score(1.0, True, "equal") if got == expected else Score(0.0, False, "not equal")


def _json_schema(spec: JsonSchemaScorer, item: DatasetItem, output: Any) -> Score:
    schema = spec.json_schema if spec.json_schema is not None else item.expected
    if not isinstance(schema, dict):
        return Score(0.0, False, "no schema: the item's expected is not an object")
    value = output
    if isinstance(output, str):
        try:
            value = json.loads(output)
        except json.JSONDecodeError:
            return Score(0.0, False, "output is not JSON")
    try:
        jsonschema.Draft202012Validator(schema).validate(value)
    except jsonschema.ValidationError as exc:
        return Score(0.0, False, f"schema mismatch: {exc.message[:200]}")
    except jsonschema.SchemaError as exc:
        return Score(0.0, False, f"invalid schema: {exc.message[:200]}")
    return Score(1.0, True, "matches the schema")


async def _python(spec: PythonScorer, item: DatasetItem, output: Any) -> Score:
    module_name, _, attribute = spec.entry_point.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
        result = function(output, item.expected, item.input)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # the operator's code failed: the item fails, the eval goes on
        return Score(0.0, False, f"scorer raised {type(exc).__name__}: {exc}"[:300])
    if isinstance(result, bool):
        return Score(float(result), result, "")
    if isinstance(result, int | float):
        value = min(1.0, max(0.0, float(result)))
        return Score(value, value >= 0.5, "")
    if isinstance(result, dict) and isinstance(result.get("score"), int | float):
        value = min(1.0, max(0.0, float(result["score"])))
        return Score(value, bool(result.get("passed", value >= 0.5)), str(result.get("reason", "")))
    return Score(0.0, False, f"scorer returned {type(result).__name__}, not a score")


JUDGE_PROMPT = """You are grading an answer.
Criteria: {criteria}
Question: {question}
Expected answer: {expected}
Answer to grade: {answer}
Reply with one word: PASS if the answer meets the criteria, FAIL if it does not."""


async def _judge(spec: JudgeScorer, item: DatasetItem, text: str, judge: Judge) -> Score:
    question = item.input if isinstance(item.input, str) else json.dumps(item.input)
    expected = "(none given)" if item.expected is None else str(item.expected)
    prompt = JUDGE_PROMPT.format(
        criteria=spec.criteria, question=question, expected=expected, answer=text
    )
    try:
        reply = await judge(spec.model, prompt)
    except Exception as exc:  # the judge model failed: no verdict is not a pass
        return Score(0.0, False, f"judge failed: {type(exc).__name__}: {exc}"[:300])
    verdict = reply.strip().upper()
    passed = verdict.startswith("PASS") or ("PASS" in verdict and "FAIL" not in verdict)
    value = 1.0 if passed else 0.0
    return Score(value, value >= spec.pass_threshold, f"judge: {reply.strip()[:200]}")


def _check_schema(schema: dict[str, Any]) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRequest(f"invalid JSON Schema: {exc.message}", param="scorer.schema") from exc


def _compile(pattern: str) -> Any:
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise InvalidRequest(f"invalid pattern: {exc}", param="scorer.pattern") from exc
