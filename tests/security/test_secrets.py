"""Secrets at rest: AES-GCM under a key derived from the master secret, bound to tenant
and name, audited in the same transaction (the kernel's resolution of provider references:
tests/llm/test_provider_secrets.py)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import Settings, load_settings
from roost.errors import InvalidRequest, NotFound
from roost.platform import Platform
from roost.security.audit import AuditFilter
from roost.security.secrets import SecretUnavailable

VALUE = "sk-h-audit-0123456789abcdef"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    opened = await Platform.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def test_stored_encrypted_listed_without_value_and_audited(
    platform: Platform, settings: Settings
) -> None:
    tenant = await platform.default_tenant_id()
    store = platform.secrets()
    info = await store.set(tenant, "openai", VALUE, actor="cli")
    assert info.name == "openai"
    row = await platform.database.fetch_one("SELECT ciphertext FROM secrets")
    assert row is not None and VALUE not in row["ciphertext"]
    assert row["ciphertext"].startswith("v1:")
    assert await store.reveal(tenant, "openai") == VALUE
    assert [s.name for s in await store.list(tenant)] == ["openai"]
    key_file = settings.home / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    await store.set(tenant, "openai", VALUE + "-rotated", actor="cli")
    assert await store.reveal(tenant, "openai") == VALUE + "-rotated"
    await store.delete(tenant, "openai", actor="cli")
    with pytest.raises(NotFound):
        await store.delete(tenant, "openai", actor="cli")
    events = (await platform.audit.query(AuditFilter(tenant_id=tenant, action="secret.*"))).events
    assert [(e.action, e.target) for e in events] == [
        ("secret.delete", "openai"),
        ("secret.set", "openai"),
        ("secret.set", "openai"),
    ]
    assert all(VALUE not in str(e.to_dict()) for e in events)


async def test_a_ciphertext_only_opens_under_its_own_name_and_master_key(
    platform: Platform, roost_home: Path
) -> None:
    tenant = await platform.default_tenant_id()
    store = platform.secrets()
    await store.set(tenant, "a", VALUE, actor="cli")
    await store.set(tenant, "b", "other", actor="cli")
    # an intruder copies a's ciphertext onto b: GCM's associated data refuses it
    await platform.database.execute(
        "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE name = 'a')"
        " WHERE name = 'b'"
    )
    with pytest.raises(SecretUnavailable, match="cannot be decrypted"):
        await store.reveal(tenant, "b")
    other_master = load_settings(env={"ROOST_HOME": str(roost_home),
                                      "ROOST_SECRETS__MASTER_KEY": "another-master-key-0123"})  # fmt: skip
    with pytest.raises(SecretUnavailable, match="master key"):
        await Platform(other_master, platform.database, platform.tenants, platform.api_keys,
                       platform.audit).secrets().reveal(tenant, "a")  # fmt: skip


async def test_bad_names_and_empty_values_are_refused(platform: Platform) -> None:
    tenant = await platform.default_tenant_id()
    for name in ("", "../x", "a b", "x" * 65):
        with pytest.raises(InvalidRequest):
            await platform.secrets().set(tenant, name, VALUE, actor="cli")
    with pytest.raises(InvalidRequest):
        await platform.secrets().set(tenant, "ok", "", actor="cli")


async def test_a_change_that_cannot_be_audited_is_not_made(platform: Platform) -> None:
    tenant = await platform.default_tenant_id()
    await platform.database.execute("DROP TABLE audit_heads")
    with pytest.raises(Exception, match="audit_heads"):
        await platform.secrets().set(tenant, "openai", VALUE, actor="cli")
    assert await platform.database.fetch_all("SELECT name FROM secrets") == []
