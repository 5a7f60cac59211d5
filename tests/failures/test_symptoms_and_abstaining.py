"""Symptoms are not causes, and a run with no backed cause says why it is undiagnosed."""

from __future__ import annotations

import pytest

from failures.models import Incident, IncidentKind, TraceAnalysis
from failures.services import failure_modes_recluster
from tests.factories import analyse, ingest, trace_payload

pytestmark = pytest.mark.django_db


def _run(i: int, status: str, repeats: int) -> dict:
    steps = [{"kind": "user_prompt", "input": f"look up order {i}"}]
    steps += [{"kind": "tool_call", "name": "search", "input": {"q": "order"}, "output": {"hits": 0}}
              for _ in range(repeats)]  # fmt: skip
    return trace_payload(f"{status}-{i}", status=status, agent="looper", task=f"look up order {i}",
                         steps=steps)  # fmt: skip


def test_a_repeated_call_is_a_symptom_kept_out_of_modes_and_the_run_is_undiagnosed(tenant):
    from failures.embedding import incidents_embed

    ingest(tenant.workspace, [_run(i, "succeeded", 1) for i in range(12)]
           + [_run(100 + i, "failed", 6) for i in range(12)])  # fmt: skip
    symptoms = Incident.objects.filter(workspace=tenant.workspace, kind=IncidentKind.SYMPTOM)
    assert symptoms.exists(), list(Incident.objects.values_list("kind", "description"))
    assert not Incident.objects.filter(workspace=tenant.workspace).exclude(
        kind=IncidentKind.SYMPTOM).exists()  # fmt: skip
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    assert not symptoms.exclude(failure_mode=None).exists()  # never a mode
    analysis = TraceAnalysis.objects.get(trace__external_id="failed-100")
    assert analysis.state == "undiagnosed"
    assert "Symptoms only: made the same `search` call" in analysis.detail
    assert "No successful run of this task to compare with" in analysis.detail


def test_an_undiagnosed_run_without_a_baseline_says_so(tenant):
    ingest(tenant.workspace, [trace_payload("lonely", agent="new-agent", task="do a thing", steps=[
        {"kind": "tool_call", "name": "act", "input": {}, "output": {"ok": True}}])])  # fmt: skip
    analysis = TraceAnalysis.objects.get(trace__external_id="lonely")
    assert analysis.state == "undiagnosed"
    assert "too few runs of this agent with a known outcome (1)" in analysis.detail


def test_an_agent_without_successes_is_said_to_have_none_to_weigh_against(tenant):
    # Who&When's group chats all failed: nothing could stand out against its runs,
    # and the reason must not say it was weighed and found unremarkable.
    ingest(tenant.workspace, [trace_payload(f"all-failed-{i}", status="failed", agent="chat",
                                            task=f"riddle {i}", steps=[
        {"kind": "tool_call", "name": "act", "input": {"n": i}, "output": {"ok": True}}])
        for i in range(8)])  # fmt: skip
    analysis = TraceAnalysis.objects.get(trace__external_id="all-failed-7")
    assert analysis.state == "undiagnosed"
    assert "no successes of this agent to weigh its errors and habits against: none of its" in (
        analysis.detail
    ), analysis.detail
    assert "stands out" not in analysis.detail


def test_the_trace_page_marks_symptoms_and_says_why_a_run_is_undiagnosed(tenant):
    ingest(tenant.workspace, [_run(i, "succeeded", 1) for i in range(12)]
           + [_run(100 + i, "failed", 6) for i in range(12)])  # fmt: skip
    from traces.models import Trace

    trace = Trace.objects.get(external_id="failed-100")
    # The incidents partial the trace page loads (htmx).
    page = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/traces/{trace.pk}/incidents/"
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert ">symptom</span>" in text and "undiagnosed" in text


def test_a_mode_page_lists_the_symptoms_its_runs_showed(tenant):
    from django.utils import timezone

    from failures.models import FailureMode
    from traces.models import Trace

    ingest(tenant.workspace, [trace_payload("sym-1")])
    trace = Trace.objects.get(external_id="sym-1")
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="payments 429",
                                      incident_count=1, trace_count=1)  # fmt: skip
    Incident.objects.filter(trace=trace).update(failure_mode=mode)
    Incident.objects.create(workspace=tenant.workspace, trace=trace, step_index=0,
                            kind=IncidentKind.SYMPTOM, description="made the same call 4 times",
                            stats={"signal": "repeat:payments.refund"}, signature="s",
                            occurred_at=timezone.now())  # fmt: skip
    page = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/failure-modes/{mode.pk}/"
    )
    text = page.content.decode()
    assert page.status_code == 200 and "Symptoms in these runs" in text
    assert "made the same call again and again — 1 run" in text


REFUSED = (
    "Invalid message format. Original message: AssistantMessage\ncontent: I will transfer you.\n"
    "cost: 0.008862. Error: You sent a message with both text content and tool calls."
)


def _refused_run(i: int, status: str) -> dict:
    steps = [
        {"kind": "user_prompt", "input": f"help with line {i}"},
        {"kind": "tool_call", "name": "get_line", "input": {"id": i}, "output": {"ok": True}},
        # The harness refused a turn, and the agent sent another.
        *([{"kind": "error", "error": REFUSED}] if status == "failed" else []),
        {"kind": "tool_call", "name": "transfer", "input": {"summary": "x"}, "output": "done"},
    ]
    return trace_payload(f"{status}-{i}", status=status, agent="refused", task=f"line {i}",
                         steps=steps)  # fmt: skip


def test_a_refused_turn_is_the_agents_not_the_last_tools_and_a_symptom_when_the_run_went_on(
    tenant,
):
    """tau2 telecom: "`transfer_to_human_agents` failed: cost: 0.008862. Error: ..."
    was shown on runs whose transfer succeeded: the harness had refused the agent's
    turn (text and tool calls in one message), and the agent sent it again."""
    ingest(tenant.workspace, [_refused_run(i, "succeeded") for i in range(6)]
           + [_refused_run(100 + i, "failed") for i in range(12)])  # fmt: skip
    incidents = Incident.objects.filter(workspace=tenant.workspace)
    assert incidents.count() == 12, list(incidents.values_list("kind", "description"))
    for incident in incidents:
        assert incident.step_index == 2 and incident.tool == "", incident.description
        assert incident.description.startswith("The agent's turn failed"), incident.description
        assert "cost:" not in incident.description
        assert "You sent a message with both text content and tool calls" in incident.description
        # It sent another turn: what the run showed, not what failed it. No tool failed.
        assert incident.kind == IncidentKind.SYMPTOM
        assert incident.category == "", incident.category


def test_an_undiagnosed_run_compared_with_successes_of_its_task_says_it_was(tenant):
    """A failed run whose task has successful runs that made the same calls is
    undiagnosed, and says it was compared with them (not that there were none)."""

    def run(external_id: str, status: str) -> dict:
        return trace_payload(external_id, status=status, agent="same-calls", task_key="swe:t-1",
                             task="Fix the date parser", steps=[
            {"kind": "tool_call", "name": "bash", "input": {"command": "pytest"}, "output": "ok"}])  # fmt: skip

    ingest(tenant.workspace, [run("fine-1", "succeeded"), run("fine-2", "succeeded")])
    ingest(tenant.workspace, [run("broken", "failed"), trace_payload(
        "other", status="failed", agent="same-calls", task_key="swe:t-2", task="Another task",
        steps=[{"kind": "tool_call", "name": "bash", "input": {"command": "ls"}, "output": "a"}])])  # fmt: skip
    analysis = TraceAnalysis.objects.get(trace__external_id="broken")
    assert analysis.state == "undiagnosed", analysis.detail
    assert "Compared call by call with 2 successful runs of this task" in analysis.detail
    assert "No successful run of this task" not in analysis.detail
    other = TraceAnalysis.objects.get(trace__external_id="other")
    assert "No successful run of this task to compare with" in other.detail


def _unknown_run(i: int) -> dict:
    return trace_payload(
        f"otel-{i}", status="unknown", agent="otel-agent", task=f"deploy service {i}", steps=[
            {"kind": "user_prompt", "input": f"deploy service {i}"},
            {"kind": "tool_call", "name": "deploy", "input": {"service": i},
             "error": "permission denied: role deployer lacks iam.serviceAccounts.actAs"},
            {"kind": "tool_call", "name": "deploy", "input": {"service": i, "as": "ci"},
             "output": {"ok": True}},
        ])  # fmt: skip


def test_errors_of_runs_with_no_known_outcome_are_leads_never_causes_or_modes(tenant):
    # OpenTelemetry runs often come with no outcome (a root span left UNSET): a tool
    # error in them may be one the run recovered from, and nothing says it failed.
    from failures.embedding import incidents_embed
    from traces.models import Trace

    ingest(tenant.workspace, [_unknown_run(i) for i in range(12)])
    incidents = Incident.objects.filter(workspace=tenant.workspace)
    assert incidents.count() == 12  # each run's error is still listed on it
    assert set(incidents.values_list("kind", flat=True)) == {IncidentKind.WEAK}
    assert all(i.stats.get("outcome_unknown") for i in incidents)
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    assert not incidents.exclude(failure_mode=None).exists()  # never a mode
    analysis = TraceAnalysis.objects.get(trace__external_id="otel-3")
    assert analysis.state == "not_failed"  # not "failed, nothing specific found"
    trace = Trace.objects.get(external_id="otel-3")
    text = (
        tenant.client_for(tenant.viewer)
        .get(f"/w/{tenant.workspace.slug}/traces/{trace.pk}/incidents/")
        .content.decode()
    )
    assert "Outcome unknown" in text and ">weak lead</span>" in text
    assert "Diagnosed offline" not in text
    # The failure-modes page says where they are, and why no mode holds them.
    modes = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/failure-modes/")
    assert (
        "12 runs with no known outcome (12 with errors, listed on each run as leads): nothing "
        "says they failed"
    ) in " ".join(modes.content.decode().split())


def test_a_run_whose_outcome_arrives_failed_is_diagnosed_in_full(client, tenant):
    ingest(tenant.workspace, [_unknown_run(i) for i in range(3)])
    answer = client.post("/api/v1/traces/otel-1/outcome", {"status": "failed"},
                         content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert answer.status_code in (200, 202), answer.content
    analyse(tenant.workspace)
    analysis = TraceAnalysis.objects.get(trace__external_id="otel-1")
    assert analysis.verdict == "failed"
    assert analysis.state in ("diagnosed", "undiagnosed")
    assert not Incident.objects.filter(trace__external_id="otel-1",
                                       stats__outcome_unknown=True).exists()  # fmt: skip
