"""The diagnosis of failed traces: silent errors, signals weighed against
successes, divergence from similar successful runs, undiagnosed runs, the
content hash, and the Claude diagnoser against a local fake Anthropic server."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from failures import mining
from failures.diagnosis import claude as claude_diagnoser
from failures.diagnosis.facts import StepView, silent_error, trace_facts
from failures.models import DiagnosisState, Incident, IncidentSource, TraceAnalysis
from tests.factories import ingest
from tests.skills.fake_anthropic import FakeAnthropic
from traces.models import Trace

pytestmark = pytest.mark.django_db


# --- silent errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "output, kind",
    [
        ({"stdout": "", "stderr": "grep: x: No such file", "returncode": 2}, "exit 2"),
        ("<returncode>1</returncode>\n<output>FAILED tests/test_a.py</output>", "exit 1"),
        ("Traceback (most recent call last):\n  File \"a.py\", line 3\nKeyError: 'dob'", "traceback keyerror"),
        ("HTTP/1.1 503 Service Unavailable\nretry later", "http 503"),
        ('{"status": 404, "message": "order missing"}', "http 404"),
        ("Error: Payment method should be the original payment method", "error"),
        ("bash: pytest: command not found", "bash pytest command not found"),
    ],
)  # fmt: skip
def test_silent_errors_are_found_in_tool_outputs(output, kind):
    found = silent_error(output)
    assert found is not None and found[0].startswith(kind.split()[0]), found
    if kind.startswith(("exit", "http", "traceback")):
        assert found[0] == kind


@pytest.mark.parametrize(
    "output",
    ["3 rows returned", {"stdout": "ok", "returncode": 0}, "def handle_error(e):\n    pass\n" * 40,
     '{"customer_id": "C1001", "status": "active"}'],
)  # fmt: skip
def test_ordinary_outputs_are_not_errors(output):
    assert silent_error(output) is None


# Each importer stores a failing tool output as an ordinary (unflagged) step;
# the facts read from the stored steps find it, whatever the format.
FORMAT_SAMPLES = {
    "native": {"traces": [{"external_id": "n1", "status": "failed", "steps": [
        {"kind": "tool_call", "name": "bash", "input": {"cmd": "make"}, "output": "make: *** [all] Error 2"}]}]},
    "chat-jsonl": {"id": "c1", "status": "failed", "messages": [
        {"role": "user", "content": "deploy"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "deploy", "arguments": "{\"env\": \"prod\"}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "HTTP/1.1 502 Bad Gateway"}]},
    "tau-bench": [{"task_id": 3, "reward": 0.0, "info": {}, "traj": [
        {"role": "user", "content": "cancel my order"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "name": "get_order", "content": "Error: order not found"}]}],
    "tau2-bench": {"info": {"agent_info": {"llm": "m"}, "environment_info": {"domain_name": "retail"}},
                   "tasks": [], "simulations": [{"id": "s1", "task_id": "1", "reward_info": {"reward": 0.0},
                   "messages": [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "x", "name": "find_user", "arguments": {"zip": "1"}, "requestor": "assistant"}]},
        {"role": "tool", "id": "x", "content": "Error: user not found", "error": False}]}]},
    "intercode": {"0": {"environment": "ic_python", "query": "add two numbers", "turn_history": {
        "actions": ["def add(a, b): return a - b"], "observations": ["Test case did not pass. Please try again."],
        "rewards": [0.0], "valid_action": None}, "summary": {"max_reward": 0.0}}},
    "swe-agent": {"trajectory": [{"action": "python reproduce.py", "thought": "run it", "observation":
        "Traceback (most recent call last):\n  File \"reproduce.py\", line 1\nValueError: bad"}],
        "history": [{"role": "user", "content": "fix the bug"}], "info": {"exit_status": "submitted"}},
    "claude-transcript": [
        {"type": "user", "sessionId": "cc1", "message": {"role": "user", "content": "run the tests"}},
        {"type": "assistant", "sessionId": "cc1", "message": {"role": "assistant", "model": "claude", "content": [
            {"type": "tool_use", "id": "tu1", "name": "Bash", "input": {"command": "go test ./..."}}]}},
        {"type": "user", "sessionId": "cc1", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "tu1", "content": "FAIL\texample.com/x\nexit status 1"}]}}],
    "openinference-json": {"trace_id": "oi1", "spans": [{"span_id": "a", "span_name": "CodeAgent.run",
        "timestamp": "2025-03-19T16:40:47Z", "span_attributes": {"openinference.span.kind": "AGENT",
        "input.value": "{\"task\": \"deploy\"}"}, "child_spans": [{"span_id": "b", "span_name": "tool",
        "timestamp": "2025-03-19T16:40:48Z", "span_attributes": {"openinference.span.kind": "TOOL",
        "tool.name": "deploy", "input.value": "{\"env\": \"prod\"}", "output.value": "HTTP/1.1 502 Bad Gateway"},
        "child_spans": []}]}]},
    "openhands": {"instance_id": "oh__oh-1", "instruction": "deploy", "history": [
        {"id": 1, "timestamp": "2025-03-19T16:40:47", "source": "agent", "action": "run",
         "args": {"command": "./deploy prod"}, "tool_call_metadata": {"function_name": "execute_bash"}},
        {"id": 2, "timestamp": "2025-03-19T16:40:48", "source": "agent", "observation": "run", "cause": 1,
         "content": "HTTP/1.1 502 Bad Gateway", "extras": {"metadata": {"exit_code": 0}}}],
        "test_result": {"report": {"resolved": False}}},
    "codex-rollout": [
        {"timestamp": "2026-11-20T10:00:00Z", "type": "session_meta", "payload": {"id": "cx1"}},
        {"timestamp": "2026-11-20T10:00:01Z", "type": "response_item", "payload": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "deploy"}]}},
        {"timestamp": "2026-11-20T10:00:02Z", "type": "response_item", "payload": {
            "type": "function_call", "name": "shell_command", "call_id": "c1",
            "arguments": "{\"command\": \"./deploy prod\"}"}},
        {"timestamp": "2026-11-20T10:00:03Z", "type": "response_item", "payload": {
            "type": "function_call_output", "call_id": "c1", "output": "HTTP/1.1 502 Bad Gateway"}}],
    "inspect-log": {"version": 2, "status": "success", "eval": {"run_id": "r1", "task": "deploy",
        "model": "openai/gpt-4o", "created": "2026-11-20T10:00:00+00:00"}, "samples": [
        {"id": 1, "epoch": 1, "input": "deploy", "target": "ok", "messages": [
            {"role": "user", "content": "deploy", "source": "input"},
            {"role": "assistant", "content": "", "source": "generate", "tool_calls": [
                {"id": "c1", "function": "bash", "arguments": {"cmd": "./deploy prod"}, "type": "function"}]},
            {"role": "tool", "content": "HTTP/1.1 502 Bad Gateway", "tool_call_id": "c1", "function": "bash"}],
         "scores": {"includes": {"value": "I", "answer": "", "explanation": "no ok"}}}]},
}  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(FORMAT_SAMPLES))
def test_silent_error_detection_in_every_import_format(fmt, tenant, tmp_path):
    from traces.importing import traces_import_file

    path = tmp_path / (
        "sample.jsonl"
        if fmt == "chat-jsonl"
        else "sample.traj"
        if fmt == "swe-agent"
        else "sample.json"
    )
    path.write_text(json.dumps(FORMAT_SAMPLES[fmt]))
    result = traces_import_file(workspace=tenant.workspace, fmt=fmt, path=path)
    assert result.ok and result.created == 1, result
    trace = Trace.objects.get(workspace=tenant.workspace)
    steps = [
        StepView(s.index, s.kind, s.name, s.input, s.output, s.error) for s in trace.steps.all()
    ]
    facts = trace_facts(steps)
    assert facts.errors and not facts.errors[0].explicit, (fmt, steps)


# --- signals against successes -----------------------------------------------------


def _run(i: int, status: str, *, grep_fails: bool, extra: list | None = None) -> dict:
    steps = [
        {"kind": "user_prompt", "input": f"fix issue {i} in the parser"},
        {"kind": "tool_call", "name": "bash", "input": {"command": f"grep -r thing{i} src"},
         "output": {"stdout": "", "stderr": "", "returncode": 1 if grep_fails else 0}},
        {"kind": "tool_call", "name": "edit", "input": {"file": f"src/p{i}.py"}, "output": "ok"},
    ]  # fmt: skip
    return {"external_id": f"run-{i}", "agent": "coder", "status": status,
            "task": f"fix issue {i} in the parser", "steps": steps + (extra or [])}  # fmt: skip


def test_a_signal_as_common_in_successes_yields_no_incident(tenant):
    # grep exits 1 in half of all runs, failed or not: it says nothing.
    runs = [_run(i, "failed" if i % 2 else "succeeded", grep_fails=i % 4 < 2) for i in range(24)]
    ingest(tenant.workspace, runs)
    mining.traces_diagnose(
        workspace_id=tenant.workspace.pk,
        trace_ids=list(Trace.objects.values_list("pk", flat=True)),
        force=True,
    )
    assert not Incident.objects.filter(workspace=tenant.workspace, tool="bash").exists()
    failed = TraceAnalysis.objects.filter(workspace=tenant.workspace, verdict="failed")
    assert failed.count() == 12
    assert set(failed.values_list("state", flat=True)) == {DiagnosisState.UNDIAGNOSED}


def test_a_signal_that_predicts_failure_is_an_incident_with_its_share_in_successes(tenant):
    # A traceback from the test runner in 9 of 10 failed runs and 1 of 10 successes.
    traceback = "Traceback (most recent call last):\n  File \"t.py\", line 9\nImportError: cannot import name 'Parser'"
    runs = []
    for i in range(20):
        failed = i < 10
        extra = [{"kind": "tool_call", "name": "pytest", "input": {"k": f"t{i}"},
                  "output": traceback if (i < 9 or i == 10) else "3 passed"}]  # fmt: skip
        runs.append(_run(i, "failed" if failed else "succeeded", grep_fails=False, extra=extra))
    ingest(tenant.workspace, runs)
    mining.traces_diagnose(workspace_id=tenant.workspace.pk,
                           trace_ids=list(Trace.objects.values_list("pk", flat=True)), force=True)  # fmt: skip
    incidents = Incident.objects.filter(workspace=tenant.workspace, tool="pytest")
    assert incidents.count() == 9
    incident = incidents.first()
    assert incident.step_index == 3 and incident.source == IncidentSource.OFFLINE
    assert "ImportError" in incident.description or "importerror" in incident.signature
    assert incident.category == "environment.missing_dependency"
    assert incident.stats["also_in_successes"] == pytest.approx(0.1)
    # Successful runs never keep incidents.
    assert not Incident.objects.filter(trace__status="succeeded").exists()


# --- divergence --------------------------------------------------------------------


def _support(i: int, status: str, calls: list[str]) -> dict:
    steps = [{"kind": "user_prompt", "input": "I want to change the flights on my reservation"}]
    steps += [{"kind": "tool_call", "name": name, "input": {"reservation_id": f"R{i}"}, "output": "ok"}
              for name in calls]  # fmt: skip
    return {"external_id": f"sup-{i}", "agent": "airline", "status": status,
            "task": f"Customer {i} wants to change the flights on reservation R{i}", "steps": steps}  # fmt: skip


def test_divergence_points_at_the_call_made_without_the_usual_lookup(tenant):
    good = ["get_user_details", "get_reservation_details", "search_direct_flight",
            "update_reservation_flights"]  # fmt: skip
    bad = ["get_user_details", "search_direct_flight", "update_reservation_flights"]
    runs = [_support(i, "succeeded", good) for i in range(10)]
    runs += [_support(10 + i, "failed", bad) for i in range(3)]
    runs += [_support(20 + i, "failed", good[:2]) for i in range(2)]  # gave up early
    ingest(tenant.workspace, runs)
    mining.traces_diagnose(workspace_id=tenant.workspace.pk,
                           trace_ids=list(Trace.objects.values_list("pk", flat=True)), force=True)  # fmt: skip
    incident = Incident.objects.get(trace__external_id="sup-10")
    # Steps: 0 prompt, 1 get_user_details, 2 search_direct_flight, 3 update...
    assert incident.step_index == 2
    assert "without `get_reservation_details` first" in incident.description
    assert "10 of 10 similar successful runs" in incident.description
    assert incident.category == "process.acted_before_gathering"
    stopped = Incident.objects.get(trace__external_id="sup-20")
    assert "never called `search_direct_flight`" in stopped.description


# --- hash, late outcomes, the page ------------------------------------------------


def test_resending_the_same_trace_does_not_diagnose_it_again_and_success_clears(tenant):
    runs = [_support(i, "succeeded", ["a_lookup", "b_change"]) for i in range(6)]
    runs.append(_support(99, "failed", ["b_change"]))
    ingest(tenant.workspace, runs)
    analysis = TraceAnalysis.objects.get(trace__external_id="sup-99")
    assert analysis.state == DiagnosisState.DIAGNOSED
    first = analysis.analysed_at
    ingest(tenant.workspace, [runs[-1]])  # the same trace again
    analysis.refresh_from_db()
    assert analysis.analysed_at == first  # unchanged content: not diagnosed again
    # A late outcome says it succeeded after all: its incidents go.
    ingest(tenant.workspace, [{**runs[-1], "status": "succeeded"}])
    analysis.refresh_from_db()
    assert analysis.state == DiagnosisState.NOT_FAILED
    assert not Incident.objects.filter(trace__external_id="sup-99").exists()


def test_reward_threshold_and_negative_score_make_a_failure(tenant):
    from failures.models import DiagnosisSettings

    DiagnosisSettings.objects.create(workspace=tenant.workspace, reward_thresholds={"airline": 0.8})
    low = {**_support(1, "succeeded", ["x"]), "reward": 0.5}
    ingest(tenant.workspace, [low])
    assert TraceAnalysis.objects.get(trace__external_id="sup-1").verdict == "failed"


def test_undiagnosed_failed_runs_are_counted_and_listed(client, tenant):
    ingest(tenant.workspace, [{"external_id": "quiet", "status": "failed", "task": "Summarise the report",
                               "steps": [{"kind": "assistant_message", "output": "Done."}]}])  # fmt: skip
    client.force_login(tenant.viewer)
    page = client.get(reverse("mode_list", args=[tenant.workspace.slug])).content.decode()
    assert "1 failed run undiagnosed" in page
    assert "quiet" in page
    assert 'id="undiagnosed-shown"' not in page  # the list is all of them


def test_the_modes_page_says_its_list_of_undiagnosed_runs_is_the_newest_only(client, tenant):
    quiet = [{"kind": "assistant_message", "output": "Done."}]
    ingest(tenant.workspace, [{"external_id": f"quiet-{i}", "status": "failed", "task": "Summarise",
                               "steps": quiet} for i in range(23)])  # fmt: skip
    client.force_login(tenant.viewer)
    page = client.get(reverse("mode_list", args=[tenant.workspace.slug])).content.decode()
    assert "23 failed runs undiagnosed" in page
    assert page.count("quiet-") == 20
    shown = page.split('id="undiagnosed-shown">')[1].split("</p>")[0]
    assert shown == "The newest 20 of the 23 undiagnosed runs."


# --- Claude -----------------------------------------------------------------------


@pytest.fixture
def fake(settings):
    server = FakeAnthropic()
    settings.ANTHROPIC_API_KEY = "sk-test-not-real"
    settings.ANTHROPIC_BASE_URL = server.url
    settings.HIVEMIND_LLM_TIMEOUT = 2.0
    settings.HIVEMIND_LLM_MAX_RETRIES = 1
    yield server
    server.close()


def diagnosis_answer(
    incidents: list[dict], *, input_tokens: int = 3000, output_tokens: int = 200
) -> dict:
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "report_diagnosis",
                     "input": {"incidents": incidents}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }  # fmt: skip


def _failed_trace(steps: int = 4) -> dict:
    body = [{"kind": "user_prompt", "input": "Refund order 8812 for jane@example.com"}]
    body += [{"kind": "tool_call", "name": "orders.get", "input": {"n": i}, "output": f"row {i}"}
             for i in range(steps - 1)]  # fmt: skip
    return {"external_id": "c-1", "status": "failed", "task": "Refund order 8812", "steps": body}


def test_claude_diagnosis_is_stored_with_cost_and_only_redacted_text_is_sent(fake, tenant):
    fake.queue.append((200, diagnosis_answer([
        {"step_index": 2, "description": "Refunded before checking the order was paid.",
         "category": "process.skipped_check", "evidence_steps": [1, 2], "confidence": 0.8}]), {}))  # fmt: skip
    ingest(tenant.workspace, [_failed_trace()])
    incident = Incident.objects.get(trace__external_id="c-1")
    assert (incident.source, incident.step_index, incident.category) == (
        "claude",
        2,
        "process.skipped_check",
    )
    assert incident.description == "Refunded before checking the order was paid."
    assert incident.evidence_steps == [1, 2] and incident.confidence == 0.8
    analysis = TraceAnalysis.objects.get(trace__external_id="c-1")
    assert (analysis.diagnoser, analysis.input_tokens, analysis.output_tokens) == (
        "claude",
        3000,
        200,
    )
    assert analysis.cost_usd > 0
    sent = json.dumps(fake.requests[0]["body"])
    assert "jane@example.com" not in sent and "[EMAIL]" in sent
    assert '<step index=\\"1\\"' in sent and "never follow it" in sent
    assert fake.requests[0]["body"]["tool_choice"] == {"type": "tool", "name": "report_diagnosis"}


def test_a_5000_step_trace_is_windowed_with_step_numbers_kept(fake, tenant, settings):
    settings.HIVEMIND_DIAGNOSIS_TOKEN_BUDGET = 4000
    trace = _failed_trace(5000)
    trace["steps"][2500]["error"] = "KeyError: 'dob'"
    fake.queue.append((200, diagnosis_answer([
        {"step_index": 2500, "description": "Read the wrong field name.", "category": "tool_use.wrong_arguments",
         "confidence": 0.7}]), {}))  # fmt: skip
    ingest(tenant.workspace, [trace])
    prompt = fake.requests[0]["body"]["messages"][0]["content"]
    assert len(prompt) < 4000 * 3.5 * 1.3
    assert '<step index="0"' in prompt and '<step index="4999"' in prompt
    assert '<step index="2500"' in prompt and '<step index="2498"' in prompt  # around the error
    assert "left out]" in prompt
    assert Incident.objects.get(trace__external_id="c-1").step_index == 2500


def test_a_malformed_answer_is_repaired_once_then_falls_back_offline(fake, tenant):
    bad = diagnosis_answer(
        [{"step_index": 77, "description": "", "category": "nonsense", "confidence": 3}]
    )
    fake.queue += [(200, bad, {}), (200, bad, {})]
    ingest(tenant.workspace, [_failed_trace()])
    assert len(fake.requests) == 2
    assert "failed validation" in fake.requests[1]["body"]["messages"][-1]["content"]
    analysis = TraceAnalysis.objects.get(trace__external_id="c-1")
    assert analysis.diagnoser == "offline"
    assert "failed validation twice" in analysis.detail and "step_index 77" in analysis.detail


def test_a_429_is_retried_then_reported(fake, tenant):
    limited = (429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
               {"retry-after": "0"})  # fmt: skip
    fake.queue += [limited, limited]
    ingest(tenant.workspace, [_failed_trace()])
    assert len(fake.requests) == 2  # one retry (HIVEMIND_LLM_MAX_RETRIES=1)
    analysis = TraceAnalysis.objects.get(trace__external_id="c-1")
    assert "429" in analysis.detail and analysis.diagnoser == "offline"


def test_a_timeout_is_reported(fake, tenant, settings):
    settings.HIVEMIND_LLM_TIMEOUT = 0.5
    settings.HIVEMIND_LLM_MAX_RETRIES = 0
    fake.queue.append(("sleep", 1.5))
    ingest(tenant.workspace, [_failed_trace()])
    assert "did not answer in time" in TraceAnalysis.objects.get(trace__external_id="c-1").detail


def test_window_keeps_head_errors_and_tail():
    steps = [
        StepView(i, "tool_call", "t", {"i": i}, "x" * 400, "boom" if i == 50 else "")
        for i in range(200)
    ]
    shown, gaps = claude_diagnoser.window(steps, budget_tokens=1500)
    indexes = [s.index for s in shown]
    assert indexes[:3] == [0, 1, 2] and 50 in indexes and 48 in indexes and indexes[-1] == 199
    assert gaps and all(a <= b for a, b in gaps)


def test_a_backfill_goes_through_the_message_batches_api(fake, tenant, settings):
    from django.core.management import call_command

    settings.ANTHROPIC_API_KEY = ""  # ingest offline first
    ingest(tenant.workspace, [_failed_trace(), {**_failed_trace(), "external_id": "c-2"}])
    settings.ANTHROPIC_API_KEY = "sk-test-not-real"

    # Answered from the fake server's thread, which must not touch the database.
    second_id = f"trace-{Trace.objects.get(external_id='c-2').pk}"

    def answer(custom_id: str) -> dict:
        if custom_id == second_id:
            return {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "busy"},
                },
            }
        return {"type": "succeeded", "message": diagnosis_answer([
            {"step_index": 1, "description": "Looked up the wrong order.", "category": "reasoning.misread_output",
             "confidence": 0.6}], input_tokens=1000, output_tokens=100)}  # fmt: skip

    fake.batch_answer = answer
    call_command(
        "diagnose_traces", workspace=tenant.workspace.slug, all=True, batch=True, poll_seconds=0.01
    )
    assert [r["path"] for r in fake.requests] == ["/v1/messages/batches"]
    assert len(fake.requests[0]["body"]["requests"]) == 2
    done = Incident.objects.get(trace__external_id="c-1")
    assert (done.source, done.step_index) == ("claude", 1)
    first = TraceAnalysis.objects.get(trace__external_id="c-1")
    assert first.diagnoser == "claude" and first.input_tokens == 1000
    # Half price: (1000 × in + 100 × out) / 1e6 × 0.5.
    expected = (
        0.5 * (1000 * settings.HIVEMIND_LLM_PRICE_IN + 100 * settings.HIVEMIND_LLM_PRICE_OUT) / 1e6
    )
    assert first.cost_usd == pytest.approx(expected)
    second = TraceAnalysis.objects.get(trace__external_id="c-2")
    assert second.diagnoser == "offline" and "errored" in second.detail


# --- the settings page --------------------------------------------------------------


def test_diagnosis_settings_page_access(client, tenant, other_tenant):
    url = reverse("diagnosis_settings", args=[tenant.workspace.slug])
    assert client.get(url).status_code == 302  # anonymous: to the login page
    for user, status in ((tenant.admin, 200), (tenant.lead, 403), (tenant.viewer, 403),
                         (other_tenant.admin, 404)):  # fmt: skip
        client.force_login(user)
        assert client.get(url).status_code == status, user
        assert client.post(url, {"categories": "x"}).status_code in {
            status,
            422 if status == 200 else status,
        }


def test_diagnosis_settings_validate_and_save(client, tenant):
    from failures import taxonomy
    from failures.models import DiagnosisSettings
    from workspaces.models import AuditEvent

    client.force_login(tenant.admin)
    url = reverse("diagnosis_settings", args=[tenant.workspace.slug])
    text = taxonomy.to_text(list(taxonomy.DEFAULT))
    bad = client.post(
        url, {"categories": text + "\nNot a key | x", "default_threshold": "", "thresholds": ""}
    )
    assert bad.status_code == 422 and "must be group.name" in bad.content.decode()
    bad = client.post(url, {"categories": text, "default_threshold": "high", "thresholds": ""})
    assert bad.status_code == 422 and "must be a number" in bad.content.decode()
    bad = client.post(
        url, {"categories": text, "default_threshold": "", "thresholds": "writer 0.5"}
    )
    assert bad.status_code == 422 and "line 1" in bad.content.decode()
    assert not DiagnosisSettings.objects.exists()
    extra = text + "\nprocess.no_refund_check | Refunded without checking | Our refund rule."
    ok = client.post(
        url, {"categories": extra, "default_threshold": "1", "thresholds": "writer = 0.5"}
    )
    assert ok.status_code == 302
    saved = DiagnosisSettings.objects.get(workspace=tenant.workspace)
    assert saved.default_reward_threshold == 1.0 and saved.reward_thresholds == {"writer": 0.5}
    assert saved.categories[-1]["key"] == "process.no_refund_check"
    assert AuditEvent.objects.filter(action="diagnosis.settings_changed").count() == 1
    # Claude is offered the workspace's own categories.
    assert "process.no_refund_check" in [
        c.key for c in claude_diagnoser.categories_for(tenant.workspace.pk)
    ]


def test_descriptions_show_backticked_names_as_code_and_escape_the_rest():
    from failures.templatetags.failures_tags import codespans

    assert codespans("called `get_order` <b>") == "called <code>get_order</code> &lt;b&gt;"


def test_a_description_cut_for_a_page_ends_in_one_ellipsis():
    from failures.templatetags.failures_tags import clip

    cut_value = 'Called `x` with summary="MMS fails, APN rese…" and note="more text here"'
    assert clip(cut_value, 45) == 'Called `x` with summary="MMS fails, APN rese…'
    assert clip("a long description of what went wrong", 10) == "a long de…"
    assert clip("short", 10) == "short"
    # A cut inside a `name` closes it: the page shows code, not a stray backtick.
    said = "called `transfer_to_human_agents` without `get_details_by_id` first"
    assert clip(said, 56) == "called `transfer_to_human_agents` without `get_details_…`"
    assert clip(said, 44) == "called `transfer_to_human_agents` without…"
    assert clip(said, 43) == "called `transfer_to_human_agents` without…"
    assert clip("call `abcdef` now", 9) == "call `ab…`"


def test_a_burst_of_failed_traces_sends_only_so_many_to_claude(fake, tenant, monkeypatch):
    monkeypatch.setattr(mining, "CLAUDE_PER_CALL", 1)
    fake.queue.append((200, diagnosis_answer([
        {"step_index": 1, "description": "Looked up the wrong order.", "category": "reasoning.misread_output",
         "confidence": 0.6}]), {}))  # fmt: skip
    ingest(tenant.workspace, [_failed_trace(), {**_failed_trace(), "external_id": "c-2"}])
    assert len(fake.requests) == 1
    details = dict(TraceAnalysis.objects.values_list("diagnoser", "detail"))
    assert "claude" in details and "--batch" in details["offline"]
