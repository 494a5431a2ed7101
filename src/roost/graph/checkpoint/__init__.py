"""Checkpointers: where graph threads are stored (memory, SQLite, PostgreSQL)."""

from roost.graph.checkpoint.base import (
    Checkpointer,
    CheckpointRecord,
    ThreadLog,
    WriteRecord,
)
from roost.graph.checkpoint.memory import MemoryCheckpointer
from roost.graph.checkpoint.postgres import PostgresCheckpointer
from roost.graph.checkpoint.sqlite import SqliteCheckpointer

__all__ = [
    "CheckpointRecord",
    "Checkpointer",
    "MemoryCheckpointer",
    "PostgresCheckpointer",
    "SqliteCheckpointer",
    "ThreadLog",
    "WriteRecord",
]
