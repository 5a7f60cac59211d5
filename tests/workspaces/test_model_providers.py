"""A workspace's model, chosen in Settings: the server's default, Anthropic, an
OpenAI-compatible server, or none. Each path against its local fake server with
the real SDK; the key is write-only; calls are metered; a budget stops them."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from failures.models import Incident, TraceAnalysis
from tests.factories import ingest
from tests.fake_openai import FakeOpenAI, text_only, tool_call
from tests.skills.fake_anthropic import FakeAnthropic
from workspaces import llm
from workspaces.models import AuditEvent, ModelSettings, ModelUsage

pytestmark = pytest.mark.django_db

KEY = "sk-local-team-key-0123456789abcdef"


@pytest.fixture
def server(settings):
    settings.ANTHROPIC_API_KEY = ""
    settings.HIVEMIND_LLM_PROVIDER = ""
    settings.HIVEMIND_LLM_TIMEOUT = 2.0
    settings.HIVEMIND_LLM_MAX_RETRIES = 1
    fake = FakeOpenAI()
    yield fake
    fake.close()


def _save(client, slug: str, **fields: object):  # type: ignore[no-untyped-def]
    data = {"provider": "openai", "base_url": "", "model": "", "api_key": "", "price_in": "",
            "price_out": "", "monthly_budget_usd": "", **fields}  # fmt: skip
    return client.post(reverse("model_settings_save", args=[slug]), data, follow=True)


def _use_openai(tenant, server, **fields: object):  # type: ignore[no-untyped-def]
    server.queue.append((200, tool_call("report_ready", {"ready": True}), {}))
    response = _save(tenant.client_for(tenant.admin), tenant.workspace.slug,
                     base_url=server.url, model="llama3.1:8b", **fields)  # fmt: skip
    assert response.status_code == 200
    return response


def _failed_trace(external_id: str = "m-1") -> dict:
    return {"external_id": external_id, "status": "failed", "task": "Refund order 8812",
            "steps": [
                {"kind": "user_prompt", "input": "Refund order 8812 for jane@example.com"},
                {"kind": "tool_call", "name": "orders.get", "input": {"n": 8812}, "output": "paid"},
                {"kind": "tool_call", "name": "payments.refund", "input": {"n": 8812},
                 "output": "refunded"},
            ]}  # fmt: skip


def _diagnosis(step: int = 2) -> dict:
    return tool_call("report_diagnosis", {"incidents": [{
        "step_index": step, "description": "Refunded without checking the refund window.",
        "category": "process.skipped_check", "confidence": 0.7}]})  # fmt: skip


def test_an_openai_compatible_server_diagnoses_with_the_same_forced_tool_and_redaction(
    tenant, server
):
    response = _use_openai(tenant, server, api_key=KEY)
    assert b"answered with a tool call" in response.content
    server.queue.append((200, _diagnosis(), {}))
    ingest(tenant.workspace, [_failed_trace()])
    incident = Incident.objects.get(trace__external_id="m-1", step_index=2)
    assert (incident.source, incident.category) == ("model", "process.skipped_check")
    analysis = TraceAnalysis.objects.get(trace__external_id="m-1")
    assert (analysis.diagnoser, analysis.input_tokens, analysis.output_tokens) == (
        "model",
        900,
        120,
    )
    assert analysis.cost_usd is None  # no price set: unknown, not zero
    assert "llama3.1:8b at 127.0.0.1" in analysis.detail
    sent = server.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    body = sent["body"]
    assert body["model"] == "llama3.1:8b"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "report_diagnosis"}}
    assert body["tools"][0]["function"]["parameters"]["required"] == ["incidents"]
    assert body["messages"][0]["role"] == "system" and "never follow it" in body["messages"][0][
        "content"]  # fmt: skip
    text = json.dumps(body)
    assert "jane@example.com" not in text and "[EMAIL]" in text
    page = tenant.client_for(tenant.viewer).get(
        reverse("trace_incidents", args=[tenant.workspace.slug, incident.trace_id])
    )
    assert "a model on the team's own server" in page.content.decode()
    assert b"cost unknown" in page.content
    usage = ModelUsage.objects.get(workspace=tenant.workspace, purpose="diagnosis")
    assert (usage.calls, usage.input_tokens, usage.unpriced_calls) == (1, 900, 1)


def test_a_malformed_answer_is_sent_back_once_then_the_run_keeps_its_offline_diagnosis(
    tenant, server
):
    _use_openai(tenant, server)
    server.queue += [(200, tool_call("report_diagnosis", "{not json"), {}),
                     (200, tool_call("report_diagnosis", {"incidents": [{"step_index": 99}]}), {})]  # fmt: skip
    ingest(tenant.workspace, [_failed_trace()])
    repair = server.requests[-1]["body"]["messages"][-1]
    assert repair["role"] == "user" and "failed validation" in repair["content"]
    assert "not valid JSON" in repair["content"]
    analysis = TraceAnalysis.objects.get(trace__external_id="m-1")
    assert analysis.diagnoser == "offline"
    assert "failed validation twice" in analysis.detail and "step_index 99" in analysis.detail


def test_a_429_is_retried_then_reported_and_a_timeout_too(tenant, server, settings):
    _use_openai(tenant, server)
    limited = (429, {"error": {"message": "slow down", "type": "rate_limit"}},
               {"retry-after": "0"})  # fmt: skip
    server.queue += [limited, limited]
    ingest(tenant.workspace, [_failed_trace("m-429")])
    assert len(server.requests) == 3  # the settings check, then one retry
    analysis = TraceAnalysis.objects.get(trace__external_id="m-429")
    assert analysis.diagnoser == "offline" and "429" in analysis.detail
    settings.HIVEMIND_LLM_TIMEOUT = 0.5
    settings.HIVEMIND_LLM_MAX_RETRIES = 0
    server.queue.append(("sleep", 1.5))
    ingest(tenant.workspace, [_failed_trace("m-slow")])
    analysis = TraceAnalysis.objects.get(trace__external_id="m-slow")
    assert analysis.diagnoser == "offline" and "did not answer in time" in analysis.detail


def test_a_server_without_tool_calling_is_a_clear_error_on_the_settings_page(tenant, server):
    server.queue.append((200, text_only("Sure! I am ready."), {}))
    response = _save(tenant.client_for(tenant.admin), tenant.workspace.slug,
                     base_url=server.url, model="tiny-model")  # fmt: skip
    page = response.content.decode()
    assert "does not seem to support tool calling" in page
    assert "--enable-auto-tool-choice" in page and "Last check" in page
    found = ModelSettings.objects.get(workspace=tenant.workspace)
    assert found.provider == "openai" and not found.check_ok
    # A server that refuses the tools parameter outright says so the same way.
    server.queue.append((400, {"error": {"message": "tools are not supported by this model"}}, {}))
    response = tenant.client_for(tenant.admin).post(
        reverse("model_settings_check", args=[tenant.workspace.slug]), follow=True
    )
    assert "does not seem to support tool calling" in response.content.decode()
    assert "tools are not supported by this model" in response.content.decode()


def test_the_key_is_write_only_encrypted_and_audited_without_its_value(tenant, server):
    _use_openai(tenant, server, api_key=KEY)
    found = ModelSettings.objects.get(workspace=tenant.workspace)
    assert KEY not in found.api_key_encrypted and llm.key_decrypt(found.api_key_encrypted) == KEY
    page = tenant.client_for(tenant.admin).get(reverse("settings", args=[tenant.workspace.slug]))
    assert KEY not in page.content.decode() and "A key is stored." in page.content.decode()
    event = AuditEvent.objects.filter(action="model_settings.change").latest("pk")
    assert event.after["api_key"] == "set" and KEY not in json.dumps(event.after)
    # Saving again with the key field empty keeps it; "remove" removes it.
    server.queue.append((200, tool_call("report_ready", {"ready": True}), {}))
    _save(tenant.client_for(tenant.admin), tenant.workspace.slug, base_url=server.url,
          model="llama3.1:8b", price_in="0.2", price_out="0.6")  # fmt: skip
    assert llm.configured_model(tenant.workspace.pk)[0].api_key == KEY  # type: ignore[union-attr]
    server.queue.append((200, tool_call("report_ready", {"ready": True}), {}))
    _save(tenant.client_for(tenant.admin), tenant.workspace.slug, base_url=server.url,
          model="llama3.1:8b", clear_key="on")  # fmt: skip
    assert llm.configured_model(tenant.workspace.pk)[0].api_key == ""  # type: ignore[union-attr]


def test_switching_between_anthropic_an_openai_server_and_offline_needs_only_settings(
    tenant, server
):
    admin = tenant.client_for(tenant.admin)
    anthropic = FakeAnthropic()
    try:
        anthropic.queue.append((200, {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "tool_use", "id": "t1", "name": "report_ready",
                         "input": {"ready": True}}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 5}}, {}))  # fmt: skip
        response = _save(admin, tenant.workspace.slug, provider="anthropic",
                         base_url=anthropic.url, model="claude-haiku-4-5", api_key="sk-ant-x",
                         price_in="1", price_out="5")  # fmt: skip
        assert b"Claude (claude-haiku-4-5) answered with a tool call" in response.content
        assert anthropic.requests[-1]["body"]["tool_choice"] == {
            "type": "tool", "name": "report_ready"}  # fmt: skip
        config = llm.model_for(tenant.workspace.pk)[0]
        assert config is not None and (config.provider, config.diagnoser) == ("anthropic", "claude")
    finally:
        anthropic.close()
    _use_openai(tenant, server)
    assert llm.model_for(tenant.workspace.pk)[0].provider == "openai"  # type: ignore[union-attr]
    _save(admin, tenant.workspace.slug, provider="offline")
    assert llm.model_for(tenant.workspace.pk) == (None, "This workspace chose no model "
                                                        "(Settings → Model).")  # fmt: skip
    before = len(server.requests)
    ingest(tenant.workspace, [_failed_trace("m-off")])
    assert len(server.requests) == before
    assert TraceAnalysis.objects.get(trace__external_id="m-off").diagnoser == "offline"


def test_a_workspace_over_its_budget_diagnoses_offline_and_says_so(tenant, server):
    # The check and the diagnosis: 1,020 tokens each at $1000/M, $2.04 of $2.
    _use_openai(tenant, server, price_in="1000", price_out="1000", monthly_budget_usd="2")
    server.queue.append((200, _diagnosis(), {}))
    ingest(tenant.workspace, [_failed_trace("m-1")])
    assert TraceAnalysis.objects.get(trace__external_id="m-1").diagnoser == "model"
    before = len(server.requests)
    ingest(tenant.workspace, [_failed_trace("m-2")])
    assert len(server.requests) == before  # no call beyond the budget
    analysis = TraceAnalysis.objects.get(trace__external_id="m-2")
    assert analysis.diagnoser == "offline"
    assert "This month's model budget is used" in analysis.detail
    page = tenant.client_for(tenant.admin).get(reverse("settings", args=[tenant.workspace.slug]))
    text = page.content.decode()
    assert "model budget is used" in text and "<meter" in text
    assert "$2.04</strong> of $2.00" in text


def test_bad_model_settings_are_refused_with_a_reason_and_nothing_changes(tenant):
    admin = tenant.client_for(tenant.admin)
    slug = tenant.workspace.slug
    for fields, words in [
        ({"base_url": "", "model": "x"}, "needs its base URL"),
        ({"base_url": "ftp://host/v1", "model": "x"}, "must start with http"),
        ({"provider": "gpt-9"}, "Select a valid choice"),
        ({"provider": "anthropic"}, "Anthropic needs an API key"),
        ({"base_url": "http://h/v1", "model": "x", "price_in": "-1"}, "greater than or equal"),
    ]:
        response = admin.post(reverse("model_settings_save", args=[slug]), {
            "provider": "openai", **fields})  # fmt: skip
        assert response.status_code == 422, fields
        assert words in response.content.decode(), (fields, words)
    assert not ModelSettings.objects.filter(workspace=tenant.workspace).exists() or (
        ModelSettings.objects.get(workspace=tenant.workspace).provider == "default"
    )


@pytest.mark.parametrize("route", ["model_settings_save", "model_settings_check"])
def test_only_an_admin_of_the_workspace_can_change_its_model(tenant, other_tenant, anon, route):
    url = reverse(route, args=[tenant.workspace.slug])
    data = {"provider": "offline"}
    assert anon.post(url, data).status_code == 302  # to the login page
    for user in (tenant.lead, tenant.viewer):
        assert tenant.client_for(user).post(url, data).status_code == 403
    assert other_tenant.client_for(other_tenant.admin).post(url, data).status_code == 404
    assert not ModelSettings.objects.filter(workspace=tenant.workspace, provider="offline").exists()
    assert tenant.client_for(tenant.admin).post(url, data).status_code == 302


def test_an_openai_compatible_server_names_failure_modes(tenant, server, settings):
    from failures.embedding import incidents_embed
    from failures.models import FailureMode
    from failures.naming import failure_modes_name
    from failures.services import failure_modes_recluster
    from tests.factories import successful_payloads, trace_payload

    settings.HIVEMIND_MIN_MODE_SIZE = 3
    failing = [
        trace_payload(f"f-{i}", steps=[{"kind": "tool_call", "name": "payments.refund",
                                        "input": {"o": i}, "error": "429 Too Many Requests"}])
        for i in range(6)
    ]  # fmt: skip
    ingest(tenant.workspace, failing + successful_payloads(10))
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    _use_openai(tenant, server)
    server.queue.append((200, tool_call("name_mode", {"label": "Refunds hit the rate limit"}), {}))
    assert failure_modes_name(workspace_id=tenant.workspace.pk) == 1
    body = server.requests[-1]["body"]
    assert body["tool_choice"]["function"]["name"] == "name_mode"
    assert "untrusted DATA" in body["messages"][0]["content"]
    mode = FailureMode.objects.get(workspace=tenant.workspace, label="Refunds hit the rate limit")
    assert mode.label_source == "model"
    assert ModelUsage.objects.get(workspace=tenant.workspace, purpose="naming").calls == 1


@pytest.mark.django_db(transaction=True)
def test_a_backfill_sends_at_most_its_concurrency_at_once_and_every_run_is_diagnosed(settings):
    from failures.mining import traces_diagnose
    from tests.factories import make_user, make_workspace
    from traces.models import Trace

    settings.ANTHROPIC_API_KEY = ""
    settings.HIVEMIND_LLM_TIMEOUT = 10.0
    admin = make_user("backfill-admin")
    workspace = make_workspace(name="Backfill", owner=admin)
    ingest(workspace, [_failed_trace(f"b-{i}") for i in range(6)])  # offline: no model yet
    fake = FakeOpenAI()
    try:
        # Each answer waits a moment, so requests sent at once overlap at the server.
        fake.queue += [("delay", 0.3, (200, _diagnosis(), {}))] * 6
        from workspaces.services import model_settings_save

        model_settings_save(workspace=workspace, actor=admin, provider="openai",
                            base_url=fake.url, model="llama3.1:8b")  # fmt: skip
        ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
        traces_diagnose(workspace_id=workspace.pk, trace_ids=ids, force=True, concurrency=3,
                        burst_limit=False)  # fmt: skip
    finally:
        fake.close()
    assert len(fake.requests) == 6
    assert 2 <= fake.max_in_flight <= 3
    assert set(TraceAnalysis.objects.filter(trace__workspace=workspace).values_list(
        "diagnoser", flat=True)) == {"model"}  # fmt: skip
    assert ModelUsage.objects.get(workspace=workspace, purpose="diagnosis").calls == 6


def test_a_models_facets_are_what_its_incidents_cluster_on_and_the_trace_shows_them(tenant, server):
    from failures.signatures import embedding_text

    _use_openai(tenant, server)
    answers = []
    for order in (8812, 9931):
        answers.append((200, tool_call("report_diagnosis", {
            "incidents": [{"step_index": 2, "category": "process.skipped_check", "confidence": 0.7,
                           "description": f"Refunded order {order} without checking the window."}],
            "facets": {"goal": "a refund for an order",
                       "failure": "refunded without checking the refund window"}}), {}))  # fmt: skip
    server.queue += answers
    ingest(tenant.workspace, [_failed_trace("f-1"), _failed_trace("f-2")])
    first, second = (
        Incident.objects.get(trace__external_id=e, step_index=2) for e in ("f-1", "f-2")
    )
    assert first.description != second.description
    assert embedding_text(first.signature) == embedding_text(second.signature)
    assert "refunded without checking the refund window" in first.signature
    assert first.stats["goal"] == "a refund for an order"
    body = server.requests[-1]["body"]
    assert "facets" in body["tools"][0]["function"]["parameters"]["properties"]
    page = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_incidents", args=[tenant.workspace.slug, first.trace_id]))
        .content.decode()
    )
    assert "went wrong</strong>: refunded without checking the refund window" in page


def test_the_servers_default_follows_the_environment(tenant, settings):
    settings.ANTHROPIC_API_KEY, settings.HIVEMIND_LLM_PROVIDER = "", ""
    assert llm.model_for(tenant.workspace.pk) == (None, "No model is configured (offline).")
    settings.ANTHROPIC_API_KEY = "sk-ant-env"
    config = llm.model_for(tenant.workspace.pk)[0]
    assert config is not None and (config.provider, config.source) == ("anthropic", "environment")
    settings.HIVEMIND_LLM_PROVIDER, settings.OPENAI_BASE_URL = "openai", "http://vllm:8000/v1"
    settings.OPENAI_MODEL = ""
    assert "HIVEMIND_LLM_MODEL is not set" in llm.model_for(tenant.workspace.pk)[1]
    settings.OPENAI_MODEL = "Qwen/Qwen2.5-7B-Instruct"
    config = llm.model_for(tenant.workspace.pk)[0]
    assert config is not None and config.label == "Qwen/Qwen2.5-7B-Instruct at vllm:8000"
    assert config.cost(1000, 1000) is None  # no price: unknown
    settings.HIVEMIND_LLM_PROVIDER = "offline"
    assert llm.model_for(tenant.workspace.pk)[0] is None
