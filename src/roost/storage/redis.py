"""Redis connection for the features that want it (short-term memory, rate limits, pub/sub)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from roost.config import redact_url
from roost.errors import StorageUnavailable


class RedisClient:
    """An async Redis client plus the URL it came from, for error messages that name it."""

    def __init__(self, client: Redis, url: str) -> None:
        self.client = client
        self.url = url

    async def check(self) -> None:
        """Raise :class:`StorageUnavailable` naming the URL unless Redis answers PING."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise StorageUnavailable(
                f"cannot reach Redis at {redact_url(self.url)}: {exc}"
            ) from exc

    async def aclose(self) -> None:
        await self.client.aclose()


async def connect_redis(url: str, *, timeout_s: float = 5.0) -> RedisClient:
    """Connect to Redis at ``url`` and check that it answers."""
    client = RedisClient(
        Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s), url
    )
    try:
        await client.check()
    except StorageUnavailable:
        await client.aclose()
        raise
    return client
