"""Run-completion webhooks: signed with HMAC-SHA256 and retried with exponential backoff.

The receiver checks ``X-Roost-Signature: t=<unix seconds>,v1=<hex>`` where the hex is
``HMAC_SHA256(secret, f"{t}.{body}")``, and should refuse stale timestamps (replays).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from roost.observe.logging import get_logger
from roost.observe.propagation import current_headers
from roost.tools.base import ToolFailure
from roost.tools.netguard import NetworkPolicy, fetch

log = get_logger("roost.agents")
SIGNATURE_HEADER = "X-Roost-Signature"


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    """Check a signature header (what a receiver does); refuses stale or altered bodies."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp)
    return hmac.compare_digest(expected, header)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


class WebhookSender:
    """Posts JSON events; 2xx is success, anything else (or no answer) is retried.

    Deliveries go through the tool layer's SSRF guard (``network``): a tenant cannot point
    a webhook at loopback, private or metadata addresses unless the operator allowed those
    networks. ``transport`` (tests) bypasses it.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        network: NetworkPolicy | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.network = network or NetworkPolicy(max_redirects=0, timeout_s=timeout_s)
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.transport = transport
        self.sleep = sleep

    async def deliver(self, url: str, event: dict[str, Any]) -> DeliveryResult:
        body = json.dumps(event, sort_keys=True).encode()
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self.max_attempts + 1):
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
                "X-Roost-Delivery-Attempt": str(attempt),
            }
            try:
                status, error = await self._post(url, body, headers), None
                if 200 <= status < 300:
                    return DeliveryResult(True, attempt, status)
            except (httpx.HTTPError, ToolFailure) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
                if getattr(exc, "type", None) == "network_refused":
                    break  # a refused destination will not become allowed by waiting
            if attempt < self.max_attempts:
                await self.sleep(self.backoff_s * 2 ** (attempt - 1))
        log.warning("webhook not delivered", url=url, status=status, error=error)
        return DeliveryResult(False, attempt, status, error)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        headers = {**current_headers(), **headers}  # the receiver may continue the run's trace
        if self.transport is None:
            result = await fetch(url, self.network, method="POST", headers=headers, body=body)
            return result.status
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout_s) as client:
            return (await client.post(url, content=body, headers=headers)).status_code
