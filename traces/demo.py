"""Deterministic demo traces: a few agents with recurring, distinguishable failures.

Used by `seed_demo` (through the real ingest service) and by the benchmarks.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

# agent -> (tasks, failure modes). A task: (its text, the tools a run of it calls,
# in order: an agent follows the same procedure for the same kind of task, so its
# runs differ by their ids and times, not by a random draw of tools). A failure
# mode: (tool, error template, probability per run of a task whose procedure ends
# on that tool, the tool that the runs which recovered called next). The failing
# call is where the run's procedure would have ended: a failed run differs from a
# successful one of its task by that error alone, the failure the demo is built
# with. Templates take {n} (a number), {id} (an order id), {wait} (the seconds a
# rate limit asks for, which the runs that recovered from it waited), {ms} (a
# client's timeout) and {line} (a line of a short query).
DEMO_AGENTS: dict[str, dict[str, Any]] = {
    "checkout-agent": {
        "tasks": [
            ("Refund order {id} for {email}", ["cart.get", "payments.refund"]),
            ("Apply discount code to cart {id}", ["cart.get", "inventory.lookup"]),
            (
                "Check out cart {id} with saved card",
                ["cart.get", "inventory.lookup", "payments.charge"],
            ),
        ],  # fmt: skip
        "modes": [
            (
                "payments.refund",
                "429 Too Many Requests: rate limit exceeded, retry after {wait}s",
                0.3,
                "payments.refund",
            ),
            (
                "inventory.lookup",
                "SKU not found: 'sku-{n}' (SKUs are upper case)",
                0.3,
                "inventory.normalize_sku",
            ),
        ],
    },
    "support-agent": {
        "tasks": [
            ("Answer ticket #{id} from {email} about a late delivery", ["kb.search", "email.send"]),
            ("Find the customer record for {email}", ["crm.search"]),
            ("Update the address of {email}", ["crm.search", "crm.update"]),
        ],
        "modes": [
            (
                "crm.search",
                "ReadTimeout: CRM did not answer within {ms} ms",
                0.3,
                "crm.search_by_email",
            ),
            (
                "email.send",
                "550 5.1.1 Recipient address rejected: mailbox {id} unavailable",
                0.3,
                "crm.get_contact",
            ),
        ],
    },
    "data-agent": {
        "tasks": [
            ("Build the daily revenue table for {date}", ["fs.read", "sql.query"]),
            ("Export signups since {date} to CSV", ["sql.query", "fs.write"]),
            ("Reconcile payouts for batch {id}", ["http.get", "sql.query"]),
        ],
        "modes": [
            (
                "sql.query",
                'psycopg.errors.UndefinedColumn: column "created" does not exist (did you mean "created_at"?) line {line}',
                0.3,
                "sql.describe_table",
            ),
            (
                "fs.write",
                "PermissionError: [Errno 13] Permission denied: '/data/exports/run_{n}.csv'",
                0.3,
                "fs.write_tmp",
            ),
        ],
    },
}

# What the seeded demo lead writes as the fix on the runs each failure stopped
# (seed_demo), keyed by the failing tool: what the runs that got past it did, in a
# lead's words. A rate limit is waited out before the retry; the other failures
# are worked around with another tool, not retried as they were.
DEMO_FIXES: dict[str, str] = {
    "payments.refund": (
        "When `payments.refund` answers 429 Too Many Requests, wait the seconds "
        "its error names (retry after N s), then call `payments.refund` once more "
        "with the same input"
    ),
    "inventory.lookup": (
        "When `inventory.lookup` answers SKU not found, call "
        "`inventory.normalize_sku` on the SKU (SKUs are upper case) and look up "
        "the SKU it returns"
    ),
    "crm.search": (
        "When `crm.search` times out (ReadTimeout), find the customer with "
        "`crm.search_by_email` instead of repeating the same search"
    ),
    "email.send": (
        "When `email.send` is rejected with 550 5.1.1 (mailbox unavailable), call "
        "`crm.get_contact` for the customer's current address instead of sending to "
        "the same one again"
    ),
    "sql.query": (
        "When `sql.query` fails with UndefinedColumn, call `sql.describe_table` and "
        "use the column names it lists"
    ),
    "fs.write": (
        "When `fs.write` is denied (PermissionError), write the file with "
        "`fs.write_tmp` instead of retrying the same path"
    ),
}


def retry_wait(n: int) -> int:
    """The seconds a demo rate limit asks for, from the trace's random number (2-29 s:
    a rate limit's window, not hours)."""
    return 2 + n % 28


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
    text, procedure = rng.choice(spec["tasks"])
    email, day = f"customer{order}@example.com", started.date().isoformat()
    task = text.format(id=order, email=email, date=day)
    # What the task is about, the same in every call of the run and in every run of
    # the same task.
    subject: dict[str, Any] = (
        {"date": day} if "{date}" in text else {"id": order} if "{id}" in text else {"email": email}
    )
    steps: list[dict[str, Any]] = [{"kind": "user_prompt", "input": task}]
    failed_mode = next(
        (m for m in spec["modes"] if m[0] == procedure[-1] and rng.random() < m[2]), None
    )
    for tool in procedure[:-1] if failed_mode else procedure:
        steps.append({"kind": "tool_call", "name": tool, "input": subject,
                      "duration_ms": rng.randint(20, 900), "tokens": rng.randint(50, 400)})  # fmt: skip
        steps.append({"kind": "tool_result", "name": tool, "output": {"ok": True}})
    recovered = False
    # Seconds the run waited after the failing call before its next step (a rate
    # limit's retry-after, when the run retried).
    waited, failed_at = 0, len(steps)
    if failed_mode is not None:
        tool, template, _, recovery = failed_mode
        n = rng.randint(1, 30000)
        steps.append({
            "kind": "tool_call", "name": tool, "input": subject,
            "error": template.format(
                n=n, id=order, wait=retry_wait(n), ms=5000 * (1 + n % 6), line=1 + n % 12
            ),
            "duration_ms": rng.randint(100, 30000), "tokens": rng.randint(50, 400),
        })  # fmt: skip
        # Some agents find their way around the failure; the offline distiller
        # learns its "Do" section from what they did next.
        recovered = rng.random() < 0.5
        if recovered:
            if "{wait}" in template:
                waited = retry_wait(n)
            steps.append({"kind": "tool_call", "name": recovery, "input": subject,
                          "output": {"ok": True}, "duration_ms": rng.randint(20, 900)})  # fmt: skip
            steps.append({"kind": "assistant_message", "output": "Done, after a workaround."})
        else:
            steps.append({"kind": "assistant_message", "output": "I could not finish the task."})
    else:
        steps.append({"kind": "assistant_message", "output": "Done."})
    for index, step in enumerate(steps):
        step["index"] = index
        later = waited if index > failed_at else 0
        step["started_at"] = (started + timedelta(seconds=index * 2 + later)).isoformat()
    return {
        "external_id": f"demo-{agent}-{i:05d}",
        "agent": agent,
        "session_id": f"demo-session-{i // 5:05d}",
        "task": task,
        "status": "failed" if failed_mode and not recovered else "succeeded",
        "reward": 0.0 if failed_mode and not recovered else 1.0,
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=len(steps) * 2 + waited)).isoformat(),
        "model": "claude-haiku-4-5",
        "metadata": {"env": "demo"},
        "steps": steps,
    }
