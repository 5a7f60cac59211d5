"""The MCP server at /mcp, driven by the official `mcp` SDK client against the running app."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from failures.models import FailureMode, Incident
from skills import review
from tests.factories import ingest, make_key, trace_payload
from tests.skills.test_review_and_api import make_skill
from traces.models import Outcome, Trace
from workspaces.models import Scope


def session(
    url: str, key: str | None, calls: list[tuple[str, dict]]
) -> tuple[list[str], list[Any]]:
    """List the tools, then make the calls, in one client session."""

    async def run() -> tuple[list[str], list[Any]]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            tools = [t.name for t in (await client.list_tools()).tools]
            results = [await client.call_tool(name, args) for name, args in calls]
        return tools, results

    return asyncio.run(run())


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.fixture
def acme(tenant):
    ingest(tenant.workspace, [trace_payload("acme-1", session_id="sess-acme",
                                            task="Refund order 8812 for acme")])  # fmt: skip
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="payments rate limited",
                                      incident_count=1, trace_count=1)  # fmt: skip
    Incident.objects.filter(workspace=tenant.workspace).update(failure_mode=mode)
    skill = make_skill(tenant.workspace, name="respect-rate-limits",
                       description="Back off on HTTP 429 rate limits from payments.")  # fmt: skip
    review.skill_approve(skill=skill, number=1, actor=tenant.lead)
    return mode


@pytest.mark.django_db(transaction=True)
def test_sdk_client_lists_tools_searches_reads_a_skill_and_reports(live_server, tenant, acme):
    tools, (search, mode, skills, skill, report) = session(live_server.url, tenant.key, [
        ("search_failures", {"query": "payments refund 429 too many requests"}),
        ("show_failure_mode", {"mode_id": acme.pk}),
        ("list_skills", {"task": "refund an order through payments"}),
        ("read_skill", {"name": "respect-rate-limits"}),
        ("report_outcome", {"session_id": "sess-acme", "status": "failed", "comment": "still 429"}),
    ])  # fmt: skip
    assert set(tools) == {"search_failures", "show_failure_mode", "list_skills", "read_skill",
                          "report_outcome", "label_run"}  # fmt: skip
    found = json.loads(text(search))
    assert found["modes"][0]["label"] == "payments rate limited"
    assert "429 Too Many Requests" in found["incidents"][0]["error"]
    # What it stands for, and what became of its run.
    kind = Incident.objects.get(workspace=tenant.workspace).kind
    words = {"weak": "weak lead", "recovered": "recovered", "symptom": "symptom"}
    assert found["incidents"][0]["standing"] == words.get(kind, "cause")
    assert found["incidents"][0]["run_status"] == "failed"
    shown = json.loads(text(mode))
    assert shown["label"] == "payments rate limited" and len(shown["examples"]) == 1
    assert json.loads(text(skills))["skills"][0]["name"] == "respect-rate-limits"
    assert "Back off on HTTP 429" in text(skill) and not skill.is_error
    assert not report.is_error
    outcome = Outcome.objects.get(workspace=tenant.workspace)
    assert outcome.status == "failed" and outcome.trace == Trace.objects.get(external_id="acme-1")


@pytest.mark.django_db(transaction=True)
def test_wrong_key_and_no_key_are_refused(live_server, tenant, acme):
    for headers in ({"Authorization": "Bearer hm_nope_nope"}, {}):
        response = httpx2.post(f"{live_server.url}/mcp", headers=headers,
                               json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})  # fmt: skip
        assert response.status_code == 401
        assert response.json()["error"]["message"]
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own HTTP error type
        session(live_server.url, "hm_nope_nope", [])


@pytest.mark.django_db(transaction=True)
def test_another_workspaces_key_sees_nothing_of_this_one(live_server, tenant, other_tenant, acme):
    _, (search, mode, skill, report) = session(live_server.url, other_tenant.key, [
        ("search_failures", {"query": "payments refund 429"}),
        ("show_failure_mode", {"mode_id": acme.pk}),
        ("read_skill", {"name": "respect-rate-limits"}),
        ("report_outcome", {"session_id": "sess-acme", "status": "succeeded"}),
    ])  # fmt: skip
    assert json.loads(text(search))["incidents"] == []
    assert mode.is_error and "No failure mode" in text(mode)
    assert skill.is_error and "No published skill" in text(skill)
    assert report.is_error and not Outcome.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_each_tool_needs_its_scope(live_server, tenant, acme):
    key = make_key(tenant.workspace, scopes=[Scope.SKILLS_READ])
    _, (search, skills, report) = session(live_server.url, key, [
        ("search_failures", {"query": "429"}),
        ("list_skills", {}),
        ("report_outcome", {"session_id": "sess-acme", "status": "failed"}),
    ])  # fmt: skip
    assert search.is_error and "failures:read" in text(search)
    assert not skills.is_error
    assert report.is_error and "ingest" in text(report) and not Outcome.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_mcp_server_honours_x_hivemind_session_as_the_api_does(live_server, tenant):
    from skills.trials import HOLDOUT, TREATED, arm_for
    from tests.skills.test_trials import _skill_on_trial

    skill = _skill_on_trial(tenant)
    arms = {f"s-{i}": arm_for(skill_id=skill.pk, session_id=f"s-{i}", holdout_share=0.5)
            for i in range(100)}  # fmt: skip
    treated = next(s for s, arm in arms.items() if arm == TREATED)
    held = next(s for s, arm in arms.items() if arm == HOLDOUT)

    async def listed(session: str) -> list[str]:
        headers = {"Authorization": f"Bearer {tenant.key}", "X-Hivemind-Session": session}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{live_server.url}/mcp", http_client=http)) as client,
        ):
            result = await client.call_tool("list_skills", {})
        return [s["name"] for s in json.loads(text(result))["skills"]]

    assert asyncio.run(listed(treated)) == [skill.name]
    assert asyncio.run(listed(held)) == []


def test_the_session_start_hook_pulls_for_its_own_session(monkeypatch):
    import io

    from hivemind_client import __main__ as client
    from hivemind_client import skills as client_skills

    sent = {}

    def fake_pull(**kwargs):  # type: ignore[no-untyped-def]
        request = client_skills._request(kwargs["url"], kwargs["key"], "", 1.0)
        sent.update(dict(request.header_items()))
        return client_skills.PullResult(changed=False)

    monkeypatch.setattr(client, "pull_index", fake_pull)
    monkeypatch.delenv("HIVEMIND_SESSION_ID", raising=False)
    payload = json.dumps({"session_id": "sess-from-hook", "hook_event_name": "SessionStart"})
    stdin = io.StringIO(payload)
    stdin.isatty = lambda: False  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", stdin)
    code = client.main(["skills", "pull", "--hook", "--index", "--url", "http://x",
                        "--key", "hm_k", "--dir", "/tmp/hm-skills-test"])  # fmt: skip
    assert code == 0 and sent.get("X-hivemind-session") == "sess-from-hook"


@pytest.mark.django_db(transaction=True)
def test_a_session_start_payload_of_a_treated_session_writes_the_trial_skill(
    live_server, tenant, tmp_path, monkeypatch, capsys
):
    """The hook the installer writes (`skills pull --hook --budget … --dir …`), fed a
    Claude Code SessionStart payload on stdin, end to end against the server."""
    import io

    from hivemind_client import __main__ as client
    from skills.trials import HOLDOUT, TREATED, arm_for
    from tests.skills.test_trials import _skill_on_trial

    skill = _skill_on_trial(tenant)
    arms = {f"s-{i}": arm_for(skill_id=skill.pk, session_id=f"s-{i}", holdout_share=0.5)
            for i in range(100)}  # fmt: skip
    treated = next(s for s, arm in arms.items() if arm == TREATED)
    held = next(s for s, arm in arms.items() if arm == HOLDOUT)
    monkeypatch.delenv("HIVEMIND_SESSION_ID", raising=False)

    def hook(session: str, folder: str) -> tuple[int, set[str]]:
        payload = {"session_id": session, "hook_event_name": "SessionStart", "source": "startup"}
        stdin = io.StringIO(json.dumps(payload))
        stdin.isatty = lambda: False  # type: ignore[method-assign]
        monkeypatch.setattr("sys.stdin", stdin)
        target = tmp_path / folder
        code = client.main(["skills", "pull", "--hook", "--budget", "8", "--dir", str(target),
                            "--url", live_server.url, "--key", tenant.key])  # fmt: skip
        return code, {p.parent.name for p in target.glob("*/SKILL.md")}

    assert hook(treated, "treated") == (0, {skill.name})
    assert "Wrote 1 skill(s)" in capsys.readouterr().out
    assert f"name: {skill.name}" in (tmp_path / "treated" / skill.name / "SKILL.md").read_text()
    assert hook(held, "held") == (0, set())
    # The same session again: a 304 (nothing rewritten), and the skill stays written.
    capsys.readouterr()
    assert hook(treated, "treated") == (0, {skill.name})
    assert "Skills are up to date." in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_nul_in_any_tools_text_is_removed_as_the_rest_api_removes_it(live_server, tenant, acme):
    """PostgreSQL text cannot hold NUL. The REST API's bodies and query strings lose
    it before any view (workspaces/textsafety.py); a tool's arguments did not, and a
    search with one answered only "Error executing tool search_failures"."""
    key = make_key(tenant.workspace, scopes=list(Scope.values))
    _, results = session(live_server.url, key, [
        ("search_failures", {"query": "payments\x00 refund 429"}),
        ("list_skills", {"task": "refund\x00 an order", "session_id": "s\x00"}),
        ("read_skill", {"name": "respect-rate-limits\x00"}),
        ("report_outcome", {"session_id": "sess-acme\x00", "status": "failed", "comment": "a\x00b"}),
        ("label_run", {"run": "acme-1\x00", "step": 0, "category": "process.policy_violation",
                       "sentence": "Refunded\x00 twice."}),
    ])  # fmt: skip
    assert not any("Error executing tool" in text(r) for r in results), [text(r) for r in results]
    search, skills, skill, report, label = results
    assert json.loads(text(search))["modes"][0]["label"] == "payments rate limited"
    assert json.loads(text(skills))["skills"][0]["name"] == "respect-rate-limits"
    assert not skill.is_error and not report.is_error, (text(skill), text(report))
    assert Outcome.objects.get(workspace=tenant.workspace).comment == "ab"
    assert not label.is_error, text(label)
