"""Same-task contrast, call by call: a failed run is aligned with the closest
successful run of the same task and the incident names the first state-changing
call that differs, with its values."""

from __future__ import annotations

import pytest

from failures.diagnosis.facts import StepView
from failures.diagnosis.same_task import changes_state, diverge, task_key
from failures.models import Incident
from tests.factories import ingest, trace_payload


def _steps(*calls: tuple[str, dict, str]) -> list[StepView]:
    return [StepView(i, "tool_call", name, args, "{}", error) for i, (name, args, error) in
            enumerate(calls)]  # fmt: skip


READS = [("find_user_id_by_email", {"email": "a@x.io"}, ""),
         ("get_order_details", {"order_id": "#W1"}, "")]  # fmt: skip


def test_a_wrong_state_changing_call_is_named_with_its_values():
    failed = _steps(
        *READS, ("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"}, "")
    )
    success = _steps(
        *READS, ("modify_pending_order_items", {"order_id": "#W1", "item_ids": ["1"]}, "")
    )
    finding = diverge(failed, {"gpt-4.1": [success], "ft": [success]})
    assert finding is not None and finding.step == 2 and finding.tool == "cancel_pending_order"
    assert 'order_id="#W1"' in finding.description
    assert "none of the 2 successful runs" in finding.description
    assert (
        "`modify_pending_order_items`" in finding.description and "gpt-4.1" in finding.description
    )


def test_a_call_one_agent_never_makes_is_protocol_not_a_divergence():
    """One agent ends its runs with `submit`, another never does: neither run's
    `submit`, made or missing, names a failure; a state-changing call both agents
    make still does."""
    work = ("bash", {"command": "find / -name '*.txt'"}, "")
    react = _steps(work, ("submit", {"command": "submit"}, ""))
    multiturn = _steps(work)
    vocabulary = {"react": frozenset({"bash", "submit"}), "multiturn": frozenset({"bash"})}
    assert diverge(react, {"multiturn": [multiturn]}, agent="react", vocabulary=vocabulary) is None
    assert diverge(multiturn, {"react": [react]}, agent="multiturn", vocabulary=vocabulary) is None
    # Without what each agent ever calls, both are taken for divergences.
    assert diverge(react, {"multiturn": [multiturn]}) is not None
    assert diverge(multiturn, {"react": [react]}) is not None
    both = {
        "a": frozenset({"get_order", "cancel_order"}),
        "b": frozenset({"get_order", "cancel_order"}),
    }
    failed = _steps(("get_order", {"id": 1}, ""), ("cancel_order", {"id": 1}, ""))
    finding = diverge(
        failed, {"b": [_steps(("get_order", {"id": 1}, ""))]}, agent="a", vocabulary=both
    )
    assert finding is not None and finding.tool == "cancel_order"


def test_wrong_arguments_of_the_right_call_are_named():
    failed = _steps(*READS, ("update_cabin", {"reservation_id": "H8Q05L", "cabin": "economy"}, ""))
    success = _steps(
        *READS, ("update_cabin", {"reservation_id": "H8Q05L", "cabin": "business"}, "")
    )
    finding = diverge(failed, {"agent": [success]})
    assert finding is not None and finding.step == 2
    assert finding.category == "tool_use.wrong_arguments"
    assert '"economy"' in finding.description and '"business"' in finding.description


def test_an_amount_written_2_or_2_point_0_is_the_same_argument():
    """tau2's own check matches `gb_amount` 2 against an expected 2.0: so does the
    contrast (a wrong amount is still named)."""
    success = _steps(*READS, ("refuel_data", {"line_id": "L1", "gb_amount": 2.0}, ""))
    same = _steps(*READS, ("refuel_data", {"line_id": "L1", "gb_amount": 2}, ""))
    assert diverge(same, {"agent": [success]}) is None
    more = _steps(*READS, ("refuel_data", {"line_id": "L1", "gb_amount": 2.5}, ""))
    finding = diverge(more, {"agent": [success]})
    assert finding is not None and finding.category == "tool_use.wrong_arguments"


def test_arguments_the_successful_runs_disagree_on_say_nothing():
    """Two successful runs of a task wrote with an id and an attempt counter of their
    own: a failed run's own id is no divergence (the demo named one as the cause of
    a run that had ended on a PermissionError). A value they agree on still is."""
    ok1 = _steps(("fs.write", {"id": 3730, "attempt": 4, "table": "revenue"}, ""))
    ok2 = _steps(("fs.write", {"id": 85551, "attempt": 1, "table": "revenue"}, ""),
                 ("fs.write", {"id": 85551, "attempt": 2, "table": "revenue"}, ""))  # fmt: skip
    mine = _steps(("fs.write", {"id": 43878, "attempt": 3, "table": "revenue"}, ""))
    assert diverge(mine, {"data-agent": [ok1, ok2]}) is None
    wrong = _steps(("fs.write", {"id": 43878, "attempt": 3, "table": "costs"}, ""))
    finding = diverge(wrong, {"data-agent": [ok1, ok2]})
    assert finding is not None and finding.category == "tool_use.wrong_arguments"
    assert '"costs"' in finding.description and '"revenue"' in finding.description
    assert "43878" not in finding.description  # a free value is not shown as the cause
    # A call another successful run of the task made too (not the closest one) did
    # not make this run fail.
    write, tmp = ("fs.write", {"table": "revenue"}, ""), ("fs.write_tmp", {"table": "revenue"}, "")
    assert diverge(_steps(write, tmp), {"data-agent": [_steps(write), _steps(tmp)]}) is None
    # One successful run cannot tell which values the task fixes: all are compared.
    assert diverge(mine, {"data-agent": [ok1]}) is not None
    # A run that updates two items with one tool does not free the item.
    two = _steps(("update_item", {"item": "A"}, ""), ("update_item", {"item": "B"}, ""))
    other = _steps(("update_item", {"item": "A"}, ""), ("update_item", {"item": "C"}, ""))
    finding = diverge(other, {"agent": [two, two]})
    assert finding is not None and finding.step == 1


def test_a_missing_call_is_named_at_the_runs_end():
    failed = _steps(*READS)
    success = _steps(*READS, ("exchange_delivered_order_items", {"order_id": "#W1"}, ""))
    finding = diverge(failed, {"agent": [success]})
    assert finding is not None and finding.step == -1
    assert (
        finding.tool == "exchange_delivered_order_items" and "Never called" in finding.description
    )


def test_reads_user_calls_and_failed_calls_are_not_divergences():
    # Different reads, a simulated user's own call, a write that failed (it changed nothing).
    failed = _steps(
        ("get_user_details", {"user_id": "u2"}, ""),
        ("user.toggle_airplane_mode", {}, ""),
        ("cancel_pending_order", {"order_id": "#W9"}, "Error: order is not pending"),
    )
    success = _steps(
        ("get_user_details", {"user_id": "u1"}, ""),
        ("cancel_pending_order", {"order_id": "#W9"}, ""),
    )
    # The write was tried and failed: its error explains the run, not a "missing" call.
    assert diverge(failed, {"agent": [success]}) is None
    assert not changes_state("user.toggle_airplane_mode") and not changes_state("get_user_details")
    assert changes_state("book_reservation")


def test_runs_of_the_same_text_with_other_tools_are_no_contrast():
    failed = _steps(("crm.search", {"q": "x"}, "ReadTimeout"))
    success = _steps(("payments.refund", {"order": 1}, ""))
    assert diverge(failed, {"payments-agent": [success]}) is None


def test_task_keys_ignore_case_and_spacing():
    assert task_key("Refund  order 8812.") == task_key("refund order 8812")
    assert task_key("Refund order 8812") != task_key("Refund order 8813")


@pytest.mark.django_db
def test_the_diagnosis_uses_successful_runs_of_the_same_task(tenant):
    task = "Change the cabin of reservation H8Q05L to business"
    calls = [{"kind": "tool_call", "name": "get_reservation_details",
              "input": {"reservation_id": "H8Q05L"}, "output": {"cabin": "economy"}}]  # fmt: skip
    ok = [trace_payload(f"ok-{i}", task=task, status="succeeded", agent="airline-ft", steps=[
        *calls, {"kind": "tool_call", "name": "update_reservation_flights",
                 "input": {"reservation_id": "H8Q05L", "cabin": "business"}, "output": {"ok": 1}},
    ]) for i in range(3)]  # fmt: skip
    bad = trace_payload("bad-1", task=task, status="failed", agent="airline-base", steps=[
        *calls, {"kind": "assistant_message", "output": "Done."},
        {"kind": "tool_call", "name": "cancel_reservation", "input": {"reservation_id": "H8Q05L"},
         "output": {"status": "cancelled"}},
    ])  # fmt: skip
    ingest(tenant.workspace, [*ok, bad])
    incident = Incident.objects.get(trace__external_id="bad-1")
    assert incident.step_index == 2 and incident.tool == "cancel_reservation"
    assert "none of the 3 successful runs" in incident.description
    assert "airline-ft ×3" in incident.description  # which agent's runs


def _airline_runs(prefix: str) -> list[dict]:
    """Four tasks: two successful runs and two failed ones each; a failed run
    cancels where the successful runs changed the flights."""
    runs = []
    for task in range(4):
        key = f"airline:{task}"
        read = {"kind": "tool_call", "name": "get_reservation_details",
                "input": {"reservation_id": f"R{task}"}, "output": {"ok": True}}  # fmt: skip
        for i in range(2):
            runs.append(trace_payload(f"{prefix}-ok-{task}-{i}", task_key=key, task=f"help {i}",
                                      agent="airline", status="succeeded", steps=[read, {
                "kind": "tool_call", "name": "update_reservation_flights",
                "input": {"reservation_id": f"R{task}", "flight": "HAT001"}, "output": {"ok": 1}}]))  # fmt: skip
            runs.append(trace_payload(f"{prefix}-bad-{task}-{i}", task_key=key, task=f"help {i}",
                                      agent="airline", status="failed", steps=[read, {
                "kind": "tool_call", "name": "cancel_reservation",
                "input": {"reservation_id": f"R{task}"}, "output": {"ok": 1}}]))  # fmt: skip
    return runs


@pytest.mark.django_db
def test_the_same_runs_in_batches_or_at_once_end_with_the_same_incidents(tenant, other_tenant):
    from traces.services import trace_ingest_batch

    runs = _airline_runs("r")
    # Failed runs first, in small batches: their tasks have no successful run yet.
    ordered = sorted(runs, key=lambda r: r["status"] != "failed")
    for start in range(0, len(ordered), 3):
        ingest(tenant.workspace, ordered[start : start + 3])
    trace_ingest_batch(workspace=other_tenant.workspace, items=runs)
    ingest(other_tenant.workspace, [])  # analyse everything at once

    def incidents(workspace) -> set[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
        return set(Incident.objects.filter(workspace=workspace)
                   .values_list("trace__external_id", "step_index", "tool"))  # fmt: skip

    batched, at_once = incidents(tenant.workspace), incidents(other_tenant.workspace)
    assert batched == at_once
    assert {(e, s, t) for e, s, t in batched if "bad" in e} == {
        (f"r-bad-{task}-{i}", 1, "cancel_reservation") for task in range(4) for i in range(2)
    }


@pytest.mark.django_db
def test_the_task_key_comes_in_by_every_route(client, tenant, tmp_path):
    import json

    from traces.importing import traces_import_file
    from traces.models import Trace

    headers = tenant.api_headers()
    client.post("/api/v1/traces", json.dumps({"traces": [trace_payload("api-1", task_key="ticket:42")]}),
                content_type="application/json", headers=headers)  # fmt: skip
    assert Trace.objects.get(external_id="api-1").task_key == "ticket:42"
    span = {"traceId": "5b8efff798038103d269b633813fc60d", "spanId": "eee19b7ec3c1b175", "name": "run",
            "startTimeUnixNano": "1763719200000000000", "endTimeUnixNano": "1763719201000000000",
            "attributes": [{"key": "hivemind.task.key", "value": {"stringValue": "ticket:43"}}]}  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    assert client.post("/v1/traces", json.dumps(body), content_type="application/json",
                       headers=headers).status_code == 200  # fmt: skip
    assert Trace.objects.get(external_id="5b8efff798038103d269b633813fc60d").task_key == "ticket:43"
    tau2 = tmp_path / "tau2.json"
    tau2.write_text(json.dumps({
        "info": {"environment_info": {"domain_name": "retail"}, "agent_info": {"llm": "m"}},
        "tasks": [], "simulations": [{"id": "s1", "task_id": "7", "messages": [
            {"role": "assistant", "content": "hi"}], "reward_info": {"reward": 1.0}}],
    }))  # fmt: skip
    assert traces_import_file(workspace=tenant.workspace, fmt="tau2-bench", path=tau2).ok
    assert Trace.objects.get(external_id="tau2-s1").task_key == "retail:7"


@pytest.mark.django_db
def test_a_lead_corrects_which_tools_change_state(client, tenant):
    from django.urls import reverse

    from failures import taxonomy
    from failures.models import DiagnosisSettings

    task = "Hold seat 3A"
    ok = [trace_payload(f"hold-ok-{i}", task=task, status="succeeded", agent="air", steps=[
        {"kind": "tool_call", "name": "lookup_and_hold_seat", "input": {"seat": "3A"},
         "output": {"held": True}}]) for i in range(2)]  # fmt: skip
    bad = [trace_payload("hold-bad", task=task, status="failed", agent="air", steps=[
        {"kind": "tool_call", "name": "lookup_and_hold_seat", "input": {"seat": "4C"},
         "output": {"held": True}}])]  # fmt: skip
    ingest(tenant.workspace, ok + bad)
    # "lookup…" reads like a read: no state-changing divergence is seen.
    assert not Incident.objects.filter(trace__external_id="hold-bad", tool="lookup_and_hold_seat",
                                       stats__evidence="same_task").exists()  # fmt: skip
    client.force_login(tenant.admin)
    url = reverse("diagnosis_settings", args=[tenant.workspace.slug])
    text = taxonomy.to_text(list(taxonomy.DEFAULT))
    both = client.post(url, {"categories": text, "default_threshold": "", "thresholds": "",
                             "write_tools": "x", "read_tools": "x"})  # fmt: skip
    assert both.status_code == 422 and "both change state and only read" in both.content.decode()
    saved = client.post(url, {"categories": text, "default_threshold": "", "thresholds": "",
                              "write_tools": "lookup_and_hold_seat", "read_tools": ""})  # fmt: skip
    assert saved.status_code == 302
    assert DiagnosisSettings.objects.get(workspace=tenant.workspace).write_tools == [
        "lookup_and_hold_seat"
    ]
    from failures.mining import traces_diagnose
    from traces.models import Trace

    traces_diagnose(workspace_id=tenant.workspace.pk, force=True,
                    trace_ids=list(Trace.objects.values_list("pk", flat=True)))  # fmt: skip
    incident = Incident.objects.get(trace__external_id="hold-bad")
    assert incident.tool == "lookup_and_hold_seat" and '"4C"' in incident.description
    assert '"3A"' in incident.description


def test_commands_and_programs_are_not_compared_by_their_text():
    failed = _steps(("bash", {"command": "grep -rn foo . | wc -l"}, ""))
    success = _steps(("bash", {"command": "find . -name '*.py' | xargs grep foo | wc -l"}, ""))
    assert diverge(failed, {"agent": [success]}) is None
    assert not changes_state("bash") and not changes_state("Computer_terminal")
    assert not changes_state("ComputerTerminal")  # Magentic-One's
    # An imported browsing agent's page is a read; a browser tool that clicks is not.
    assert not changes_state("WebSurfer.browse") and changes_state("browser_click")
    assert not changes_state("sql") and changes_state("update_reservation_flights")
