"""Skills that hold up: each instruction backtested on runs it was not drafted from,
harmful ones held back, rejected drafts not proposed again on the same evidence."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from failures.backtest import backtest, difference_interval, held_out
from skills import distill


@dataclass
class R:
    tools: list[str]
    failed: bool
    task_key: str = ""


def test_the_backtest_counts_within_task_pairs_and_calls_a_hard_task_marker_what_it_is():
    # Easy tasks: every run calls `verify` and succeeds. Hard tasks: half call it,
    # and within each of them the run that did not call it succeeded as often.
    runs = [R(["verify", "pay"], False, f"easy-{i}") for i in range(10)]
    for i in range(6):
        runs += [R(["verify", "pay"], True, f"hard-{i}"), R(["pay"], False, f"hard-{i}")]
    runs += [R(["pay"], True, f"hard-x{i}") for i in range(4)]
    result = backtest("missing", "verify", "", runs)
    assert result["followed"] == 16 and result["other"] == 10
    assert result["pairs_won"] == 0 and result["pairs_lost"] == 6
    assert result["verdict"] == "hard_tasks"
    assert "marks hard tasks, not a fix" in result["reason"]


def test_an_instruction_that_helps_within_tasks_passes():
    runs = []
    for i in range(8):
        runs += [R(["get_order", "refund"], False, f"t{i}"), R(["refund"], True, f"t{i}")]
    result = backtest("order", "refund", "get_order", runs)
    assert result["pairs_won"] == 8 and result["pairs_lost"] == 0
    assert result["verdict"] == "passed" and result["low"] > 0


def test_too_few_runs_on_a_side_is_untestable_and_errors_cannot_be_backtested():
    runs = [R(["a"], False, "t1")] * 3 + [R([], True, "t2")] * 10
    assert backtest("missing", "a", "", runs)["verdict"] == "untestable"
    assert "not testable yet: 3 runs" in backtest("missing", "a", "", runs)["reason"]
    assert backtest("error", "a", "", runs)["verdict"] == "untestable"


def test_newcombe_interval_and_stable_halves():
    d, low, high = difference_interval(9, 10, 1, 10)
    assert d == pytest.approx(0.8) and 0.3 < low < 0.5 and 0.8 < high <= 1.0
    assert held_out("airline:12", 1) == held_out("airline:12", 999)  # by task, not by run


def _item(kind: str, tool: str, **counts: int) -> dict:
    base = {"runs_with": 10, "failed_with": 9, "runs_without": 20, "failed_without": 2}
    return {"id": f"i-{kind}-{tool}", "kind": kind, "tool": tool, "text": f"{kind} `{tool}`",
            "counts": {**base, **counts}, "backtest": {"verdict": "passed"}}  # fmt: skip


def test_do_not_call_a_tool_that_successful_runs_call_is_held_back():
    offered, held = distill.gate([
        _item("unexpected", "cancel_reservation", successes_did=9, successes_relevant=20),
        _item("unexpected", "delete_everything", successes_did=1, successes_relevant=20),
    ])  # fmt: skip
    assert [i["tool"] for i in offered] == ["delete_everything"]
    assert "which 9 of 20 successful runs of these tasks call (45%)" in held[0]


def test_a_simulated_users_tool_a_symptom_few_runs_and_harness_errors_are_held_back():
    error = _item("error", "respond")
    error["text"] = (
        "Call `respond` only when: “Invalid message format. Original message: AssistantMessage”"
    )
    offered, held = distill.gate([
        _item("missing", "user.can_send_mms"),
        _item("long_run", "bash"),
        _item("missing", "lookup", runs_with=1),
        error,
        _item("order", "refund", successes_did=5, successes_relevant=5),
    ])  # fmt: skip
    assert [i["tool"] for i in offered] == ["refund"]
    text = " ".join(held)
    assert "simulated user's tool" in text and "symptom" in text
    assert "rests on 1 run " in text and "harness" in text


def test_an_instruction_that_failed_its_backtest_is_held_back_with_the_reason():
    item = _item("missing", "verify")
    item["backtest"] = {"verdict": "hard_tasks", "reason": "marks hard tasks, not a fix: …"}
    offered, held = distill.gate([item])
    assert offered == [] and "marks hard tasks, not a fix" in held[0]


@pytest.mark.django_db
def test_a_rejected_draft_is_not_proposed_again_on_unchanged_evidence_but_is_on_changed(tenant):
    from failures.models import FailureMode
    from skills.models import Skill, SkillStatus, SkillVersion
    from skills.services import _already_decided

    mode = FailureMode.objects.create(workspace=tenant.workspace, label="refund without lookup")
    skill = Skill.objects.create(workspace=tenant.workspace, name="before-refund",
                                 source_mode=mode, status=SkillStatus.REJECTED)  # fmt: skip
    SkillVersion.objects.create(skill=skill, number=1, description="d", body="b",
                                source_mode=mode, instructions=[{"id": "i-1"}])  # fmt: skip
    same = distill.Draft("new", "", instructions=[{"id": "i-1"}])
    assert "Not proposed again" in _already_decided(mode, same)
    assert "Ignore this mode" in _already_decided(mode, same)
    changed = distill.Draft("new", "", instructions=[{"id": "i-1"}, {"id": "i-2"}])
    assert _already_decided(mode, changed) == ""
