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


def test_wrong_arguments_of_the_right_call_are_named():
    failed = _steps(*READS, ("update_cabin", {"reservation_id": "H8Q05L", "cabin": "economy"}, ""))
    success = _steps(
        *READS, ("update_cabin", {"reservation_id": "H8Q05L", "cabin": "business"}, "")
    )
    finding = diverge(failed, {"agent": [success]})
    assert finding is not None and finding.step == 2
    assert finding.category == "tool_use.wrong_arguments"
    assert '"economy"' in finding.description and '"business"' in finding.description


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
