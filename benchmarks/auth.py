"""What authentication and authorization add to a request (issue 20, Speed).

1. Over HTTP, as a client meets Roost: ``roost serve`` (defaults, but without the local
   model, which this route does not touch) answers ``GET /v1/models`` to the official
   ``openai`` SDK with an API key, with a JWT (RS256, JWKS served on loopback and already
   cached), and, on another server with ``ROOST_AUTH=disabled``, with no credentials.
   "Added" is each p50/p99 minus the disabled server's. The same run measures a third
   server with ``ROOST_AUTH__KEY_CACHE_TTL_S=0`` (``*_uncached``): every request verified
   from scratch, as before verified credentials were cached.
2. In-process diagnostic: the middleware's own work alone (credential → principal →
   route rule → check) on an opened platform: an API key and a JWT, each from the cache of
   verified credentials (the default) and verified in full (a database read + HMAC; an
   RS256 verify + claims). Target: <= 0.3 ms p50.

Prints tables, writes benchmarks/results/auth.json. Run: ``python benchmarks/auth.py``
(``--quick`` for fewer samples). The machine may be shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.jwks_server import JwksServer, SigningKey, claims  # noqa: E402
from tests.support.process import start_server  # noqa: E402

from roost.config import load_settings  # noqa: E402
from roost.platform import Platform  # noqa: E402
from roost.security.api_keys import ApiKeyStore  # noqa: E402
from roost.security.jwt import JwtVerifier  # noqa: E402
from roost.security.key_cache import VerifiedCache  # noqa: E402
from roost.security.principal import Principal  # noqa: E402
from roost.security.route_permissions import RULES, authorize  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
KEY = "auth-benchmark-key-0123456789abcdef"
ISSUER = "https://idp.bench.test"
console = Console()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(samples, 0.5), "p99_ms": pct(samples, 0.99)}


def issuer_env(jwks: JwksServer) -> dict[str, str]:
    issuers = [{"issuer": ISSUER, "jwks_url": jwks.url("/jwks"), "audience": ["roost"],
                "tenant": "default", "default_role": "member"}]  # fmt: skip
    return {"ROOST_AUTH__JWT_ISSUERS": json.dumps(issuers)}


# -- 1. over HTTP ---------------------------------------------------------------------------


async def interleaved_calls(plan: list[tuple[str, str, str]], n: int) -> dict[str, list[float]]:
    """``n`` timed calls per (name, url, credential), taking turns request by request (in a
    rotating order), so that drift in a shared machine's load hits every series alike."""
    clients = {name: openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=credential, max_retries=0)
               for name, url, credential in plan}  # fmt: skip
    try:
        for sdk in clients.values():
            for _ in range(30):  # warm-up: connection, JWKS fetch, caches
                await sdk.models.list()
        series: dict[str, list[float]] = {name: [] for name in clients}
        names = list(clients)
        for i in range(n):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                await clients[name].models.list()
                series[name].append((time.perf_counter() - started) * 1000)
        return series
    finally:
        for sdk in clients.values():
            await sdk.close()


async def over_http(n: int, jwks: JwksServer, signer: SigningKey) -> dict[str, Any]:
    # Rate limits stay on (their bookkeeping is part of every request) but high enough
    # that thousands of requests a minute from one key are never refused.
    base = {"ROOST_ENGINE__ENABLED": "false", "ROOST_MEMORY__EMBEDDER": "hashing",
            "ROOST_LIMITS__KEY__REQUESTS_PER_MINUTE": "10000000",
            "ROOST_LIMITS__TENANT__REQUESTS_PER_MINUTE": "10000000",
            "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
    results: dict[str, Any] = {}
    token = signer.sign(claims(ISSUER, exp=int(time.time()) + 3600))

    def secured(**extra: str) -> Any:
        return start_server({**base, **issuer_env(jwks), "ROOST_API_KEY": KEY,
                             "ROOST_HOME": tempfile.mkdtemp(prefix="roost-bench-auth-"),
                             **extra})  # fmt: skip

    cached = secured()
    uncached = secured(ROOST_AUTH__KEY_CACHE_TTL_S="0")
    open_server = start_server({**base, "ROOST_AUTH": "disabled",
                                "ROOST_HOME": tempfile.mkdtemp(prefix="roost-bench-auth-")})  # fmt: skip
    try:
        series = await interleaved_calls(
            [("no_auth", open_server.url, "unused"), ("api_key", cached.url, KEY),
             ("jwt", cached.url, token), ("api_key_uncached", uncached.url, KEY),
             ("jwt_uncached", uncached.url, token)], n)  # fmt: skip
    finally:
        for server in (cached, uncached, open_server):
            server.stop()
    baseline = summary(series["no_auth"])
    for name, samples in series.items():
        row = summary(samples)
        if name != "no_auth":
            row["added_p50_ms"] = row["p50_ms"] - baseline["p50_ms"]
            row["added_p99_ms"] = row["p99_ms"] - baseline["p99_ms"]
        results[name] = row
    return results


# -- 2. in-process diagnostic ---------------------------------------------------------------


async def in_process(n: int, jwks: JwksServer, signer: SigningKey) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="roost-bench-auth-")
    settings = load_settings(env={"ROOST_HOME": home, **issuer_env(jwks)})
    platform = await Platform.open(settings)
    find_tenant = platform.tenants.find_by_name
    cache: VerifiedCache[Principal] = VerifiedCache(
        platform.auth_changes, settings.auth.key_cache_ttl_s
    )
    verifiers = {"jwt": JwtVerifier(settings.auth.jwt_issuers, find_tenant, cache=cache),
                 "jwt_uncached": JwtVerifier(settings.auth.jwt_issuers, find_tenant)}  # fmt: skip
    key_stores = {"api_key": platform.api_keys, "api_key_uncached": ApiKeyStore(platform.database)}
    try:
        tenant = await platform.tenants.find_by_name("default")
        assert tenant is not None
        _, key = await platform.api_keys.create(tenant.id, "bench")
        token = signer.sign(claims(ISSUER, exp=int(time.time()) + 3600))
        results: dict[str, Any] = {}
        for name in ("api_key", "jwt", "api_key_uncached", "jwt_uncached"):
            samples = []
            for i in range(n + 200):
                started = time.perf_counter()
                if name in key_stores:
                    found = await key_stores[name].verify(key)
                    principal = Principal(found.tenant_id, found.id, found.role, found.operator)
                else:
                    principal = await verifiers[name].verify(token)
                matched = RULES.match("GET", "/v1/threads/thr_123/runs")
                assert matched is not None
                authorize(principal, matched)
                elapsed = (time.perf_counter() - started) * 1000
                if i >= 200:
                    samples.append(elapsed)
            results[name] = summary(samples)
        # The route rule lookup and check alone, for the record.
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            matched = RULES.match("POST", "/admin/tenants/ten_1/keys/abc/rotate")
            assert matched is not None
            samples.append((time.perf_counter() - started) * 1000)
        results["route_rule_lookup"] = summary(samples)
        return results
    finally:
        for verifier in verifiers.values():
            await verifier.close()
        await platform.close()


def table(title: str, rows: dict[str, dict[str, float]]) -> Table:
    shown = Table(title=title)
    for column in ("credential", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"):
        shown.add_column(column, justify="right" if "ms" in column else "left")
    for name, row in rows.items():
        shown.add_row(name, f"{row['p50_ms']:.3f}", f"{row['p99_ms']:.3f}",
                      f"{row['added_p50_ms']:.3f}" if "added_p50_ms" in row else "-",
                      f"{row['added_p99_ms']:.3f}" if "added_p99_ms" in row else "-")  # fmt: skip
    return shown


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_http = 300 if args.quick else 2000
    n_local = 2000 if args.quick else 20000
    signer = SigningKey("bench-1")
    with JwksServer() as jwks:
        jwks.keys = [signer.jwk]
        local = await in_process(n_local, jwks, signer)
        http = await over_http(n_http, jwks, signer)
    report = {
        "cpu": cpu_model(),
        "load_average": os.getloadavg(),
        "http_requests_per_series": n_http,
        "in_process_samples": n_local,
        "http": http,
        "in_process_diagnostic": local,
        "target_added_p50_ms": 0.3,
    }
    console.print(table("GET /v1/models over HTTP, openai SDK (added = minus auth disabled)", http))
    console.print(table("in-process diagnostic: authentication + authorization alone", local))
    console.print(f"CPU: {report['cpu']}; load average: {report['load_average']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "auth.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
