"""GenAI events (OTLP logs at `/v1/logs`) joined to the spans of their model calls
(`/v1/traces`), from real exports of the OpenTelemetry OpenAI instrumentation:
2.4b0 (`gen_ai.client.inference.operation.details`) and 2.3b0 (one event a
message), each made by the `make_exports.py` beside it. The exports are sent as
the Python exporter sends them, protobuf, in either order."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from traces.models import Step, Trace

pytestmark = pytest.mark.django_db

REAL = Path(__file__).parent / "real_logs"
CURRENT = REAL / "opentelemetry-openai-v2-2.4b0"  # one details event a call
LEGACY = REAL / "opentelemetry-openai-v2-2.3b0"  # one event a message


def _lines(folder: Path, name: str) -> list[str]:
    return (folder / name).read_text().splitlines()


def _send(client, path: str, line: str, key: str):  # type: ignore[no-untyped-def]
    message = ExportLogsServiceRequest() if path == "/v1/logs" else ExportTraceServiceRequest()
    body = json_format.Parse(line, message).SerializeToString()
    return client.post(path, body, content_type="application/x-protobuf",
                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip


def _send_all(client, folder: Path, key: str, logs_first: bool) -> None:  # type: ignore[no-untyped-def]
    for spans, logs in zip(
        _lines(folder, "spans.jsonl"), _lines(folder, "logs.jsonl"), strict=True
    ):
        exports = [("/v1/traces", spans), ("/v1/logs", logs)]
        for path, line in reversed(exports) if logs_first else exports:
            response = _send(client, path, line, key)
            assert response.status_code == 200, response.content


def _runs(workspace) -> list[tuple]:  # type: ignore[no-untyped-def]
    runs = []
    for trace in Trace.objects.filter(workspace=workspace).order_by("task"):
        steps = list(trace.steps.order_by("index").values_list(
            "kind", "name", "parent_index", "input", "output", "error", "tokens", "started_at"))  # fmt: skip
        runs.append((trace.external_id, trace.agent, trace.task, trace.step_count,
                     trace.error_count, trace.total_tokens, trace.started_at, steps))  # fmt: skip
    return runs


def _as_otlp_json(line: str) -> dict:
    """An export line (protobuf's JSON mapping: ids in base64) as OTLP/JSON, which
    writes them in hex."""
    export = json.loads(line)
    for resource in export["resourceLogs"]:
        for scope in resource["scopeLogs"]:
            for record in scope["logRecords"]:
                for key in ("traceId", "spanId"):
                    record[key] = base64.b64decode(record[key]).hex()
    return export


def _texts(value: object) -> str:
    return json.dumps(value)


@pytest.mark.parametrize("folder", [CURRENT, LEGACY], ids=["2.4b0", "2.3b0"])
def test_a_model_calls_messages_sent_as_events_land_on_its_span(client, tenant, folder):
    """Without the events the instrumentation's model calls carry no messages. With
    them each call has what it was sent and what it answered, the run's task is the
    user's question, and the span still gives the step its time, parent and error."""
    _send_all(client, folder, tenant.key, logs_first=False)
    traces = list(Trace.objects.filter(workspace=tenant.workspace).order_by("task"))
    assert [t.task for t in traces] == ["Where is order A1?", "Where is order B2?"]
    for trace, order, answer in zip(
        traces, ("A1", "B2"), ("Order A1 has shipped.", "I could not find order B2."), strict=True
    ):
        assert (trace.agent, trace.step_count, trace.total_tokens) == ("order-loop", 4, 270)
        steps = list(trace.steps.order_by("index"))
        assert [(s.kind, s.name) for s in steps] == [
            ("span", "handle_request"), ("llm_call", "scripted-gpt"),
            ("tool_call", "lookup_order"), ("llm_call", "scripted-gpt"),
        ]  # fmt: skip
        first, last = steps[1], steps[3]
        assert f"Where is order {order}?" in _texts(first.input)
        assert "You answer questions about orders." in _texts(first.input)
        assert "lookup_order" in _texts(first.output) and order in _texts(first.output)
        assert answer in _texts(last.output)
        assert "lookup_order" in _texts(last.input)  # the tool's call and result, sent back
        assert all(s.parent_index == 0 for s in steps[1:])
        assert all(s.started_at is not None and s.duration_ms is not None for s in steps)
    failed = traces[1].steps.get(index=2)
    assert failed.error == "ValueError: order not found: B2"
    assert "order not found: B2" in _texts(traces[1].steps.get(index=3).input)


@pytest.mark.parametrize("folder", [CURRENT, LEGACY], ids=["2.4b0", "2.3b0"])
def test_events_before_their_spans_make_the_same_runs_as_after(
    client, tenant, other_tenant, folder
):
    """The exporters send spans and logs on their own schedules: whichever comes
    second keeps what the first brought (the events do not erase the span's time
    and error; the span, which has no messages, does not erase the events')."""
    _send_all(client, folder, tenant.key, logs_first=False)
    _send_all(client, folder, other_tenant.key, logs_first=True)
    assert _runs(other_tenant.workspace) == _runs(tenant.workspace)


def test_events_alone_make_a_run_of_model_calls_that_their_spans_complete(client, tenant):
    """Logs exported without spans still show the calls: a model call each, at the
    time of its first event. Their spans, arriving later, add the rest."""
    for line in _lines(CURRENT, "logs.jsonl"):
        assert _send(client, "/v1/logs", line, tenant.key).status_code == 200
    trace = Trace.objects.get(workspace=tenant.workspace, task="Where is order B2?")
    steps = list(trace.steps.order_by("index"))
    assert [(s.kind, s.name, s.parent_index) for s in steps] == [
        ("llm_call", "scripted-gpt", None), ("llm_call", "scripted-gpt", None)]  # fmt: skip
    assert trace.started_at == steps[0].started_at
    assert "I could not find order B2." in _texts(steps[1].output)
    assert trace.total_tokens == 270
    first_event = steps[0].started_at
    for line in _lines(CURRENT, "spans.jsonl"):
        assert _send(client, "/v1/traces", line, tenant.key).status_code == 200
    trace.refresh_from_db()
    steps = list(trace.steps.order_by("index"))
    assert [s.kind for s in steps] == ["span", "llm_call", "tool_call", "llm_call"]
    assert trace.started_at == steps[0].started_at < first_event  # the request's span
    assert "I could not find order B2." in _texts(steps[3].output)


def test_events_sent_again_change_nothing(client, tenant):
    """An exporter's retry of a logs export: the same steps, none added."""
    _send_all(client, CURRENT, tenant.key, logs_first=False)
    before = _runs(tenant.workspace)
    for line in _lines(CURRENT, "logs.jsonl"):
        assert _send(client, "/v1/logs", line, tenant.key).status_code == 200
    assert _runs(tenant.workspace) == before
    assert Step.objects.filter(trace__workspace=tenant.workspace).count() == 8


def test_events_are_redacted_as_spans_are(client, tenant):
    """A message's personal data is redacted before it is stored, as anywhere else."""
    line = _lines(CURRENT, "logs.jsonl")[0].replace(
        "Where is order A1?", "Where is order A1? Mail me at jane.doe@example.com"
    )
    assert _send(client, "/v1/logs", line, tenant.key).status_code == 200
    trace = Trace.objects.get(workspace=tenant.workspace)
    stored = _texts(list(trace.steps.values_list("input", flat=True))) + trace.task
    assert "jane.doe@example.com" not in stored
    assert "[EMAIL]" in stored
    assert trace.redaction_counts == {"EMAIL": 3}  # both calls' inputs and the task


def test_events_of_another_workspace_never_reach_this_ones_spans(client, tenant, other_tenant):
    """A trace id names a run within one workspace: events sent with another
    workspace's key make that workspace's run and leave this one's calls as they were."""
    for line in _lines(CURRENT, "spans.jsonl"):
        assert _send(client, "/v1/traces", line, tenant.key).status_code == 200
    for line in _lines(CURRENT, "logs.jsonl"):
        assert _send(client, "/v1/logs", line, other_tenant.key).status_code == 200
    calls = Step.objects.filter(trace__workspace=tenant.workspace, kind="llm_call")
    assert calls.count() == 4
    assert all(s.input is None and s.output is None for s in calls)
    assert Step.objects.filter(trace__workspace=other_tenant.workspace).count() == 4


def test_records_that_cannot_be_placed_are_left_out(client, tenant):
    """A GenAI event without its span's ids (or with none of the names above) has
    no call to join: nothing is stored, and the export is not refused."""
    export = json.loads(_lines(CURRENT, "logs.jsonl")[0])
    records = export["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    for record in records:
        record.pop("spanId")
    records.append({"eventName": "gen_ai.evaluation.result", "traceId": "ERJVTlkwOFgVK032EiMf4A==",
                    "spanId": "cf/RemMDtxg=", "body": {"stringValue": "ok"}})  # fmt: skip
    response = _send(client, "/v1/logs", json.dumps(export), tenant.key)
    assert response.status_code == 200
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_mutated_genai_events_are_stored_or_refused_never_a_5xx(client, tenant):
    """A fixed-seed fuzz of both real exports (as OTLP/JSON): values swapped for
    others of every JSON type, keys deleted. Each answer is a 200 or a 400 that says
    why."""
    from tests.mutations import fuzz_otlp_json

    for n, folder in enumerate((CURRENT, LEGACY)):
        sample = _as_otlp_json(_lines(folder, "logs.jsonl")[1])
        Trace.objects.filter(workspace=tenant.workspace).delete()
        response = client.post("/v1/logs", json.dumps(sample), content_type="application/json",
                               headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
        assert response.status_code == 200  # the sample itself is stored
        assert Trace.objects.filter(workspace=tenant.workspace).count() == 1
        fuzz_otlp_json(client, "/v1/logs", sample, tenant.key, runs=40, seed=20261206 + n)


def _steps_as_stored(workspace) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [
        (t.external_id, t.agent, t.task, t.status, [
            (s.kind, s.name, s.parent_index, s.input, s.output, s.error, s.tokens)
            for s in t.steps.order_by("index")])
        for t in Trace.objects.filter(workspace=workspace).order_by("external_id")
    ]  # fmt: skip


@pytest.mark.parametrize("logs_only", [False, True], ids=["spans+logs", "logs"])
@pytest.mark.parametrize("folder", [CURRENT, LEGACY], ids=["2.4b0", "2.3b0"])
def test_a_file_of_the_same_exports_imports_as_the_endpoints_store_them(
    client, tenant, other_tenant, tmp_path, folder, logs_only
):
    """`--format otlp-json` reads the logs lines of a Collector file export beside its
    spans: each run is what `/v1/traces` and `/v1/logs` make of the same exports,
    or of the logs alone."""
    from traces.importing import traces_import_file

    names = ["logs.jsonl"] if logs_only else ["spans.jsonl", "logs.jsonl"]
    path = tmp_path / "export.jsonl"
    path.write_text("".join((folder / name).read_text() for name in names))
    result = traces_import_file(workspace=other_tenant.workspace, fmt="otlp-json", path=path)
    assert result.ok and result.created == 2, result.error
    for name in names:
        endpoint = "/v1/logs" if name == "logs.jsonl" else "/v1/traces"
        for line in _lines(folder, name):
            assert _send(client, endpoint, line, tenant.key).status_code == 200
    by_file, by_endpoint = (
        _steps_as_stored(other_tenant.workspace),
        _steps_as_stored(tenant.workspace),
    )
    assert by_file == by_endpoint
    assert [run[2] for run in by_file] != ["", ""]  # the user's questions
    assert all(step[3] is not None for run in by_file for step in run[4] if step[0] == "llm_call")


def _split_logs(line: str, at: int) -> tuple[str, str]:
    """One logs export as two: each call's first `at` records in the first (the
    batch processor's export that closed mid-call), the rest in the second."""
    export = json.loads(line)
    later = json.loads(line)
    for resource, resource_later in zip(export["resourceLogs"], later["resourceLogs"], strict=True):
        for scope, scope_later in zip(
            resource["scopeLogs"], resource_later["scopeLogs"], strict=True
        ):
            seen: dict[str, int] = {}
            first, rest = [], []
            for record in scope["logRecords"]:
                n = seen[record["spanId"]] = seen.get(record["spanId"], 0) + 1
                (first if n <= at else rest).append(record)
            scope["logRecords"], scope_later["logRecords"] = first, rest
    return json.dumps(export), json.dumps(later)


@pytest.mark.parametrize("at", [2, 3], ids=["inputs-then-choice", "mid-inputs"])
@pytest.mark.parametrize("spans_first", [True, False], ids=["spans-first", "logs-first"])
def test_a_calls_message_events_split_across_two_exports_make_the_same_run(
    client, tenant, other_tenant, at, spans_first
):
    """One event a message (2.3b0): the batch processor may export a call's input
    messages and its choice apart (the choice is recorded when the answer comes),
    or close an export between two input messages. The run is the one a single
    export makes: no message of the first export is lost to the second."""
    for spans, logs in zip(
        _lines(LEGACY, "spans.jsonl"), _lines(LEGACY, "logs.jsonl"), strict=True
    ):
        first, second = _split_logs(logs, at)
        sends = [("/v1/logs", first), ("/v1/logs", second)]
        for path, line in (
            [("/v1/traces", spans), *sends] if spans_first else [*sends, ("/v1/traces", spans)]
        ):
            assert _send(client, path, line, tenant.key).status_code == 200
    _send_all(client, LEGACY, other_tenant.key, logs_first=not spans_first)
    got, want = _runs(tenant.workspace), _runs(other_tenant.workspace)
    for a, b in zip(got, want, strict=True):
        for x, y in zip(a[7], b[7], strict=True):
            assert x == y
        assert a[:7] == b[:7]


def test_a_split_export_sent_again_adds_no_message_even_when_it_is_redacted(client, tenant):
    """The stored messages are redacted: a retried export's messages are compared as
    they would be stored, so an address in one does not make it look new."""
    sends = []
    for spans, logs in zip(
        _lines(LEGACY, "spans.jsonl"), _lines(LEGACY, "logs.jsonl"), strict=True
    ):
        first, second = _split_logs(logs.replace("order A1: 2 items, shipped",
                                                 "order A1: shipped to ana@example.com"), 3)  # fmt: skip
        sends += [("/v1/traces", spans), ("/v1/logs", first), ("/v1/logs", second)]
    for path, line in sends:
        assert _send(client, path, line, tenant.key).status_code == 200
    before = _runs(tenant.workspace)
    assert "ana@example.com" not in json.dumps(before, default=str)
    assert "order A1: shipped to" in json.dumps(before, default=str)
    for path, line in sends[2::3]:  # each second part again
        assert _send(client, path, line, tenant.key).status_code == 200
    assert _runs(tenant.workspace) == before
