"""Named checks of the outcome: in by every route, on the trace, first evidence of a diagnosis."""

from __future__ import annotations

import base64
import json

import pytest

from failures.models import Incident, TraceAnalysis
from tests.factories import ingest, trace_payload
from traces.models import Trace

pytestmark = pytest.mark.django_db

CHECKS = [{"name": "db_match", "passed": False, "detail": "the reservation was cancelled"},
          {"name": "tests/test_forms.py::test_x", "passed": True}]  # fmt: skip


def test_checks_arrive_by_the_api_the_outcome_api_otlp_and_an_importer(client, tenant, tmp_path):
    from traces.importing import traces_import_file

    headers = tenant.api_headers()
    body = {"traces": [trace_payload("api-1", checks=CHECKS)]}
    assert client.post("/api/v1/traces", json.dumps(body), content_type="application/json",
                       headers=headers).status_code == 200  # fmt: skip
    assert Trace.objects.get(external_id="api-1").checks[0] == CHECKS[0]
    # The outcome API, before and after the trace exists.
    for external_id in ("late-1", "api-1"):
        answer = client.post(f"/api/v1/traces/{external_id}/outcome", json.dumps(
            {"status": "failed", "checks": [{"name": "env_assertion", "passed": False}]}),
            content_type="application/json", headers=headers)  # fmt: skip
        assert answer.status_code in (200, 202), answer.content
    assert Trace.objects.get(external_id="api-1").checks == [
        {"name": "env_assertion", "passed": False, "detail": ""}]  # fmt: skip
    ingest(tenant.workspace, [trace_payload("late-1")])
    assert Trace.objects.get(external_id="late-1").checks[0]["name"] == "env_assertion"
    # OTLP: hivemind.check.<name> attributes.
    span = {"traceId": "5b8efff798038103d269b633813fc60e", "spanId": "eee19b7ec3c1b176", "name": "run",
            "startTimeUnixNano": "1763719200000000000", "endTimeUnixNano": "1763719201000000000",
            "attributes": [{"key": "hivemind.check.db_match", "value": {"boolValue": False}},
                           {"key": "hivemind.check.reply_polite", "value": {"stringValue": "pass"}}]}  # fmt: skip
    otlp = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    assert client.post("/v1/traces", json.dumps(otlp), content_type="application/json",
                       headers=headers).status_code == 200  # fmt: skip
    assert Trace.objects.get(external_id="5b8efff798038103d269b633813fc60e").checks == [
        {"name": "db_match", "passed": False, "detail": ""},
        {"name": "reply_polite", "passed": True, "detail": ""}]  # fmt: skip
    # tau2's reward_info, read by its importer.
    tau2 = tmp_path / "tau2.json"
    tau2.write_text(json.dumps({
        "info": {"environment_info": {"domain_name": "retail"}, "agent_info": {"llm": "m"}},
        "tasks": [], "simulations": [{"id": "s9", "task_id": "7", "messages": [
            {"role": "assistant", "content": "hi"}], "reward_info": {
            "reward": 0.0, "db_check": {"db_match": False},
            "nl_assertions": [{"nl_assertion": "agent refunds", "met": False, "justification": "no"}],
            "action_checks": [{"action": {"name": "cancel_pending_order", "arguments": {"order_id": "#W1"}},
                               "action_match": True}]}}],
    }))  # fmt: skip
    assert traces_import_file(workspace=tenant.workspace, fmt="tau2-bench", path=tau2).ok
    names = [c["name"] for c in Trace.objects.get(external_id="tau2-s9").checks]
    # The expected actions are the benchmark's answer key: never imported.
    assert names == ["db_match", "nl_assertion: agent refunds"]


def test_tau2_checks_are_those_its_reward_counts():
    """A telecom task is scored on its environment assertions: its `db_match`,
    reported false in 30 of the dev set's successful telecom runs, is no verdict on
    the run. Without a reward basis every check is read."""
    from hivemind_client.formats import tau2_checks

    info = {
        "reward": 1.0, "reward_basis": ["ENV_ASSERTION"], "db_check": {"db_match": False},
        "env_assertions": [{"env_assertion": {"func_name": "assert_mobile_data_status",
                                              "arguments": {"expected_status": True}}, "met": True}],
        "communicate_checks": [{"info": "speed", "met": False}],
    }  # fmt: skip
    assert [(c["name"], c["passed"]) for c in tau2_checks(info)] == [
        ("env_assertion: assert_mobile_data_status", True)]  # fmt: skip
    info["reward_basis"] = ["DB", "COMMUNICATE"]
    assert [(c["name"], c["passed"]) for c in tau2_checks(info)] == [
        ("db_match", False), ("communicate: speed", False)]  # fmt: skip
    del info["reward_basis"]
    assert len(tau2_checks(info)) == 3


def test_a_failed_check_is_the_incident_where_nothing_more_specific_is_found(tenant):
    ingest(tenant.workspace, [trace_payload("checked", agent="fresh", checks=CHECKS, steps=[
        {"kind": "tool_call", "name": "act", "input": {}, "output": {"ok": True}}])])  # fmt: skip
    incident = Incident.objects.get(trace__external_id="checked")
    assert incident.step_index == -1 and incident.category == "outcome.check_failed"
    assert incident.description == "`db_match` failed: the reservation was cancelled"
    assert TraceAnalysis.objects.get(trace__external_id="checked").state == "diagnosed"


def test_a_more_specific_cause_keeps_the_failed_checks_as_its_evidence(tenant):
    ingest(tenant.workspace, [trace_payload("both", checks=CHECKS)])  # its step errors (429)
    incident = Incident.objects.get(trace__external_id="both")
    assert incident.step_index == 1 and "429" in incident.description
    assert incident.stats["checks_failed"] == ["db_match"]


def test_the_trace_page_lists_checks_failed_first(tenant):
    ingest(tenant.workspace, [trace_payload("page", checks=list(reversed(CHECKS)))])
    trace = Trace.objects.get(external_id="page")
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/traces/{trace.pk}/")
    text = page.content.decode()
    assert "Checks of the outcome" in text and "1 of 2 failed" in text
    assert text.index("db_match") < text.index("tests/test_forms.py::test_x")
    assert "what the diagnosis starts from" in text and "checks-not-outcome" not in text
    # A run reported succeeded with a failed check (an evaluation, a check its reward
    # does not count) is not diagnosed: the page does not say its check is evidence.
    ingest(tenant.workspace, [trace_payload("kept", status="succeeded", checks=CHECKS)])
    trace = Trace.objects.get(external_id="kept")
    text = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/traces/{trace.pk}/").content.decode()  # fmt: skip
    assert "reported succeeded all the same" in text
    assert "what the diagnosis starts from" not in text


def test_a_bad_check_is_refused_with_a_clear_error(client, tenant):
    body = {"traces": [trace_payload("bad-check", checks=[{"name": "", "passed": "maybe"}])]}
    answer = client.post("/api/v1/traces", json.dumps(body), content_type="application/json",
                         headers=tenant.api_headers())  # fmt: skip
    assert answer.status_code == 422 and "checks" in json.dumps(answer.json())


def test_intercode_scores_become_one_check_that_says_how_close_the_run_came(tenant, tmp_path):
    """InterCode scores every action; the episode's verdict is one named check per
    environment, with the best score and a last answer worse than an earlier one."""
    from traces.importing import traces_import_file

    def episode(env: str, actions: list[str], rewards: list[float]) -> dict:
        return {"environment": f"ic_{env}", "query": f"{env} task", "turn_history": {
            "actions": actions, "observations": ["out"] * len(actions), "rewards": rewards,
            "valid_action": [True] * len(actions)}, "summary": {"max_reward": max(rewards)}}  # fmt: skip

    path = tmp_path / "ic_sql_multiturn_m_10_turns.json"
    path.write_text(json.dumps({
        "0": episode("sql", ["SELECT 1", "SELECT 2", "SELECT 3"], [0.0, 0.4, 0.2]),
        "1": episode("sql", ["SELECT a", "SELECT b"], [0.0, 0.0]),
        "2": episode("sql", ["SELECT x"], [1.0]),
        "3": episode("bash", ["ls", "find ."], [0.0, 0.0]),
        "4": episode("python", ["def f(): pass"], [0.5]),
    }))  # fmt: skip
    assert traces_import_file(workspace=tenant.workspace, fmt="intercode", path=path).ok
    checks = {
        t.metadata["task_id"]: t.checks for t in Trace.objects.filter(workspace=tenant.workspace)
    }
    assert checks["0"] == [{"name": "result rows", "passed": False, "detail":
        "the rows returned only partly matched the expected rows; its last answer scored lower "
        "than an earlier one (best score 0.40 at action 2 of 3, last 0.20)"}]  # fmt: skip
    assert checks["1"][0]["detail"] == (
        "none of the expected rows were returned (2 actions scored, none above 0)"
    )
    assert checks["2"] == [{"name": "result rows", "passed": True, "detail": ""}]
    # ReAct Bash files score only `submit`: a run that never submitted says so.
    assert checks["3"][0]["detail"].startswith("no answer was submitted")
    assert checks["4"][0]["name"] == "unit tests"
    assert checks["4"][0]["detail"].startswith("the function passed some of the task's unit tests")
    # The failed check is the incident of a run where nothing more specific was found.
    from failures.mining import traces_diagnose

    traces_diagnose(workspace_id=tenant.workspace.pk,
                    trace_ids=list(Trace.objects.values_list("pk", flat=True)))  # fmt: skip
    incident = Incident.objects.get(trace__metadata__task_id="1")
    assert incident.description.startswith("`result rows` failed: none of the expected rows")


def test_a_mode_of_failed_checks_shows_no_lift_and_the_summary_says_no_step_is_named(tenant):
    """Only failed runs have a failed check: a lift for such a mode would measure
    the definition of failure. The modes page says how many diagnosed runs name
    a step and how many rest on a failed check alone."""
    from failures.models import FailureMode
    from failures.selectors import diagnosis_summary
    from failures.stats import modes_figures

    ok = [{"kind": "tool_call", "name": "act", "input": {}, "output": {"ok": True}}]
    ingest(tenant.workspace, [
        *[trace_payload(f"checked-{i}", agent="fresh", checks=CHECKS[:1], steps=ok) for i in range(3)],
        *[trace_payload(f"fine-{i}", agent="fresh", status="succeeded", steps=ok) for i in range(3)],
        trace_payload("errored", agent="fresh"),  # its step errors: a cause at a step, if not weak
    ])  # fmt: skip
    checks = Incident.objects.filter(trace__external_id__startswith="checked-")
    assert checks.count() == 3 and all(i.stats["evidence"] == "check" for i in checks)
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="db_match failed")
    checks.update(failure_mode=mode)
    figures = modes_figures(workspace_id=tenant.workspace.pk, mode_ids=[mode.pk])[mode.pk]
    assert figures["outcome_check"] and "lift" not in figures
    summary = diagnosis_summary(workspace=tenant.workspace)
    at_a_step = summary["diagnosed"] - 3
    assert summary["check_only"] == 3 and summary["at_a_step"] == at_a_step
    # The page does not count a failed check as a cause: it says what failed, not why.
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/failure-modes/")
    text = " ".join(
        page.content.decode().split('id="diagnosis-summary">')[1].split("</p>")[0].split()
    )
    assert text.startswith(f"Of 4 failed runs, {at_a_step} ")
    assert "3 have only a failed check of the outcome" in text and "what failed, not why" in text
    assert "4 have a cause" not in text and f"{summary['diagnosed']} have a cause" not in text
    assert 'id="review-undiagnosed"' in text  # a lead is asked to name the step
    # Review runs says so of such a run too, not "Diagnosed".
    run = checks.first().trace_id
    review = tenant.client_for(tenant.lead).get(
        f"/w/{tenant.workspace.slug}/failures/review/{run}/"
    )
    said = review.content.decode().split('id="review-diagnosis">')[1].split("</dd>")[0]
    assert said.startswith("Only a failed check of the outcome: what failed, not why")
    # In the queue they come with the runs that name no step (a label adds the most
    # there), not after every diagnosed run (InterCode's were runs 600 of 687 on).
    from failures import labels

    queue = list(labels.review_queue(workspace=tenant.workspace))
    checked = [a for a in queue if a.trace.external_id.startswith("checked-")]
    assert len(checked) == 3 and {labels.queue_group(a) for a in checked} == {"undiagnosed"}


def _root(trace_id: str, checks: dict[str, object], code: int | None = None) -> dict:
    attributes = [{"key": f"hivemind.check.{name}", "value": {"boolValue": v} if isinstance(v, bool)
                   else {"stringValue": v}} for name, v in checks.items()]  # fmt: skip
    span = {"traceId": trace_id, "spanId": "eee19b7ec3c1b176", "name": "run",
            "startTimeUnixNano": "1763719200000000000", "endTimeUnixNano": "1763719201000000000",
            "attributes": attributes}  # fmt: skip
    if code is not None:
        span["status"] = {"code": code}
    call = {"traceId": trace_id, "spanId": "aaa19b7ec3c1b176", "parentSpanId": "eee19b7ec3c1b176",
            "name": "execute_tool lookup", "startTimeUnixNano": "1763719200100000000",
            "endTimeUnixNano": "1763719200200000000", "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                {"key": "gen_ai.tool.name", "value": {"stringValue": "lookup"}}]}  # fmt: skip
    return {"resourceSpans": [{"resource": {"attributes": []},
                               "scopeSpans": [{"spans": [span, call]}]}]}  # fmt: skip


def test_a_root_span_left_unset_takes_its_outcome_from_its_checks(client, tenant, tmp_path):
    """Most instrumentations leave the root span's status UNSET: the harness's named
    checks decide (any failed: failed; every one passed: succeeded); a status the
    root span sets is never overruled; by the endpoint and the file importer alike."""
    from traces.importing import traces_import_file

    cases = {"a" * 32: ({"db_match": False, "polite": "pass"}, None, "failed"),
             "b" * 32: ({"db_match": True, "polite": "pass"}, None, "succeeded"),
             "c" * 32: ({"db_match": False}, 1, "succeeded"),  # STATUS_CODE_OK stands
             "d" * 32: ({}, None, "unknown")}  # fmt: skip
    lines = []
    for trace_id, (checks, code, _) in cases.items():
        body = _root(trace_id, checks, code)
        assert client.post("/v1/traces", json.dumps(body), content_type="application/json",
                           headers=tenant.api_headers()).status_code == 200  # fmt: skip
        lines.append(json.dumps(_root("f" + trace_id[1:], checks, code)))
    for trace_id, (_, _, status) in cases.items():
        assert Trace.objects.get(external_id=trace_id).status == status, trace_id
    export = tmp_path / "spans.jsonl"
    export.write_text("\n".join(lines) + "\n")
    assert traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=export).ok
    for trace_id, (_, _, status) in cases.items():
        assert Trace.objects.get(external_id="f" + trace_id[1:]).status == status
    # A root span that carries nothing else, alone in its trace, still says what
    # it says of its run (its checks), by file as over OTLP.
    lone = _root("9" * 32, {"db_match": False})
    lone["resourceSpans"][0]["scopeSpans"][0]["spans"].pop()
    export.write_text(json.dumps(lone) + "\n")
    assert traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=export).ok
    assert Trace.objects.get(external_id="9" * 32).checks == [
        {"name": "db_match", "passed": False, "detail": ""}]  # fmt: skip


def _evaluation(name: str, label: str, score: float | None = None, why: str = "") -> dict:
    """A `gen_ai.evaluation.result` event's attributes, as OTLP/JSON writes them."""
    attrs = [{"key": "gen_ai.evaluation.name", "value": {"stringValue": name}},
             {"key": "gen_ai.evaluation.score.label", "value": {"stringValue": label}}]  # fmt: skip
    if score is not None:
        attrs.append({"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": score}})
    if why:
        attrs.append({"key": "gen_ai.evaluation.explanation", "value": {"stringValue": why}})
    return {"name": "gen_ai.evaluation.result", "timeUnixNano": "1763719200300000000",
            "attributes": attrs}  # fmt: skip


def test_genai_evaluation_events_are_named_checks_that_do_not_decide_the_outcome(
    client, tenant, tmp_path
):
    """OpenTelemetry's `gen_ai.evaluation.result` (an evaluator's verdict on a model's
    output) on the call's span, by the endpoint and by file alike: a check where its
    label is a verdict, with its label, score and explanation; not one where it is
    not ("4 stars"). An evaluation is evidence, not the run's outcome: a root span
    left UNSET with no harness check stays unknown."""
    from traces.importing import traces_import_file

    body = _root("e" * 32, {})
    call = body["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    call["events"] = [_evaluation("relevance", "not_relevant", 0.2, "answers another question"),
                      _evaluation("tone", "Pass"), _evaluation("helpfulness", "4 stars", 4)]  # fmt: skip
    assert client.post("/v1/traces", json.dumps(body), content_type="application/json",
                       headers=tenant.api_headers()).status_code == 200  # fmt: skip
    expected = [
        {"name": "evaluation: relevance", "passed": False,
         "detail": "not_relevant, score 0.2: answers another question"},
        {"name": "evaluation: tone", "passed": True, "detail": "Pass"},
    ]  # fmt: skip
    trace = Trace.objects.get(external_id="e" * 32)
    assert trace.checks == expected and trace.status == "unknown"
    export = tmp_path / "spans.jsonl"
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "f" * 32
    call["traceId"] = "f" * 32
    export.write_text(json.dumps(body) + "\n")
    assert traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=export).ok
    trace = Trace.objects.get(external_id="f" * 32)
    assert trace.checks == expected and trace.status == "unknown"
    # With a harness check that failed, the run failed, and the evaluation is evidence.
    body = _root("1" * 32, {"db_match": False})
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["events"] = [
        _evaluation("relevance", "incorrect")]  # fmt: skip
    assert client.post("/v1/traces", json.dumps(body), content_type="application/json",
                       headers=tenant.api_headers()).status_code == 200  # fmt: skip
    trace = Trace.objects.get(external_id="1" * 32)
    assert trace.status == "failed"
    assert [c["name"] for c in trace.checks] == ["db_match", "evaluation: relevance"]


def test_an_evaluation_sent_as_a_log_record_is_a_check_of_its_run_in_either_order(client, tenant):
    """The same event as a log record at `/v1/logs`, with its span's ids: a check of
    the run its spans make, whether it arrives before them or after; checks sent in
    several exports add up (one of the same name replaces the earlier)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    def record(trace_id: str, label: str) -> bytes:
        event = _evaluation("relevance", label, 0.9)
        export = {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [{
            "timeUnixNano": event["timeUnixNano"], "eventName": event["name"],
            "traceId": base64.b64encode(bytes.fromhex(trace_id)).decode(),
            "spanId": base64.b64encode(bytes.fromhex("aaa19b7ec3c1b176")).decode(),
            "attributes": event["attributes"]}]}]}]}  # fmt: skip
        return json_format.Parse(json.dumps(export), ExportLogsServiceRequest()).SerializeToString()

    def send(path: str, body: bytes | str, kind: str) -> None:
        answer = client.post(path, body, content_type=kind, headers=tenant.api_headers())
        assert answer.status_code == 200, answer.content

    spans = json.dumps(_root("2" * 32, {"db_match": True}))
    send("/v1/logs", record("2" * 32, "fail"), "application/x-protobuf")
    send("/v1/traces", spans, "application/json")
    trace = Trace.objects.get(external_id="2" * 32)
    assert [(c["name"], c["passed"]) for c in trace.checks] == [
        ("evaluation: relevance", False), ("db_match", True)]  # fmt: skip
    assert trace.status == "succeeded" and trace.steps.count() == 2
    send("/v1/logs", record("2" * 32, "pass"), "application/x-protobuf")  # evaluated again
    trace.refresh_from_db()
    assert [(c["name"], c["passed"]) for c in trace.checks] == [
        ("db_match", True), ("evaluation: relevance", True)]  # fmt: skip
