"""The coder's rules, decided without I/O: which calls need a human, when the agent is
looping, and when its budget is spent. :mod:`roost.coding.agent` applies them.

- **Approvals** (besides the tool layer's own: ``delete_file``, ``git_push`` are
  destructive everywhere): a command outside the allow-list (globs over the argv joined by
  spaces, like ``python3 -m unittest*``), an edit that overwrites an existing file the
  plan does not name, a diff that deletes a file.
- **Loops**: the same failing call (tool, arguments, error) a second time is a loop. The
  first loop asks the model to change strategy; the second stops the run with a report.
- **Budget**: model turns (the spec's ``max_iterations``), wall-clock seconds and tokens
  (input + output over every model call of the run).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_ALLOWED_COMMANDS = (
    "python3 -m unittest*", "python3 -m pytest*", "pytest*", "python3 -m compileall*",
    "ruff check*", "ruff format --check*", "mypy *", "git status*", "git diff*", "git log*",
)  # fmt: skip
DEFAULT_MAX_SECONDS = 900.0
DEFAULT_MAX_TOKENS = 400_000
WRITE_TOOLS = frozenset({"write_file", "edit_file", "apply_edit", "apply_patch"})
_PATH_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z0-9]+")


def plan_paths(plan: str) -> frozenset[str]:
    """File paths a plan names (words with a suffix such as ``calc/ops.py``)."""
    return frozenset(word.strip("./") for word in _PATH_WORD.findall(plan))


def _paths_of(tool: str, arguments: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(path, is_deletion) for every file a write tool would change."""
    if tool in ("write_file", "edit_file"):
        return [(str(arguments.get("path", "")), False)]
    if tool == "apply_edit":
        return [(str(e.get("path", "")), False) for e in arguments.get("edits", []) or []]
    if tool == "apply_patch":
        from roost.coding.edits import EditConflict, parse_unified_diff

        try:
            return [(p.path, p.new_path is None) for p in parse_unified_diff(arguments["diff"])]
        except (EditConflict, KeyError):
            return []  # the tool itself reports the bad diff
    return []


@dataclass(frozen=True, slots=True)
class CoderPolicy:
    allowed_commands: tuple[str, ...] = DEFAULT_ALLOWED_COMMANDS

    @classmethod
    def from_variables(cls, variables: Mapping[str, Any]) -> CoderPolicy:
        raw = variables.get("allowed_commands")
        if not raw:
            return cls()
        return cls(tuple(p.strip() for p in str(raw).split(";") if p.strip()))

    def command_allowed(self, argv: list[str]) -> bool:
        line = shlex.join(str(a) for a in argv)
        return any(fnmatch.fnmatchcase(line, pattern) for pattern in self.allowed_commands)

    def approval_reason(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        planned: frozenset[str],
        exists: Callable[[str], bool],
    ) -> str | None:
        """Why this call needs a human first, or None."""
        if tool == "run_command":
            argv = arguments.get("argv") or []
            if isinstance(argv, list) and not self.command_allowed(argv):
                return f"command outside the allow-list: {shlex.join(str(a) for a in argv)}"
            return None
        for path, deletes in _paths_of(tool, arguments):
            if deletes:
                return f"deletes {path}"
            if path.strip("./") not in planned and exists(path):
                return f"overwrites {path}, which the plan does not name"
        return None


def call_signature(tool: str, arguments: Mapping[str, Any], error: str | None) -> str:
    canonical = json.dumps([tool, arguments, error], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class LoopVerdict:
    failures: dict[str, int]
    triggered: list[str]  # descriptions of calls that failed the same way again

    @property
    def is_loop(self) -> bool:
        return bool(self.triggered)


def check_loops(
    failures: Mapping[str, int], failed_calls: list[tuple[str, Mapping[str, Any], str]]
) -> LoopVerdict:
    """Count this turn's failed calls (tool, arguments, error); a repeat is a loop."""
    counts = dict(failures)
    triggered: list[str] = []
    for tool, arguments, error in failed_calls:
        signature = call_signature(tool, arguments, error)
        counts[signature] = counts.get(signature, 0) + 1
        if counts[signature] >= 2:
            triggered.append(f"{tool} failed twice with {error}")
    return LoopVerdict(counts, triggered)


@dataclass(frozen=True, slots=True)
class Budget:
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_tokens: int = DEFAULT_MAX_TOKENS

    @classmethod
    def from_variables(cls, variables: Mapping[str, Any]) -> Budget:
        return cls(
            float(variables.get("max_seconds") or DEFAULT_MAX_SECONDS),
            int(variables.get("max_tokens") or DEFAULT_MAX_TOKENS),
        )

    def exceeded(self, elapsed_s: float, usage: Mapping[str, int]) -> str | None:
        """Which limit is spent, or None."""
        if elapsed_s > self.max_seconds:
            return f"time budget: {elapsed_s:.0f} s of {self.max_seconds:g} s"
        tokens = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
        if tokens > self.max_tokens:
            return f"token budget: {tokens} of {self.max_tokens} tokens"
        return None
