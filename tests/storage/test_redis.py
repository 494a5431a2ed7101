"""Redis connection against a real server on loopback."""

from __future__ import annotations

import pytest

from roost.errors import StorageUnavailable
from roost.storage.redis import connect_redis
from tests.support.servers import free_port


async def test_connects_and_answers(redis_url: str) -> None:
    client = await connect_redis(redis_url)
    try:
        await client.client.set("roost:test", b"1")
        assert await client.client.get("roost:test") == b"1"
    finally:
        await client.aclose()


async def test_unreachable_redis_is_named_with_password_redacted() -> None:
    url = f"redis://:s3cretpass@127.0.0.1:{free_port()}/0"
    with pytest.raises(StorageUnavailable) as info:
        await connect_redis(url, timeout_s=2)
    assert "redis://***@127.0.0.1" in info.value.message
    assert "s3cretpass" not in info.value.message
