"""Bad input never gets a 500, and never an HTML page to an API client.

Each case was a 500 once: JSON nested 600 deep, NUL characters arriving by routes
the JSON cleaner does not see (paths, query strings, form posts, protobuf
strings), non-finite numbers, and the database not answering.
"""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from django.test import Client, TestCase
from django.urls import reverse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from failures.models import FailureMode
from tests.factories import trace_payload
from traces.models import Step, Trace

pytestmark = pytest.mark.django_db


def deep(levels: int) -> str:
    """JSON text nested `levels` deep (written out: json.dumps itself would overflow)."""
    return '{"a": ' * levels + '"bottom"' + "}" * levels


def is_json(response) -> bool:  # type: ignore[no-untyped-def]
    return response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("levels", [65, 600, 5000])
def test_deeply_nested_trace_is_a_clear_422(client, tenant, levels):
    body = json.dumps({"traces": [trace_payload("deep", metadata={"x": "DEEP"})]})
    body = body.replace('"DEEP"', deep(levels))
    response = client.post("/api/v1/traces", body, content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 422 and is_json(response)
    assert "nested more than 64 levels" in response.json()["detail"]
    assert not Trace.objects.exists()


def test_deeply_nested_hook_payload_is_a_clear_422(client, tenant):
    body = json.dumps({"session_id": "s", "hook_event_name": "PostToolUse",
                       "tool_response": "DEEP"}).replace('"DEEP"', deep(600))  # fmt: skip
    response = client.post("/api/v1/hooks/claude-code", body, content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 422 and is_json(response)


def test_deeply_nested_outcome_body_is_4xx_json(client, tenant):
    body = '{"status": "failed", "comment": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post("/api/v1/traces/x/outcome", body, content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert 400 <= response.status_code < 500 and is_json(response)


def test_nul_in_api_paths_and_queries_is_4xx_json_or_ignored(client, tenant):
    headers = tenant.api_headers()
    assert client.get("/api/v1/skills/a%00b", headers=headers).status_code == 400
    for query in ("q=%00rate", "q=rate&agent=%00x", "q=rate&tool=x%00"):
        response = client.get(f"/api/v1/incidents/search?{query}", headers=headers)
        assert response.status_code in (200, 422) and is_json(response), query


def test_nul_in_page_queries_and_form_posts_is_dropped(tenant):
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="m", incident_count=1)
    lead = tenant.client_for(tenant.lead)
    page = lead.get(reverse("mode_list", args=[tenant.workspace.slug]) + "?q=rate%00limit")
    assert page.status_code == 200
    url = reverse("mode_rename", args=[tenant.workspace.slug, mode.pk])
    assert lead.post(url, {"label": "rate\x00 limits"}).status_code == 302
    mode.refresh_from_db()
    assert mode.label == "rate limits"


def test_nul_in_protobuf_names_is_stored_without_it(client, tenant):
    export = ExportTraceServiceRequest()
    resource = export.resource_spans.add()
    attr = resource.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "checkout\x00-agent"
    span = resource.scope_spans.add().spans.add()
    span.trace_id, span.span_id = b"\x01" * 16, b"\x02" * 8
    span.name, span.start_time_unix_nano = "stripe\x00.refund", 1_700_000_000_000_000_000
    response = client.post("/v1/traces", export.SerializeToString(),
                           content_type="application/x-protobuf", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200
    trace = Trace.objects.get()
    assert trace.agent == "checkout-agent"
    assert "\x00" not in "".join(Step.objects.values_list("name", flat=True))


def test_infinite_token_count_and_nan_reward_are_not_500(client, tenant):
    otlp = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0" * 31 + "1", "spanId": "0" * 15 + "2", "name": "llm",
        "startTimeUnixNano": "1700000000000000000",
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": "Infinity"}}],
    }]}]}]}  # fmt: skip
    response = client.post("/v1/traces", json.dumps(otlp), content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200
    nan = '{"traces": [{"external_id": "n", "reward": NaN, "steps": []}]}'
    response = client.post("/api/v1/traces", nan, content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 422 and "finite" in json.dumps(response.json())
    from tests.factories import make_key
    from workspaces.models import Scope

    key = make_key(tenant.workspace, scopes=[Scope.EXPORT])
    response = client.post("/api/v1/snapshots", '{"min_reward": NaN}',
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert response.status_code == 422 and is_json(response)


@pytest.mark.parametrize(
    ("path", "patch_target", "body", "content_type"),
    [
        ("/api/v1/traces", "workspaces.auth.api_key_authenticate",
         json.dumps({"traces": []}), "application/json"),
        ("/v1/traces", "traces.otlp_views.api_key_authenticate", "{}", "application/json"),
        ("/v1/logs", "traces.otlp_views.api_key_authenticate", "{}", "application/json"),
        ("/v1/metrics", "traces.otlp_views.api_key_authenticate", "{}", "application/json"),
        ("/mcp", "hivemind_web.mcp_server.api_key_authenticate",
         json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), "application/json"),
    ],
)  # fmt: skip
def test_database_down_is_json_503_with_retry_after(
    tenant, monkeypatch, path, patch_target, body, content_type
):
    def down(**kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr(patch_target, down)
    client = Client(raise_request_exception=False)
    response = client.post(path, body, content_type=content_type, headers=tenant.api_headers())
    assert response.status_code == 503 and is_json(response)
    assert response["Retry-After"] == "30" and "database" in response.json()["detail"]


def test_an_unexpected_error_answers_json_to_api_clients(tenant, monkeypatch):
    def boom(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr("workspaces.auth.api_key_authenticate", boom)
    response = Client(raise_request_exception=False).get(
        "/api/v1/whoami", headers=tenant.api_headers()
    )
    assert response.status_code == 500 and is_json(response)
    assert response.json() == {"detail": "Internal error; it was logged."}


def test_copy_error_rejects_only_the_bad_trace(tenant, monkeypatch):
    """A psycopg error raised inside COPY (not a Django DatabaseError) falls back to
    storing trace by trace instead of failing the whole batch."""
    import psycopg

    from traces import ingest
    from traces.services import trace_ingest_batch

    real = ingest.write_traces

    def picky(workspace_id, traces):  # type: ignore[no-untyped-def]
        if any(t.external_id == "bad" for t in traces):
            raise psycopg.errors.DataError("invalid byte sequence")
        return real(workspace_id, traces)

    monkeypatch.setattr("traces.services.write_traces", picky)
    with TestCase.captureOnCommitCallbacks(execute=False):
        batch = trace_ingest_batch(workspace=tenant.workspace,
                                   items=[trace_payload("good"), trace_payload("bad")])  # fmt: skip
    assert [r.status for r in batch.results] == ["created", "rejected"]
    assert list(Trace.objects.values_list("external_id", flat=True)) == ["good"]


@pytest.mark.parametrize(
    "fields",
    [{"started_at": "0001-01-01T00:00:00Z"}, {"started_at": "9999-12-31T00:00:00Z"},
     {"started_at": "2026-11-20T10:00:00Z", "ended_at": "2026-11-20T09:00:00Z"},
     {"steps": [{"kind": "tool_call", "started_at": "2554-01-01T00:00:00Z"}]}],
)  # fmt: skip
def test_implausible_times_are_dropped_not_stored(client, tenant, fields):
    from datetime import UTC, datetime, timedelta

    body = json.dumps({"traces": [trace_payload("t", **fields)]})
    response = client.post("/api/v1/traces", body, content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200
    trace = Trace.objects.get()
    window = (datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))
    assert window[0] <= trace.started_at <= window[1]
    assert trace.ended_at is None or trace.ended_at >= trace.started_at
    for started in Step.objects.values_list("started_at", flat=True):
        assert started is None or window[0] <= started <= window[1]
