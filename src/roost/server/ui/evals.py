"""Datasets, evaluations with each item's result, and experiments with their per-variant
report (success, latency, cost, feedback with 95 % intervals, p-values), read from the
kernel's eval services in the caller's tenant (another tenant's answer 404)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.evals.datasets import check_name
from roost.security.principal import Principal
from roost.server.evals import eval_services
from roost.server.ui.render import page
from roost.server.ui.session import signed_in

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
# The report's measures, in the order the table shows them: (key, heading, unit).
MEASURES = (
    ("success", "Success", "rate"),
    ("latency_ms", "Latency", "ms"),
    ("cost_usd", "Cost", "usd"),
    ("feedback", "Feedback (liked)", "rate"),
)


@router.get("/ui/evals")
async def evals_page(request: Request, principal: SignedIn) -> Response:
    services = eval_services(request)
    evaluations = await services.evaluations.list(principal.tenant_id, 100)
    datasets = await services.datasets.list(principal.tenant_id)
    return page(
        request, "evals.html", title="Evaluations", section="evals",
        evaluations=evaluations, datasets=datasets,
    )  # fmt: skip


@router.get("/ui/evals/{eval_id}")
async def eval_page(eval_id: str, request: Request, principal: SignedIn) -> Response:
    evaluation = await eval_services(request).evaluations.get(principal.tenant_id, eval_id)
    return page(
        request, "eval.html", title=f"Evaluation {eval_id}", section="evals",
        evaluation=evaluation, live=evaluation["status"] == "running",
    )  # fmt: skip


@router.get("/ui/datasets/{name}")
async def dataset_page(
    name: str,
    request: Request,
    principal: SignedIn,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    check_name(name)
    dataset = await eval_services(request).datasets.get(principal.tenant_id, name, version)
    return page(request, "dataset.html", title=f"Dataset {name}", section="evals", dataset=dataset)


@router.get("/ui/experiments")
async def experiments_page(request: Request, principal: SignedIn) -> Response:
    found = await eval_services(request).experiments.list(principal.tenant_id)
    return page(
        request, "experiments.html", title="Experiments", section="experiments",
        experiments=found,
    )  # fmt: skip


@router.get("/ui/experiments/{name}")
async def experiment_page(name: str, request: Request, principal: SignedIn) -> Response:
    report = await eval_services(request).experiments.report(principal.tenant_id, name)
    return page(
        request, "experiment.html", title=f"Experiment {name}", section="experiments",
        experiment=report, rows=report_rows(report), significance=report["significance"],
    )  # fmt: skip


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant with each measure as (value, interval) ready to print."""
    rows = []
    for variant in report["variants_report"]:
        cells = []
        for key, _, unit in MEASURES:
            measure = variant[key]
            value = measure.get("rate") if unit == "rate" else measure.get("mean")
            cells.append(
                {"value": _fmt(value, unit), "ci": _interval(measure.get("ci95"), unit),
                 "n": measure.get("count", 0)}
            )  # fmt: skip
        rows.append({"name": variant["name"], "models": variant["models"],
                     "runs": variant["runs"], "in_flight": variant["in_flight"],
                     "cells": cells, "mean_score": _fmt(variant["feedback"]["mean_score"], "")})  # fmt: skip
    return rows


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value * 100:.1f} %"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "usd":
        return f"${value:.6f}"
    return f"{value:.2f}"


def _interval(ci: list[float] | None, unit: str) -> str:
    if not ci:
        return ""
    low = ci[0] if unit == "rate" else max(0.0, ci[0])  # no time or cost is below zero
    return f"{_fmt(low, unit)} – {_fmt(ci[1], unit)}"
