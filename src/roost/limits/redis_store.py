"""The limit store on Redis: one Lua script per decision, atomic on the server, with the
server's clock (``TIME``), so every process and host sees the same buckets and time.

A bucket is a hash ``{l: level, t: ms}`` that expires once it would be full again anyway;
a scope's leases are a sorted set of lease ids scored by their expiry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from redis.exceptions import NoScriptError, RedisError

from roost.config import redact_url
from roost.errors import StorageUnavailable
from roost.limits.buckets import (
    CONCURRENCY_RETRY_S,
    Bucket,
    Lease,
    Mode,
    Verdict,
)
from roost.storage.redis import RedisClient

PREFIX = "roost:limits:"
_MODES = {Mode.TAKE: 0, Mode.CHECK: 1, Mode.FORCE: 2}
_FINISH = 3  # FORCE the buckets and remove the leases: the end of a request
# KEYS: bucket keys, then lease keys.
# ARGV: number of buckets, mode, capacity/per-ms/cost/debit per bucket, then limit/id/ttl ms
# per lease (mode 3: only the id counts).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local mode = tonumber(ARGV[2])
local levels = {}
local refused = 0
local wait = 0
for i = 1, n do
  local cap = tonumber(ARGV[4 * i - 1])
  local rate = tonumber(ARGV[4 * i])
  local cost = tonumber(ARGV[4 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = cap
  if state[1] then
    level = math.min(cap, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
  end
  levels[i] = level
  if mode < 2 and level < cost then
    local needed = (cost - level) / rate
    if refused == 0 or needed > wait then
      refused = i
      wait = needed
    end
  end
end
if refused > 0 then
  return {refused, tostring(wait)}
end
local m = #KEYS - n
if mode == 3 then
  for j = 1, m do
    redis.call('ZREM', KEYS[n + j], ARGV[4 * n + 3 * j + 1])
  end
  m = 0
end
for j = 1, m do
  local key = KEYS[n + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if mode < 2 and redis.call('ZCARD', key) >= tonumber(ARGV[4 * n + 3 * j]) then
    return {n + j, '0'}
  end
end
if mode == 1 then
  return {0, '0'}
end
for i = 1, n do
  if mode >= 2 or ARGV[4 * i + 2] == '1' then
    local cap = tonumber(ARGV[4 * i - 1])
    local rate = tonumber(ARGV[4 * i])
    local level = math.min(cap, levels[i] - tonumber(ARGV[4 * i + 1]))
    redis.call('HSET', KEYS[i], 'l', tostring(level), 't', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil((cap - level) / rate) + 1000)
  end
end
for j = 1, m do
  local ttl = tonumber(ARGV[4 * n + 3 * j + 2])
  redis.call('ZADD', KEYS[n + j], now + ttl, ARGV[4 * n + 3 * j + 1])
  redis.call('PEXPIRE', KEYS[n + j], ttl + 1000)
end
return {0, '0'}
"""


class RedisLimitStore:
    backend = "redis"

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._sha: str | None = None

    async def acquire(
        self, buckets: Sequence[Bucket], leases: Sequence[Lease] = (), mode: Mode = Mode.TAKE
    ) -> Verdict:
        keys, args = _script_args(buckets, _MODES[mode])
        for lease in leases:
            keys.append(PREFIX + lease.key)
            args += [lease.limit, lease.lease_id, math.ceil(lease.ttl_s * 1000)]
        refused, wait_ms = await self._eval(keys, args)
        if refused == 0:
            return Verdict(True)
        if refused > len(buckets):
            return Verdict(False, leases[refused - len(buckets) - 1].name, CONCURRENCY_RETRY_S)
        return Verdict(False, buckets[refused - 1].name, float(wait_ms) / 1000)

    async def _eval(self, keys: list[str], args: list[str | int | float]) -> tuple[int, str]:
        client = self.redis.client
        try:
            if self._sha is None:
                self._sha = str(await client.script_load(_SCRIPT))
            try:
                result = await client.evalsha(self._sha, len(keys), *keys, *args)
            except NoScriptError:  # the server restarted and forgot the script
                self._sha = None
                result = await client.eval(_SCRIPT, len(keys), *keys, *args)
        except (RedisError, OSError) as exc:
            raise StorageUnavailable(
                f"the limit store (Redis at {redact_url(self.redis.url)}) failed: {exc}"
            ) from exc
        refused, wait = result
        return int(refused), wait.decode() if isinstance(wait, bytes) else str(wait)

    async def finish(self, buckets: Sequence[Bucket], leases: Sequence[tuple[str, str]]) -> None:
        keys, args = _script_args(buckets, _FINISH)
        for key, lease_id in leases:
            keys.append(PREFIX + key)
            args += [0, lease_id, 0]
        await self._eval(keys, args)

    async def release(self, leases: Sequence[tuple[str, str]]) -> None:
        try:
            async with self.redis.client.pipeline(transaction=False) as pipe:
                for key, lease_id in leases:
                    pipe.zrem(PREFIX + key, lease_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StorageUnavailable("the limit store (Redis) failed to release a lease") from exc

    async def reset(self, prefix: str) -> int:
        client = self.redis.client
        count = 0
        async for key in client.scan_iter(match=_glob_escape(PREFIX + prefix) + "*", count=500):
            count += int(await client.delete(key))
        return count

    async def close(self) -> None:
        return None


def _script_args(buckets: Sequence[Bucket], mode: int) -> tuple[list[str], list[str | int | float]]:
    keys = [PREFIX + b.key for b in buckets]
    args: list[str | int | float] = [len(buckets), mode]
    for bucket in buckets:
        args += [bucket.capacity, bucket.per_second / 1000, bucket.cost, int(bucket.debit)]
    return keys, args


def _glob_escape(value: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in value)
