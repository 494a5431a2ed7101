"""SQL shared by the SQLite and PostgreSQL checkpointers: schema, statements, row mapping.

Statements use ``?`` placeholders; :func:`statements` rewrites them for drivers
that use ``%s``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roost.graph.checkpoint.base import CheckpointRecord, ThreadLog, WriteRecord


def schema(blob: str, real: str, table_options: str = "") -> str:
    """Two tables keyed for the queries below: a thread's rows are one primary-key range,
    so a checkpoint's slice is a range scan and only snapshots need an extra index.
    ``table_options`` is ``WITHOUT ROWID`` on SQLite: the key is the table, one b-tree."""
    return f"""
CREATE TABLE IF NOT EXISTS graph_checkpoints (
    tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, parent_id TEXT, step INTEGER NOT NULL,
    source TEXT NOT NULL, created_at {real} NOT NULL, snapshot_id TEXT NOT NULL,
    snapshot {blob}, base_id TEXT, metadata TEXT,
    PRIMARY KEY (tenant_id, thread_id, ns, checkpoint_id)
) {table_options};
CREATE INDEX IF NOT EXISTS graph_checkpoints_snapshots
    ON graph_checkpoints (tenant_id, thread_id, ns, checkpoint_id) WHERE snapshot IS NOT NULL;
CREATE TABLE IF NOT EXISTS graph_events (
    tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, snapshot_id TEXT NOT NULL, task_id TEXT NOT NULL,
    kind TEXT NOT NULL, idx INTEGER NOT NULL, node TEXT NOT NULL, payload {blob} NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, ns, checkpoint_id, task_id, kind)
) {table_options};
"""


UPSERT_CHECKPOINT = "ON CONFLICT (tenant_id, thread_id, ns, checkpoint_id) DO NOTHING"
UPSERT_EVENT = (
    "ON CONFLICT (tenant_id, thread_id, ns, checkpoint_id, task_id, kind) DO UPDATE SET "
    "idx=excluded.idx, node=excluded.node, payload=excluded.payload, "
    "created_at=excluded.created_at"
)
"""A task re-run after a crash or resume replaces its event; checkpoints never change."""

_CP_COLS = (
    "checkpoint_id, parent_id, step, source, created_at, snapshot_id, snapshot, base_id, metadata"
)
_EV_COLS = "checkpoint_id, snapshot_id, task_id, kind, idx, node, payload, created_at"
_KEY = "tenant_id=? AND thread_id=? AND ns=?"


@dataclass(frozen=True, slots=True)
class Statements:
    put_checkpoint: str
    put_event: str
    head: str
    by_id: str
    group: str
    snapshots: str
    group_events: str
    all_checkpoints: str
    all_events: str
    namespaces: str
    deletes: tuple[str, str]


def statements(
    placeholder: str = "?",
    *,
    upsert_checkpoint: str,
    upsert_event: str,
    snapshot_index_hint: str = "",
) -> Statements:
    def sql(text: str) -> str:
        return text.replace("?", placeholder)

    return Statements(
        put_checkpoint=sql(
            f"INSERT INTO graph_checkpoints (tenant_id, thread_id, ns, {_CP_COLS}) "
            f"VALUES (?,?,?,?,?,?,?,?,?,?,?,?) {upsert_checkpoint}"
        ),
        put_event=sql(
            f"INSERT INTO graph_events (tenant_id, thread_id, ns, {_EV_COLS}) "
            f"VALUES (?,?,?,?,?,?,?,?,?,?,?) {upsert_event}"
        ),
        head=sql(
            f"SELECT {_CP_COLS} FROM graph_checkpoints WHERE {_KEY} "
            "ORDER BY checkpoint_id DESC LIMIT 1"
        ),
        by_id=sql(f"SELECT {_CP_COLS} FROM graph_checkpoints WHERE {_KEY} AND checkpoint_id=?"),
        # a snapshot's group was created after it: its ids sort at or after the snapshot's
        group=sql(
            f"SELECT {_CP_COLS} FROM graph_checkpoints WHERE {_KEY} AND checkpoint_id>=? "
            "AND snapshot_id=? AND snapshot IS NULL"
        ),
        snapshots=sql(
            f"SELECT {_CP_COLS} FROM graph_checkpoints {snapshot_index_hint} "
            f"WHERE {_KEY} AND snapshot IS NOT NULL"
        ),
        group_events=sql(
            f"SELECT {_EV_COLS} FROM graph_events WHERE {_KEY} AND checkpoint_id>=? "
            "AND snapshot_id=?"
        ),
        all_checkpoints=sql(
            f"SELECT {_CP_COLS} FROM graph_checkpoints WHERE {_KEY} ORDER BY checkpoint_id"
        ),
        all_events=sql(f"SELECT {_EV_COLS} FROM graph_events WHERE {_KEY}"),
        namespaces=sql(
            "SELECT DISTINCT ns FROM graph_checkpoints WHERE tenant_id=? AND thread_id=? "
            "ORDER BY ns"
        ),
        deletes=(
            sql("DELETE FROM graph_checkpoints WHERE tenant_id=? AND thread_id=?"),
            sql("DELETE FROM graph_events WHERE tenant_id=? AND thread_id=?"),
        ),
    )


def checkpoint_rows(tenant: str, records: Sequence[CheckpointRecord]) -> list[tuple[Any, ...]]:
    return [
        (
            tenant,
            c.thread_id,
            c.ns,
            c.checkpoint_id,
            c.parent_id,
            c.step,
            c.source,
            c.created_at,
            c.snapshot_id,
            c.snapshot,
            c.base_id,
            json.dumps(c.metadata) if c.metadata else None,
        )
        for c in records
    ]


def event_rows(tenant: str, writes: Sequence[WriteRecord]) -> list[tuple[Any, ...]]:
    return [
        (
            tenant,
            w.thread_id,
            w.ns,
            w.checkpoint_id,
            w.snapshot_id,
            w.task_id,
            w.kind,
            w.idx,
            w.node,
            w.payload,
            w.created_at,
        )
        for w in writes
    ]


def to_checkpoint(thread_id: str, ns: str, r: Sequence[Any]) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=thread_id,
        ns=ns,
        checkpoint_id=r[0],
        parent_id=r[1],
        step=r[2],
        source=r[3],
        created_at=r[4],
        snapshot_id=r[5],
        snapshot=None if r[6] is None else bytes(r[6]),
        base_id=r[7],
        metadata=json.loads(r[8]) if r[8] else {},
    )


def to_event(thread_id: str, ns: str, e: Sequence[Any]) -> WriteRecord:
    return WriteRecord(thread_id, ns, e[0], e[1], e[2], e[3], e[4], e[5], bytes(e[6]), e[7])


def to_log(
    thread_id: str,
    ns: str,
    rows: Sequence[Sequence[Any]],
    events: Sequence[Sequence[Any]],
    has_children: bool | None = None,
) -> ThreadLog:
    """Records from query rows; checkpoints sorted by id (slices come from two queries)."""
    ordered = sorted(rows, key=lambda r: str(r[0]))
    return ThreadLog(
        checkpoints=[to_checkpoint(thread_id, ns, r) for r in ordered],
        writes=[to_event(thread_id, ns, e) for e in events],
        has_children=has_children,
    )
