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
    one = [R(["a"], False, "t1")] + [R([], True, "t2")] * 10
    assert (
        "not testable yet: 1 run followed it and 10 did not"
        in backtest("missing", "a", "", one)["reason"]
    )


def test_the_reason_line_counts_one_pair_as_one_time():
    test = {"verdict": "passed", "followed_succeeded": 9, "followed": 10, "other_succeeded": 2,
            "other": 10, "pairs_won": 1, "pairs_lost": 0}  # fmt: skip
    line = distill.reason_line({"backtest": test})
    assert (
        "Same task run both ways: 1 time only the run that did it succeeded, 0 times only" in line
    )


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
    assert held[0]["text"] == "unexpected `cancel_reservation`"
    assert "which 9 of 20 successful runs of these tasks call (45%)" in held[0]["reason"]


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
    text = " ".join(h["reason"] for h in held)
    assert "simulated user's tool" in text and "symptom" in text
    assert "rests on 1 run " in text and "harness" in text


def test_an_instruction_that_failed_its_backtest_is_held_back_with_the_reason():
    item = _item("missing", "verify")
    item["backtest"] = {"verdict": "hard_tasks", "reason": "marks hard tasks, not a fix: …"}
    offered, held = distill.gate([item])
    assert offered == [] and "marks hard tasks, not a fix" in held[0]["reason"]


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


def _bookings_mode(tenant, settings):
    from failures.embedding import incidents_embed
    from failures.models import FailureMode
    from failures.services import failure_modes_recluster
    from tests.factories import ingest
    from tests.failures.test_modes_hold_up import _booking

    settings.HIVEMIND_MIN_MODE_SIZE = 3
    settings.ANTHROPIC_API_KEY = ""
    items = [_booking(i, look_first=True, failed=False) for i in range(30)]
    items += [_booking(100 + i, look_first=False, failed=True) for i in range(20)]
    ingest(workspace=tenant.workspace, items=items)
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    return FailureMode.objects.filter(workspace=tenant.workspace, incident_count__gt=0).first()


@pytest.mark.django_db
def test_a_leads_own_line_is_backtested_and_a_harmful_one_flagged(tenant, settings):
    from django.urls import reverse

    from skills import review, services
    from skills.instructions import bullets

    mode = _bookings_mode(tenant, settings)
    job, _ = services.distillation_request(mode=mode)
    done = services.distillation_run(job_id=job.pk)
    version = done.version
    assert version is not None, (done.state, done.verdict, done.detail)
    # The SKILL.md says why under each instruction, and the reason is not an instruction.
    assert "\n    - Why: on runs it was not learned from" in version.body
    assert not any(t.startswith("Why:") for _, t in bullets(version.body))
    body = version.body.replace(
        "## Don't\n", "## Don't\n- Do not call `search_flights` for tasks like these.\n"
    )
    edited = review.skill_edit(skill=version.skill, description=version.description, body=body,
                               actor=tenant.lead)  # fmt: skip
    line = next(i for i in edited.instructions if "search_flights" in i["text"])
    assert line["backtest"]["verdict"] == "untestable"  # every run calls it: no other side
    assert "0 runs followed it" in line["backtest"]["reason"]
    assert any("forbids `search_flights`, which 30 of 30 successful runs" in f
               for f in edited.flags), edited.flags  # fmt: skip
    kept = next(i for i in edited.instructions if i["id"] == version.instructions[0]["id"])
    assert kept["backtest"]["verdict"] == "passed"  # the drafted line keeps its backtest
    page = (
        tenant.client_for(tenant.viewer)
        .get(reverse("skill_detail", args=[tenant.workspace.slug, version.skill_id]))
        .content.decode()
    )
    assert "Backtest on runs it was not learned from" in page and "held" in page
    assert "not testable yet" in page


@pytest.mark.django_db
def test_a_mode_whose_instructions_a_live_skill_gives_is_merged_into_it(tenant, settings):
    from django.urls import reverse

    from skills import selectors, services
    from skills.models import Skill, SkillVersion

    mode = _bookings_mode(tenant, settings)
    incidents = list(mode.incidents.select_related("trace"))
    rule = distill.draft_offline(distill.Context(mode, incidents, [])).instructions[0]
    other = Skill.objects.create(workspace=tenant.workspace, name="look-before-changing")
    SkillVersion.objects.create(skill=other, number=1, description="d", body="b",
                                instructions=[{"id": rule["id"], "text": rule["text"]}])  # fmt: skip
    job, _ = services.distillation_request(mode=mode)
    job = services.distillation_run(job_id=job.pk)
    assert job.version is None and job.detail.startswith("Merged into 'look-before-changing'")
    assert "already gives this instruction" in job.held_back[0]["reason"]
    assert list(other.merged_modes.all()) == [mode]
    assert other in selectors.skill_list_for_mode(mode=mode)
    assert mode.pk in selectors.skill_source_modes(skill=other)
    assert Skill.objects.filter(workspace=tenant.workspace).count() == 1
    assert mode not in services.modes_due_for_distillation(workspace_id=tenant.workspace.pk)
    panel = (
        tenant.client_for(tenant.viewer)
        .get(reverse("mode_skill_panel", args=[tenant.workspace.slug, mode.pk]))
        .content.decode()
    )
    assert "look-before-changing" in panel and "Held back from review: 1 instruction" in panel


@pytest.mark.django_db
def test_a_mode_lists_the_skill_a_draft_of_it_was_added_to(tenant):
    from django.urls import reverse

    from failures.models import FailureMode
    from skills import selectors
    from skills.models import Skill, SkillVersion

    first = FailureMode.objects.create(workspace=tenant.workspace, label="a", incident_count=3)
    second = FailureMode.objects.create(workspace=tenant.workspace, label="b", incident_count=3)
    skill = Skill.objects.create(workspace=tenant.workspace, name="one-skill", source_mode=first)
    SkillVersion.objects.create(skill=skill, number=1, description="d", body="b", source_mode=first)
    SkillVersion.objects.create(
        skill=skill, number=2, description="d", body="b", source_mode=second
    )
    assert list(selectors.skill_list_for_mode(mode=second)) == [skill]
    assert selectors.skill_names_by_mode(workspace=tenant.workspace)[second.pk] == [skill]
    panel = (
        tenant.client_for(tenant.viewer)
        .get(reverse("mode_skill_panel", args=[tenant.workspace.slug, second.pk]))
        .content.decode()
    )
    assert "one-skill" in panel and "No skill addresses this mode yet" not in panel


def test_a_draft_reaches_the_queue_only_if_an_instruction_passed_or_came_from_people():
    untested = _item("error", "crm.search")
    untested["backtest"] = {"verdict": "untestable", "reason": "not testable yet: 3 runs …"}
    untested["because"] = "`crm.search` answered this: 9 of 10 runs that did failed"
    offered, held = distill.require_passed([untested])
    assert offered == [] and len(held) == 1
    assert "no instruction of this draft has passed a backtest yet" in held[0]["reason"]
    assert "not testable yet: 3 runs" in held[0]["reason"] and "9 of 10" in held[0]["reason"]
    assert "has passed a backtest" in distill.untested_reason(held)
    # One passed instruction carries an untested one along (marked as such).
    passed = _item("order", "refund")
    assert distill.require_passed([passed, untested]) == ([passed, untested], [])
    # A fix people wrote on labelled runs is their own word, not the product's guess.
    people = {**untested, "from_people": True}
    assert distill.require_passed([people]) == ([people], [])


def test_the_split_keeps_a_tasks_repeats_together_but_splits_a_template_run_by_run():
    from failures.backtest import TEMPLATE_RUNS, split

    @dataclass
    class Run:
        trace_id: int
        task_key: str

    repeats = [Run(i, f"task-{i % 10}") for i in range(40)]  # 10 tasks, 4 runs each
    template = [Run(100 + i, "refund order") for i in range(TEMPLATE_RUNS + 1)]
    drafting, tested = split(repeats + template)
    for task in {r.task_key for r in repeats}:
        halves = {r in tested for r in repeats if r.task_key == task}
        assert len(halves) == 1  # all its runs on one side
    in_tested = sum(r in tested for r in template)
    assert 0 < in_tested < len(template)  # a kind of task, split run by run


@pytest.mark.django_db
def test_a_recovery_and_a_retry_are_backtested_on_the_runs_that_hit_the_error(tenant):
    """ "When `sql` answers E, run `describe` next" and "not done until a call succeeds",
    checked on constructed runs: those that did it next against those that did not."""
    from failures.contrast import recovery_backtest, retry_backtest
    from failures.models import TraceAnalysis
    from failures.stats import labelled_runs
    from tests.factories import ingest, trace_payload

    def run(eid: str, status: str, after: list[dict]) -> dict:
        steps = [
            {
                "kind": "tool_call",
                "name": "sql",
                "input": {"command": "SELECT votes FROM t"},
                "error": "Error executing query: Unknown column 'votes' in 'field list'",
            }
        ]
        return trace_payload(eid, agent="sql-agent", status=status, task_key=eid,
                             steps=steps + after)  # fmt: skip

    describe = {"kind": "tool_call", "name": "sql", "input": {"command": "DESCRIBE t"},
                "output": "id int"}  # fmt: skip
    select = {"kind": "tool_call", "name": "sql", "input": {"command": "SELECT id FROM t"},
              "output": "1"}  # fmt: skip
    ingest(tenant.workspace, [run(f"d-{i}", "succeeded", [describe, select]) for i in range(6)]
           + [run(f"d-bad-{i}", "failed", [describe]) for i in range(1)]
           + [run(f"x-{i}", "failed", [select]) for i in range(6)])  # fmt: skip
    runs = labelled_runs(tenant.workspace.pk, {"sql-agent"})
    signal = next(s for s in TraceAnalysis.objects.get(trace__external_id="d-0").signals
                  if s.startswith("error:sql:"))  # fmt: skip
    result = recovery_backtest(tenant.workspace.pk, signal, "describe", runs)
    assert (result["followed"], result["followed_succeeded"]) == (7, 6)
    assert (result["other"], result["other_succeeded"]) == (6, 0)
    assert result["verdict"] == "passed"
    # The retry form: a later `sql` call that answered. Every run here made one.
    retried = retry_backtest(tenant.workspace.pk, signal, runs)
    assert retried["followed"] == 13 and retried["other"] == 0
    assert retried["verdict"] == "untestable"


@pytest.mark.django_db
def test_a_recovery_by_another_tool_is_drafted_backtested_and_offered(tenant, settings):
    """Runs that hit "SKU not found" and still succeeded called `inventory.normalize_sku`
    next; those that did not, failed: the draft says so, and it passed its backtest."""
    from failures import services as failure_modes
    from failures.embedding import incidents_embed
    from failures.models import FailureMode
    from skills.services import distillation_request, distillation_run
    from tests.factories import ingest, split_keys, successful_payloads, trace_payload

    settings.ANTHROPIC_API_KEY = ""

    def run(eid: str, key: str, status: str, after: list[dict]) -> dict:
        lookup = {"kind": "tool_call", "name": "inventory.lookup", "input": {"sku": "sku-1"},
                  "error": "SKU not found: 'sku-1' (SKUs are upper case)"}  # fmt: skip
        return trace_payload(eid, agent="shop-agent", status=status, task_key=key,
                             steps=[lookup, *after])  # fmt: skip

    normalise = {"kind": "tool_call", "name": "inventory.normalize_sku", "input": {"sku": "sku-1"},
                 "output": {"sku": "SKU-1"}}  # fmt: skip
    ingest(tenant.workspace,
           [run(f"ok-{i}", k, "succeeded", [normalise]) for i, k in enumerate(split_keys("ok", 12))]
           + [run(f"bad-{i}", k, "failed", []) for i, k in enumerate(split_keys("bad", 12))]
           + successful_payloads(30, tool="inventory.get", agent="shop-agent"))  # fmt: skip
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes.failure_modes_recluster(workspace_id=tenant.workspace.pk)
    mode = FailureMode.objects.get(workspace=tenant.workspace, incident_count__gt=0)
    job, _ = distillation_request(mode=mode)
    job = distillation_run(job_id=job.pk)
    assert job.version is not None, job.detail
    items = {i["kind"]: i for i in job.version.instructions}
    item = items["next_call"]
    assert "call `inventory.normalize_sku` next" in item["text"]
    assert item["backtest"]["verdict"] == "passed"
    assert item["backtest"]["followed"] == 6 and item["backtest"]["other"] == 6
    assert "inventory.normalize_sku" in job.version.body


@pytest.mark.django_db
def test_the_skills_list_says_which_drafts_were_held_back_not_that_none_was_drafted(
    tenant, other_tenant
):
    from django.urls import reverse

    from failures.models import FailureMode
    from skills.models import DistillationJob

    slug = tenant.workspace.slug
    viewer = tenant.client_for(tenant.viewer)
    page = viewer.get(reverse("skill_list", args=[slug])).content.decode()
    assert "No skills yet. They are drafted automatically" in page and "Held back" not in page
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="crm.search: timeout",
                                      incident_count=9)  # fmt: skip
    DistillationJob.objects.create(workspace=tenant.workspace, failure_mode=mode, state="done",
                                   verdict="skip", detail=distill.untested_reason([{}]))  # fmt: skip
    page = viewer.get(reverse("skill_list", args=[slug])).content.decode()
    assert "Held back from review: 1 failure mode" in page and "crm.search: timeout" in page
    assert "No skill has reached review yet" in page and "No skills yet." not in page
    theirs = other_tenant.client_for(other_tenant.viewer).get(
        reverse("skill_list", args=[other_tenant.workspace.slug])).content.decode()  # fmt: skip
    assert "crm.search: timeout" not in theirs and "Held back" not in theirs


def test_a_skipped_drafts_reason_is_said_once_on_its_mode(tenant):
    from django.urls import reverse

    from failures.models import FailureMode
    from skills.models import DistillationJob

    mode = FailureMode.objects.create(workspace=tenant.workspace, label="crm.search: timeout",
                                      incident_count=9)  # fmt: skip
    job = DistillationJob.objects.create(workspace=tenant.workspace, failure_mode=mode,
                                         state="done", verdict="skip",
                                         detail="Skipped: nothing in these runs separates them"
                                                " at `crm.search` <b>.")  # fmt: skip
    url = reverse("job_status", args=[tenant.workspace.slug, job.pk])
    html = tenant.client_for(tenant.viewer).get(url).content.decode()
    # The reason's backticked names show as code; the rest of it as text.
    assert ("No draft</span> Skipped: nothing in these runs separates them at "
            "<code>crm.search</code> &lt;b&gt;.") in html  # fmt: skip
    assert "skip:" not in html


def test_the_skills_list_names_modes_that_gave_no_draft_and_what_to_do(tenant, other_tenant):
    from django.urls import reverse

    from failures.models import FailureMode
    from skills.models import DistillationJob

    mode = FailureMode.objects.create(workspace=tenant.workspace, label="`db_match` failed",
                                      incident_count=9)  # fmt: skip
    DistillationJob.objects.create(workspace=tenant.workspace, failure_mode=mode, state="done",
                                   verdict="skip",
                                   detail="Skipped: nothing in these runs separates them.")  # fmt: skip
    slug = tenant.workspace.slug
    page = tenant.client_for(tenant.viewer).get(reverse("skill_list", args=[slug])).content.decode()
    assert "No draft for 1 failure mode" in page and "<code>db_match</code> failed" in page
    # A mode a re-cluster emptied is on no other page: not named here either.
    empty = FailureMode.objects.create(workspace=tenant.workspace, label="emptied mode",
                                       incident_count=0)  # fmt: skip
    DistillationJob.objects.create(workspace=tenant.workspace, failure_mode=empty, state="done",
                                   verdict="skip", detail="Skipped: nothing.")  # fmt: skip
    page = tenant.client_for(tenant.viewer).get(reverse("skill_list", args=[slug])).content.decode()
    assert "No draft for 1 failure mode" in page and "emptied mode" not in page
    assert reverse("review_queue", args=[slug]) in page
    assert "nothing could be drafted so far" in page
    assert "drafted automatically once a failure mode has enough incidents" not in page
    assert "Held back from review" not in page
    theirs = other_tenant.client_for(other_tenant.viewer).get(
        reverse("skill_list", args=[other_tenant.workspace.slug])).content.decode()  # fmt: skip
    assert "db_match" not in theirs and "No draft for" not in theirs
