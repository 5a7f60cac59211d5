"""MCP search tool latency: `search_failures` calls through the SDK client vs /healthz.

    python bench/mcp_search.py --quick     # 100 calls
    python bench/mcp_search.py             # 1,000 calls

Runs on the demo workspace (`manage.py seed_demo` is run first if it is not
there), starts gunicorn (2 workers) on loopback, opens one session with the
official `mcp` client and times each `search_failures` call end to end (plain
words, several queries in turn). Baseline in the same run: GET /healthz from a
keep-alive client (one trivial query), the floor of this server stack.
Target (issue 6/7): p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import start_server  # noqa: E402  (same gunicorn start-up as bench/ingest.py)

QUERIES = [
    "crm timeouts",
    "refund failed with a rate limit",
    "what went wrong with payments this week",
    "permission denied errors of support-agent",
    "order not found",
]


def demo_key() -> tuple[object, str]:
    from django.core.management import call_command

    from workspaces.models import Scope, Workspace
    from workspaces.services import api_key_create

    if not Workspace.objects.filter(slug="demo").exists():
        call_command("seed_demo")
    workspace = Workspace.objects.get(slug="demo")
    created = api_key_create(workspace=workspace, name="bench-mcp",
                             scopes=[Scope.FAILURES_READ], actor=None)  # fmt: skip
    return created.api_key, created.secret


async def time_calls(url: str, key: str, total: int) -> list[float]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    times = []
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        for i in range(10):  # warm-up: model load, connections
            await client.call_tool("search_failures", {"query": QUERIES[i % len(QUERIES)]})
        for i in range(total):
            started = time.perf_counter()
            result = await client.call_tool("search_failures",
                                                {"query": QUERIES[i % len(QUERIES)]})  # fmt: skip
            times.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result
    return times


def time_healthz(url: str, total: int) -> list[float]:
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for _ in range(total):
        started = time.perf_counter()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
    return times


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import logging

    import django

    django.setup()
    for name in ("httpx", "httpx2", "mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from hivemind_web import embedded_broker

    total = 100 if args.quick else 1000
    api_key, key = demo_key()
    socket_path = Path(tempfile.mkdtemp(prefix="hm-bench-", dir="/tmp")) / "redis.sock"
    broker = embedded_broker.start(socket_path)
    proc, url = start_server(f"redis+socket://{socket_path}")
    try:
        time_healthz(url, 20)
        base = time_healthz(url, total)
        times = asyncio.run(time_calls(url, key, total))
    finally:
        for process in (proc, broker):
            process.terminate()
            process.wait(timeout=30)
        api_key.delete()  # type: ignore[attr-defined]
    p95 = pct(times, 95)
    print(
        f"RESULT mcp_search_p95_ms={p95:.1f} target<=100 met={'yes' if p95 <= 100 else 'no'} "
        f"baseline_healthz_p95_ms={pct(base, 95):.2f} p50_ms={pct(times, 50):.1f} calls={total}"
    )


if __name__ == "__main__":
    main()
