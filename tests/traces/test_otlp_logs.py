"""Claude Code's standard OpenTelemetry events (OTLP logs) at `/v1/logs`: a run per
session from a real export of Claude Code 2.1.332 (made by
real_logs/claude-code-2.1.332/make_otel.sh logs), by JSON and protobuf, export by
export and sent again; who may send them; and what bad bodies get."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from tests.factories import make_key
from traces.models import Trace
from workspaces.models import Scope

pytestmark = pytest.mark.django_db

EXPORT = Path(__file__).parent / "real_logs" / "claude-code-2.1.332" / "otel_logs.json"
PROMPT = "Where is order B2? The orders are in orders/."


def _post(client, body, key: str, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    data = json.dumps(body) if isinstance(body, dict) else body
    return client.post("/v1/logs", data, content_type=content_type,
                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip


def _steps(trace: Trace) -> list[tuple]:
    return list(trace.steps.order_by("index").values_list(
        "index", "kind", "name", "input", "output", "error", "tokens"))  # fmt: skip


EXPECTED_STEPS = [
    (4, "user_prompt", "", PROMPT, None, "", None),
    (6, "llm_call", "claude-opus-5-5", None, None, "", 135),
    (7, "tool_call", "Bash", {"command": "cat orders/B2.json", "description": "Read order B2"},
     None, "ShellError: Shell command failed", None),
    (8, "llm_call", "claude-opus-5-5", None, None, "", 135),
    (9, "assistant_message", "", None,
     "I could not find order B2: orders/B2.json does not exist.", "", None),
]  # fmt: skip


def test_a_claude_code_session_sent_as_events_is_one_run_with_its_calls(client, tenant):
    """The prompt is the task, the model calls carry the model and their tokens, the
    Bash call its command and its failure; settings, plugins and the permission
    decision are left out; the run is dated by its first event and stays unknown
    (the events do not say how a session ended)."""
    response = _post(client, json.loads(EXPORT.read_text()), tenant.key)
    assert response.status_code == 200, response.content
    assert response.json() == {}  # nothing rejected
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.external_id.startswith("claude-code-events-")
    assert (trace.agent, trace.model, trace.task, trace.status) == (
        "claude-code", "claude-opus-5-5", PROMPT, "unknown")  # fmt: skip
    assert trace.session_id == trace.external_id.removeprefix("claude-code-events-")
    assert (trace.step_count, trace.error_count, trace.total_tokens) == (5, 1, 270)
    assert trace.started_at.isoformat().startswith("2026-12-06T15:47:03.074")
    assert trace.ended_at.isoformat().startswith("2026-12-06T15:47:03.255")  # the reply
    assert trace.cost_usd == pytest.approx(2 * 0.00078)  # its two requests' cost_usd
    assert _steps(trace) == EXPECTED_STEPS
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/traces/{trace.pk}/")
    assert "do not say how a session ended" in page.content.decode()  # why it is unknown
    response = client.post(f"/api/v1/traces/{trace.external_id}/outcome", {"status": "failed"},
                           content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code in (200, 201, 202), response.content
    trace.refresh_from_db()
    assert trace.status == "failed"
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/traces/{trace.pk}/")
    assert "do not say how a session ended" not in page.content.decode()  # the outcome decides


def test_events_arriving_export_by_export_or_sent_again_make_the_same_run(client, tenant):
    """An exporter sends a session's events every few seconds and retries a failed
    export: each event is the step of its sequence number, so the run is the same
    whichever way they come, and a retry adds nothing. Protobuf as JSON."""
    export = json.loads(EXPORT.read_text())
    records = [(rl, sl, r) for rl in export["resourceLogs"] for sl in rl["scopeLogs"]
               for r in sl["logRecords"]]  # fmt: skip
    for rl, sl, record in reversed(
        records
    ):  # latest first: the task still comes from the first prompt
        one = {"resourceLogs": [{**rl, "scopeLogs": [{**sl, "logRecords": [record]}]}]}
        message = json_format.ParseDict(one, ExportLogsServiceRequest())
        response = _post(client, message.SerializeToString(), tenant.key, "application/x-protobuf")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-protobuf"
        ExportLogsServiceResponse().ParseFromString(response.content)
    assert _post(client, export, tenant.key).status_code == 200  # the whole export again
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert _steps(trace) == EXPECTED_STEPS
    assert (trace.task, trace.step_count, trace.total_tokens) == (PROMPT, 5, 270)
    assert trace.started_at.isoformat().startswith("2026-12-06T15:47:03.074")
    assert trace.ended_at.isoformat().startswith("2026-12-06T15:47:03.255")
    assert trace.cost_usd == pytest.approx(2 * 0.00078)  # each request counted once


def test_records_that_are_not_claude_codes_events_are_left_out(client, tenant):
    other = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "GET /health 200"},
         "attributes": [{"key": "session.id", "value": {"stringValue": "s1"}}]},
        {"body": {"stringValue": "gen_ai.user.message"},
         "attributes": [{"key": "event.sequence", "value": {"intValue": 1}}]},
    ]}]}]}  # fmt: skip
    response = _post(client, other, tenant.key)
    assert response.status_code == 200
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_who_may_send_events(client, tenant, other_tenant):
    """Anonymous: 401. A key without the ingest scope: 403. Another workspace's key
    stores the run in its own workspace, never in this one."""
    body = json.loads(EXPORT.read_text())
    assert (
        client.post("/v1/logs", json.dumps(body), content_type="application/json").status_code
        == 401
    )
    reader = make_key(tenant.workspace, scopes=[Scope.SKILLS_READ], name="reader")
    assert _post(client, body, reader).status_code == 403
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()
    assert _post(client, body, other_tenant.key).status_code == 200
    assert Trace.objects.filter(workspace=other_tenant.workspace).count() == 1
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b"{"),
    ("application/json", b'{"resourceLogs": 3}'),
    ("application/x-protobuf", b"\x0a\xff\xff\xff\xff\x0f"),
    ("text/plain", b"hello"),
])  # fmt: skip
def test_a_bad_body_is_a_4xx_that_says_what_is_wrong_and_stores_nothing(
    client, tenant, content_type, body
):
    response = _post(client, body, tenant.key, content_type)
    assert 400 <= response.status_code < 500
    if content_type == "application/json":
        assert "OTLP" in response.json()["message"]
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_a_session_its_hooks_capture_is_not_stored_again_from_its_events(client, tenant):
    """With both the hooks and the telemetry on, a session would be two runs (and
    counted twice); its hooks' run is the fuller record, so its events are left out."""
    export = json.loads(EXPORT.read_text())
    session = next(
        a["value"]["stringValue"]
        for rl in export["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]
        for a in r["attributes"] if a["key"] == "session.id"
    )  # fmt: skip
    hook = {"hook_event_name": "UserPromptSubmit", "session_id": session, "prompt": PROMPT,
            "cwd": "/tmp/project", "transcript_path": "/tmp/t.jsonl"}  # fmt: skip
    response = client.post("/api/v1/hooks/claude-code", json.dumps(hook),
                           content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200, response.content
    assert _post(client, export, tenant.key).status_code == 200
    runs = list(
        Trace.objects.filter(workspace=tenant.workspace).values_list("external_id", flat=True)
    )
    assert runs == [f"claude-code-{session}"]


def _record(event: str, sequence: object, **attrs: object) -> dict:
    def value(v: object) -> dict:
        return {"intValue": v} if isinstance(v, int) else {"stringValue": v}

    attributes = {"session.id": "s-42", "event.name": event, "event.sequence": sequence, **attrs}
    return {"timeUnixNano": "1796572023074000000", "body": {"stringValue": f"claude_code.{event}"},
            "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()]}  # fmt: skip


def test_what_each_event_says_without_the_optional_details(client, tenant):
    """Without OTEL_LOG_USER_PROMPTS and OTEL_LOG_TOOL_DETAILS (Claude Code 2.1.332
    then writes `<REDACTED>` for the prompt and the reply): a prompt step with no
    text (the run has no task, rather than "<REDACTED>"), a call with the
    parameters Claude Code reports; a failed API request is a failed model call
    with its HTTP status; a call a permission rule refused is a failed call; a
    record without a session or a sequence number is left out."""
    records = [
        _record("user_prompt", 1, prompt_length="45", prompt="<REDACTED>"),
        _record("api_error", 2, model="claude-opus-5-5", error="Overloaded", status_code="529"),
        _record("tool_result", 3, tool_name="Read", success="true",
                tool_parameters='{"file_path": "orders/A1.json"}'),
        _record("tool_result", "x", tool_name="Bash", success="false"),
        {**_record("tool_result", 5, tool_name="Bash"), "attributes": []},
        _record("assistant_response", 6, response="<REDACTED>", response_length="30"),
        # As Claude Code 2.1.332 reports a call `--allowedTools` does not allow: no
        # tool_result follows.
        _record("tool_decision", 7, decision="reject", source="config", tool_name="Write",
                tool_use_id="toolu_01"),
        _record("tool_decision", 8, decision="accept", source="config", tool_name="Bash"),
    ]  # fmt: skip
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    assert _post(client, body, tenant.key).status_code == 200
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.task, trace.error_count) == ("claude-code-events-s-42", "", 2)
    assert _steps(trace) == [
        (1, "user_prompt", "", None, None, "", None),
        (2, "llm_call", "claude-opus-5-5", None, None, "Overloaded (HTTP 529)", None),
        (3, "tool_call", "Read", {"file_path": "orders/A1.json"}, None, "", None),
        (6, "assistant_message", "", None, None, "", None),
        (
            7,
            "tool_call",
            "Write",
            None,
            None,
            "The call was not permitted (rejected by config).",
            None,
        ),
    ]


def test_mutated_exports_are_stored_or_refused_never_a_5xx(client, tenant):
    """A fixed-seed fuzz of the real export: values swapped for others of every JSON
    type, keys deleted. Each answer is a 200 or a 400 that says why."""
    from tests.mutations import fuzz_otlp_json

    fuzz_otlp_json(client, "/v1/logs", json.loads(EXPORT.read_text()), tenant.key)
