"""How commands print: JSON for scripts (``--json``), tables for people.

Tables keep ids whole (they are what the next command takes) and wrap long text instead
of cutting it mid-word; ``--json`` prints exactly one JSON document on stdout, so
``roost ... --json | jq`` always parses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from roost.cli.common import console

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts)")]


def print_json(data: Any) -> None:
    """One JSON document on stdout (not through rich: no wrapping, no colour codes)."""
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def table(*headers: str, ids: Iterable[str] = ("id",), title: str | None = None) -> Table:
    """A table whose ``ids`` columns never wrap or shrink, while other columns wrap."""
    id_headers = set(ids)
    columns = [
        Column(h, no_wrap=True) if h in id_headers else Column(h, overflow="fold") for h in headers
    ]
    return Table(*columns, title=title)


def print_table(rendered: Table) -> None:
    # markup off: stored text (tool descriptions, memories) may contain [brackets].
    console.print(rendered, markup=False, highlight=False)
