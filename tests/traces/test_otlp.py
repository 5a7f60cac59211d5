"""The OTLP/HTTP receiver, fed by the real OpenTelemetry SDK exporter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from failures.models import Incident
from traces import otlp
from traces.models import Step, Trace


def _recorder(service: str) -> tuple[InMemorySpanExporter, TracerProvider, Any]:
    """The real SDK recording a service's spans in memory: (spans, provider, tracer)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory, provider, provider.get_tracer("test")


def record_agent_run() -> list:
    """An agent run as a GenAI-instrumented app would emit it; returns finished spans."""
    memory, provider, tracer = _recorder("otel-agent")
    with tracer.start_as_current_span("invoke_agent") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.conversation.id", "conv-7")
        root.set_attribute("gen_ai.skill.name", "respect-rate-limits")
        root.set_attribute("input.value", "Refund order 8812")
        with tracer.start_as_current_span("chat") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.request.model", "claude-haiku-4-5")
            llm.set_attribute("gen_ai.usage.input_tokens", 120)
            llm.set_attribute("gen_ai.usage.output_tokens", 30)
        with tracer.start_as_current_span("execute_tool payments.refund") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "payments.refund")
            tool.set_attribute("gen_ai.tool.call.arguments", '{"order": "8812"}')
            tool.record_exception(RuntimeError("429 Too Many Requests"))
            tool.set_status(Status(StatusCode.ERROR, "rate limited"))
        root.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.django_db(transaction=True)
def test_real_exporter_protobuf_gzip_is_stored_and_retries_are_idempotent(live_server, tenant):
    spans = record_agent_run()
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {tenant.key}"},
        compression=Compression.Gzip,
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.external_id == format(spans[0].context.trace_id, "032x")
    assert (trace.agent, trace.session_id, trace.model) == (
        "otel-agent",
        "conv-7",
        "claude-haiku-4-5",
    )
    assert trace.skills_in_scope == ["respect-rate-limits"] and trace.status == "failed"
    assert trace.task == "Refund order 8812"
    kinds = sorted(Step.objects.filter(trace=trace).values_list("kind", "name"))
    assert ("llm_call", "claude-haiku-4-5") in kinds and ("tool_call", "payments.refund") in kinds
    tool = Step.objects.get(trace=trace, name="payments.refund")
    assert "429 Too Many Requests" in tool.error and tool.input == {"order": "8812"}
    assert Incident.objects.filter(trace=trace, tool="payments.refund").count() == 1
    counts = (Trace.objects.count(), Step.objects.count(), Incident.objects.count())
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # an exporter retry
    assert (Trace.objects.count(), Step.objects.count(), Incident.objects.count()) == counts
    exporter.shutdown()


def _json_body(trace_id="5b8efff798038103d269b633813fc60c", span_id="eee19b7ec3c1b174"):
    return {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]},
            "scopeSpans": [{"scope": {"name": "x"}, "spans": [{
                "traceId": trace_id, "spanId": span_id, "name": "tool",
                "startTimeUnixNano": "1763719200000000000", "endTimeUnixNano": 1763719201000000000,
                "attributes": [{"key": "openinference.span.kind", "value": {"stringValue": "TOOL"}},
                               {"key": "tool.name", "value": {"stringValue": "crm.search"}},
                               {"key": "llm.token_count.total", "value": {"intValue": "42"}}],
                "status": {"code": 2, "message": "ReadTimeout"},
                "someFutureField": {"ignored": True},
            }]}],
        }]
    }  # fmt: skip


@pytest.mark.django_db
def test_json_with_hex_ids_string_int64_and_unknown_fields(client, tenant):
    response = client.post("/v1/traces", json.dumps(_json_body()), content_type="application/json",
                           headers={"x-hivemind-api-key": tenant.key})  # fmt: skip
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {}
    step = Step.objects.get(trace__external_id="5b8efff798038103d269b633813fc60c")
    assert (step.name, step.tokens, step.error) == ("crm.search", 42, "ReadTimeout")
    assert step.trace.agent == "json-agent"


@pytest.mark.django_db
def test_undecodable_input_gets_400_with_a_status_body(client, tenant):
    response = client.post("/v1/traces", b"\xff\x00garbage", content_type="application/x-protobuf",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 400 and response.content.startswith(b"\x08\x03")
    response = client.post("/v1/traces", "{nope", content_type="application/json",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 400 and response.json()["code"] == 3


@pytest.mark.django_db
def test_size_cap_auth_and_isolation(client, tenant, other_tenant, settings):
    body = json.dumps(_json_body())
    assert client.post("/v1/traces", body, content_type="application/json").status_code == 401
    settings.HIVEMIND_MAX_BODY_BYTES = 50
    response = client.post("/v1/traces", body, content_type="application/json",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 413
    settings.HIVEMIND_MAX_BODY_BYTES = 10_000_000
    client.post("/v1/traces", body, content_type="application/json",
                headers={"Authorization": f"Bearer {other_tenant.key}"})  # fmt: skip
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()
    assert Trace.objects.filter(workspace=other_tenant.workspace).count() == 1


@pytest.mark.django_db
def test_rejected_spans_are_counted_in_partial_success(client, tenant, settings):
    settings.HIVEMIND_MAX_STEPS_PER_TRACE = 0
    response = client.post("/v1/traces", json.dumps(_json_body()), content_type="application/json",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"


def test_status_body_is_valid_protobuf():
    from google.protobuf import descriptor_pb2  # noqa: F401  (protobuf is importable)

    body = otlp.encode_status(3, "bad input", otlp.PROTOBUF)
    assert body == b"\x08\x03\x12\x09bad input"


@pytest.mark.django_db
def test_wrong_content_type_is_415(client, tenant):
    response = client.post("/v1/traces", "x", content_type="text/plain",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 415 and "application/x-protobuf" in response.json()["message"]


@pytest.mark.django_db
def test_odd_attribute_values_and_missing_span_id_do_not_fail(client, tenant):
    body = _json_body(span_id="")
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"].append(
        {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": "many"}}
    )
    span["attributes"][2] = {"key": "llm.token_count.total", "value": {"stringValue": "n/a"}}
    response = client.post("/v1/traces", json.dumps(body), content_type="application/json",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 200
    step = Step.objects.get(trace__external_id="5b8efff798038103d269b633813fc60c")
    assert step.name == "crm.search" and step.tokens is None


def record_run_without_root_input() -> list:
    """A root span with no input, a prompt in the chat span's messages, a tool that
    fails inside a step span that fails because of it, and PII in the prompt."""
    memory, provider, tracer = _recorder("shop-agent")
    with tracer.start_as_current_span("invoke_agent") as root:
        with tracer.start_as_current_span("chat") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.input.messages", json.dumps([
                {"role": "system", "parts": [{"type": "text", "content": "You help."}]},
                {"role": "user", "parts": [{"type": "text", "content": "Cancel order for ann@example.com"}]},
            ]))  # fmt: skip
        with tracer.start_as_current_span("step") as step:
            with tracer.start_as_current_span("execute_tool orders.cancel") as tool:
                tool.set_attribute("gen_ai.tool.name", "orders.cancel")
                tool.record_exception(RuntimeError("order 8812 already shipped"))
                tool.set_status(Status(StatusCode.ERROR, "already shipped"))
            step.record_exception(RuntimeError("order 8812 already shipped"))
            step.set_status(Status(StatusCode.ERROR))
        root.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.django_db(transaction=True)
def test_one_incident_per_failure_task_from_the_prompt_steps_in_time_order(live_server, tenant):
    spans = record_run_without_root_input()  # in end order: chat, tool, step, root
    exporter = OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces",
                                headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    # Two exports, children first, as a batch processor sends them.
    assert exporter.export(spans[:2]) == SpanExportResult.SUCCESS
    assert exporter.export(spans[2:]) == SpanExportResult.SUCCESS
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.task == "Cancel order for [EMAIL]"
    assert trace.redaction_counts == {"EMAIL": 2}  # in the task and in the chat step
    steps = list(Step.objects.filter(trace=trace).order_by("index"))
    assert [s.index for s in steps] == [0, 1, 2, 3]
    assert [s.name for s in steps] == ["invoke_agent", "chat", "step", "orders.cancel"]
    assert [s.parent_index for s in steps] == [None, 0, 0, 2]
    assert [bool(s.error) for s in steps] == [False, False, False, True]
    assert trace.status == "failed" and trace.error_count == 1
    incidents = list(Incident.objects.filter(trace=trace))
    assert len(incidents) == 1 and "already shipped" in incidents[0].error_text
    assert incidents[0].step_index == 3
    assert trace.metadata["propagated_errors"] == {
        "0": "span status ERROR",
        "2": "RuntimeError: order 8812 already shipped",
    }
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # a retry of everything
    assert Step.objects.filter(trace=trace).count() == 4 and Incident.objects.count() == 1
    trace.refresh_from_db()
    assert trace.redaction_counts == {"EMAIL": 2}  # in the task and in the chat step
    exporter.shutdown()


@pytest.mark.django_db
def test_a_span_sent_twice_within_or_across_exports_is_one_step(client, tenant):
    headers = {"x-hivemind-api-key": tenant.key}
    body = _json_body(trace_id="5b8efff798038103d269b633813fc6dd")
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    body["resourceSpans"][0]["scopeSpans"][0]["spans"] = [span, dict(span)]  # twice in one export
    response = client.post("/v1/traces", json.dumps(body), content_type="application/json",
                           headers=headers)  # fmt: skip
    assert response.status_code == 200 and response.json() == {}, response.content
    again = client.post("/v1/traces", json.dumps(_json_body(trace_id="5b8efff798038103d269b633813fc6dd")),
                        content_type="application/json", headers=headers)  # fmt: skip
    assert again.status_code == 200 and again.json() == {}
    steps = Step.objects.filter(trace__external_id="5b8efff798038103d269b633813fc6dd")
    assert steps.count() == 1 and steps.get().name == "crm.search"


@pytest.mark.django_db
def test_smolagents_turns_are_agent_steps_and_a_recovered_tool_error_is_the_tools(client, tenant):
    """What openinference-instrumentation-smolagents emits: a CHAIN span per turn
    ("Step 1", "Step 2"); a tool that raised, and on its turn an
    `agent.step_recovery` event with the turn's status OK. The turns are "agent
    step" (their numbers are not tools); the failure is the tool's, the turn's
    copy of it kept aside; a turn that failed with no failing call (a tool name
    the model made up) keeps its own."""
    memory, provider, tracer = _recorder("smol")
    with tracer.start_as_current_span("ToolCallingAgent.run") as root:
        root.set_attribute("openinference.span.kind", "AGENT")
        root.set_attribute("input.value", "Find the 2023 report")
        for number, failure in ((1, "tool"), (2, "unknown tool"), (3, None)):
            with tracer.start_as_current_span(f"Step {number}") as turn:
                turn.set_attribute("openinference.span.kind", "CHAIN")
                if failure == "tool":
                    with tracer.start_as_current_span("WebSearchTool") as tool:
                        tool.set_attribute("openinference.span.kind", "TOOL")
                        tool.set_attribute("tool.name", "web_search")
                        tool.record_exception(TimeoutError("search timed out"))
                        tool.set_status(Status(StatusCode.ERROR))
                    message = "Error executing tool web_search: search timed out"
                    error_type = "AgentToolExecutionError"
                elif failure:
                    message, error_type = "Unknown tool search_web", "AgentToolCallError"
                if failure:
                    turn.add_event("agent.step_recovery", {
                        "type": error_type, "message": message, "severity": "expected"})  # fmt: skip
                turn.set_status(Status(StatusCode.OK))
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    body = encode_spans(spans)
    response = client.post("/v1/traces", body.SerializeToString(),
                           content_type="application/x-protobuf",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 200, response.content
    trace = Trace.objects.get(workspace=tenant.workspace)
    steps = list(Step.objects.filter(trace=trace).order_by("index").values_list("name", "error"))
    assert steps == [
        ("ToolCallingAgent.run", ""),
        ("agent step", ""),
        ("web_search", "TimeoutError: search timed out"),
        ("agent step", "AgentToolCallError: Unknown tool search_web"),
        ("agent step", ""),
    ]
    assert trace.metadata["propagated_errors"] == {
        "1": "AgentToolExecutionError: Error executing tool web_search: search timed out"
    }


def test_openllmetry_spans_are_model_calls_tools_and_workflows_by_their_own_attributes(
    client, tenant
):
    """What OpenLLMetry (Traceloop) instrumentations emit: a workflow and a tool
    span named by `traceloop.entity.name` with their input and output in
    `traceloop.entity.*`, and a model call marked by `llm.request.type` with the
    older `gen_ai.usage.prompt_tokens` counts. The model call is an LLM call named
    by its model (before, a tool call named "openai.chat"); the tool is the tool."""
    memory, provider, tracer = _recorder("traceloop-app")
    with tracer.start_as_current_span("weather_flow.workflow") as flow:
        flow.set_attributes(
            {
                "traceloop.span.kind": "workflow",
                "traceloop.entity.name": "weather_flow",
                "traceloop.entity.input": '{"city": "Paris"}',
            }
        )
        with tracer.start_as_current_span("openai.chat") as llm:
            llm.set_attributes(
                {
                    "llm.request.type": "chat",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.prompt.0.role": "user",
                    "gen_ai.prompt.0.content": "Weather in Paris?",
                    "gen_ai.usage.prompt_tokens": 50,
                    "gen_ai.usage.completion_tokens": 12,
                }
            )
        with tracer.start_as_current_span("get_weather.tool") as tool:
            tool.set_attributes({"traceloop.span.kind": "tool", "traceloop.entity.name": "get_weather",
                                 "traceloop.entity.input": '{"city": "Paris"}',
                                 "traceloop.entity.output": '{"error": "city not found"}'})  # fmt: skip
    provider.shutdown()
    body = encode_spans(list(memory.get_finished_spans()))
    response = client.post("/v1/traces", body.SerializeToString(),
                           content_type="application/x-protobuf",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 200, response.content
    trace = Trace.objects.get(workspace=tenant.workspace)
    steps = list(Step.objects.filter(trace=trace).order_by("index")
                 .values_list("kind", "name", "input", "output", "tokens"))  # fmt: skip
    assert steps == [
        ("span", "weather_flow", {"city": "Paris"}, None, None),
        ("llm_call", "gpt-4o-mini", None, None, 62),
        ("tool_call", "get_weather", {"city": "Paris"}, {"error": "city not found"}, None),
    ]
    assert trace.task == "Weather in Paris?"


@pytest.mark.django_db(transaction=True)
def test_metrics_are_answered_and_refused_with_the_reason_never_stored(live_server, client, tenant):
    """An SDK set up with one endpoint for every signal sends metrics too: the export
    succeeds (no error in the agent's log every minute), every data point is
    refused by partial success with what to set, and nothing is stored."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("agent")
    meter.create_counter("gen_ai.client.calls").add(3, {"gen_ai.request.model": "m"})
    meter.create_histogram("gen_ai.client.token.usage").record(120)
    data = reader.get_metrics_data()
    assert data is not None
    exporter = OTLPMetricExporter(endpoint=f"{live_server.url}/v1/metrics",
                                  headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert exporter.export(data).name == "SUCCESS"
    body = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "calls", "sum": {"dataPoints": [{"asInt": "3"}, {"asInt": "4"}]}},
        {"name": "tokens", "histogram": {"dataPoints": [{"count": "1", "exemplars": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}]}]}},
    ]}]}]}  # fmt: skip
    headers = {"Authorization": f"Bearer {tenant.key}"}
    response = client.post("/v1/metrics", json.dumps(body), content_type="application/json",
                           headers=headers)  # fmt: skip
    assert response.status_code == 200
    refused = response.json()["partialSuccess"]
    assert (
        refused["rejectedDataPoints"] == "3"
        and "OTEL_METRICS_EXPORTER=none" in refused["errorMessage"]
    )
    empty = client.post("/v1/metrics", "{}", content_type="application/json", headers=headers)
    assert empty.status_code == 200 and empty.json() == {}
    bad = client.post("/v1/metrics", "{nope", content_type="application/json", headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == 3
    anonymous = client.post("/v1/metrics", json.dumps(body), content_type="application/json")
    assert anonymous.status_code == 401
    assert not Trace.objects.exists()


@pytest.mark.django_db
def test_a_run_of_plain_spans_keeps_them_all_by_file_and_over_otlp(client, tenant, tmp_path):
    """An application traced with plain OpenTelemetry spans (no convention's
    attributes, no input or output): they are the run's only record, so none is
    taken for a harness's own span and left out, by file or over OTLP, even sent a
    span an export."""
    from traces.importing import traces_import_file

    def span(span_id: str, name: str, parent: str = "", start: int = 0) -> dict:
        return {"traceId": "7" * 32, "spanId": span_id, "parentSpanId": parent, "name": name,
                "startTimeUnixNano": str(1_763_719_200_000_000_000 + start),
                "endTimeUnixNano": str(1_763_719_201_000_000_000 - start)}  # fmt: skip

    spans = [span("a" * 16, "handle_refund"), span("b" * 16, "stripe.refund", "a" * 16, 10_000_000),
             span("c" * 16, "send_email", "a" * 16, 20_000_000)]  # fmt: skip
    lines = [{"resourceSpans": [{"scopeSpans": [{"spans": [s]}]}]} for s in reversed(spans)]
    path = tmp_path / "plain.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=path).created == 1
    by_file = Trace.objects.get(workspace=tenant.workspace)
    expected = [("span", "handle_refund"), ("tool_call", "stripe.refund"),
                ("tool_call", "send_email")]  # fmt: skip
    assert list(by_file.steps.order_by("index").values_list("kind", "name")) == expected
    by_file.delete()
    for line in lines:  # a span an export, children first
        response = client.post("/v1/traces", json.dumps(line), content_type="application/json",
                               headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
        assert response.status_code == 200
    over_otlp = Trace.objects.get(workspace=tenant.workspace)
    assert list(over_otlp.steps.order_by("index").values_list("kind", "name")) == expected
