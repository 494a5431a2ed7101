"""``roost monitor``: a live view of a running server, refreshed every second.

Everything comes from the server's HTTP API: ``/metrics`` (requests, engine queue and
batch, KV tiers, runs by agent), ``/v1/traces?status=error`` (recent errors, from the
trace store) and ``/v1/usage`` (spend since midnight UTC). Rates are the difference of
two scrapes, so ``--once`` scrapes twice, ``--interval`` apart.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.table import Table

from roost.cli.common import console, settings_from
from roost.cli.server_client import ApiKeyOption, UrlOption, server_client, unreachable

if TYPE_CHECKING:
    import httpx

_5XX = [str(status) for status in range(500, 600)]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client) -> dict[str, Any]:
    """One reading of the server: its metric samples, recent errors, spend today."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics = client.get("/metrics")
    metrics.raise_for_status()
    samples: Samples = {}
    for family in text_string_to_metric_families(metrics.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    usage = client.get("/v1/usage", params={"since": int(midnight.timestamp() * 1000)})
    errors = client.get("/v1/traces", params={"status": "error", "limit": 5})
    return {
        "at": time.monotonic(),
        "samples": samples,
        "spend_usd": usage.json().get("total_cost_usd", 0.0) if usage.is_success else None,
        "errors": errors.json()["data"] if errors.is_success else [],
    }


def view(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the monitor shows, from two readings (rates are per second between them)."""
    seconds = max(1e-6, after["at"] - before["at"])
    now, then = after["samples"], before["samples"]

    def total(name: str, **match: str) -> float:
        return sum(v for (n, labels), v in now.items() if n == name and _has(labels, match))

    def rate(name: str, **match: str) -> float:
        old = sum(v for (n, labels), v in then.items() if n == name and _has(labels, match))
        return max(0.0, total(name, **match) - old) / seconds

    runs_in_flight = {
        dict(labels)["agent"]: int(v)
        for (n, labels), v in now.items()
        if n == "roost_runs_24h" and dict(labels).get("status") in ("running", "queued") and v
    }
    return {
        "requests_per_s": round(rate("roost_http_requests_total"), 2),
        "errors_per_s": round(sum(rate("roost_http_requests_total", status=s) for s in _5XX), 2),
        "in_flight_requests": int(total("roost_http_requests_in_flight")),
        "engine": {
            "waiting": int(total("roost_engine_waiting_sequences")),
            "running": int(total("roost_engine_running_sequences")),
            "kv_blocks_used": int(total("roost_engine_kv_blocks_used")),
            "kv_blocks_free": int(total("roost_engine_kv_blocks_free")),
            "decode_tokens_per_s": round(total("roost_engine_decode_tokens_per_second"), 1),
        },
        "kv_tiers_bytes": {
            dict(labels)["tier"]: int(v)
            for (n, labels), v in now.items()
            if n == "roost_kv_session_bytes"
        },
        "runs_in_flight": runs_in_flight,
        "memory_bytes": int(total("roost_process_resident_memory_bytes")),
        "spend_today_usd": after["spend_usd"],
        "recent_errors": [
            {"trace_id": e["trace_id"], "name": e["name"], "start_time_us": e["start_time_us"]}
            for e in after["errors"]
        ],
    }


def _has(labels: tuple[tuple[str, str], ...], match: dict[str, str]) -> bool:
    found = dict(labels)
    return all(found.get(k) == v for k, v in match.items())


def render(shown: dict[str, Any]) -> Group:
    top = Table("requests/s", "5xx/s", "in flight", "engine waiting", "engine batch",
                "KV blocks used/free", "memory", "spend today", title="roost monitor")  # fmt: skip
    engine = shown["engine"]
    spend = shown["spend_today_usd"]
    top.add_row(
        f"{shown['requests_per_s']:.1f}", f"{shown['errors_per_s']:.1f}",
        str(shown["in_flight_requests"]), str(engine["waiting"]), str(engine["running"]),
        f"{engine['kv_blocks_used']}/{engine['kv_blocks_free']}",
        f"{shown['memory_bytes'] / 2**20:.0f} MiB", "-" if spend is None else f"${spend:.4f}",
    )  # fmt: skip
    tiers = Table("KV tier", "bytes")
    for tier, size in sorted(shown["kv_tiers_bytes"].items()):
        tiers.add_row(tier, f"{size:,}")
    runs = Table("agent", "runs in flight")
    for agent, count in sorted(shown["runs_in_flight"].items()):
        runs.add_row(agent, str(count))
    errors = Table("recent error trace", "name")
    for error in shown["recent_errors"]:
        errors.add_row(error["trace_id"], error["name"])
    return Group(top, tiers, runs, errors)


def monitor(
    ctx: typer.Context,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    once: Annotated[bool, typer.Option("--once", help="One reading, then exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with --once)")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds")] = 1.0,
) -> None:
    """Watch a running server: requests/s, engine queue and batch, KV tiers, runs in
    flight by agent, recent errors, spend today."""
    import httpx

    settings = settings_from(ctx)
    with server_client(settings, url, api_key, read_timeout=10) as client:
        try:
            before = scrape(client)
            if once:
                time.sleep(interval)  # a rate needs two readings
                shown = view(before, scrape(client))
                if as_json:
                    console.print_json(data=shown)
                else:
                    console.print(render(shown))
                return
            from rich.live import Live

            with Live(console=console, refresh_per_second=4) as live:
                while True:
                    time.sleep(interval)
                    after = scrape(client)
                    live.update(render(view(before, after)))
                    before = after
        except httpx.HTTPError as exc:
            raise unreachable(client, exc) from exc
        except KeyboardInterrupt:
            return
