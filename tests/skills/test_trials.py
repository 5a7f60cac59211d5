"""Skill trials: assignment, what each arm is served, effects, verdicts, decisions."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from failures import tasks
from failures.models import CandidateState, FailureMode, LabelCandidate, ModeDailyCount, RunLabel
from failures.services import mode_daily_counts_refresh
from metrics.models import TrialRunLikeness
from metrics.selectors import trial_result
from metrics.services import trials_refresh, trials_refresh_for_traces
from skills import review
from skills.models import Skill, SkillVersion, Trial, TrialAssignment
from skills.trials import (
    HELPS,
    HOLDOUT,
    HURTS,
    NO_CHANGE,
    TREATED,
    ArmDay,
    arm_for,
    cs_multiplier,
    effect,
    newcombe,
    planned_per_arm,
    verdict,
)
from tests.factories import ingest
from tests.failures.test_labels import _cancel, _label, _seat
from traces.models import Trace
from traces.services import trace_ingest_batch
from workspaces.errors import Conflict, PermissionDenied
from workspaces.models import AuditEvent

BODY = "## When this applies\nx\n\n## Do\ny\n\n## Don't\nz\n\n## How to check\nw"
AGENT = "checkout-agent"


# --- the statistics ------------------------------------------------------------------


def test_assignment_is_deterministic_and_balanced():
    for share in (0.5, 0.2):
        arms = [arm_for(skill_id=7, session_id=f"session-{i}", holdout_share=share)
                for i in range(10_000)]  # fmt: skip
        assert abs(arms.count(HOLDOUT) / 10_000 - share) < 0.02
    again = [arm_for(skill_id=7, session_id=f"session-{i}", holdout_share=0.5) for i in range(200)]
    assert again == [arm_for(skill_id=7, session_id=f"session-{i}", holdout_share=0.5)
                     for i in range(200)]  # fmt: skip
    # Another skill's split is its own: not the same sessions held out.
    other = [arm_for(skill_id=8, session_id=f"session-{i}", holdout_share=0.5) for i in range(200)]
    assert sum(a != b for a, b in zip(again, other, strict=True)) > 60


def test_newcombe_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80,
    # method 10 gives 0.0524 to 0.3339.
    low, high = newcombe((56, 70), (48, 80))
    assert round(low, 4) == 0.0524 and round(high, 4) == 0.3339


def _days(rng, p_treated, p_holdout, days, per_day, share=0.5):
    rows = []
    for day in range(days):
        for arm, p in ((TREATED, p_treated), (HOLDOUT, p_holdout)):
            n = sum(rng.random() >= share if arm == TREATED else rng.random() < share
                    for _ in range(per_day))  # fmt: skip
            rows.append(
                ArmDay(f"2026-11-{day + 1:02d}", arm, n, sum(rng.random() < p for _ in range(n)))
            )
    return rows


def test_effects_differ_for_skills_with_different_true_effects():
    rng = random.Random(3)
    results = {}
    for name, treated in (("helps", 0.15), ("none", 0.45), ("hurts", 0.75)):
        rows = _days(rng, treated, 0.45, days=10, per_day=40)
        results[name] = effect(rows, holdout_share=0.5, t_star=400)
    assert results["helps"].below_zero and results["hurts"].above_zero
    assert not results["none"].below_zero and not results["none"].above_zero
    assert results["helps"].difference < results["none"].difference < results["hurts"].difference


def test_the_always_valid_interval_holds_when_looked_at_every_day():
    """With no true effect, excluding zero at *any* of 30 daily looks happens in
    at most about 5% of trials (a fixed-sample interval read daily does far more)."""
    rng = random.Random(11)
    always_valid = fixed = 0
    runs = 200
    for _ in range(runs):
        rows, flagged_cs, flagged_fixed = [], False, False
        for day in range(30):
            rows += _days(rng, 0.4, 0.4, days=1, per_day=20)
            rows[-2:] = [ArmDay(f"d{day:02d}", r.arm, r.n, r.hits) for r in rows[-2:]]
            e = effect(rows, holdout_share=0.5, t_star=600)
            flagged_cs |= e.below_zero or e.above_zero
            flagged_fixed |= e.newcombe is not None and (e.newcombe[0] > 0 or e.newcombe[1] < 0)
        always_valid += flagged_cs
        fixed += flagged_fixed
    assert always_valid / runs <= 0.06
    assert fixed / runs > 2 * max(always_valid / runs, 0.05)


def test_planned_size_grows_as_the_change_to_detect_shrinks():
    big = planned_per_arm(baseline=0.3, min_change=0.5, holdout_share=0.5)
    small = planned_per_arm(baseline=0.3, min_change=0.2, holdout_share=0.5)
    assert 50 <= big < small
    assert cs_multiplier(400, 400) == pytest.approx(3.28, abs=0.01)


def test_verdict_words():
    helps = effect(_days(random.Random(1), 0.05, 0.6, 8, 40), holdout_share=0.5, t_star=300)
    same = effect(_days(random.Random(2), 0.5, 0.5, 8, 40), holdout_share=0.5, t_star=300)
    worse = effect(_days(random.Random(4), 0.9, 0.4, 8, 40), holdout_share=0.5, t_star=300)
    assert verdict(recurrence=helps, success=same) == HELPS
    assert verdict(recurrence=worse, success=same) == HURTS
    assert verdict(recurrence=same, success=same) == NO_CHANGE


# --- the product -----------------------------------------------------------------------


def _skill_on_trial(tenant, holdout=50):
    ws = tenant.workspace
    mode = FailureMode.objects.create(workspace=ws, label="HTTP 429 rate limit", incident_count=5)
    ModeDailyCount.objects.create(workspace=ws, failure_mode=mode, day=timezone.now().date(),
                                  agent=AGENT, incidents=5, traces=5)  # fmt: skip
    skill = Skill.objects.create(workspace=ws, name="respect-rate-limits", source_mode=mode)
    SkillVersion.objects.create(skill=skill, number=1, description="Back off on HTTP 429.",
                                body=BODY, authorship="offline", source_mode=mode)  # fmt: skip
    response = tenant.client_for(tenant.lead).post(
        reverse("skill_approve", args=[ws.slug, skill.pk]),
        {"version": "1", "rollout": "trial", "holdout_percent": str(holdout),
         "min_change_percent": "50"},
    )  # fmt: skip
    assert response.status_code == 302
    return Skill.objects.get(pk=skill.pk)


def _listed(client, tenant, session):
    headers = (
        {**tenant.api_headers(), "X-Hivemind-Session": session} if session else tenant.api_headers()
    )
    response = client.get("/api/v1/skills", headers=headers)
    assert response.status_code == 200
    return response, [s["name"] for s in response.json()["items"]]


@pytest.mark.django_db
def test_a_trial_serves_the_treated_arm_only_and_records_every_assignment(client, tenant):
    skill = _skill_on_trial(tenant)
    trial = Trial.objects.get(skill=skill)
    assert skill.status == "published" and skill.rollout == "trial"
    assert trial.agents == [AGENT] and trial.planned_per_arm >= 50
    event = AuditEvent.objects.get(action="skill.approve")
    assert (
        event.after["rollout"] == "trial"
        and event.after["planned_per_arm"] == trial.planned_per_arm
    )
    served = {}
    for i in range(40):
        _, names = _listed(client, tenant, f"s-{i}")
        served[f"s-{i}"] = skill.name in names
        # Same session, same answer, on every endpoint.
        file = client.get(f"/api/v1/skills/{skill.name}",
                          headers={**tenant.api_headers(), "X-Hivemind-Session": f"s-{i}"})  # fmt: skip
        assert (file.status_code == 200) == served[f"s-{i}"]
    assert 5 < sum(served.values()) < 35
    rows = {a.session_id: a for a in TrialAssignment.objects.filter(trial=trial)}
    assert len(rows) == 40
    for session, got in served.items():
        assert rows[session].arm == (TREATED if got else HOLDOUT)
        assert rows[session].version.number == 1
        assert rows[session].arm == arm_for(
            skill_id=skill.pk, session_id=session, holdout_share=0.5
        )
    # No session id: not served, not assigned, told why.
    response, names = _listed(client, tenant, "")
    assert skill.name not in names and "X-Hivemind-Session" in response["X-Hivemind-Trial"]
    assert TrialAssignment.objects.filter(trial=trial).count() == 40
    missing = client.get(f"/api/v1/skills/{skill.name}", headers=tenant.api_headers())
    assert missing.status_code == 404 and "X-Hivemind-Session" in missing.json()["detail"]
    # The ETag differs between arms, so a cache never hands one arm the other's list.
    held = next(s for s, got in served.items() if not got)
    treated = next(s for s, got in served.items() if got)
    assert _listed(client, tenant, held)[0]["ETag"] != _listed(client, tenant, treated)[0]["ETag"]


def _post_traces(client, tenant, sessions, status_for):
    now = timezone.now()
    items = [{
        "external_id": f"t-{s}", "agent": AGENT, "session_id": s, "task": "Refund",
        "status": status_for(s), "started_at": (now + timedelta(seconds=1)).isoformat(),
        "steps": [{"kind": "tool_call", "name": "payments.refund", "output": "ok"}],
    } for s in sessions]  # fmt: skip
    response = client.post("/api/v1/traces", json.dumps({"traces": items}),
                           content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200, response.content


def _run_trial(client, tenant, skill, treated_ok, holdout_ok, n=80):
    arms = {}
    for i in range(n):
        _, names = _listed(client, tenant, f"run-{i}")
        arms[f"run-{i}"] = TREATED if skill.name in names else HOLDOUT
    rng = random.Random(5)
    _post_traces(client, tenant, arms, lambda s: "succeeded" if rng.random() < (
        treated_ok if arms[s] == TREATED else holdout_ok) else "failed")  # fmt: skip
    trials_refresh(workspace_id=tenant.workspace.pk)
    return Trial.objects.get(skill=skill)


@pytest.mark.django_db
def test_a_harmful_skill_is_flagged_on_the_overview_the_skills_list_and_its_trial(client, tenant):
    skill = _skill_on_trial(tenant)
    trial = _run_trial(client, tenant, skill, treated_ok=0.1, holdout_ok=0.9)
    result = trial_result(trial=trial)
    assert trial.verdict == HURTS and result.success.below_zero
    assert result.arms[TREATED].traces + result.arms[HOLDOUT].traces == 80
    lead = tenant.client_for(tenant.lead)
    overview = lead.get(reverse("overview", args=[tenant.workspace.slug])).content.decode()
    assert 'id="harmful"' in overview and skill.name in overview
    listing = lead.get(reverse("skill_list", args=[tenant.workspace.slug])).content.decode()
    assert "hurts: its trial says so" in listing
    # ...on every tab of the queue, the proposals included.
    proposed = lead.get(reverse("skill_list", args=[tenant.workspace.slug]) + "?status=proposed")
    assert 'id="harmful"' in proposed.content.decode()
    page = lead.get(reverse("skill_trial", args=[tenant.workspace.slug, skill.pk])).content.decode()
    assert "<strong>Hurts</strong>" in page and "Withdraw" in page
    # The decision does not lead to the rollout the trial argues against.
    assert '<button class="secondary">Roll out to everyone' in page
    assert "would give every agent a skill that made its runs worse" in page
    # Still served to the treated arm: flagging is not pausing unless the workspace says so.
    assert Skill.objects.get(pk=skill.pk).status == "published"


@pytest.mark.django_db
def test_the_workspace_setting_pauses_a_harmful_skill_and_audits_it(client, tenant):
    admin = tenant.client_for(tenant.admin)
    admin.post(reverse("trial_settings_save", args=[tenant.workspace.slug]),
               {"pause_harmful_skills": "on"})  # fmt: skip
    assert AuditEvent.objects.filter(action="workspace.trial_settings").exists()
    skill = _skill_on_trial(tenant)
    trial = _run_trial(client, tenant, skill, treated_ok=0.1, holdout_ok=0.9)
    skill.refresh_from_db()
    assert skill.status == "retired" and trial.ended_at is not None
    assert "Paused automatically" in trial.end_reason
    pause = AuditEvent.objects.get(action="skill.pause")
    assert pause.actor is None and pause.after["verdict"] == HURTS
    assert skill.source_mode.status == "open"
    _, names = _listed(client, tenant, "run-1")
    assert skill.name not in names
    page = tenant.client_for(tenant.lead).get(
        reverse("skill_detail", args=[tenant.workspace.slug, skill.pk])).content.decode()  # fmt: skip
    assert "Not served: retired on" in page and "Paused automatically" in page


@pytest.mark.django_db
def test_helpful_and_useless_skills_read_differently_and_a_lead_rolls_out(client, tenant):
    skill = _skill_on_trial(tenant)
    trial = _run_trial(client, tenant, skill, treated_ok=0.95, holdout_ok=0.3)
    assert trial.verdict == HELPS
    lead = tenant.client_for(tenant.lead)
    page = lead.get(reverse("skill_trial", args=[tenant.workspace.slug, skill.pk])).content.decode()
    assert '<button class="primary">Roll out to everyone' in page and 'id="decide-note"' not in page
    response = lead.post(reverse("skill_roll_out", args=[tenant.workspace.slug, skill.pk]))
    assert response.status_code == 302
    skill.refresh_from_db()
    trial.refresh_from_db()
    assert skill.rollout == "all" and trial.ended_at is not None
    assert AuditEvent.objects.get(action="skill.roll_out").after["verdict"] == HELPS
    _, names = _listed(client, tenant, "")  # everyone now, with or without a session
    assert skill.name in names
    with pytest.raises(Conflict):
        review.skill_roll_out(skill=skill, actor=tenant.lead)


@pytest.mark.django_db
def test_no_effect_reads_no_measurable_change_and_a_lead_rolls_back(client, tenant):
    skill = _skill_on_trial(tenant)
    trial = _run_trial(client, tenant, skill, treated_ok=0.5, holdout_ok=0.5)
    assert trial.verdict == NO_CHANGE
    page = tenant.client_for(tenant.viewer).get(
        reverse("skill_trial", args=[tenant.workspace.slug, skill.pk])).content.decode()  # fmt: skip
    assert "No measurable change" in page and "Withdraw</button>" not in page  # viewers read only
    with pytest.raises(PermissionDenied):
        review.skill_roll_back_trial(skill=skill, actor=tenant.viewer)
    lead = tenant.client_for(tenant.lead)
    page = lead.get(reverse("skill_trial", args=[tenant.workspace.slug, skill.pk])).content.decode()
    assert '<button class="secondary">Roll out to everyone' in page
    assert "has not shown that v1 helps" in page
    lead.post(reverse("skill_roll_back_trial", args=[tenant.workspace.slug, skill.pk]),
              {"reason": "no effect"})  # fmt: skip
    skill.refresh_from_db()
    assert skill.status == "retired"
    assert AuditEvent.objects.get(action="skill.roll_back_trial").after["reason"] == "no effect"
    # Rolling back to an older version is refused while on trial; after, the page is true.
    detail = lead.get(
        reverse("skill_detail", args=[tenant.workspace.slug, skill.pk])
    ).content.decode()
    assert "Not served: retired on" in detail


@pytest.mark.django_db
def test_the_trial_ends_at_its_planned_size(client, tenant):
    skill = _skill_on_trial(tenant, holdout=50)
    Trial.objects.filter(skill=skill).update(planned_per_arm=20)
    trial = _run_trial(client, tenant, skill, treated_ok=0.5, holdout_ok=0.5, n=80)
    assert trial.ended_at is not None and trial.end_reason == "planned size reached"
    # The split stays until a lead decides, so sessions keep their set.
    assert Skill.objects.get(pk=skill.pk).rollout == "trial"


@pytest.mark.django_db
def test_benchmark_json_has_the_agent_skills_shape(client, tenant):
    skill = _skill_on_trial(tenant)
    _run_trial(client, tenant, skill, treated_ok=0.9, holdout_ok=0.4)
    response = tenant.client_for(tenant.viewer).get(
        reverse("skill_trial_benchmark", args=[tenant.workspace.slug, skill.pk]))  # fmt: skip
    body = response.json()
    assert response["Content-Disposition"].endswith('-benchmark.json"')
    assert body["metadata"]["skill_name"] == skill.name
    configs = {r["configuration"]: r["result"] for r in body["runs"]}
    assert set(configs) == {"with_skill", "without_skill"}
    for result in configs.values():
        assert {
            "pass_rate",
            "passed",
            "failed",
            "total",
            "time_seconds",
            "tokens",
            "errors",
        } <= set(result)
    summary = body["run_summary"]
    with_rate = summary["with_skill"]["pass_rate"]["mean"]
    without_rate = summary["without_skill"]["pass_rate"]["mean"]
    assert float(summary["delta"]["pass_rate"]) == pytest.approx(
        with_rate - without_rate, abs=0.006
    )
    assert summary["delta"]["pass_rate"][0] in "+-"
    assert with_rate == pytest.approx(
        configs["with_skill"]["passed"] / configs["with_skill"]["total"], abs=1e-4
    )


@pytest.mark.django_db
def test_trial_pages_and_actions_access(client, tenant, other_tenant, anon):
    skill = _skill_on_trial(tenant)
    slug = tenant.workspace.slug
    for name in ("skill_trial", "skill_trial_benchmark"):
        url = reverse(name, args=[slug, skill.pk])
        assert anon.get(url).status_code == 302  # to login
        assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
        assert tenant.client_for(tenant.viewer).get(url).status_code == 200
    for name in ("skill_roll_out", "skill_roll_back_trial"):
        url = reverse(name, args=[slug, skill.pk])
        assert anon.post(url).status_code == 302
        assert other_tenant.client_for(other_tenant.admin).post(url).status_code == 404
        assert tenant.client_for(tenant.viewer).post(url).status_code == 403
        assert Skill.objects.get(pk=skill.pk).rollout == "trial"  # nothing changed
    settings_url = reverse("trial_settings_save", args=[slug])
    assert anon.post(settings_url).status_code == 302
    assert other_tenant.client_for(other_tenant.admin).post(settings_url).status_code == 404
    assert (
        tenant.client_for(tenant.lead)
        .post(settings_url, {"pause_harmful_skills": "on"})
        .status_code
        == 403
    )
    tenant.workspace.refresh_from_db()
    assert tenant.workspace.pause_harmful_skills is False
    # A skill never on trial has no trial page.
    plain = Skill.objects.create(workspace=tenant.workspace, name="plain")
    assert (
        tenant.client_for(tenant.lead)
        .get(reverse("skill_trial", args=[slug, plain.pk]))
        .status_code
        == 404
    )


@pytest.mark.django_db
def test_bad_trial_settings_are_refused_with_a_reason(tenant):
    ws = tenant.workspace
    skill = Skill.objects.create(workspace=ws, name="x-skill")
    SkillVersion.objects.create(
        skill=skill, number=1, description="d", body=BODY, authorship="offline"
    )
    lead = tenant.client_for(tenant.lead)
    url = reverse("skill_approve", args=[ws.slug, skill.pk])
    for bad in ({"holdout_percent": "0"}, {"holdout_percent": "abc"}, {"min_change_percent": "nan"},
                {"holdout_percent": "99"}):  # fmt: skip
        response = lead.post(url, {"version": "1", "rollout": "trial", **bad}, follow=True)
        assert response.status_code in (200, 400, 422)
        assert Skill.objects.get(pk=skill.pk).status == "proposed"
    assert lead.post(url, {"version": "1", "rollout": "sideways"}, follow=True).status_code in (
        200,
        400,
        422,
    )
    assert Skill.objects.get(pk=skill.pk).status == "proposed"


@pytest.mark.django_db
def test_during_a_trial_an_unchanged_pull_gets_304_for_its_own_arm(client, tenant):
    skill = _skill_on_trial(tenant)
    arms = {f"s-{i}": arm_for(skill_id=skill.pk, session_id=f"s-{i}", holdout_share=0.5)
            for i in range(100)}  # fmt: skip
    treated = next(s for s, arm in arms.items() if arm == TREATED)
    held = next(s for s, arm in arms.items() if arm == HOLDOUT)
    for path in ("/api/v1/skills", "/api/v1/skills.zip"):
        tags = {}
        for session in (treated, held):
            headers = {**tenant.api_headers(), "X-Hivemind-Session": session}
            first = client.get(path, headers=headers)
            assert first.status_code == 200 and first["ETag"]
            again = client.get(path, headers={**headers, "If-None-Match": first["ETag"]})
            assert again.status_code == 304 and again["ETag"] == first["ETag"], path
            tags[session] = first["ETag"]
        # Another arm's ETag is not this session's: it gets the full answer.
        other = client.get(path, headers={**tenant.api_headers(), "X-Hivemind-Session": treated,
                                          "If-None-Match": tags[held]})  # fmt: skip
        assert tags[treated] != tags[held] and other.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_refreshes_of_one_trial_at_the_same_time_take_turns(client, tenant):
    """The worker's sweep and a refresh after an ingest can meet: each deletes and
    re-inserts the trial's rows, and interleaved, the second hit a duplicate key."""
    import threading

    from django.db import connection as main_connection
    from django.db import connections

    from metrics.models import TrialDailyRollup
    from metrics.services import trial_rollups_refresh

    skill = _skill_on_trial(tenant)
    trial = _run_trial(client, tenant, skill, 0.8, 0.5, n=40)
    expected = sorted(TrialDailyRollup.objects.filter(trial=trial).values_list("arm", "traces"))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def refresh() -> None:
        try:
            start.wait()
            for _ in range(10):
                trial_rollups_refresh(trial_id=trial.pk)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    main_connection.close()
    assert not errors, errors
    assert (
        sorted(TrialDailyRollup.objects.filter(trial=trial).values_list("arm", "traces"))
        == expected
    )


@pytest.mark.django_db
def test_a_trial_of_a_mode_known_from_labels_counts_the_runs_like_its_labelled_ones(
    client, tenant, other_tenant
):
    """A mode formed from a lead's labels gains a run only when someone labels it, so
    its trial counts each arm's failed runs like the labelled one (by the rules that
    offer "same failure?" candidates), says so, and reads the verdict from them: the
    runs failing another way are not counted, nor a run a lead rejected as not the
    same failure, nor another workspace's runs."""
    ws = tenant.workspace
    ingest(workspace=ws, items=[_cancel(i) for i in range(4)] + [_seat(i) for i in range(3)])
    stored = {t.external_id: t for t in Trace.objects.filter(workspace=ws)}
    tasks.analyse_traces(ws.pk, [t.pk for t in stored.values()])
    label = _label(tenant, stored["cancel-0"])
    mode_daily_counts_refresh(workspace_id=ws.pk)
    mode = FailureMode.objects.get(pk=label.failure_mode_id)
    skill = Skill.objects.create(workspace=ws, name="check-cancellation-rules", source_mode=mode)
    SkillVersion.objects.create(skill=skill, number=1, description="Read the rules first.",
                                body=BODY, authorship="offline", source_mode=mode)  # fmt: skip
    response = tenant.client_for(tenant.lead).post(
        reverse("skill_approve", args=[ws.slug, skill.pk]),
        {"version": "1", "rollout": "trial", "holdout_percent": "50", "min_change_percent": "50"},
    )  # fmt: skip
    assert response.status_code == 302
    trial = Trial.objects.get(skill=skill)
    assert trial.agents == ["airline-agent"]
    arms = {}
    for i in range(24):
        _, names = _listed(client, tenant, f"sess-{i}")
        arms[f"sess-{i}"] = TREATED if skill.name in names else HOLDOUT
    now = timezone.now().isoformat()
    # Treated sessions fail another way (a seat refused); held-out ones cancel as the
    # labelled run did.
    items = [
        {**(_seat(100 + i) if arm == TREATED else _cancel(100 + i)), "session_id": s,
         "started_at": now}
        for i, (s, arm) in enumerate(arms.items())
    ]  # fmt: skip
    new = trace_ingest_batch(workspace=ws, items=items).trace_ids
    tasks.analyse_traces(ws.pk, new)
    # A lead said one held-out cancellation is not the same failure.
    rejected = Trace.objects.get(workspace=ws, session_id=next(s for s, a in arms.items()
                                                               if a == HOLDOUT))  # fmt: skip
    LabelCandidate.objects.update_or_create(
        label=label, trace=rejected,
        defaults={"workspace": ws, "step_index": 2, "score": 0.9,
                  "state": CandidateState.REJECTED},
    )  # fmt: skip
    # Another workspace's cancellations are not this trial's.
    ingest(workspace=other_tenant.workspace,
           items=[{**_cancel(200), "session_id": "sess-0", "started_at": now}])  # fmt: skip
    trials_refresh(workspace_id=ws.pk)
    result = trial_result(trial=Trial.objects.get(pk=trial.pk))
    held_out = sum(1 for a in arms.values() if a == HOLDOUT)
    treated = len(arms) - held_out
    assert result.recurrence_measured and result.recurrence_by_likeness
    assert result.recurrence.treated == (0, treated)
    assert result.recurrence.holdout == (held_out - 1, held_out)
    assert not RunLabel.objects.filter(workspace=ws).exclude(pk=label.pk).exists()
    page = tenant.client_for(tenant.lead).get(reverse("skill_trial", args=[ws.slug, skill.pk]))
    assert page.status_code == 200
    assert "Runs that failed like its labelled runs" in page.text
    assert "no person has confirmed them" in page.text
    assert (
        "unconfirmed" in tenant.client_for(tenant.lead).get(reverse("metrics", args=[ws.slug])).text
    )
    # After an ingest, only the new runs are compared, once diagnosed (each
    # diagnosed chunk refreshes its runs' trials): one more held-out cancellation
    # counts; an undiagnosed one waits, it is not "unlike".
    session = next(s for s, a in arms.items() if a == HOLDOUT and s != rejected.session_id)
    later = trace_ingest_batch(workspace=ws, items=[
        {**_cancel(300), "session_id": session, "started_at": now},
        {**_cancel(301), "session_id": session, "started_at": now},
    ]).trace_ids  # fmt: skip
    checked = TrialRunLikeness.objects.filter(trial=trial).count()
    trials_refresh_for_traces(trace_ids=later)  # what the ingest queued: none diagnosed
    assert TrialRunLikeness.objects.filter(trial=trial).count() == checked
    tasks.analyse_traces(ws.pk, later[:1])
    assert TrialRunLikeness.objects.filter(trial=trial).count() == checked + 1
    result = trial_result(trial=Trial.objects.get(pk=trial.pk))
    assert result.recurrence.holdout == (held_out, held_out + 2)
    tasks.analyse_traces(ws.pk, later[1:])
    trials_refresh(workspace_id=ws.pk)
    result = trial_result(trial=Trial.objects.get(pk=trial.pk))
    assert result.recurrence.holdout == (held_out + 1, held_out + 2)
    # A lead's "not the same failure" counts at once, without comparing again.
    counted = Trace.objects.get(pk=later[1])
    LabelCandidate.objects.update_or_create(
        label=label, trace=counted,
        defaults={"workspace": ws, "step_index": 2, "score": 0.9,
                  "state": CandidateState.REJECTED},
    )  # fmt: skip
    trials_refresh(workspace_id=ws.pk, recheck=False)
    result = trial_result(trial=Trial.objects.get(pk=trial.pk))
    assert result.recurrence.holdout == (held_out, held_out + 2)
    # Another mode's change compares nothing again; a change of this one, every run.
    some = TrialRunLikeness.objects.filter(trial=trial, like=True).first()
    TrialRunLikeness.objects.filter(pk=some.pk).update(like=False)
    trials_refresh(workspace_id=ws.pk, changed_modes=[mode.pk + 1000])
    assert not TrialRunLikeness.objects.get(pk=some.pk).like
    trials_refresh(workspace_id=ws.pk, changed_modes=[mode.pk])
    assert TrialRunLikeness.objects.get(trial=trial, trace_id=some.trace_id).like
    result = trial_result(trial=Trial.objects.get(pk=trial.pk))
    assert result.recurrence.holdout == (held_out, held_out + 2)
