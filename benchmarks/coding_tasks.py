"""Small repository tasks for the coding agent, made here: a planted bug with a failing
test, a missing function, a rename across files. Each comes with a known-good plan (the
edits that solve it) for the scripted model, and is scored by the repository's tests.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.coding.scripted import KnownGoodPlan

TEST_HEADER = "import unittest\n\n"


@dataclass(frozen=True, slots=True)
class RepoTask:
    name: str
    kind: str  # bug | missing | rename
    task: str
    files: dict[str, str]
    solution: KnownGoodPlan

    def materialise(self, root: Path) -> Path:
        """Write the repository under ``root/name`` and commit it; returns its path."""
        repo = root / self.name
        for path, text in self.files.items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text, encoding="utf-8")
        git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=b@example.org"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "initial"], check=True)
        return repo


# (function, good body, planted bad body, arguments, expected)
_BUGS: list[tuple[str, str, str, str, Any]] = [
    ("add", "a + b", "a - b", "2, 3", 5),
    ("multiply", "a * b", "a + b", "3, 4", 12),
    ("maximum", "a if a > b else b", "a if a < b else b", "3, 9", 9),
    ("minimum", "a if a < b else b", "a if a > b else b", "3, 9", 3),
    ("power", "a ** b", "a * b", "2, 5", 32),
    ("average", "(a + b) / 2", "(a + b) / 3", "4, 8", 6),
    ("difference", "abs(a - b)", "a - b", "3, 10", 7),
    ("remainder", "a % b", "a // b", "17, 5", 2),
    ("is_even", "a % 2 == 0 or b", "a % 2 == 1 or b", "4, False", True),
    ("clamp_low", "max(a, b)", "min(a, b)", "-4, 0", 0),
]

# (function, code, arguments, expected)
_MISSING: list[tuple[str, str, str, Any]] = [
    ("square", "def square(x):\n    return x * x\n", "7", 49),
    ("cube", "def cube(x):\n    return x * x * x\n", "3", 27),
    ("negate", "def negate(x):\n    return -x\n", "5", -5),
    ("double", "def double(x):\n    return 2 * x\n", "21", 42),
    ("halve", "def halve(x):\n    return x / 2\n", "9", 4.5),
    ("increment", "def increment(x):\n    return x + 1\n", "41", 42),
]

# (old name, new name)
_RENAMES = [
    ("calc_total", "compute_total"),
    ("get_items", "list_items"),
    ("fmt_name", "format_name"),
    ("do_sum", "sum_values"),
    ("mk_label", "make_label"),
]


def _bug(function: str, good: str, bad: str, args: str, expected: Any) -> RepoTask:
    module = f"def {function}(a, b):\n    return {bad}\n"
    test = (f"{TEST_HEADER}from calc.ops import {function}\n\n\nclass Test(unittest.TestCase):\n"
            f"    def test_{function}(self):\n        self.assertEqual({function}({args}),"
            f" {expected!r})\n")  # fmt: skip
    plan = KnownGoodPlan(
        f"1. Read calc/ops.py.\n2. Fix {function} in calc/ops.py.\n3. Run the tests.",
        [
            ("read_file", {"path": "calc/ops.py"}),
            (
                "apply_edit",
                {
                    "edits": [
                        {
                            "path": "calc/ops.py",
                            "search": f"return {bad}",
                            "replace": f"return {good}",
                        }
                    ]
                },
            ),
            ("run_tests", {"runner": "unittest"}),
        ],
        f"Fixed {function} in calc/ops.py.",
    )
    return RepoTask(
        f"bug-{function}", "bug", "make the failing test pass",
        {"calc/__init__.py": "", "calc/ops.py": module, f"tests/test_{function}.py": test,
         "tests/__init__.py": ""},
        plan,
    )  # fmt: skip


def _missing(function: str, code: str, args: str, expected: Any) -> RepoTask:
    existing = "def identity(x):\n    return x\n"
    test = (f"{TEST_HEADER}from shapes.funcs import {function}\n\n\nclass Test(unittest.TestCase):"
            f"\n    def test_{function}(self):\n        self.assertEqual({function}({args}),"
            f" {expected!r})\n")  # fmt: skip
    added = "".join(f"+{line}\n" for line in ["", "", *code.splitlines()])
    diff = (
        f"--- a/shapes/funcs.py\n+++ b/shapes/funcs.py\n@@ -1,2 +1,{2 + len(code.splitlines()) + 2} @@\n"
        " def identity(x):\n     return x\n" + added
    )
    plan = KnownGoodPlan(
        f"1. Add {function} to shapes/funcs.py with a diff.\n2. Run the tests.",
        [("apply_patch", {"diff": diff})],
        f"Added {function} to shapes/funcs.py.",
    )
    return RepoTask(
        f"missing-{function}", "missing", f"implement the missing function {function}",
        {"shapes/__init__.py": "", "shapes/funcs.py": existing, "tests/__init__.py": "",
         f"tests/test_{function}.py": test},
        plan,
    )  # fmt: skip


def _rename(old: str, new: str) -> RepoTask:
    lib = f"def {old}(values):\n    return list(values)\n"
    app = f"from pkg.lib import {old}\n\n\ndef run():\n    return {old}([1, 2])\n"
    test = (f"{TEST_HEADER}from pkg.app import run\nfrom pkg.lib import {new}\n\n\n"
            f"class Test(unittest.TestCase):\n    def test_rename(self):\n"
            f"        self.assertEqual({new}((3,)), [3])\n        self.assertEqual(run(), [1, 2])\n")  # fmt: skip
    plan = KnownGoodPlan(
        f"1. Rename {old} to {new} in pkg/lib.py and pkg/app.py.\n2. Run the tests.",
        [
            ("code_search", {"query": old}),
            (
                "apply_edit",
                {
                    "edits": [
                        {"path": "pkg/lib.py", "search": f"def {old}(", "replace": f"def {new}("},
                        {
                            "path": "pkg/app.py",
                            "search": f"import {old}",
                            "replace": f"import {new}",
                        },
                        {
                            "path": "pkg/app.py",
                            "search": f"return {old}(",
                            "replace": f"return {new}(",
                        },
                    ]
                },
            ),
        ],
        f"Renamed {old} to {new}.",
    )
    return RepoTask(
        f"rename-{old}", "rename", f"rename the function {old} to {new} everywhere",
        {"pkg/__init__.py": "", "pkg/lib.py": lib, "pkg/app.py": app, "tests/__init__.py": "",
         "tests/test_rename.py": test},
        plan,
    )  # fmt: skip


def make_tasks() -> list[RepoTask]:
    """21 tasks: 10 planted bugs, 6 missing functions, 5 renames across files."""
    return (
        [_bug(*spec) for spec in _BUGS]
        + [_missing(*spec) for spec in _MISSING]
        + [_rename(*spec) for spec in _RENAMES]
    )
