"""The loop runs on its own, on the default runtime: traces in through the API →
incidents → embedded → clustered into modes → a proposed skill, with no human
action; a lead approves it; the agents' API serves it.

Nothing is mocked: a real Celery worker process on the embedded Redis broker,
the real embedding model, real pgvector. Drafting is the offline distiller (no
ANTHROPIC_API_KEY), a real method, not a stand-in.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from skills import review
from skills.models import DistillationJob, Skill, SkillStatus
from tests.factories import make_key, make_user, make_workspace, running_worker
from workspaces.models import Role, Scope
from workspaces.services import membership_set

# Small thresholds so a dozen traces make a mode; the worker reads them from its env.
WORKER_ENV = {"HIVEMIND_MIN_MODE_SIZE": "3", "HIVEMIND_RECLUSTER_AFTER": "5",
              "HIVEMIND_DISTILL_MIN_INCIDENTS": "3"}  # fmt: skip


def loop_traces() -> list[dict]:
    from tests.factories import split_keys

    keys = split_keys("refund", 16)
    failing = [
        {"external_id": f"refund-{i}", "agent": "checkout-agent", "status": "failed",
         "task": f"Refund order {8800 + i}", "session_id": f"s-{i}", "task_key": keys[i],
         "steps": [
             {"kind": "user_prompt", "input": f"Refund order {8800 + i}"},
             {"kind": "tool_call", "name": "stripe.refund", "input": {"order": 8800 + i},
              "error": f"429 Too Many Requests: rate limit exceeded, retry after {i % 3 + 1}s"},
         ]}
        for i in range(16)
    ]  # fmt: skip
    # Refunds that went through: the contrast a draft rests on (failures/contrast.py).
    passing = [
        {"external_id": f"refunded-{i}", "agent": "checkout-agent", "status": "succeeded",
         "task": f"Refund order {9900 + i}",
         "steps": [{"kind": "tool_call", "name": "stripe.refund", "input": {"order": 9900 + i},
                    "output": {"status": "refunded"}}]}
        for i in range(48)
    ]  # fmt: skip
    # Refunds that hit the rate limit, were sent again and went through: what the
    # drafted instruction is backtested on (half of them in each half of the split).
    retried = [
        {"external_id": f"retried-{i}", "agent": "checkout-agent", "status": "succeeded",
         "task": f"Refund order {7700 + i}", "task_key": key,
         "steps": [{"kind": "tool_call", "name": "stripe.refund", "input": {"order": 7700 + i},
                    "error": "429 Too Many Requests: rate limit exceeded, retry after 2s"},
                   {"kind": "tool_call", "name": "stripe.refund", "input": {"order": 7700 + i},
                    "output": {"status": "refunded"}}]}
        for i, key in enumerate(split_keys("retried", 12))
    ]  # fmt: skip
    return failing + passing + retried


def http(url: str, key: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_for(condition, timeout: float = 600.0):  # type: ignore[no-untyped-def]
    # A bound on waiting for the worker, not a speed check: on a loaded 2-core
    # machine (a bench beside the suite) the first draft once took over 180 s.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"nothing after {timeout:.0f} s")


@pytest.mark.django_db(transaction=True)
def test_the_loop_runs_on_its_own(live_server):
    owner = make_user("loop-admin")
    workspace = make_workspace(name="Loop", owner=owner)
    lead = make_user("loop-lead")
    membership_set(workspace=workspace, user=lead, role=Role.LEAD, actor=None)
    key = make_key(workspace, scopes=[Scope.INGEST, Scope.SKILLS_READ])
    with running_worker(**WORKER_ENV):
        result = http(f"{live_server.url}/api/v1/traces", key, {"traces": loop_traces()})
        assert result["created"] == 76, result
        skill = wait_for(
            lambda: Skill.objects.filter(workspace=workspace, status=SkillStatus.PROPOSED).first()
        )
    # Nobody asked for it: the job was queued by the loop, not by a lead.
    assert DistillationJob.objects.filter(workspace=workspace, requested_by=None).exists()
    assert not DistillationJob.objects.filter(workspace=workspace, requested_by__isnull=False)
    assert skill.source_mode.incidents.filter(tool="stripe.refund").count() == 16
    assert http(f"{live_server.url}/api/v1/skills", key)["items"] == []  # not before review
    review.skill_approve(skill=skill, number=skill.latest_version.number, actor=lead)
    served = http(f"{live_server.url}/api/v1/skills", key)["items"]
    assert [s["name"] for s in served] == [skill.name]
