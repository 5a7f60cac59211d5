"""Deterministic demo traces: a few agents with recurring, distinguishable failures.

Used by `seed_demo` (through the real ingest service) and by the benchmarks.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

# agent -> (tasks, tools, failure modes). A failure mode: (tool, error template,
# probability per trace, the tool that agents which recovered called next). Templates take {n} (a number) and {id} (an order id).
DEMO_AGENTS: dict[str, dict[str, Any]] = {
    "checkout-agent": {
        "tasks": [
            "Refund order {id} for {email}",
            "Apply discount code to cart {id}",
            "Check out cart {id} with saved card",
        ],
        "tools": ["cart.get", "inventory.lookup", "payments.charge", "payments.refund"],
        "modes": [
            (
                "payments.refund",
                "429 Too Many Requests: rate limit exceeded, retry after {n}s",
                0.18,
                "payments.refund",
            ),
            (
                "inventory.lookup",
                "SKU not found: 'sku-{n}' (SKUs are upper case)",
                0.12,
                "inventory.normalize_sku",
            ),
        ],
    },
    "support-agent": {
        "tasks": [
            "Answer ticket #{id} from {email} about a late delivery",
            "Find the customer record for {email} and update the address",
            "Summarise ticket #{id} for the weekly report",
        ],
        "tools": ["crm.search", "crm.update", "kb.search", "email.send"],
        "modes": [
            (
                "crm.search",
                "ReadTimeout: CRM did not answer within {n} ms",
                0.16,
                "crm.search_by_email",
            ),
            (
                "email.send",
                "550 5.1.1 Recipient address rejected: mailbox {id} unavailable",
                0.08,
                "crm.get_contact",
            ),
        ],
    },
    "data-agent": {
        "tasks": [
            "Build the daily revenue table for {date}",
            "Export signups since {date} to CSV",
            "Reconcile payouts for batch {id}",
        ],
        "tools": ["sql.query", "fs.write", "fs.read", "http.get"],
        "modes": [
            (
                "sql.query",
                'psycopg.errors.UndefinedColumn: column "created" does not exist (did you mean "created_at"?) line {n}',
                0.2,
                "sql.describe_table",
            ),
            (
                "fs.write",
                "PermissionError: [Errno 13] Permission denied: '/data/exports/run_{n}.csv'",
                0.07,
                "fs.write_tmp",
            ),
        ],
    },
}


def demo_traces(
    *, count: int, seed: int = 7, days: int = 30, now: datetime
) -> list[dict[str, Any]]:
    """`count` traces in the native ingest format, spread over the last `days`."""
    rng = random.Random(seed)
    agents = list(DEMO_AGENTS)
    return [_trace(rng, agents[i % len(agents)], i, days, now) for i in range(count)]


def _trace(rng: random.Random, agent: str, i: int, days: int, now: datetime) -> dict[str, Any]:
    spec = DEMO_AGENTS[agent]
    started = now - timedelta(seconds=rng.randint(0, days * 86400))
    order = rng.randint(1000, 99999)
    task = rng.choice(spec["tasks"]).format(
        id=order, email=f"customer{order}@example.com", date=started.date().isoformat()
    )
    steps: list[dict[str, Any]] = [{"kind": "user_prompt", "input": task}]
    failed_mode = next((m for m in spec["modes"] if rng.random() < m[2]), None)
    for n in range(rng.randint(3, 7)):
        tool = rng.choice(spec["tools"])
        call = {"kind": "tool_call", "name": tool, "input": {"id": order, "attempt": n + 1},
                "duration_ms": rng.randint(20, 900), "tokens": rng.randint(50, 400)}  # fmt: skip
        steps.append(call)
        steps.append({"kind": "tool_result", "name": tool, "output": {"ok": True}})
    recovered = False
    if failed_mode is not None:
        tool, template, _, recovery = failed_mode
        steps.append({
            "kind": "tool_call", "name": tool, "input": {"id": order, "amount": rng.randint(5, 500)},
            "error": template.format(n=rng.randint(1, 30000), id=order),
            "duration_ms": rng.randint(100, 30000),
        })  # fmt: skip
        # Some agents find their way around the failure; the offline distiller
        # learns its "Do" section from what they did next.
        recovered = rng.random() < 0.5
        if recovered:
            steps.append({"kind": "tool_call", "name": recovery, "input": {"id": order},
                          "output": {"ok": True}, "duration_ms": rng.randint(20, 900)})  # fmt: skip
            steps.append({"kind": "assistant_message", "output": "Done, after a workaround."})
        else:
            steps.append({"kind": "assistant_message", "output": "I could not finish the task."})
    else:
        steps.append({"kind": "assistant_message", "output": "Done."})
    for index, step in enumerate(steps):
        step["index"] = index
        step["started_at"] = (started + timedelta(seconds=index * 2)).isoformat()
    return {
        "external_id": f"demo-{agent}-{i:05d}",
        "agent": agent,
        "session_id": f"demo-session-{i // 5:05d}",
        "task": task,
        "status": "failed" if failed_mode and not recovered else "succeeded",
        "reward": 0.0 if failed_mode and not recovered else 1.0,
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=len(steps) * 2)).isoformat(),
        "model": "claude-haiku-4-5",
        "metadata": {"env": "demo"},
        "steps": steps,
    }
