from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories
from tests.factories import trace_payload
from traces.models import Trace

pytestmark = pytest.mark.django_db


def ingest(tenant, *payloads):
    return factories.ingest(workspace=tenant.workspace, items=list(payloads))


def test_trace_list_access_owner_other_anonymous(tenant, other_tenant, anon):
    ingest(tenant, trace_payload("acme-secret-trace"))
    url = reverse("trace_list", args=[tenant.workspace.slug])
    response = tenant.client_for(tenant.viewer).get(url)
    assert response.status_code == 200 and b"acme-secret-trace" in response.content
    assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
    assert anon.get(url).status_code == 302
    own = other_tenant.client_for(other_tenant.admin).get(
        reverse("trace_list", args=[other_tenant.workspace.slug])
    )
    assert b"acme-secret-trace" not in own.content


def test_trace_detail_access_owner_other_anonymous(tenant, other_tenant, anon):
    ingest(tenant, trace_payload("t1", task="Refund the acme-only order"))
    trace = Trace.objects.get(external_id="t1")
    url = reverse("trace_detail", args=[tenant.workspace.slug, trace.pk])
    own = tenant.client_for(tenant.viewer).get(url)
    assert own.status_code == 200
    assert b"Refund the acme-only order" in own.content and b"429 Too Many Requests" in own.content
    theirs = other_tenant.client_for(other_tenant.admin).get(url)
    assert theirs.status_code == 404 and b"acme-only" not in theirs.content
    cross = reverse("trace_detail", args=[other_tenant.workspace.slug, trace.pk])
    theirs = other_tenant.client_for(other_tenant.admin).get(cross)
    assert theirs.status_code == 404 and b"acme-only" not in theirs.content
    anonymous = anon.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    # The incidents partial (owned by failures) follows the same rules.
    partial = reverse("trace_incidents", args=[tenant.workspace.slug, trace.pk])
    own = tenant.client_for(tenant.viewer).get(partial)
    assert own.status_code == 200 and b"payments.refund" in own.content
    assert other_tenant.client_for(other_tenant.admin).get(partial).status_code == 404


def test_trace_list_filters_by_status_agent_text_and_incidents(tenant):
    ingest(
        tenant,
        trace_payload("f1", agent="alpha", task="Refund order"),
        trace_payload("ok1", agent="beta", status="succeeded", task="Ship parcel", steps=[]),
    )
    client = tenant.client_for(tenant.viewer)
    url = reverse("trace_list", args=[tenant.workspace.slug])

    def ids(**params):
        html = client.get(url, params).content.decode()
        return {x for x in ("f1", "ok1") if f">{x}<" in html}

    assert ids() == {"f1", "ok1"}
    assert ids(status="failed") == {"f1"}
    assert ids(agent="beta") == {"ok1"}
    assert ids(q="parcel") == {"ok1"}
    assert ids(incidents="yes") == {"f1"}
    assert ids(incidents="no") == {"ok1"}
    assert ids(period="custom", start="2026-11-21") == set()
    assert ids(period="custom", start="2026-11-20", end="2026-11-20") == {"f1", "ok1"}


def test_htmx_filter_request_gets_only_the_results_partial(tenant):
    ingest(tenant, trace_payload("f1"))
    response = tenant.client_for(tenant.viewer).get(
        reverse("trace_list", args=[tenant.workspace.slug]),
        {"status": "failed"},
        headers={"HX-Request": "true", "HX-Target": "trace-results"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="trace-results"') and ">f1<" in html
    assert "<html" not in html


def test_trace_detail_shows_timeline_error_outcome_skills_and_redactions(tenant):
    from traces.schemas import OutcomeIn
    from traces.services import outcome_record

    ingest(
        tenant,
        trace_payload(
            "t1",
            task="Refund for jane@example.com",
            skills_in_scope=["refund-policy@2"],
            steps=[
                {"kind": "user_prompt", "input": "x" * 2000},
                {
                    "kind": "tool_call",
                    "name": "payments.refund",
                    "error": "429 Too Many Requests",
                    "tokens": 37,
                },
            ],
        ),
    )
    outcome_record(
        workspace=tenant.workspace,
        external_id="t1",
        data=OutcomeIn(
            status="failed", comment="customer angry", scores=[{"name": "csat", "value": 1}]
        ),
    )
    trace = Trace.objects.get(external_id="t1")
    html = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_detail", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    assert "Refund for [EMAIL]" in html and "jane@example.com" not in html
    assert "EMAIL × 1" in html
    assert "refund-policy@2" in html
    assert 'class="step step-agent step-error"' in html and "429 Too Many Requests" in html
    assert "Show all 2000 characters" in html  # a long input is folded to a few lines
    assert "37 tokens" in html
    assert "customer angry" in html and "csat" in html


def test_a_short_json_input_shows_whole_on_one_line_a_long_one_indented_and_folded(tenant):
    args = {"item_ids": ["1810466394"], "order_id": "#W7464385",
            "new_item_ids": ["6117189161"], "payment_method_id": "paypal_1261484"}  # fmt: skip
    rows = {"rows": [{"id": n, "name": f"product {n}", "price": n * 1.5} for n in range(40)]}
    ingest(tenant, trace_payload("json-1", steps=[
        {"kind": "tool_call", "name": "modify_pending_order_items", "input": args},
        {"kind": "tool_result", "name": "list_products", "output": rows},
    ]))  # fmt: skip
    trace = Trace.objects.get(external_id="json-1")
    html = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_detail", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    # Every argument of the call is on screen, not behind "Show all".
    one_line = (
        "{&quot;item_ids&quot;: [&quot;1810466394&quot;], &quot;order_id&quot;: "
        "&quot;#W7464385&quot;, &quot;new_item_ids&quot;: [&quot;6117189161&quot;], "
        "&quot;payment_method_id&quot;: &quot;paypal_1261484&quot;}"
    )
    assert f"<pre>{one_line}</pre>" in html
    assert html.count("fold-toggle") == 1  # only the long output folds
    assert "tokens not reported" in html and "0 tokens" not in html  # no step said
    assert "&quot;rows&quot;: [\n    {" in html  # indented, one value a line


def test_a_model_calls_messages_read_as_a_transcript_in_each_shape(tenant):
    """OpenAI's messages, GenAI's parts and Anthropic's blocks: a role a line, a tool's
    call as its name and arguments, its result after the call's id. Anything else
    (here a tool's own input) is shown as JSON."""
    genai = [
        {"role": "system", "parts": [{"type": "text", "content": "You answer questions about orders."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Where is order B2?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup_order",
                                         "arguments": {"order_id": "B2"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                    "response": "error: order not found: B2"}]},
    ]  # fmt: skip
    openai = {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_2", "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id": "B3"}'}}]}  # fmt: skip
    anthropic = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1",
                                               "content": "line one\nline two"}]},
                 {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                  {"type": "tool_use", "id": "tu_2", "name": "Bash", "input": {"command": "ls"}}]}]  # fmt: skip
    ingest(tenant, trace_payload("chat-1", steps=[
        {"kind": "llm_call", "name": "gpt", "input": genai, "output": openai},
        {"kind": "llm_call", "name": "claude", "input": anthropic},
        {"kind": "tool_call", "name": "lookup_order", "input": {"role": "admin", "order_id": "B3"}},
    ]))  # fmt: skip
    trace = Trace.objects.get(external_id="chat-1")
    html = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_detail", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    assert (
        "<pre>system: You answer questions about orders.\nuser: Where is order B2?\n"
        "assistant: → lookup_order({&quot;order_id&quot;: &quot;B2&quot;})\n"
        "tool: ← (call_1) error: order not found: B2</pre>"
    ) in html
    assert "<pre>assistant: → lookup_order({&quot;order_id&quot;: &quot;B3&quot;})</pre>" in html
    assert (
        "<pre>user: ← (tu_1) line one\n    line two\n"
        "assistant: Let me look.\n    → Bash({&quot;command&quot;: &quot;ls&quot;})</pre>"
    ) in html
    # A dict with a "role" key among others is a message only when it is one:
    # a tool's arguments that happen to name a role stay JSON.
    assert "{&quot;role&quot;: &quot;admin&quot;, &quot;order_id&quot;: &quot;B3&quot;}" in html


def test_an_error_step_leads_with_what_went_wrong_and_shows_the_rest_once(tenant):
    """AG2's terminal puts its label and the traceback's header on one line, and
    tensorflow's log before it: the step read "Error: exitcode: 1 (execution
    failed) Code output: 2024-12-19 ..." as one paragraph, the exception last."""
    log = "2024-12-19 12:37:12: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.\n"
    error = (f"exitcode: 1 (execution failed)\nCode output: {log}Traceback (most recent call last):\n"
             '  File "tmp_code.py", line 6, in <module>\n    result = image_qa(path)\n'
             "NameError: name 'Image' is not defined\n")  # fmt: skip
    ingest(tenant, trace_payload("err-1", steps=[
        # The terminal reports the text as its output too: shown there, not twice.
        {"kind": "tool_call", "name": "Computer_terminal", "input": {"code": "x"},
         "output": error, "error": error},
        # Only the error says it: shown whole under its line.
        {"kind": "tool_call", "name": "deploy", "input": {}, "error": error},
        # One line says it all: nothing more to show.
        {"kind": "tool_call", "name": "lookup", "input": {}, "error": "HTTP 404: no such order"},
        {"kind": "tool_call", "name": "find_order", "input": {}, "error": "Error: Order not found"},
    ]))  # fmt: skip
    trace = Trace.objects.get(external_id="err-1")
    html = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_detail", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    lead = "<strong>Error:</strong> NameError: name &#x27;Image&#x27; is not defined</p>"
    assert html.count(lead) == 2
    assert "<strong>Error:</strong> HTTP 404: no such order</p>" in html
    assert "<strong>Error:</strong> Order not found</p>" in html  # not "Error: Error: ..."
    assert html.count("The whole error") == 1  # the deploy step's
    assert html.count("oneDNN custom operations") == 2  # the terminal's output, deploy's error


def test_trace_content_is_escaped(tenant):
    ingest(tenant, trace_payload("xss", task="<script>alert(1)</script>"))
    trace = Trace.objects.get(external_id="xss")
    html = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_detail", args=[tenant.workspace.slug, trace.pk]))
        .content.decode()
    )
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_each_trace_list_row_shows_its_run_escaped(tenant):
    """The list's rows are rendered in Python (`trace_tags.trace_rows`): every cell as
    the template wrote it, each value escaped."""
    ok = [{"kind": "tool_call", "name": "crm.search", "input": {"q": "x"}, "tokens": 12_345,
           "started_at": "2024-03-05T10:00:00Z", "duration_ms": 61_000}]  # fmt: skip
    ingest(tenant,
           trace_payload("run-<b>-" + "x" * 40, agent="", task="<i>" + "t" * 80, reward=0.5),
           trace_payload("ok-run", status="succeeded", steps=ok, cost_usd=0.01234,
                         started_at="2024-03-05T10:00:00Z", ended_at="2024-03-05T10:01:01Z"))  # fmt: skip
    html = tenant.client_for(tenant.viewer).get(
        reverse("trace_list", args=[tenant.workspace.slug])).content.decode()  # fmt: skip
    trace = Trace.objects.get(external_id__startswith="run-")
    rows = [row.split("</tr>")[0] for row in html.split("<tr>")]
    failed = next(row for row in rows if f"/traces/{trace.pk}/" in row)
    assert f'href="/w/{tenant.workspace.slug}/traces/{trace.pk}/"' in failed
    assert '<code class="small">run-&lt;b&gt;-xxxxxxx…xxxxxxxxxxxxxx</code>' in failed
    assert "<td>—</td>" in failed  # no agent
    assert "<td>&lt;i&gt;" + "t" * 66 + "…</td>" in failed  # 70 characters
    assert (
        '<span class="badge badge-bad">Failed</span> <span class="muted small">r=0.50</span>'
        in (failed)
    )
    assert '<td><span class="badge badge-bad">1</span></td>' in failed  # one step errored
    assert '<span class="muted" title="The agent did not report a cost">—</span>' in failed
    assert 'title="2026-11-20 10:00:00">Nov 20, 10:00 UTC</td>' in failed
    succeeded = next(row for row in rows if ">ok-run</code>" in row)
    assert '<span class="badge badge-ok">Succeeded</span></td>' in succeeded
    assert '<td><span class="muted">0</span></td>' in succeeded
    assert "<td>12,345</td>" in succeeded and "<td>$0.0123</td>" in succeeded
    assert '<td class="small">1 min 1 s</td>' in succeeded
    assert 'title="2024-03-05 10:00:00">Mar 5, 2024, 10:00 UTC</td>' in succeeded
