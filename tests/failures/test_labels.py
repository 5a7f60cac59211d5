"""4/8: a lead labels failed runs in a queue; the product offers the runs like them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from failures import labels, propagation
from failures.mining import incidents_mine
from failures.models import (
    NOT_CAUSES,
    CandidateState,
    FailureMode,
    Incident,
    IncidentKind,
    LabelCandidate,
    RunLabel,
    TraceAnalysis,
)
from failures.services import failure_modes_recluster
from tests.factories import ingest, make_key, trace_payload
from traces.models import Trace
from workspaces.errors import InvalidInput, PermissionDenied
from workspaces.models import AuditEvent, Scope

pytestmark = pytest.mark.django_db

SENTENCE = "Cancelled a reservation the policy did not allow to cancel"


def _cancel(i: int, agent: str = "airline-agent") -> dict:
    """A failed run that cancelled when it should not have (no error anywhere)."""
    return trace_payload(
        f"cancel-{i}", agent=agent, task=f"Help the customer with reservation R{i:03d}",
        steps=[
            {"kind": "tool_call", "name": "get_reservation_details",
             "input": {"reservation_id": f"R{i:03d}"}, "output": {"cabin": "basic_economy"}},
            {"kind": "assistant_message", "output": "I will cancel the reservation for you now."},
            {"kind": "tool_call", "name": "cancel_reservation",
             "input": {"reservation_id": f"R{i:03d}"}, "output": {"status": "cancelled"}},
            {"kind": "assistant_message", "output": "Your reservation is cancelled."},
        ],
    )  # fmt: skip


def _seat(i: int) -> dict:
    """A failed run of another kind: a seat change refused."""
    return trace_payload(
        f"seat-{i}", agent="airline-agent", task=f"Change seat on flight F{i}",
        steps=[
            {"kind": "tool_call", "name": "update_seat", "input": {"flight": f"F{i}"},
             "error": "Seat 12A is not available"},
            {"kind": "assistant_message", "output": "Sorry, I could not change the seat."},
        ],
    )  # fmt: skip


@pytest.fixture
def runs(tenant):
    items = [_cancel(i) for i in range(10)] + [_seat(i) for i in range(6)]
    ingest(workspace=tenant.workspace, items=items)
    return {t.external_id: t for t in Trace.objects.filter(workspace=tenant.workspace)}


def _label(tenant, trace, step=2, sentence=SENTENCE, user=None):
    return labels.label_save(
        workspace=tenant.workspace, trace=trace, step_index=step,
        category="process.policy_violation", sentence=sentence,
        fix="Read the cancellation rules before cancel_reservation",
        author=labels.Author(user=user or tenant.lead),
    )  # fmt: skip


def test_a_label_is_a_human_incident_in_the_mode_its_sentence_names(tenant, runs):
    from django.utils import timezone

    labelled_after = timezone.now()
    label = _label(tenant, runs["cancel-0"])
    incident = label.incident
    assert incident.source == "human" and incident.step_index == 2
    assert incident.tool == "cancel_reservation" and incident.description == SENTENCE
    assert incident.assigned_by == "manual" and incident.stats["fix"].startswith("Read")
    mode = FailureMode.objects.get(pk=label.failure_mode_id)
    assert mode.label == SENTENCE and mode.label_locked and mode.incident_count == 1
    analysis = TraceAnalysis.objects.get(trace=runs["cancel-0"])
    assert analysis.state == "diagnosed" and "Labelled by acme-lead" in analysis.detail
    assert analysis.analysed_at >= labelled_after  # the rollups' sweep recounts it
    assert AuditEvent.objects.filter(workspace=tenant.workspace, action="label.create").exists()
    # The same sentence on another run: the same mode.
    second = _label(tenant, runs["cancel-1"])
    assert second.failure_mode_id == mode.pk
    mode.refresh_from_db()
    assert mode.incident_count == 2


def test_a_human_incident_survives_rediagnosis_and_reclustering(tenant, runs, settings):
    trace = runs["seat-0"]
    machine = Incident.objects.get(trace=trace, step_index=0)
    assert machine.source != "human"
    label = _label(tenant, trace, step=0, sentence="Offered a seat without checking the map")
    # The machine incident at that step gave way; what it said is kept.
    label.incident.refresh_from_db()
    assert label.incident.pk == machine.pk and label.incident.source == "human"
    assert "not available" in label.incident.stats["machine"]["description"] or \
        label.incident.stats["machine"]["source"]  # fmt: skip
    TraceAnalysis.objects.filter(trace=trace).update(content_hash="")
    Trace.objects.filter(pk=trace.pk).update(status="failed")
    incidents_mine(workspace_id=tenant.workspace.pk, trace_ids=[trace.pk])
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    incident = Incident.objects.get(trace=trace, step_index=0)
    assert incident.source == "human" and incident.description.startswith("Offered a seat")
    assert incident.failure_mode_id == label.failure_mode_id
    assert TraceAnalysis.objects.get(trace=trace).state == "diagnosed"
    from failures.selectors import incident_list_for_trace

    assert incident_list_for_trace(trace=trace)[0].source == "human"  # shown first
    page = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_incidents", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    assert "labelled by acme-lead" in page and "Diagnosed by a person" in page
    assert "Diagnosed offline" not in page


def test_bad_labels_are_refused_with_a_reason_and_viewers_cannot_label(tenant, runs):
    trace = runs["cancel-0"]
    with pytest.raises(InvalidInput, match="Category must be one of"):
        labels.label_save(workspace=tenant.workspace, trace=trace, step_index=2,
                          category="nope.nope", sentence="x", author=labels.Author(user=tenant.lead))  # fmt: skip
    with pytest.raises(InvalidInput, match="has no step 99"):
        _label(tenant, trace, step=99)
    with pytest.raises(InvalidInput, match="(?i)say in one sentence"):
        _label(tenant, trace, sentence="   ")
    with pytest.raises(PermissionDenied):
        _label(tenant, trace, user=tenant.viewer)
    assert not RunLabel.objects.exists() and not Incident.objects.filter(source="human").exists()


def test_the_queue_puts_undiagnosed_runs_first_and_labelled_or_skipped_runs_leave_it(tenant, runs):
    queue = list(labels.review_queue(workspace=tenant.workspace))
    assert {a.trace.external_id for a in queue} == set(runs)
    groups = [labels.queue_group(a) for a in queue]
    # Undiagnosed (no incident that is a cause) come before diagnosed ones.
    assert groups == sorted(groups, key=lambda g: {"undiagnosed": 0, "unsure": 1}.get(g, 2))
    _label(tenant, runs["cancel-0"])
    labels.run_skip(workspace=tenant.workspace, trace=runs["seat-0"], reason="environment",
                    author=labels.Author(user=tenant.lead))  # fmt: skip
    left = {a.trace.external_id for a in labels.review_queue(workspace=tenant.workspace)}
    assert "cancel-0" not in left and "seat-0" not in left and len(left) == 14
    assert not set(labels.review_queue(workspace=tenant.workspace, agent="nobody"))


def test_propagation_offers_the_runs_with_the_same_step_and_learns_from_rejections(tenant, runs):
    label = _label(tenant, runs["cancel-0"])
    assert propagation.propagate(label_id=label.pk) >= 5
    offered = list(LabelCandidate.objects.filter(label=label).order_by("-score"))
    names = [c.trace.external_id for c in offered]
    assert all(n.startswith("cancel-") for n in names[:9]), names
    assert "cancel-0" not in names and all(c.step_index == 2 for c in offered[:9])
    assert "same agent" in offered[0].reasons
    confirmed, rejected = offered[0], offered[1]
    labels.candidates_decide(workspace=tenant.workspace, label=label,
                             candidate_ids=[confirmed.pk], confirm=True,
                             author=labels.Author(user=tenant.lead))  # fmt: skip
    labels.candidates_decide(workspace=tenant.workspace, label=label,
                             candidate_ids=[rejected.pk], confirm=False,
                             author=labels.Author(user=tenant.lead))  # fmt: skip
    joined = Incident.objects.get(trace=confirmed.trace, step_index=2)
    assert joined.source == "human" and joined.failure_mode_id == label.failure_mode_id
    assert RunLabel.objects.get(trace=confirmed.trace).confirmed_from_id == label.pk
    # Another label of the same mode never offers the rejected run again.
    other = _label(tenant, runs["cancel-5"] if rejected.trace.external_id != "cancel-5"
                   else runs["cancel-6"])  # fmt: skip
    propagation.propagate(label_id=other.pk)
    again = set(LabelCandidate.objects.filter(label=other).values_list("trace_id", flat=True))
    assert rejected.trace_id not in again and confirmed.trace_id not in again
    assert LabelCandidate.objects.get(pk=rejected.pk).state == CandidateState.REJECTED


def test_runs_diagnosed_after_a_label_are_offered_to_it(tenant, other_tenant, runs, monkeypatch):
    """A failed run that arrives after the label, like the labelled one, is offered
    as it would have been had it been there when the label was saved: through the
    worker's diagnosis of each batch, within the label's room for candidates, and
    never to another workspace's label."""
    from failures import tasks

    label = _label(tenant, runs["cancel-0"])
    propagation.propagate(label_id=label.pk)
    before = set(LabelCandidate.objects.filter(label=label).values_list("trace_id", flat=True))
    ingest(workspace=other_tenant.workspace, items=[_cancel(90)])
    elsewhere = _label(other_tenant, Trace.objects.get(workspace=other_tenant.workspace))
    from traces.services import trace_ingest_batch

    new = trace_ingest_batch(workspace=tenant.workspace,
                             items=[_cancel(20), _cancel(21), _seat(20)]).trace_ids  # fmt: skip
    tasks.analyse_traces(tenant.workspace.pk, new)  # as the worker runs it after ingest
    offered = set(LabelCandidate.objects.filter(label=label).values_list("trace__external_id",
                                                                         flat=True))  # fmt: skip
    assert {"cancel-20", "cancel-21"} <= offered and "seat-20" not in offered
    assert len(offered) == len(before) + 2
    assert not LabelCandidate.objects.filter(label=elsewhere).exists()
    # A label whose offered candidates fill its room takes no more.
    monkeypatch.setattr(propagation, "MAX_CANDIDATES", len(offered))
    more = trace_ingest_batch(workspace=tenant.workspace, items=[_cancel(22)]).trace_ids
    tasks.analyse_traces(tenant.workspace.pk, more)
    assert LabelCandidate.objects.filter(label=label).count() == len(offered)


def test_a_run_whose_own_diagnosis_names_an_earlier_cause_is_not_offered(tenant, runs):
    # cancel-3 went wrong before its cancellation: a cause at step 0, another way.
    earlier = runs["cancel-3"]
    Incident.objects.create(
        workspace=tenant.workspace, trace=earlier, step_index=0, kind="diagnosis",
        category="tool_use.wrong_arguments", description="looked up the wrong reservation",
        tool="get_reservation_details", occurred_at=earlier.started_at,
    )  # fmt: skip
    # cancel-4's only cause is after the step like the labelled one: still offered.
    later = runs["cancel-4"]
    Incident.objects.create(
        workspace=tenant.workspace, trace=later, step_index=3, kind="diagnosis",
        category="communication.did_not_ask", description="closed without asking",
        occurred_at=later.started_at,
    )  # fmt: skip
    label = _label(tenant, runs["cancel-0"])
    propagation.propagate(label_id=label.pk)
    offered = set(LabelCandidate.objects.filter(label=label).values_list("trace_id", flat=True))
    assert earlier.pk not in offered
    assert later.pk in offered and runs["cancel-5"].pk in offered


def test_a_run_that_changed_something_before_is_not_offered_for_a_first_change(tenant, runs):
    """The labelled cancellation is its run's first state-changing call: a run that
    changed something before its own cancellation may have gone wrong there."""
    ingest(workspace=tenant.workspace, items=[trace_payload(
        "cancel-after-refund", agent="airline-agent", task="Help the customer with reservation R050",
        steps=[
            {"kind": "tool_call", "name": "issue_refund", "input": {"reservation_id": "R050"},
             "output": {"status": "refunded"}},
            {"kind": "assistant_message", "output": "I will cancel the reservation for you now."},
            {"kind": "tool_call", "name": "cancel_reservation",
             "input": {"reservation_id": "R050"}, "output": {"status": "cancelled"}},
        ],
    )])  # fmt: skip
    after_refund = Trace.objects.get(workspace=tenant.workspace, external_id="cancel-after-refund")
    label = _label(tenant, runs["cancel-0"])
    propagation.propagate(label_id=label.pk)
    offered = set(LabelCandidate.objects.filter(label=label).values_list("trace_id", flat=True))
    assert after_refund.pk not in offered and runs["cancel-5"].pk in offered
    # Labelled at a later change, the same run is offered: nothing says it went wrong before.
    second = _label(tenant, after_refund, step=2, sentence="Cancelled after refunding first")
    propagation.propagate(label_id=second.pk)
    assert LabelCandidate.objects.filter(label=second, trace=runs["cancel-5"]).exists()


def test_a_label_on_a_run_that_later_succeeded_is_kept_and_marked(tenant, runs):
    label = _label(tenant, runs["cancel-0"])
    Trace.objects.filter(pk=label.trace_id).update(status="succeeded")
    TraceAnalysis.objects.filter(trace_id=label.trace_id).update(verdict="succeeded")
    assert not labels.still_failed(label)
    page = (
        tenant.client_for(tenant.viewer)
        .get(reverse("label_detail", args=[tenant.workspace.slug, label.pk]))
        .content.decode()
    )
    assert "this run later succeeded" in page and SENTENCE in page


def test_removing_a_label_puts_the_run_back(tenant, runs):
    label = _label(tenant, runs["cancel-0"])
    mode = FailureMode.objects.get(pk=label.failure_mode_id)
    labels.label_remove(workspace=tenant.workspace, label=label,
                        author=labels.Author(user=tenant.lead))  # fmt: skip
    assert not Incident.objects.filter(source="human").exists()
    mode.refresh_from_db()
    assert mode.incident_count == 0
    queued = {a.trace_id for a in labels.review_queue(workspace=tenant.workspace)}
    assert runs["cancel-0"].pk in queued


# --- pages: access ------------------------------------------------------------------


def test_review_pages_access_owner_viewer_other_anonymous(tenant, other_tenant, anon, runs):
    label = _label(tenant, runs["cancel-0"])
    trace = runs["cancel-1"]
    slug = tenant.workspace.slug
    gets = [reverse("review_queue", args=[slug]), reverse("review_run", args=[slug, trace.pk]),
            reverse("label_list", args=[slug]), reverse("label_detail", args=[slug, label.pk])]  # fmt: skip
    for url in gets:
        viewer = tenant.client_for(tenant.viewer).get(url, follow=True)
        assert viewer.status_code == 200, url
        assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404, url
        assert anon.get(url).status_code == 302, url
    run_page = tenant.client_for(tenant.viewer).get(gets[1]).content.decode()
    assert "Viewers see labels; leads make them" in run_page and 'id="label-form"' not in run_page
    lead_page = tenant.client_for(tenant.lead).get(gets[1]).content.decode()
    assert 'id="label-form"' in lead_page and "cancel_reservation" in lead_page
    post = {"step": "2", "category": "process.policy_violation", "sentence": SENTENCE}
    assert tenant.client_for(tenant.viewer).post(gets[1], post).status_code == 403
    assert other_tenant.client_for(other_tenant.admin).post(gets[1], post).status_code == 404
    assert anon.post(gets[1], post).status_code == 302
    assert not RunLabel.objects.filter(trace=trace).exists()
    saved = tenant.client_for(tenant.lead).post(gets[1], post)
    assert saved.status_code == 302 and RunLabel.objects.filter(trace=trace).exists()
    for name in ("label_decide", "label_remove"):
        url = reverse(name, args=[slug, label.pk])
        assert tenant.client_for(tenant.viewer).post(url).status_code == 403
        assert other_tenant.client_for(other_tenant.admin).post(url).status_code == 404
        assert anon.post(url).status_code == 302
    bad = tenant.client_for(tenant.lead).post(gets[1], {**post, "category": "nope.nope"})
    assert bad.status_code == 400 and b"Category must be one of" in bad.content


def test_the_review_page_marks_the_simulated_user_and_shows_the_same_task_success(tenant):
    failed = trace_payload("t-failed", agent="telecom-agent", task="Fix my mobile data", steps=[
        {"kind": "tool_call", "name": "user.toggle_airplane_mode", "input": {}, "output": "ok"},
        {"kind": "tool_call", "name": "refuel_data", "input": {"gb": 2}, "output": "x" * 600},
    ])  # fmt: skip
    good = trace_payload("t-good", agent="telecom-agent", task="Fix my mobile data",
                         status="succeeded", steps=[
        {"kind": "tool_call", "name": "get_line_details", "input": {}, "output": {"ok": 1}},
    ])  # fmt: skip
    ingest(workspace=tenant.workspace, items=[failed, good])
    trace = Trace.objects.get(external_id="t-failed")
    html = (
        tenant.client_for(tenant.lead)
        .get(reverse("review_run", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    assert "rstep-user" in html and "simulated user" in html
    assert "<details" in html  # the long output is collapsed
    assert (
        labels.successful_same_task(workspace=tenant.workspace, trace=trace).external_id == "t-good"
    )
    assert "t-good" in html and "get_line_details" in html


def test_the_review_page_shows_a_model_calls_newest_message_and_its_answer(tenant):
    """A model call's input is its history, system prompt first: the row's short line
    shows the message the call answered, and the answer as the model gave it."""
    history = [
        {"role": "system", "content": "You answer questions about orders. " * 10},
        {"role": "user", "content": "Where is order B2?"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "lookup_order", "arguments": '{"order_id": "B2"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "error: order not found: B2"},
    ]  # fmt: skip
    answer = {"role": "assistant", "content": "I could not find order B2."}
    ingest(workspace=tenant.workspace, items=[trace_payload("t-chat", steps=[
        {"kind": "llm_call", "name": "gpt", "input": history, "output": answer}])])  # fmt: skip
    trace = Trace.objects.get(external_id="t-chat")
    html = (
        tenant.client_for(tenant.lead)
        .get(reverse("review_run", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    assert "in: … tool: ← (call_1) error: order not found: B2" in html
    assert "assistant: I could not find order B2." in html
    assert "You answer questions about orders." not in html


# --- API and MCP ---------------------------------------------------------------------


def test_labels_api_scope_isolation_and_errors(client, tenant, other_tenant, runs):
    url = "/api/v1/traces/cancel-3/labels"
    body = {"step": 2, "category": "process.policy_violation", "sentence": SENTENCE}
    writer = make_key(tenant.workspace, scopes=[Scope.FAILURES_WRITE, Scope.FAILURES_READ],
                      name="eval-harness")  # fmt: skip
    headers = {"Authorization": f"Bearer {writer}"}
    assert client.post(url, body, content_type="application/json").status_code == 401
    no_scope = client.post(url, body, content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert no_scope.status_code == 403 and "failures:write" in no_scope.json()["detail"]
    other = make_key(other_tenant.workspace, scopes=[Scope.FAILURES_WRITE])
    assert client.post(url, body, content_type="application/json",
                       headers={"Authorization": f"Bearer {other}"}).status_code == 404  # fmt: skip
    created = client.post(url, body, content_type="application/json", headers=headers)
    assert created.status_code == 201, created.content
    out = created.json()
    assert out["by"] == "API key eval-harness" and out["failure_mode"]["label"] == SENTENCE
    again = client.post(url, {**body, "fix": "Check the rules"}, content_type="application/json",
                        headers=headers)  # fmt: skip
    assert again.status_code == 200 and again.json()["fix"] == "Check the rules"
    bad = client.post(url, {**body, "category": "x.y"}, content_type="application/json",
                      headers=headers)  # fmt: skip
    assert bad.status_code == 422 and "Category must be one of" in bad.json()["detail"]
    assert client.post(url, {**body, "step": -5}, content_type="application/json",
                       headers=headers).status_code == 422  # fmt: skip
    listed = client.get(url, headers=headers).json()
    assert len(listed) == 1 and listed[0]["step"] == 2
    assert Incident.objects.filter(source="human").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_mcp_tool_labels_a_run(live_server, tenant, other_tenant):
    import json

    from tests.test_mcp import session, text

    ingest(workspace=tenant.workspace, items=[_cancel(1)])
    writer = make_key(tenant.workspace, scopes=[Scope.FAILURES_WRITE], name="judge")
    tools, (done,) = session(live_server.url, writer, [("label_run", {
        "run": "cancel-1", "step": 2, "category": "process.policy_violation",
        "sentence": SENTENCE})])  # fmt: skip
    assert "label_run" in tools and not done.is_error, text(done)
    assert json.loads(text(done))["failure_mode"]["label"] == SENTENCE
    _, (refused,) = session(live_server.url, tenant.key, [("label_run", {
        "run": "cancel-1", "step": 2, "category": "process.policy_violation",
        "sentence": SENTENCE})])  # fmt: skip
    assert refused.is_error and "failures:write" in text(refused)
    stranger = make_key(other_tenant.workspace, scopes=[Scope.FAILURES_WRITE])
    _, (hidden,) = session(live_server.url, stranger, [("label_run", {
        "run": "cancel-1", "step": 2, "category": "process.policy_violation",
        "sentence": SENTENCE})])  # fmt: skip
    assert hidden.is_error and "No run" in text(hidden)
    assert RunLabel.objects.count() == 1
    assert FailureMode.objects.filter(workspace=other_tenant.workspace).count() == 0


def test_a_mode_seeded_by_labels_drafts_from_their_fix_and_says_it_came_from_people(
    tenant, runs, settings
):
    from skills import distill

    settings.ANTHROPIC_API_KEY = ""

    def draft():
        mode = FailureMode.objects.get(label=SENTENCE, workspace=tenant.workspace)
        incidents = list(mode.incidents.select_related("trace"))
        return distill.draft_offline(distill.Context(mode, incidents, []))

    for i in range(4):
        _label(tenant, runs[f"cancel-{i}"])
    held = draft()
    assert held.verdict == "skip" and "rests on 4 runs" in held.held_back[0]["reason"]
    _label(tenant, runs["cancel-4"])
    made = draft()
    assert made.verdict == "new", made.reason
    (item,) = made.instructions
    assert item["from_people"] and item["kind"] == "human_label"
    assert "5 labelled runs of this mode, labelled by acme-lead" in item["because"]
    assert "- Read the cancellation rules before cancel_reservation." in made.doc.body
    assert item["backtest"]["verdict"] == "untestable"


def test_claude_is_given_peoples_fixes_and_a_line_citing_them_says_so(tenant, runs, settings):
    from skills import services
    from tests.skills.fake_anthropic import FakeAnthropic, tool_answer

    for i in range(5):
        _label(tenant, runs[f"cancel-{i}"])
    mode = FailureMode.objects.get(label=SENTENCE, workspace=tenant.workspace)
    server = FakeAnthropic()
    settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL = "sk-test-not-real", server.url
    body = ("## When this applies\nCancellations.\n\n## Do\n- Read the cancellation rules "
            "first.\n\n## Don't\n- Nothing beyond the rules above.\n\n## How to check\n- x")  # fmt: skip
    server.queue.append((200, tool_answer({
        "verdict": "new", "reason": "labels", "name": "read-cancellation-rules",
        "description": "Read the rules before cancelling.", "body": body,
        "instructions": [{"section": "Do", "text": "Read the cancellation rules first.",
                          "evidence": ["L1"]}],
    }), {}))  # fmt: skip
    try:
        job, _ = services.distillation_request(mode=mode)
        job = services.distillation_run(job_id=job.pk)
    finally:
        server.close()
    prompt = server.requests[0]["body"]["messages"][0]["content"]
    assert "L1: people labelled runs of this mode and wrote the fix" in prompt
    assert job.version is not None, job.detail
    (line,) = job.version.instructions
    assert line["from_people"] and "5 labelled runs" in line["because"]


def test_the_modes_page_sends_undiagnosed_runs_to_the_queue(tenant, runs):
    page = (
        tenant.client_for(tenant.viewer)
        .get(reverse("mode_list", args=[tenant.workspace.slug]))
        .content.decode()
    )
    assert "undiagnosed</strong>" in page
    assert reverse("review_queue", args=[tenant.workspace.slug]) in page
    assert "Label them in Review runs" in page


def test_runs_like_a_mode_skip_a_label_whose_step_is_gone(tenant, runs):
    """A trial counts a labels-only mode's runs by likeness to its labels: a label
    whose step its run no longer has (sent again without it) is left out, not the
    end of the count."""
    from traces.models import Step

    first = _label(tenant, runs["cancel-0"])
    _label(tenant, runs["cancel-1"])
    Step.objects.filter(trace=runs["cancel-1"], index=2).delete()
    among = [runs[f"cancel-{i}"].pk for i in range(2, 6)] + [runs["seat-0"].pk]
    like = propagation.runs_like_modes(
        workspace_id=tenant.workspace.pk, mode_ids=[first.failure_mode_id], trace_ids=among
    )
    assert like and runs["seat-0"].pk not in like
    assert like <= {runs[f"cancel-{i}"].pk for i in range(2, 6)}
    # Nor does it stop later runs being offered to the mode's other labels.
    LabelCandidate.objects.all().delete()
    assert propagation.propagate_to_runs(workspace_id=tenant.workspace.pk, trace_ids=among) > 0
    assert LabelCandidate.objects.filter(label=first).exists()


def test_the_review_page_chooses_a_step_only_when_the_diagnosis_points_at_one(tenant):
    """A run nothing points into opens with no step chosen (the last one was, an
    anchor for the loop's most trusted evidence); saving without one is refused
    with the reason. A run with a cause opens at the cause's step."""
    quiet = trace_payload("t-quiet", agent="research-agent", task="Find the paper", steps=[
        {"kind": "assistant_message", "output": "Searching for it."},
        {"kind": "assistant_message", "output": "The answer is 7."},
    ])  # fmt: skip
    ingest(workspace=tenant.workspace, items=[quiet])
    trace = Trace.objects.get(external_id="t-quiet")
    assert not Incident.objects.filter(trace=trace).exclude(kind__in=NOT_CAUSES).exists()
    url = reverse("review_run", args=[tenant.workspace.slug, trace.pk])
    lead = tenant.client_for(tenant.lead)
    html = lead.get(url).content.decode()
    assert re.search(r'<option value="" selected>Choose a step', html)
    assert "rstep-current" not in html and not re.search(r'<option value="\d+" selected', html)
    posted = lead.post(url, {"step": "", "category": "reasoning.wrong_conclusion",
                             "sentence": "Answered without finding the paper"})  # fmt: skip
    assert "Choose the step that went wrong" in posted.content.decode()
    assert not RunLabel.objects.filter(trace=trace).exists()
    Incident.objects.create(workspace=tenant.workspace, trace=trace, step_index=1,
                            kind=IncidentKind.DIAGNOSIS, source="offline",
                            description="Answered without a source", signature="answered",
                            occurred_at=trace.started_at)  # fmt: skip
    html = lead.get(url).content.decode()
    assert re.search(r'<option value="1" selected>', html)
    assert not re.search(r'<option value="" selected>', html)
