"""ColdStore: one safetensors file per session; atomic, checked, private names, LRU eviction."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
import torch

from roost.engine.session_cache import CacheIdentity
from roost.kvcache.cold_store import CacheRejected, ColdEntry, ColdStore
from roost.kvcache.quantize import dequantize, quantize

MODEL, TOKENIZER = "model-digest-1", "tokenizer-digest-1"
TENANT, SESSION = "tenant-secret-name", "session-secret-name"


def make_store(root: Path, **overrides: str) -> ColdStore:
    digests = {"model_digest": MODEL, "tokenizer_digest": TOKENIZER, **overrides}
    return ColdStore(root, **digests)


def make_entry(
    identity: CacheIdentity, *, tokens: int = 40, scheme: str = "int8", last_used_ms: int = 1
) -> ColdEntry:
    generator = torch.Generator().manual_seed(tokens)
    kv = torch.randn(4, tokens, 2, 3, 64, generator=generator)
    return ColdEntry(
        identity=identity,
        token_ids=list(range(100, 100 + tokens)),
        kv=quantize(kv, scheme),  # type: ignore[arg-type]
        model_digest=MODEL,
        tokenizer_digest=TOKENIZER,
        created_ms=1000,
        last_used_ms=last_used_ms,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "kv" / MODEL


@pytest.fixture
def store(root: Path) -> ColdStore:
    return make_store(root)


@pytest.mark.parametrize(("scheme", "max_ratio"), [("none", 2.0), ("int8", 0.55), ("int4", 0.30)])
def test_round_trip_each_scheme(store: ColdStore, scheme: str, max_ratio: float):
    identity = CacheIdentity(TENANT, SESSION)
    entry = make_entry(identity, tokens=128, scheme=scheme, last_used_ms=42)
    written = store.save(entry)
    assert written == store.path_of(identity).stat().st_size == store.total_bytes()
    fp16_bytes_per_token = 4 * 2 * 3 * 64 * 2
    assert entry.kv.nbytes / 128 / fp16_bytes_per_token <= max_ratio
    # The file adds only a header to the tensors.
    assert written - entry.kv.nbytes < 4096
    loaded = store.load(identity)
    assert loaded is not None
    assert loaded.identity == identity and loaded.token_ids == entry.token_ids
    assert (loaded.created_ms, loaded.last_used_ms) == (1000, 42)
    assert (loaded.model_digest, loaded.tokenizer_digest) == (MODEL, TOKENIZER)
    assert loaded.kv.scheme == scheme and loaded.kv.shape == entry.kv.shape
    assert torch.equal(dequantize(loaded.kv), dequantize(entry.kv))


def test_bfloat16_and_empty_token_lists_survive(store: ColdStore):
    identity = CacheIdentity("t", "s")
    kv = torch.randn(2, 0, 2, 3, 64).bfloat16()
    entry = make_entry(identity)
    entry.kv, entry.token_ids = quantize(kv, "none"), []
    store.save(entry)
    loaded = store.load(identity)
    assert loaded is not None and loaded.token_ids == [] and loaded.kv.dtype == torch.bfloat16


def test_absent_identity_loads_as_none(store: ColdStore):
    assert store.load(CacheIdentity("t", "nobody")) is None
    assert store.delete(CacheIdentity("t", "nobody")) is False


def test_file_names_reveal_neither_tenant_nor_session(store: ColdStore, root: Path):
    store.save(make_entry(CacheIdentity(TENANT, SESSION)))
    names = [p.name for p in root.parent.rglob("*")]
    assert names and not any(TENANT in n or SESSION in n for n in names)


def test_file_contents_reveal_neither_ids_nor_tokens(store: ColdStore):
    identity = CacheIdentity(TENANT, SESSION)
    entry = make_entry(identity)
    store.save(entry)
    data = store.path_of(identity).read_bytes()
    assert TENANT.encode() not in data and SESSION.encode() not in data
    assert _clear_tokens(entry.token_ids) not in data  # the conversation, as tokens
    assert store.file_id(identity).encode() in data  # only the keyed hash
    loaded = store.load(identity)
    assert loaded is not None and loaded.token_ids == entry.token_ids
    (listed,) = store.list()
    assert listed.identity == identity


def test_a_file_renamed_to_another_session_or_read_with_another_key_is_refused(
    store: ColdStore, root: Path
):
    mine, theirs = CacheIdentity("tenant-a", "s"), CacheIdentity("tenant-b", "s")
    store.save(make_entry(mine))
    os.replace(store.path_of(mine), store.path_of(theirs))
    with pytest.raises(CacheRejected) as refused:
        store.load(theirs)
    assert refused.value.reason == "corrupt"
    store.save(make_entry(mine))
    stranger = ColdStore(root, model_digest=MODEL, tokenizer_digest=TOKENIZER, secret=b"k" * 32)
    os.replace(store.path_of(mine), stranger.path_of(mine))
    with pytest.raises(CacheRejected):
        stranger.load(mine)
    assert stranger.list() == []  # its identity does not open: skipped, not shown


def test_files_written_before_sealing_are_read_and_resealed(store: ColdStore):
    identity = CacheIdentity(TENANT, SESSION)
    entry = make_entry(identity, tokens=12)
    _write_format_2(store, entry)
    clear = store.path_of(identity).read_bytes()
    assert TENANT.encode() in clear and b'"format_version":"2"' in clear
    (listed,) = store.list()  # the listing at start reseals it
    assert listed.identity == identity
    sealed = store.path_of(identity).read_bytes()
    assert TENANT.encode() not in sealed and b'"format_version":"3"' in sealed
    loaded = store.load(identity)
    assert loaded is not None and loaded.token_ids == entry.token_ids


def _clear_tokens(token_ids: list[int]) -> bytes:
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(token_ids)}i", *token_ids))


def _write_format_2(store: ColdStore, entry: ColdEntry) -> None:
    """A file as Roost wrote it before ids and tokens were sealed."""
    import json

    from safetensors.torch import save as save_tensors

    from roost.kvcache import cold_store

    kv = entry.kv
    metadata = {
        "format_version": "2", "tenant_id": entry.identity.tenant_id,
        "session_id": entry.identity.session_id, "model_digest": entry.model_digest,
        "tokenizer_digest": entry.tokenizer_digest, "scheme": kv.scheme,
        "dtype": str(kv.dtype).removeprefix("torch."), "shape": json.dumps(list(kv.shape)),
        "token_ids": _clear_tokens(entry.token_ids).decode(), "num_tokens": str(kv.num_tokens),
        "created_ms": str(entry.created_ms), "last_used_ms": str(entry.last_used_ms),
    }  # fmt: skip
    parts = {name: t.contiguous() for name, t in kv.parts.items()}
    metadata["checksum"] = cold_store._checksum(parts, metadata)
    store.path_of(entry.identity).write_bytes(save_tensors(parts, metadata))


def test_same_session_of_two_tenants_gets_two_files(store: ColdStore, root: Path):
    a, b = CacheIdentity("tenant-a", "chat"), CacheIdentity("tenant-b", "chat")
    store.save(make_entry(a, tokens=10))
    store.save(make_entry(b, tokens=20))
    assert store.path_of(a) != store.path_of(b)
    assert len(list(root.glob("*.safetensors"))) == 2
    loaded_a, loaded_b = store.load(a), store.load(b)
    assert loaded_a is not None and loaded_b is not None
    assert (loaded_a.kv.num_tokens, loaded_b.kv.num_tokens) == (10, 20)
    # Concatenation cannot collide: ("ab", "c") and ("a", "bc") are different sessions.
    assert store.file_id(CacheIdentity("ab", "c")) != store.file_id(CacheIdentity("a", "bc"))


def test_the_naming_secret_is_private_and_kept_across_restarts(root: Path):
    first = make_store(root).file_id(CacheIdentity("t", "s"))
    secret = root.parent / ".secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert make_store(root).file_id(CacheIdentity("t", "s")) == first
    other_install = ColdStore(root, model_digest=MODEL, tokenizer_digest=TOKENIZER, secret=b"x")
    assert other_install.file_id(CacheIdentity("t", "s")) != first


def test_a_crash_before_the_rename_leaves_no_file(
    store: ColdStore, root: Path, monkeypatch: pytest.MonkeyPatch
):
    identity = CacheIdentity("t", "s")
    store.save(make_entry(identity, tokens=8))
    before = store.path_of(identity).read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        store.save(make_entry(identity, tokens=16))
    with pytest.raises(OSError, match="disk vanished"):
        store.save(make_entry(CacheIdentity("t", "new"), tokens=16))
    monkeypatch.undo()
    assert store.path_of(identity).read_bytes() == before  # the old file, intact
    assert not store.path_of(CacheIdentity("t", "new")).exists()
    assert sorted(p.name for p in root.iterdir()) == [store.path_of(identity).name]


def test_another_model_is_refused_and_its_file_kept(store: ColdStore, root: Path):
    identity = CacheIdentity("t", "s")
    store.save(make_entry(identity))
    other = make_store(root, model_digest="model-digest-2")
    with pytest.raises(CacheRejected) as refused:
        other.load(identity)
    assert refused.value.reason == "model_mismatch"
    assert store.path_of(identity).exists()


def test_another_tokenizer_is_refused_and_its_file_kept(store: ColdStore, root: Path):
    identity = CacheIdentity("t", "s")
    store.save(make_entry(identity))
    other = make_store(root, tokenizer_digest="tokenizer-digest-2")
    with pytest.raises(CacheRejected) as refused:
        other.load(identity)
    assert refused.value.reason == "tokenizer_mismatch"
    assert store.path_of(identity).exists()


def test_saving_an_entry_of_another_model_is_a_bug(store: ColdStore):
    entry = make_entry(CacheIdentity("t", "s"))
    entry.model_digest = "elsewhere"
    with pytest.raises(ValueError, match="another model"):
        store.save(entry)


def corrupt_truncated(data: bytes) -> bytes:
    return data[: len(data) - 100]


def corrupt_tensor_byte(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[-50] ^= 0x01
    return bytes(flipped)


def corrupt_metadata_byte(data: bytes) -> bytes:
    at = data.index(b'"created_ms":"') + len(b'"created_ms":"')
    flipped = bytearray(data)
    flipped[at] = ord("9") if flipped[at] != ord("9") else ord("8")  # same length, new value
    return bytes(flipped)


def corrupt_header_length(data: bytes) -> bytes:
    return b"\xff" * 8 + data[8:]


@pytest.mark.parametrize(
    "damage",
    [corrupt_truncated, corrupt_tensor_byte, corrupt_metadata_byte, corrupt_header_length],
)
def test_damaged_files_are_detected_and_deleted(store: ColdStore, damage):
    identity = CacheIdentity(TENANT, SESSION)
    store.save(make_entry(identity))
    path = store.path_of(identity)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CacheRejected) as refused:
        store.load(identity)
    assert refused.value.reason == "corrupt"
    assert not path.exists()
    assert store.load(identity) is None


def test_listing_reads_headers_only(store: ColdStore):
    a, b = CacheIdentity("t", "a"), CacheIdentity("t", "b")
    store.save(make_entry(a, tokens=10, scheme="int4", last_used_ms=5))
    store.save(make_entry(b, tokens=30, scheme="int8", last_used_ms=7))
    # Damage the tensor bytes: the listing must not notice, because it never reads them.
    path_b = store.path_of(b)
    path_b.write_bytes(corrupt_tensor_byte(path_b.read_bytes()))
    rows = {row.identity: row for row in store.list()}
    assert set(rows) == {a, b}
    assert (rows[a].num_tokens, rows[a].scheme, rows[a].last_used_ms) == (10, "int4", 5)
    assert (rows[b].num_tokens, rows[b].scheme, rows[b].last_used_ms) == (30, "int8", 7)
    assert rows[b].nbytes == path_b.stat().st_size and rows[b].path == path_b
    assert store.total_bytes() == rows[a].nbytes + rows[b].nbytes


def test_listing_skips_unreadable_files(store: ColdStore, root: Path):
    store.save(make_entry(CacheIdentity("t", "a")))
    (root / "junk.safetensors").write_bytes(b"\x01")
    assert [row.identity for row in store.list()] == [CacheIdentity("t", "a")]


def test_eviction_removes_least_recently_used_first(store: ColdStore):
    identities = [CacheIdentity("t", f"s{i}") for i in range(4)]
    for identity, last_used in zip(identities, [30, 10, 40, 20], strict=True):
        store.save(make_entry(identity, tokens=16, last_used_ms=last_used))
    size = store.path_of(identities[0]).stat().st_size
    assert store.evict_to(4 * size) == []
    assert store.evict_to(2 * size) == [identities[1], identities[3]]
    assert {row.identity for row in store.list()} == {identities[0], identities[2]}
    assert store.evict_to(0) == [identities[0], identities[2]]
    assert store.total_bytes() == 0


def test_delete(store: ColdStore):
    identity = CacheIdentity("t", "s")
    store.save(make_entry(identity))
    assert store.delete(identity) is True
    assert store.load(identity) is None


def test_concurrent_saves_and_loads_of_different_sessions(store: ColdStore):
    identities = [CacheIdentity("t", f"s{i}") for i in range(8)]
    errors: list[BaseException] = []

    def work(identity: CacheIdentity, tokens: int) -> None:
        try:
            for _ in range(3):
                store.save(make_entry(identity, tokens=tokens))
                loaded = store.load(identity)
                assert loaded is not None and loaded.kv.num_tokens == tokens
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(identity, 8 + i))
        for i, identity in enumerate(identities)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list()) == 8


@pytest.mark.parametrize(("version", "reason", "kept"), [("1", "outdated_format", False),
                                                         ("9", "unsupported_format", True)])  # fmt: skip
def test_files_of_other_format_versions_are_refused(
    store: ColdStore, version: str, reason: str, kept: bool
):
    identity = CacheIdentity(TENANT, SESSION)
    store.save(make_entry(identity))
    path = store.path_of(identity)
    data = path.read_bytes()
    assert b'"format_version":"3"' in data
    path.write_bytes(
        data.replace(b'"format_version":"3"', f'"format_version":"{version}"'.encode())
    )
    with pytest.raises(CacheRejected) as refused:
        store.load(identity)
    assert refused.value.reason == reason
    # An older Roost's file can never be read again; a newer one's may, after an upgrade.
    assert path.exists() is kept
