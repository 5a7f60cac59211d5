"""Tool calls a run recorded only in its model calls (an application instrumented at
its model client alone): the diagnosis, the same-task comparison and the review
page read them as calls, at the model call that asked for each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from failures.compare import run_comparison
from failures.diagnosis.facts import StepView, trace_facts
from failures.diagnosis.model_calls import sent_since_previous, with_model_calls, with_user_turns
from failures.models import Incident
from failures.selectors import run_calls
from tests.factories import ingest, trace_payload
from traces.importing import traces_import_file
from traces.models import Trace

LOGS = Path(__file__).resolve().parent.parent / "traces" / "real_logs"
TASK = "Where is order B2?"


def _asked(call_id: str, name: str, arguments: dict) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [{
        "id": call_id, "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)}}]}  # fmt: skip


def _model_steps(calls: list[tuple[str, dict, str]], answer: str = "Done.") -> list[dict]:
    """A loop over the OpenAI SDK as its model client's instrumentation records it:
    each model call sent the conversation so far, answering with one tool call; the
    last one answering in words."""
    history: list[dict] = [{"role": "user", "content": TASK}]
    steps = []
    for number, (name, arguments, result) in enumerate(calls):
        said = _asked(f"call_{number}", name, arguments)
        steps.append({"kind": "llm_call", "name": "gpt", "input": list(history), "output": said})
        history += [said, {"role": "tool", "tool_call_id": f"call_{number}", "content": result}]
    final = {"role": "assistant", "content": answer}
    steps.append({"kind": "llm_call", "name": "gpt", "input": list(history), "output": final})
    return steps


def _views(steps: list[dict]) -> list[StepView]:
    return [StepView(s.get("index", i), s["kind"], s.get("name", ""), s.get("input"),
                     s.get("output"), s.get("error", "")) for i, s in enumerate(steps)]  # fmt: skip


def test_calls_asked_for_in_model_answers_are_calls_at_the_model_call_with_their_results():
    steps = _model_steps([("lookup_order", {"order_id": "B2"}, "Error: order not found: B2"),
                          ("refund", {"order_id": "B2", "amount": 5}, '{"ok": true}')])  # fmt: skip
    views = with_model_calls(_views(steps))
    calls = [(v.index, v.name, v.input, v.output, v.error) for v in views if v.kind == "tool_call"]
    assert calls == [
        (0, "lookup_order", {"order_id": "B2"}, "Error: order not found: B2",
         "Error: order not found: B2"),
        (1, "refund", {"order_id": "B2", "amount": 5}, '{"ok": true}', ""),
    ]  # fmt: skip
    facts = trace_facts(views)
    assert facts.tools == ["lookup_order", "refund"]
    assert [(e.step, e.tool) for e in facts.errors] == [(0, "lookup_order")]
    # Before: a run with no tool step made no call.
    assert trace_facts(_views(steps)).tools == []


def test_anthropic_blocks_and_results_naming_no_call_are_read():
    """Claude's answer as content blocks, the result in the next user turn's
    `tool_result` block; a result that names no call answers the oldest waiting."""
    use = {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"order_id": "A1"}}]}  # fmt: skip
    back = {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"}]}  # fmt: skip
    steps = [
        {"kind": "llm_call", "input": [{"role": "user", "content": "Where is A1?"}], "output": use},
        {"kind": "llm_call", "input": [{"role": "user", "content": "Where is A1?"}, use, back],
         "output": _asked("", "notify", {"to": "me"})},
        {"kind": "llm_call", "input": [{"role": "tool", "content": "sent"}], "output": "Shipped."},
    ]  # fmt: skip
    calls = [(v.index, v.name, v.output) for v in with_model_calls(_views(steps))
             if v.kind == "tool_call"]  # fmt: skip
    assert calls == [(0, "lookup_order", "shipped"), (1, "notify", "sent")]


def test_a_result_sent_flagged_as_an_error_is_a_failed_call_whatever_its_text():
    """Anthropic's `tool_result` with `is_error` (as OpenInference's Anthropic
    instrumentation records what was sent) and Bedrock's `toolResult` with
    `status: error`: the call failed, though its text names no error."""
    use = {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"order_id": "B2"}}]}  # fmt: skip
    back = {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "No such order.", "is_error": True}]}  # fmt: skip
    bedrock_use = {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t2", "name": "refund", "input": {"order_id": "B2"}}}]}  # fmt: skip
    bedrock_back = {"role": "user", "content": [
        {"toolResult": {"toolUseId": "t2", "content": [{"text": "Refunds are closed."}], "status": "error"}}]}  # fmt: skip
    first = [{"role": "user", "content": TASK}]
    steps = [
        {"kind": "llm_call", "input": first, "output": use},
        {"kind": "llm_call", "input": [*first, use, back], "output": bedrock_use},
        {"kind": "llm_call", "input": [*first, use, back, bedrock_use, bedrock_back],
         "output": "I could not find it."},
    ]  # fmt: skip
    calls = [(v.name, v.error) for v in with_model_calls(_views(steps)) if v.kind == "tool_call"]
    assert calls == [("lookup_order", "No such order."), ("refund", "Refunds are closed.")]
    back["content"][0].pop("is_error")
    calls = [(v.name, v.error) for v in with_model_calls(_views(steps)) if v.kind == "tool_call"]
    assert calls[0] == ("lookup_order", "")  # unflagged, its text names no error


def test_a_run_with_tool_steps_is_read_as_stored():
    """Frameworks that record tool steps record the same calls in their model
    answers: they are not counted twice. A simulated user's calls are not the
    agent's, and a model answer cut short is no call."""
    steps = _model_steps([("lookup_order", {"order_id": "B2"}, "shipped")])
    tool = {"kind": "tool_call", "name": "lookup_order", "input": {"order_id": "B2"}}
    with_tool = _views([*steps, tool])
    assert with_model_calls(with_tool) is with_tool
    user = _views([{"kind": "tool_call", "name": "user.toggle_airplane_mode"}, *steps])
    assert [v.name for v in with_model_calls(user) if v.kind == "tool_call"] == [
        "user.toggle_airplane_mode", "lookup_order"]  # fmt: skip
    cut = json.dumps(steps[0]["output"])[:60]
    assert [v.kind for v in with_model_calls(_views([{**steps[0], "output": cut}]))] == ["llm_call"]


def test_a_tool_step_that_recorded_no_arguments_gets_those_the_model_asked_for():
    """An application's own span around each tool run, carrying nothing: each gets
    the arguments of the oldest call of its tool the model asked for, and its
    result when it recorded none. Before, two lookups of different orders were
    one call made twice."""
    steps = _model_steps([("lookup_order", {"order_id": "A1"}, "shipped"),
                          ("lookup_order", {"order_id": "B2"}, "Error: not found")])  # fmt: skip
    run = [steps[0], {"kind": "tool_call", "name": "lookup_order", "error": ""}, steps[1],
           {"kind": "tool_call", "name": "lookup_order", "error": "ValueError: not found"},
           {"kind": "tool_call", "name": "notify", "input": {"to": "me"}}, steps[2]]  # fmt: skip
    views = with_model_calls(_views(run))
    calls = [(v.index, v.input, v.output, v.error) for v in views if v.kind == "tool_call"]
    assert calls == [(1, {"order_id": "A1"}, "shipped", ""),
                     (3, {"order_id": "B2"}, "Error: not found", "ValueError: not found"),
                     (4, {"to": "me"}, None, "")]  # fmt: skip
    assert trace_facts(views).repeats == []
    assert [t.name for t, _ in trace_facts(_views(run)).repeats] == ["lookup_order"]


def test_a_model_diagnosis_is_shown_what_each_model_call_was_sent_new():
    """Each model call was sent the whole conversation: the model diagnoser's prompt
    shows, for each, the messages new to it (the tool result it was sent), not the
    conversation from the top again, cut before its end."""
    from failures.diagnosis.claude import build_prompt

    policy = {"role": "system", "content": "Policy: " + "refunds need a receipt. " * 200}
    steps = _model_steps([("lookup_order", {"order_id": "B2"}, "Error: order not found: B2")])
    for step in steps:
        step["input"] = [policy, *step["input"]]
    prompt = build_prompt(TASK, _views(steps), [])
    assert "Error: order not found: B2" in prompt
    assert prompt.count("Policy: refunds") == 1
    # The request a user step shows is not repeated in the call it was sent to; a
    # message given as content blocks is kept as it is.
    blocks = {"role": "user", "content": [{"type": "text", "text": TASK}]}
    shown = sent_since_previous(_views([
        {"kind": "user_prompt", "input": TASK},
        {"kind": "llm_call", "input": [{"role": "user", "content": TASK}, blocks], "output": "ok"},
    ]))  # fmt: skip
    assert shown[1].input == [blocks]
    # Before: the second call's input was its whole history, cut in the policy.
    whole = "\n".join(json.dumps(s["input"])[:2000] for s in steps)
    assert "Error: order not found" not in whole


def test_the_users_turns_sent_to_model_calls_are_its_turns():
    """With no user step, the user's turns are the user messages each model call was
    sent first: an objection after a call is read as one (before, such a run had no
    user turn at all). A history that is trimmed, not grown, adds no turn twice."""
    said = _asked("call_0", "cancel_order", {"order_id": "B2"})
    history = [{"role": "user", "content": TASK}]
    steps = [
        {"kind": "llm_call", "input": list(history), "output": said},
        {"kind": "llm_call", "input": [*history, said,
                                       {"role": "tool", "tool_call_id": "call_0", "content": "ok"}],
         "output": {"role": "assistant", "content": "Cancelled."}},
        {"kind": "llm_call", "input": [*history, said,
                                       {"role": "tool", "tool_call_id": "call_0", "content": "ok"},
                                       {"role": "assistant", "content": "Cancelled."},
                                       {"role": "user", "content": "No, that's not what I asked."}],
         "output": {"role": "assistant", "content": "Sorry."}},
        {"kind": "llm_call", "input": [{"role": "user", "content": "No, that's not what I asked."}],
         "output": {"role": "assistant", "content": "Sorry again."}},
    ]  # fmt: skip
    views = with_model_calls(with_user_turns(_views(steps)))
    turns = [(v.index, v.input) for v in views if v.kind == "user_prompt"]
    assert turns == [(0, TASK), (2, "No, that's not what I asked.")]
    facts = trace_facts(views)
    assert facts.user_turns == 2 and "site:conversation" in facts.signals
    assert [(step, after.name) for step, _, after in facts.objections] == [(2, "cancel_order")]
    assert trace_facts(with_model_calls(_views(steps))).objections == []
    # A run that recorded its user's turns keeps them as they are.
    with_user = _views([{"kind": "user_prompt", "input": TASK}, *steps])
    assert with_user_turns(with_user) is with_user


@pytest.mark.django_db
def test_a_failed_run_recorded_only_in_model_calls_is_compared_with_the_tasks_successes(tenant):
    """Before, no call was read from such runs: the failed run got no incident, and
    the review page's successful run "made no tool calls"."""
    read = ("get_order", {"order_id": "B2"}, '{"status": "pending"}')
    ok = [trace_payload(f"ok-{i}", task=TASK, status="succeeded", steps=_model_steps(
        [read, ("modify_order", {"order_id": "B2", "item": "blue"}, '{"ok": true}')]))
        for i in range(3)]  # fmt: skip
    bad = trace_payload("bad", task=TASK, status="failed", steps=_model_steps(
        [read, ("cancel_order", {"order_id": "B2"}, '{"ok": true}')]))  # fmt: skip
    ingest(tenant.workspace, [*ok, bad])
    incident = Incident.objects.get(trace__external_id="bad")
    assert (incident.step_index, incident.tool) == (1, "cancel_order")
    assert "none of the 3 successful runs" in incident.description
    failed = Trace.objects.get(workspace=tenant.workspace, external_id="bad")
    comparison = run_comparison(workspace=tenant.workspace, trace=failed)
    assert comparison is not None
    shown = [(r.kind, r.failed and r.failed.name, r.success and r.success.name)
             for r in comparison.rows]  # fmt: skip
    assert shown == [("same", "get_order", "get_order"), ("pair", "cancel_order", "modify_order")]
    assert comparison.from_model_calls == ["failed", "successful"]
    page = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/traces/{failed.pk}/compare/"
    )
    assert page.status_code == 200
    assert "The failed and the successful runs recorded no tool steps" in page.content.decode()
    # A run with tool steps says nothing of the kind.
    ingest(tenant.workspace, [trace_payload("bad-steps", task=TASK, status="failed", steps=[
        {"kind": "tool_call", "name": "cancel_order", "input": {"order_id": "B2"}}])])  # fmt: skip
    mixed = run_comparison(workspace=tenant.workspace,
                           trace=Trace.objects.get(external_id="bad-steps"))  # fmt: skip
    assert mixed is not None and mixed.from_model_calls == ["successful"]


@pytest.mark.django_db
def test_openllmetry_model_calls_without_the_applications_tool_spans(
    tenant, other_tenant, tmp_path
):
    """OpenLLMetry's spans of a hand-written loop over the OpenAI SDK, the
    application's own tool spans left out (an application that traces its model
    client and its request, not its tools): the calls read from the model calls
    are the calls its tool spans record; in both, each has the arguments the model
    gave (the application's spans carry none)."""
    source = LOGS / "openllmetry-openai-0.62.4" / "spans.jsonl"
    lines = []
    for line in source.read_text().splitlines():
        export = json.loads(line)
        for resource in export["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                scope["spans"] = [s for s in scope["spans"] if s["name"] != "lookup_order"]
        lines.append(json.dumps(export))
    bare = tmp_path / "spans.jsonl"
    bare.write_text("\n".join(lines) + "\n")
    for workspace, path in ((tenant.workspace, source), (other_tenant.workspace, bare)):
        result = traces_import_file(workspace=workspace, fmt="otlp-json", path=path)
        assert result.ok and result.created == 2, result.error

    def calls(workspace) -> dict[str, list[tuple[str, object]]]:  # type: ignore[no-untyped-def]
        runs = {t.pk: t.task for t in Trace.objects.filter(workspace=workspace)}
        return {runs[pk]: [(c.name, c.input) for c in found]
                for pk, found in run_calls(workspace_id=workspace.pk, trace_ids=list(runs)).items()}  # fmt: skip

    assert not Trace.objects.filter(workspace=other_tenant.workspace, steps__kind="tool_call")
    # The application's tool spans carry no arguments: the model's are read for them.
    assert set(Trace.objects.filter(workspace=tenant.workspace, steps__kind="tool_call")
               .values_list("steps__input", flat=True)) == {None}  # fmt: skip
    # Another workspace's runs are not read.
    theirs = list(Trace.objects.filter(workspace=tenant.workspace).values_list("pk", flat=True))
    assert run_calls(workspace_id=other_tenant.workspace.pk, trace_ids=theirs) == {}
    assert (
        calls(tenant.workspace)
        == calls(other_tenant.workspace)
        == {
            TASK: [("lookup_order", {"order_id": "B2"})],
            "Where is order A1?": [("lookup_order", {"order_id": "A1"})],
        }
    )
    failed = Trace.objects.get(workspace=other_tenant.workspace, task=TASK)
    first_model_call = failed.steps.filter(kind="llm_call").order_by("index").first()
    derived = with_model_calls(_views(list(failed.steps.order_by("index").values(
        "index", "kind", "name", "input", "output", "error"))))  # fmt: skip
    call = next(v for v in derived if v.kind == "tool_call")
    assert first_model_call is not None and call.index == first_model_call.index
    # What the application sent the model back is the call's result, read as a failure.
    assert call.output == call.error == "error: order not found: B2"


def test_a_role_that_is_a_list_is_no_answer_and_raises_nothing():
    """A model call's conversation may hold any JSON: a role that was a list raised
    TypeError (unhashable) in the model diagnosis and the policy checks, which read
    what each call was sent anew."""
    first = [{"role": "user", "content": TASK}]
    shown = sent_since_previous(_views([
        {"kind": "llm_call", "input": first, "output": "ok"},
        {"kind": "llm_call", "input": [*first, {"role": ["assistant"]}, {"role": {}}], "output": ""},
    ]))  # fmt: skip
    assert shown[1].input == [{"role": ["assistant"]}, {"role": {}}]


def _any_steps():  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    from tests.traces.test_openai_chat import JSON

    step = st.fixed_dictionaries({
        "kind": st.sampled_from(["llm_call", "tool_call", "user_prompt", "assistant_message",
                                 "tool_result", "error", "span"]),
        "name": st.sampled_from(["", "lookup", "refund", "bash"]),
        "input": JSON, "output": JSON,
        "error": st.sampled_from(["", "HTTP 500", "Traceback: ValueError: x"]),
    })  # fmt: skip
    return st.lists(step, max_size=6)


def test_any_recorded_steps_are_read_by_the_diagnosis_without_an_error():
    """Whatever a run recorded in its steps (any JSON, as the API stores it): the
    offline facts, the model calls' views and the model's prompt are built, never an
    exception (a role or a message type that was a list raised TypeError, and the
    diagnosis of the run's whole batch failed)."""
    from hypothesis import HealthCheck, example, given, settings

    from failures.diagnosis.claude import build_prompt
    from failures.diagnosis.facts import trace_facts

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(_any_steps())
    @example([{"kind": "llm_call", "input": [{"role": "user", "content": "hi"}], "output": ""},
              {"kind": "llm_call", "input": [{"role": "user", "content": "hi"}, {"role": []}],
               "output": {"choices": [{"message": {"role": [], "content": "x"}}]}},
              {"kind": "llm_call", "input": [{"type": [], "data": {}}], "output": ""}])  # fmt: skip
    def check(steps: list[dict]) -> None:
        views = _views(steps)
        trace_facts(with_model_calls(with_user_turns(views)))
        sent_since_previous(views)
        assert isinstance(build_prompt(TASK, views, []), str)

    check()
