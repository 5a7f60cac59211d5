"""Policy checks (issue 8/8, item 2): rules drafted by the model from an agent's
policy, shown, edited and decided by a lead, then used to name the rule-breaking
step of a failed run. The model is a local fake OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from failures.mining import traces_diagnose
from failures.models import AgentPolicy, Incident, PolicyRule
from tests.factories import ingest
from tests.fake_openai import FakeOpenAI, tool_call
from traces.models import Trace
from workspaces.models import AuditEvent
from workspaces.services import model_settings_save

pytestmark = pytest.mark.django_db

# From tau2-bench's retail agent policy (sierra-research/tau2-bench, MIT), as the
# tau2 importer stores it on each run (`metadata.policy`).
POLICY = """# Retail agent policy

Before taking any action that updates the database (cancel, modify, return, exchange), \
you must list the action details and obtain explicit user confirmation (yes) to proceed.

## Cancel pending order

An order can only be cancelled if its status is 'pending', and you should check its \
status before taking the action.

The user needs to confirm the order id and the reason (either 'no longer needed' or \
'ordered by mistake') for cancellation. Other reasons are not acceptable."""

# What the fake server answers when asked for rules: a recorded answer.
DRAFTED = {"rules": [
    {"text": "Cancel an order only if its status is 'pending'.",
     "tools": ["cancel_pending_order", "refund_everything"]},
    {"text": "Obtain explicit user confirmation (yes) before any database update.", "tools": []},
    {"text": "Be nice.", "tools": []},
    {"text": "Cancel an order only if its status is 'pending'.", "tools": []},
]}  # fmt: skip


def _run(external_id: str, status: str, order_status: str) -> dict:
    return {"external_id": external_id, "agent": "retail-agent", "status": status,
            "task": "Cancel my order #W123", "task_key": f"retail:{external_id}",
            "metadata": {"policy": POLICY},
            "steps": [
                {"kind": "user_prompt", "input": "Please cancel order #W123, I ordered it by mistake."},
                {"kind": "tool_call", "name": "find_user_id_by_email", "input": {"email": "a@b.c"},
                 "output": "user_1"},
                {"kind": "tool_call", "name": "get_order_details", "input": {"order_id": "#W123"},
                 "output": {"order_id": "#W123", "status": order_status}},
                {"kind": "assistant_message", "output": "Shall I cancel it? (yes/no)"},
                {"kind": "tool_call", "name": "user.reply", "input": {"text": "yes"}},
                {"kind": "tool_call", "name": "cancel_pending_order",
                 "input": {"order_id": "#W123", "reason": "ordered by mistake"},
                 "output": {"status": "cancelled"}},
            ]}  # fmt: skip


@pytest.fixture
def model(tenant, settings):
    settings.ANTHROPIC_API_KEY = ""
    settings.HIVEMIND_LLM_TIMEOUT = 2.0
    settings.HIVEMIND_LLM_MAX_RETRIES = 0
    fake = FakeOpenAI()
    model_settings_save(workspace=tenant.workspace, actor=tenant.admin, provider="openai",
                        base_url=fake.url, model="llama3.1:8b")  # fmt: skip
    yield fake
    fake.close()


def test_rules_are_drafted_from_the_policy_edited_approved_and_name_the_step_that_broke_one(
    tenant, model
):
    ws, slug = tenant.workspace, tenant.workspace.slug
    lead = tenant.client_for(tenant.lead)
    # Ingested before the model checks anything: one run that went well, one that
    # cancelled a delivered order.
    model.queue.append((200, tool_call("report_diagnosis", {"incidents": []}), {}))
    ingest(ws, [_run("ok-1", "succeeded", "pending"), _run("bad-1", "failed", "delivered")])

    # The lead opens the agent's policy: it comes from the runs' metadata.
    response = lead.post(reverse("policy_open", args=[slug]), {"agent": "retail-agent"})
    policy = AgentPolicy.objects.get(workspace=ws, agent="retail-agent")
    assert response.status_code == 302 and "only be cancelled if its status is 'pending'" in (
        policy.text)  # fmt: skip

    # The model drafts rules (the recorded answer); duplicates and unknown tools are dropped.
    model.queue.append((200, tool_call("submit_rules", DRAFTED), {}))
    lead.post(reverse("policy_draft", args=[slug, policy.pk]))
    sent = model.requests[-1]["body"]
    assert sent["tool_choice"]["function"]["name"] == "submit_rules"
    prompt = sent["messages"][1]["content"]
    assert "<policy>" in prompt and "explicit user confirmation" in prompt
    assert "cancel_pending_order(order_id, reason)" in prompt and "user.reply" not in prompt
    rules = list(PolicyRule.objects.filter(policy=policy))
    policy.refresh_from_db()
    assert rules, policy.draft_detail
    assert [(r.number, r.status, r.tools) for r in rules] == [
        (1, "proposed", ["cancel_pending_order"]), (2, "proposed", []), (3, "proposed", [])]  # fmt: skip
    page = lead.get(reverse("policy_detail", args=[slug, policy.pk])).content.decode()
    assert "Cancel an order only if its status is" in page and "Proposed" in page
    assert "nothing is checked until a lead approves a rule" in page

    # The lead edits R1, approves it, rejects R2 and R3; each change is audited and versioned.
    r1, r2, r3 = rules
    lead.post(reverse("policy_rule_change", args=[slug, r1.pk]), {
        "text": "Cancel an order only when get_order_details shows status 'pending'.",
        "tools": "cancel_pending_order"})  # fmt: skip
    lead.post(reverse("policy_rule_change", args=[slug, r1.pk]), {"decision": "approved"})
    for rule in (r2, r3):
        lead.post(reverse("policy_rule_change", args=[slug, rule.pk]), {"decision": "rejected"})
    policy.refresh_from_db()
    assert policy.version == 1 + 3 + 1 + 1 + 2  # three drafted, an edit, four decisions
    assert AuditEvent.objects.filter(workspace=ws, action="policy.rule_edit").get().before[
        "text"] == "Cancel an order only if its status is 'pending'."  # fmt: skip

    # Re-diagnosed, the failed run is checked against the approved rule only.
    bad = Trace.objects.get(external_id="bad-1")
    model.queue += [
        (200, tool_call("report_diagnosis", {"incidents": []}), {}),
        (200, tool_call("report_violations", {"violations": [
            {"step_index": 5, "rule": 1, "confidence": 0.9,
             "explanation": "Step 2 shows the order was delivered, not pending."},
            {"step_index": 2, "rule": 1, "explanation": "a read step is no violation"},
            {"step_index": 5, "rule": 2, "explanation": "R2 was rejected"},
        ]}), {}),
    ]  # fmt: skip
    traces_diagnose(workspace_id=ws.pk, trace_ids=[bad.pk], force=True)
    check = model.requests[-1]["body"]
    assert check["tool_choice"]["function"]["name"] == "report_violations"
    text = check["messages"][1]["content"]
    assert "R1: Cancel an order only when get_order_details" in text and "R2" not in text
    assert '<step index="5" kind="tool_call" name="cancel_pending_order">' in text
    assert '"status": "delivered"' in text  # the steps before the call
    incident = Incident.objects.get(trace=bad, step_index=5)
    assert incident.category == "process.policy_violation" and incident.source == "model"
    assert incident.description.startswith("Broke R1 (Cancel an order only when")
    assert incident.stats["rule"] == r1.pk
    assert not Incident.objects.filter(trace=bad, step_index=2, stats__method="policy").exists()
    page = lead.get(reverse("policy_detail", args=[slug, policy.pk])).content.decode()
    assert "<td>1</td>" in page  # R1 named one run


def test_a_run_with_no_state_changing_call_is_not_sent_for_a_check(tenant, model):
    run = _run("read-only", "failed", "delivered")
    run["steps"] = run["steps"][:3]
    model.queue.append((200, tool_call("report_diagnosis", {"incidents": []}), {}))
    ingest(tenant.workspace, [run])
    policy = AgentPolicy.objects.create(workspace=tenant.workspace, agent="retail-agent",
                                        text=POLICY)  # fmt: skip
    PolicyRule.objects.create(policy=policy, number=1, text="Cancel only pending orders.",
                              status="approved")  # fmt: skip
    model.queue.append((200, tool_call("report_diagnosis", {"incidents": []}), {}))
    before = len(model.requests)
    traces_diagnose(workspace_id=tenant.workspace.pk,
                    trace_ids=[Trace.objects.get(external_id="read-only").pk], force=True)  # fmt: skip
    assert len(model.requests) == before + 1  # the diagnosis only
    assert all(
        r["body"]["tool_choice"]["function"]["name"] != "report_violations" for r in model.requests
    )


def test_without_a_model_rules_are_neither_drafted_nor_checked_and_the_page_says_so(tenant):
    ingest(tenant.workspace, [_run("x-1", "failed", "delivered")])
    lead = tenant.client_for(tenant.lead)
    lead.post(reverse("policy_open", args=[tenant.workspace.slug]), {"agent": "retail-agent"})
    policy = AgentPolicy.objects.get(workspace=tenant.workspace)
    response = lead.post(reverse("policy_draft", args=[tenant.workspace.slug, policy.pk]),
                         follow=True)  # fmt: skip
    assert "Drafting rules needs a model" in response.content.decode()
    assert not PolicyRule.objects.exists()
    page = lead.get(reverse("policy_list", args=[tenant.workspace.slug])).content.decode()
    assert "No model in use, so rules are neither drafted nor checked" in page


def test_bad_rules_and_agents_are_refused_with_a_reason(tenant):
    ingest(tenant.workspace, [_run("x-1", "failed", "delivered")])
    lead = tenant.client_for(tenant.lead)
    slug = tenant.workspace.slug
    response = lead.post(reverse("policy_open", args=[slug]), {"agent": "nobody"}, follow=True)
    assert "No agent named" in response.content.decode()
    lead.post(reverse("policy_open", args=[slug]), {"agent": "retail-agent"})
    policy = AgentPolicy.objects.get(workspace=tenant.workspace)
    url = reverse("policy_detail", args=[slug, policy.pk])
    response = lead.post(reverse("policy_rule_add", args=[slug, policy.pk]), {"text": "x"},
                         follow=True, HTTP_REFERER=url)  # fmt: skip
    assert "5 to 500 characters" in response.content.decode()
    response = lead.post(reverse("policy_rule_add", args=[slug, policy.pk]),
                         {"text": "Confirm before any change.", "tools": "cancel_pending_order"})  # fmt: skip
    rule = PolicyRule.objects.get(policy=policy)
    assert (rule.status, rule.source, rule.tools) == ("approved", "lead", ["cancel_pending_order"])
    response = lead.post(reverse("policy_rule_change", args=[slug, rule.pk]),
                         {"decision": "maybe"}, follow=True, HTTP_REFERER=url)  # fmt: skip
    assert "is not a rule status" in response.content.decode()


def test_policy_pages_access(tenant, other_tenant, anon):
    ingest(tenant.workspace, [_run("x-1", "failed", "delivered")])
    policy = AgentPolicy.objects.create(workspace=tenant.workspace, agent="retail-agent",
                                        text="acme-only policy")  # fmt: skip
    rule = PolicyRule.objects.create(policy=policy, number=1, text="acme-only rule")
    slug = tenant.workspace.slug
    pages = [reverse("policy_list", args=[slug]), reverse("policy_detail", args=[slug, policy.pk])]
    writes = [
        (reverse("policy_open", args=[slug]), {"agent": "retail-agent"}),
        (reverse("policy_text_save", args=[slug, policy.pk]), {"text": "changed"}),
        (reverse("policy_draft", args=[slug, policy.pk]), {}),
        (reverse("policy_rule_add", args=[slug, policy.pk]), {"text": "A new rule here."}),
        (reverse("policy_rule_change", args=[slug, rule.pk]), {"decision": "approved"}),
    ]
    for url in pages:
        assert anon.get(url).status_code == 302
        assert b"acme-only" not in other_tenant.client_for(other_tenant.admin).get(url).content
        assert other_tenant.client_for(other_tenant.admin).get(url).status_code in (403, 404)
        assert tenant.client_for(tenant.viewer).get(url).status_code == 200
    viewer_page = tenant.client_for(tenant.viewer).get(pages[1]).content.decode()
    assert "acme-only policy" in viewer_page and "Draft rules with the model" not in viewer_page
    for url, data in writes:
        assert anon.post(url, data).status_code == 302
        assert tenant.client_for(tenant.viewer).post(url, data).status_code == 403
        assert other_tenant.client_for(other_tenant.admin).post(url, data).status_code == 404
    policy.refresh_from_db()
    rule.refresh_from_db()
    assert (policy.text, rule.status, policy.rules.count()) == ("acme-only policy", "proposed", 1)
    assert (
        json.dumps(list(AuditEvent.objects.filter(action__startswith="policy.").values())) == "[]"
    )


def test_an_approved_rule_that_runs_broke_is_evidence_a_draft_rests_on(tenant, model):
    from failures.models import FailureMode
    from skills import distill

    ws = tenant.workspace
    policy = AgentPolicy.objects.create(workspace=ws, agent="retail-agent", text=POLICY)
    rule = PolicyRule.objects.create(policy=policy, number=1, status="approved",
                                     text="Cancel an order only if its status is 'pending'.")  # fmt: skip
    for i in range(5):
        model.queue += [
            (200, tool_call("report_diagnosis", {"incidents": []}), {}),
            (200, tool_call("report_violations", {"violations": [
                {"step_index": 5, "rule": 1, "explanation": "The order was delivered."}]}), {}),
        ]  # fmt: skip
        ingest(ws, [_run(f"bad-{i}", "failed", "delivered")])
    broke = Incident.objects.filter(workspace=ws, stats__method="policy")
    assert broke.count() == 5
    mode = FailureMode.objects.create(workspace=ws, label="cancelled a delivered order",
                                      incident_count=5)  # fmt: skip
    broke.update(failure_mode=mode)
    context = distill.Context(mode, list(broke.select_related("trace")), [])
    (item,) = distill.rule_instructions(context)
    assert item["text"] == "Cancel an order only if its status is 'pending'."
    assert item["counts"]["runs_with"] == 5 and "approved by a lead" in item["because"]
    assert "P1" in distill.evidence_items(context)
    draft = distill.draft_offline(context)
    assert draft.doc is not None and "only if its status is 'pending'" in draft.doc.body
    # Rejected, the rule is evidence no more.
    rule.status = "rejected"
    rule.save()
    assert distill.rule_instructions(distill.Context(mode, list(broke), [])) == []


def test_approving_a_rule_checks_the_agents_failed_runs_again(tenant, model):
    ws, slug = tenant.workspace, tenant.workspace.slug
    model.queue.append((200, tool_call("report_diagnosis", {"incidents": []}), {}))
    ingest(ws, [_run("bad-1", "failed", "delivered")])
    lead = tenant.client_for(tenant.lead)
    lead.post(reverse("policy_open", args=[slug]), {"agent": "retail-agent"})
    policy = AgentPolicy.objects.get(workspace=ws)
    model.queue += [
        (200, tool_call("report_diagnosis", {"incidents": []}), {}),
        (200, tool_call("report_violations", {"violations": [
            {"step_index": 5, "rule": 1, "explanation": "The order was delivered."}]}), {}),
    ]  # fmt: skip
    response = lead.post(reverse("policy_rule_add", args=[slug, policy.pk]), {
        "text": "Cancel an order only if its status is 'pending'.",
        "tools": "cancel_pending_order"}, follow=True)  # fmt: skip
    assert "checked again against the rules as they now stand" in response.content.decode()
    incident = Incident.objects.get(trace__external_id="bad-1", step_index=5)
    assert incident.stats["method"] == "policy" and incident.description.startswith("Broke R1")


def _as_model_calls(run: dict) -> dict:
    """The same run as an application instrumented at its model client alone records
    it: a model call per agent turn, its tool calls in the answers and their results
    in the next call's input; no tool step, no user step."""
    history: list[dict] = []
    steps: list[dict] = []
    for number, step in enumerate(run["steps"]):
        if step["kind"] == "user_prompt" or step.get("name", "").startswith("user."):
            history.append({"role": "user", "content": step["input"] if step["kind"] ==
                            "user_prompt" else step["input"]["text"]})  # fmt: skip
            continue
        if step["kind"] == "assistant_message":
            said = {"role": "assistant", "content": step["output"]}
        else:
            said = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{number}", "type": "function",
                "function": {"name": step["name"], "arguments": json.dumps(step["input"])}}]}  # fmt: skip
        steps.append({"kind": "llm_call", "name": "gpt", "input": list(history), "output": said})
        history.append(said)
        if step["kind"] == "tool_call":
            history.append({"role": "tool", "tool_call_id": f"call_{number}",
                            "content": json.dumps(step["output"])})  # fmt: skip
    steps.append({"kind": "llm_call", "name": "gpt", "input": list(history),
                  "output": {"role": "assistant", "content": "Cancelled."}})  # fmt: skip
    return {**run, "steps": steps}


def test_a_run_recorded_only_in_model_calls_is_checked_at_the_model_call_that_broke_a_rule(
    tenant, model
):
    """Its tools are offered for drafting with their arguments, and the call the model
    asked for is checked, named at the model call that asked for it. Before, the
    agent "had no tool calls" and no run of it was ever sent for a check."""
    from failures.policy import agent_tools

    model.queue.append((200, tool_call("report_diagnosis", {"incidents": []}), {}))
    ingest(tenant.workspace, [_as_model_calls(_run("bad-m", "failed", "delivered"))])
    tools = agent_tools(workspace=tenant.workspace, agent="retail-agent")
    assert tools["cancel_pending_order"] == ["order_id", "reason"] and "user.reply" not in tools
    policy = AgentPolicy.objects.create(workspace=tenant.workspace, agent="retail-agent",
                                        text=POLICY)  # fmt: skip
    PolicyRule.objects.create(policy=policy, number=1, text="Cancel only pending orders.",
                              status="approved")  # fmt: skip
    bad = Trace.objects.get(external_id="bad-m")
    at = next(s.index for s in bad.steps.filter(kind="llm_call").order_by("index")
              if "cancel_pending_order" in json.dumps(s.output))  # fmt: skip
    model.queue += [
        (200, tool_call("report_diagnosis", {"incidents": []}), {}),
        (200, tool_call("report_violations", {"violations": [
            {"step_index": at, "rule": 1, "explanation": "The order was delivered."}]}), {}),
    ]  # fmt: skip
    traces_diagnose(workspace_id=tenant.workspace.pk, trace_ids=[bad.pk], force=True)
    text = model.requests[-1]["body"]["messages"][1]["content"]
    assert f'<step index="{at}" kind="tool_call" name="cancel_pending_order">' in text
    assert "left out]" not in text.split(f'<step index="{at}" kind="llm_call"')[1]
    # Each model call shows what it was sent new, not the conversation from the top.
    assert text.count("I ordered it by mistake") == 1 and '\\"status\\": \\"delivered\\"' in text
    incident = Incident.objects.get(trace=bad, step_index=at)
    assert incident.category == "process.policy_violation"
