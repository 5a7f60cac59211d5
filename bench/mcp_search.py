"""MCP search tool latency: `search_failures` calls through the SDK client vs /healthz.

    python bench/mcp_search.py --quick                      # 100 calls, demo workspace
    python bench/mcp_search.py                              # 1,000 calls, demo workspace
    python bench/mcp_search.py --quick --incidents 10000    # 100 calls, 10,000 incidents

Runs on the demo workspace (`manage.py seed_demo` is run first if it is not
there), or with `--incidents N` on a throw-away workspace of N real-shaped
incidents (the InterCode dev set imported and diagnosed, copied onto further runs,
as `bench/search.py` builds it; queries are then the first words of its real
error lines, each new to the server). Starts gunicorn (2 workers) on loopback,
opens one session with the official `mcp` client and times each
`search_failures` call end to end. Baseline in the same run: GET /healthz from a
keep-alive client (one trivial query), the floor of this server stack.
Target (issues 6/7, 7/8): p95 ≤ 100 ms at 10,000 incidents.
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


def demo_workspace() -> object:
    from django.core.management import call_command

    from workspaces.models import Workspace

    if not Workspace.objects.filter(slug="demo").exists():
        call_command("seed_demo")
    return Workspace.objects.get(slug="demo")


def filled_workspace(n: int, n_queries: int) -> tuple[object, list[str], int]:
    """A throw-away workspace of `n` real-shaped incidents, and queries from its errors."""
    import os

    from search import _fill, _queries, _source_incidents

    from workspaces.models import Workspace

    workspace = Workspace.objects.create(name="bench mcp", slug=f"bench-mcp-{os.getpid()}")
    _source_incidents(workspace)
    total = _fill(workspace, n)
    return workspace, _queries(workspace, n_queries), total


def workspace_key(workspace: object) -> tuple[object, str]:
    from workspaces.models import Scope
    from workspaces.services import api_key_create

    created = api_key_create(workspace=workspace, name="bench-mcp",  # type: ignore[arg-type]
                             scopes=[Scope.FAILURES_READ], actor=None)  # fmt: skip
    return created.api_key, created.secret


async def time_calls(url: str, key: str, total: int, queries: list[str]) -> list[float]:
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
            await client.call_tool("search_failures", {"query": f"warm up {QUERIES[i % 5]}"})
        for i in range(total):
            started = time.perf_counter()
            result = await client.call_tool("search_failures",
                                                {"query": queries[i % len(queries)]})  # fmt: skip
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
    parser.add_argument("--incidents", type=int, help="a workspace of this many incidents")
    args = parser.parse_args()
    import logging

    import django

    django.setup()
    for name in ("httpx", "httpx2", "mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from hivemind_web import embedded_broker

    total = 100 if args.quick else 1000
    size = None
    if args.incidents:
        workspace, queries, size = filled_workspace(args.incidents, total)
        print(f"{size:,} incidents, {len(queries)} distinct queries from their error lines")
    else:
        workspace, queries = demo_workspace(), QUERIES
    api_key, key = workspace_key(workspace)
    socket_path = Path(tempfile.mkdtemp(prefix="hm-bench-", dir="/tmp")) / "redis.sock"
    broker = embedded_broker.start(socket_path)
    proc, url = start_server(f"redis+socket://{socket_path}")
    try:
        time_healthz(url, 20)
        base = time_healthz(url, total)
        times = asyncio.run(time_calls(url, key, total, queries))
    finally:
        for process in (proc, broker):
            process.terminate()
            process.wait(timeout=30)
        api_key.delete()  # type: ignore[attr-defined]
        if size is not None:
            workspace.delete()  # type: ignore[attr-defined]
    p95 = pct(times, 95)
    print(
        f"RESULT mcp_search_p95_ms={p95:.1f} target<=100 met={'yes' if p95 <= 100 else 'no'} "
        f"baseline_healthz_p95_ms={pct(base, 95):.2f} p50_ms={pct(times, 50):.1f} calls={total} "
        f"incidents={size if size is not None else 'demo'} "
        f"distinct_queries={len(set(queries))}"
    )


if __name__ == "__main__":
    main()
