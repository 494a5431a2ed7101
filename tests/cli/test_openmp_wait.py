"""The ``roost`` command sets a bounded OpenMP spin before PyTorch loads (see
roost/cli/__init__.py), and leaves a user's own choice alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import roost.cli.main, os; "
    "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
)


def _run(extra: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**env, **extra}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_command_spins_openmp_workers_for_a_bounded_time() -> None:
    assert _run({}) == ["ACTIVE", "100000"]


@pytest.mark.parametrize(
    ("exported", "expected"),
    [
        ({"OMP_WAIT_POLICY": "PASSIVE"}, ["PASSIVE", "None"]),
        ({"GOMP_SPINCOUNT": "5"}, ["None", "5"]),
    ],
)
def test_a_users_own_openmp_setting_is_kept(exported: dict[str, str], expected: list[str]) -> None:
    assert _run(exported) == expected
