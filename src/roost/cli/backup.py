"""``roost backup``: create, list, verify and restore archives of a home; export and
import one agent.

Works without a running server (it opens files and databases directly), and while one
runs: SQLite databases are copied through the online backup API. Restore wants the
server stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, err_console, format_time, settings_from

if TYPE_CHECKING:
    from roost.config import Settings

app = typer.Typer(help="Back up a home into one archive; list, verify and restore archives.")
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        exists=True,
        dir_okay=False,
        help="File whose first line is the passphrase (default: ask, when one is needed)",
    ),
]
Step = Callable[[str, int, int], None]


@app.command("create")
def create(
    ctx: typer.Context,
    with_kv: Annotated[bool, typer.Option("--with-kv", help="Include the KV cold tier")] = False,
    with_secrets: Annotated[
        bool, typer.Option("--with-secrets", help="Include secrets (the archive is encrypted)")
    ] = False,
    encrypt: Annotated[bool, typer.Option("--encrypt", help="Encrypt with a passphrase")] = False,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Export this tenant alone (restore adds it to a home)"),
    ] = None,
    passphrase_file: PassphraseFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Write a consistent archive of the home (safe while the server runs)."""
    from concurrent.futures import ThreadPoolExecutor

    from roost.backup.create import BackupOptions, create_backup
    from roost.backup.schedule import lower_priority

    settings = settings_from(ctx)
    needs_passphrase = encrypt or with_secrets or passphrase_file is not None
    passphrase = _passphrase(passphrase_file, confirm=True) if needs_passphrase else None
    options = BackupOptions(
        with_kv=with_kv, with_secrets=with_secrets, passphrase=passphrase, tenant=tenant
    )
    with _progress(as_json) as step, ThreadPoolExecutor(1, initializer=lower_priority) as quiet:
        # At low priority: a server may be serving beside this process; it keeps the CPU.
        created = _run(lambda: quiet.submit(create_backup, settings, options, step).result())
    summary = {
        "id": created.id,
        "path": str(created.path),
        "bytes": created.path.stat().st_size,
        "files": len(created.manifest.files),
        "seconds": round(created.seconds, 3),
        "encrypted": created.manifest.encrypted,
        "skipped": created.skipped,
    }
    if as_json:
        console.print_json(data=summary)
        return
    console.print(
        f"backup [bold]{created.id}[/]: {len(created.manifest.files)} file(s),"
        f" {_size(summary['bytes'])} in {created.seconds:.1f} s -> {created.path}",
        highlight=False,
    )
    for reason in created.skipped:
        err_console.print(f"[yellow]left out:[/] {reason}", highlight=False)


@app.command("list")
def list_backups(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Archives in the backup directory, newest first."""
    from rich.table import Column, Table

    from roost.backup.catalog import list_archives
    from roost.platform.layout import HomeLayout

    settings = settings_from(ctx)
    archives = list_archives(HomeLayout.of(settings).backups)
    rows: list[dict[str, Any]] = [
        {
            "id": a.id,
            "path": str(a.path),
            "bytes": a.size,
            "created": format_time(a.manifest.created_at_ms if a.manifest else a.modified_ms),
            "encrypted": a.encrypted,
            "roost_version": a.manifest.roost_version if a.manifest else None,
            "with_kv": a.manifest.with_kv if a.manifest else None,
            "problem": a.problem,
        }
        for a in archives
    ]
    if as_json:
        console.print_json(data={"object": "list", "data": rows})
        return
    table = Table(Column("id", no_wrap=True), "created", "size", "contents", "roost")
    for row in rows:
        contents = "encrypted" if row["encrypted"] else ("+kv" if row["with_kv"] else "data")
        table.add_row(
            row["id"], row["created"], _size(row["bytes"]),
            row["problem"] or contents, row["roost_version"] or "-",
        )  # fmt: skip
    console.print(table)


@app.command("verify")
def verify(
    ctx: typer.Context,
    archive: Annotated[str, typer.Argument(help="Backup id (or a unique prefix) or a path")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Read a whole archive and check every file's SHA-256; exit 1 naming a bad one."""
    from roost.backup.verify import newer_schema, verify_archive

    settings = settings_from(ctx)
    path = _find(settings, archive)
    passphrase = _passphrase_for(path, passphrase_file)
    with _progress(False) as step:
        manifest = _run(lambda: verify_archive(path, passphrase, step))
    console.print(
        f"[green]OK[/] {path.name}: {len(manifest.files)} file(s) match their checksums",
        highlight=False,
    )
    newer = newer_schema(manifest)
    if newer:
        err_console.print(f"[yellow]not restorable by this Roost:[/] {', '.join(newer)}")


@app.command("restore")
def restore(
    ctx: typer.Context,
    archive: Annotated[str, typer.Argument(help="Backup id (or a unique prefix) or a path")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a home that holds data (after a safety backup)")
    ] = False,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Restore an archive into an empty home (stop the server first), then migrate forward.
    A tenant export (--tenant) is added to the home instead, beside its tenants."""
    from roost.backup.restore import restore_backup

    settings = settings_from(ctx)
    path = _find(settings, archive)
    passphrase = _passphrase_for(path, passphrase_file)
    with _progress(False) as step:
        restored = _run(
            lambda: restore_backup(settings, path, passphrase=passphrase, force=force, step=step)
        )
    if restored.safety_backup is not None:
        console.print(f"safety backup of the replaced home: {restored.safety_backup.id}")
    for note in restored.notes:
        console.print(note, highlight=False)
    console.print(
        f"[green]restored[/] {path.name} ({len(restored.manifest.files)} file(s)) into"
        f" {settings.home}",
        highlight=False,
    )


@app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="File to write (a checksummed .tar.gz)")],
    agent: Annotated[str, typer.Option("--agent", help="The agent to export")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Its tenant (default: the default tenant)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Export one agent: its spec with every version, its threads and checkpoints, its
    memories. `roost backup import` adds it to another tenant or home."""
    from roost.backup.agent_export import export_agent

    settings = settings_from(ctx)
    with _progress(as_json) as step:
        step("export agent", 0, 1)
        manifest = _run(lambda: export_agent(settings, agent, tenant, file))
        step("export agent", 1, 1)
    if as_json:
        console.print_json(data={"file": str(file), "agent": manifest.agent,
                                 "files": [f.path for f in manifest.files]})  # fmt: skip
        return
    console.print(f"[green]exported[/] agent {agent!r} to {file}", highlight=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file written by `roost backup export`")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant to add it to (default: the default one)")
    ] = None,
    rename: Annotated[
        str | None,
        typer.Option("--rename", help="Import under this name (a name clash is refused)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Add an exported agent to a tenant of this home, after checking every checksum."""
    import dataclasses

    from roost.backup.agent_export import import_agent

    settings = settings_from(ctx)
    with _progress(as_json) as step:
        step("import agent", 0, 1)
        imported = _run(lambda: import_agent(settings, file, tenant=tenant, rename=rename))
        step("import agent", 1, 1)
    if as_json:
        console.print_json(data=dataclasses.asdict(imported))
        return
    console.print(
        f"[green]imported[/] agent {imported.name!r}: {imported.versions} version(s),"
        f" {imported.threads} thread(s), {imported.runs} run(s), {imported.memories} memories",
        highlight=False,
    )
    if imported.renamed_ids:
        console.print(f"new ids for {', '.join(imported.renamed_ids)} (the old ones were taken)")


def _find(settings: Settings, name: str) -> Path:
    from roost.backup.catalog import find_archive
    from roost.platform.layout import HomeLayout

    return _run(lambda: find_archive(HomeLayout.of(settings).backups, name))


def _passphrase_for(path: Path, passphrase_file: Path | None) -> str | None:
    from roost.backup.crypto import MAGIC, is_encrypted

    with path.open("rb") as file:
        encrypted = is_encrypted(file.read(len(MAGIC)))
    return _passphrase(passphrase_file, confirm=False) if encrypted else None


def _passphrase(passphrase_file: Path | None, *, confirm: bool) -> str:
    if passphrase_file is not None:
        lines = passphrase_file.read_text().splitlines()
        return lines[0] if lines else ""
    value: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def _run(work: Callable[[], Any]) -> Any:
    """Run ``work``; a Roost error (corrupt archive, refusal) exits 1 with its message."""
    from roost.errors import RoostError

    try:
        return work()
    except RoostError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc


@contextmanager
def _progress(quiet: bool) -> Iterator[Step]:
    """A bar per step (each database, the KV files, writing the archive ...)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if quiet:
        yield lambda _name, _done, _total: None
        return
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=max(total, 1))
            progress.update(tasks[name], completed=done, total=max(total, 1))

        yield step


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
