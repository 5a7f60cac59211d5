"""Codex CLI's OpenTelemetry events (OTLP logs) at `/v1/logs`: a run per
conversation from a real export of Codex CLI 0.171.0 (made by
real_logs/codex-cli-0.171.0/make_otel.sh), sent again and in pieces; the events
that say a call failed; a conversation its hooks or rollout capture; who may send
them; what bad bodies get."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from traces.models import Trace

pytestmark = pytest.mark.django_db

EXPORT = Path(__file__).parent / "real_logs" / "codex-cli-0.171.0" / "otel_logs.json"
PROMPT = "Where is order B2? The orders are in orders/."


def _export() -> dict:
    return json.loads(EXPORT.read_text())


def _records(export: dict) -> list[dict]:
    return export["resourceLogs"][0]["scopeLogs"][0]["logRecords"]


def _attr(record: dict, key: str) -> object:
    return next(
        (list(a["value"].values())[0] for a in record["attributes"] if a["key"] == key), None
    )


def _set(record: dict, key: str, value: dict) -> None:
    record["attributes"] = [a for a in record["attributes"] if a["key"] != key]
    record["attributes"].append({"key": key, "value": value})


def _post(client, body: dict, key: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/logs", json.dumps(body), content_type="application/json",
                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip


def _steps(trace: Trace) -> list[tuple]:
    return list(trace.steps.order_by("index").values_list("kind", "name", "tokens", "error"))


def test_a_codex_conversation_sent_as_events_is_one_run_with_its_calls(client, tenant):
    """The prompt is the task; each completed response a model call with its
    tokens; the command a call with its arguments, failed because its output says it
    exited 1 (Codex reports it a success); the rest of Codex's events (startup,
    stream events, the approval) are left out. The run stays unknown, saying why,
    until an outcome decides; sent again, nothing changes."""
    for _ in range(2):
        response = _post(client, _export(), tenant.key)
        assert response.status_code == 200, response.content
        assert response.json() == {}
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.external_id.startswith("codex-events-01a24c")
    assert (trace.agent, trace.model, trace.task, trace.status) == (
        "codex", "scripted-codex", PROMPT, "unknown")  # fmt: skip
    assert (trace.step_count, trace.error_count, trace.total_tokens) == (4, 1, 270)
    steps = _steps(trace)
    assert [s[:3] for s in steps] == [
        ("user_prompt", "", None), ("llm_call", "scripted-codex", 135),
        ("tool_call", "exec_command", None), ("llm_call", "scripted-codex", 135),
    ]  # fmt: skip
    assert "No such file or directory" in steps[2][3]
    call = trace.steps.get(kind="tool_call")
    assert call.input == {"cmd": "cat orders/B2.json"}
    assert trace.started_at < call.started_at <= trace.ended_at
    # Its result is sent when it ended: the call began its duration (45 ms) before.
    result = next(r for r in _records(_export()) if _attr(r, "event.name") == "codex.tool_result")
    ended = int(result["observedTimeUnixNano"]) / 1e9
    assert abs(call.started_at.timestamp() - (ended - 0.045)) < 0.001
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/traces/{trace.pk}/")
    assert (
        "no outcome reported, and none could be read: Codex&#x27;s events do not say how a "
        "session ended"
    ) in page.content.decode()  # not "read from the session"
    response = client.post(f"/api/v1/traces/{trace.external_id}/outcome", {"status": "failed"},
                           content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code in (200, 201, 202), response.content
    trace.refresh_from_db()
    assert trace.status == "failed"


def test_events_arriving_in_pieces_in_any_order_make_the_same_run(client, tenant, other_tenant):
    """An exporter sends a conversation's events batch by batch, and a retried batch
    may come after a later one: the steps are placed by their time, the run lasts
    from its first event to its last."""
    assert _post(client, _export(), tenant.key).status_code == 200
    export = _export()
    records = _records(export)
    halves = [copy.deepcopy(export), copy.deepcopy(export)]
    _records(halves[0])[:] = records[len(records) // 2 :]
    _records(halves[1])[:] = records[: len(records) // 2]
    for half in halves:  # the later half first
        assert _post(client, half, other_tenant.key).status_code == 200
    whole = Trace.objects.get(workspace=tenant.workspace)
    pieces = Trace.objects.get(workspace=other_tenant.workspace)
    assert _steps(pieces) == _steps(whole)
    assert (pieces.task, pieces.started_at, pieces.ended_at) == (
        whole.task, whole.started_at, whole.ended_at)  # fmt: skip


def test_a_failed_request_and_a_refused_call_are_failed_steps(client, tenant):
    """An API request answered with an error is a failed model call; a call the
    person or a rule did not approve is a failed call (no tool_result follows)."""
    export = _export()
    records = _records(export)
    request = next(r for r in records if _attr(r, "event.name") == "codex.api_request")
    _set(request, "http.response.status_code", {"stringValue": "429"})
    _set(request, "error.message", {"stringValue": "Rate limit reached"})
    decision = next(r for r in records if _attr(r, "event.name") == "codex.tool_decision")
    _set(decision, "decision", {"stringValue": "denied"})
    assert _post(client, export, tenant.key).status_code == 200
    trace = Trace.objects.get(workspace=tenant.workspace)
    errors = list(trace.steps.exclude(error="").order_by("index").values_list("kind", "error"))
    assert ("llm_call", "Rate limit reached (HTTP 429)") in errors
    assert ("tool_call", "The call was not permitted (denied, by Config).") in errors


def test_a_conversation_its_hooks_or_rollout_capture_is_not_stored_again(client, tenant):
    """With both on, a conversation would be two runs; the hooks' (or an imported
    rollout's) run `codex-<conversation>` is the fuller record."""
    conversation = _attr(_records(_export())[0], "conversation.id")
    payload = {"session_id": conversation, "hook_event_name": "UserPromptSubmit", "prompt": PROMPT}
    response = client.post("/api/v1/hooks/codex", json.dumps(payload),
                           content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200, response.content
    assert _post(client, _export(), tenant.key).status_code == 200
    assert list(Trace.objects.filter(workspace=tenant.workspace).values_list(
        "external_id", flat=True)) == [f"codex-{conversation}"]  # fmt: skip


def test_who_may_send_codex_events(client, tenant, other_tenant):
    """Anonymous: 401. Another workspace's key stores the run in its own workspace."""
    body = json.dumps(_export())
    assert client.post("/v1/logs", body, content_type="application/json").status_code == 401
    assert _post(client, _export(), other_tenant.key).status_code == 200
    assert Trace.objects.filter(workspace=other_tenant.workspace).count() == 1
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_mutated_codex_exports_are_stored_or_refused_never_a_5xx(client, tenant):
    """A fixed-seed fuzz of the real export: values swapped for others of every JSON
    type, keys deleted. Each answer is a 200 or a 400 that says why."""
    from tests.mutations import fuzz_otlp_json

    fuzz_otlp_json(client, "/v1/logs", _export(), tenant.key)
