"""Confidence intervals and significance tests for evaluation and experiment reports.

Rates get Wilson score intervals (sound at small n and at 0 % / 100 %, unlike the normal
approximation); means get Student-t intervals. Differences between variants are tested
with Fisher's exact test (two variants) or a chi-square test (more) on rates, and
Welch's t-test (two) or one-way ANOVA (more) on means, all from scipy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from scipy import stats

Z_95 = 1.959963984540054


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """95 % Wilson interval of a rate; None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(successes: int, trials: int) -> dict[str, Any]:
    interval = wilson(successes, trials)
    return {
        "count": trials,
        "successes": successes,
        "rate": successes / trials if trials else None,
        "ci95": list(interval) if interval else None,
    }


def mean(values: Sequence[float]) -> dict[str, Any]:
    """Mean with a 95 % t interval (None below two values)."""
    n = len(values)
    if n == 0:
        return {"count": 0, "mean": None, "ci95": None}
    average = sum(values) / n
    if n < 2:
        return {"count": n, "mean": average, "ci95": None}
    sd = math.sqrt(sum((v - average) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"count": n, "mean": average, "ci95": [average - half, average + half]}


def compare_rates(groups: Sequence[tuple[int, int]]) -> dict[str, Any] | None:
    """Do the variants' rates differ? ``groups``: (successes, trials) per variant."""
    usable = [(s, n) for s, n in groups if n > 0]
    if len(usable) < 2:
        return None
    table = [[s, n - s] for s, n in usable]
    if len(usable) == 2:
        _, p_value = stats.fisher_exact(table)
        return {"test": "fisher_exact", "p_value": _finite(p_value)}
    if any(sum(column) == 0 for column in zip(*table, strict=True)):
        return {"test": "chi2", "p_value": 1.0}  # every variant all-success or all-failure
    result = stats.chi2_contingency(table)
    return {"test": "chi2", "p_value": _finite(result.pvalue)}


def compare_means(groups: Sequence[Sequence[float]]) -> dict[str, Any] | None:
    """Do the variants' means differ? Needs two values per variant."""
    usable = [list(g) for g in groups if len(g) >= 2]
    if len(usable) < 2:
        return None
    test = "welch_t" if len(usable) == 2 else "anova"
    if all(min(g) == max(g) for g in usable):
        # No spread anywhere (e.g. every run cost 0): equal means or certainly different.
        same = len({g[0] for g in usable}) == 1
        return {"test": test, "p_value": 1.0 if same else 0.0}
    with warnings.catch_warnings():
        # Near-constant samples make scipy warn about precision; the p-value stands.
        warnings.simplefilter("ignore", RuntimeWarning)
        if test == "welch_t":
            result = stats.ttest_ind(usable[0], usable[1], equal_var=False)
        else:
            result = stats.f_oneway(*usable)
    return {"test": test, "p_value": _finite(result.pvalue)}


def _finite(value: Any) -> float:
    # Identical constant samples give NaN: no evidence of a difference.
    number = float(value)
    return 1.0 if math.isnan(number) else number
