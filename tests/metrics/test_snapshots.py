"""Training snapshots: filter, de-duplication, split, SFT chat JSONL, DPO pairs,
immutability, the API, the page and the command, and who may do what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse

from failures.models import FailureMode, Incident
from metrics.models import Snapshot
from metrics.snapshots import SnapshotFilter, snapshot_create
from tests.factories import ingest, make_key
from traces.importing import traces_import_file
from traces.models import Trace
from workspaces.models import AuditEvent, Scope


def _trace(external_id, *, task="Refund order 12", status="succeeded", reward=None,
           agent="bot", skills=(), tool_error=""):  # fmt: skip
    steps = [
        {"kind": "user_prompt", "input": task},
        {"kind": "tool_call", "name": "stripe.refund", "input": {"order": 12},
         "output": None if tool_error else {"ok": True}, "error": tool_error},
        {"kind": "assistant_message", "output": "Done." if status == "succeeded" else "Failed."},
    ]  # fmt: skip
    return {"external_id": external_id, "agent": agent, "task": task, "status": status,
            "reward": reward, "skills_in_scope": list(skills), "steps": steps}  # fmt: skip


@pytest.fixture
def corpus(tenant):
    items = [
        _trace("ok-1"),
        _trace("ok-dup"),  # same task, same steps as ok-1: dropped as a duplicate
        _trace("ok-2", task="Refund order 99", skills=["retry-refunds@2"]),
        _trace("bad-1", status="failed", tool_error="429 rate limited"),
        # Another order is another task: its refund is no answer to this one.
        _trace("bad-other-order", task="Refund order 77", status="failed", tool_error="boom"),
        _trace("rewarded", task="Write a summary", reward=0.9, agent="writer"),
        _trace("low-reward", task="Write a summary", reward=-0.5, agent="writer"),
    ]
    ingest(workspace=tenant.workspace, items=items)
    return tenant


def _lines(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.django_db
def test_snapshot_dedups_splits_and_writes_sft_and_dpo(corpus):
    snapshot = snapshot_create(workspace=corpus.workspace, filters=SnapshotFilter(min_reward=0),
                               actor=corpus.lead)  # fmt: skip
    counts = snapshot.counts
    assert counts["matched"] == 7 and counts["duplicates_removed"] == 1
    sft = _lines(snapshot.sft_train) + _lines(snapshot.sft_heldout)
    assert counts["sft_train"] + counts["sft_heldout"] == len(sft) == 3  # ok-1, ok-2, rewarded
    example = next(e for e in sft if e["metadata"]["trace"] == "ok-1")
    roles = [m["role"] for m in example["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert example["messages"][1]["tool_calls"][0]["function"]["name"] == "stripe.refund"
    pairs = _lines(snapshot.dpo_pairs)
    # A failed attempt at the same task pairs with a good one, the writer's low reward
    # with its good one; "Refund order 77" has no partner (order 12 is another task).
    assert {(p["metadata"]["rejected_trace"], p["metadata"]["chosen_trace"]) for p in pairs} == {
        ("bad-1", "ok-1"), ("low-reward", "rewarded")}  # fmt: skip
    assert pairs[0]["prompt"] == [{"role": "user", "content": "Refund order 12"}]
    assert counts["failed_unpaired"] == 1
    assert AuditEvent.objects.filter(action="snapshot.create").exists()
    # The page says why a failed run made no pair (Who&When's 126 failed runs made 0).
    page = corpus.client_for(corpus.viewer).get(
        reverse("snapshot_list", kwargs={"slug": corpus.workspace.slug})
    )
    said = "1 run at or below reward 0 not paired: no run of the same task above it"
    assert said in page.content.decode()
    assert snapshot.filters["min_reward"] == 0
    again = snapshot_create(workspace=corpus.workspace, filters=SnapshotFilter(), actor=corpus.lead)
    assert again.version == snapshot.version + 1
    unpaired = again.counts["failed_unpaired"]
    assert "min_reward" not in again.filters and unpaired >= 1
    page = corpus.client_for(corpus.viewer).get(
        reverse("snapshot_list", kwargs={"slug": corpus.workspace.slug})
    )
    said = f"{unpaired} failed run{'s' if unpaired != 1 else ''} not paired: no successful run"
    assert said in page.content.decode()


@pytest.mark.django_db
def test_snapshot_filters_by_agent_skill_and_failure_mode(corpus):
    ws = corpus.workspace
    by_agent = snapshot_create(workspace=ws, filters=SnapshotFilter(agent="writer"), actor=None)
    assert by_agent.counts["matched"] == 2
    by_skill = snapshot_create(workspace=ws, filters=SnapshotFilter(skill="retry-refunds"),
                               actor=None)  # fmt: skip
    assert by_skill.counts["matched"] == 1
    assert snapshot_create(workspace=ws, filters=SnapshotFilter(skill="retry-refunds@1"),
                           actor=None).counts["matched"] == 0  # fmt: skip
    mode = FailureMode.objects.create(workspace=ws, label="rate limits")
    Incident.objects.filter(trace__external_id="bad-other-order").update(failure_mode=mode)
    by_mode = snapshot_create(
        workspace=ws, filters=SnapshotFilter(failure_mode=mode.pk), actor=None
    )
    assert by_mode.counts["matched"] == 1 and by_mode.filters == {"failure_mode": mode.pk,
                                                                   "heldout_percent": 10}  # fmt: skip


@pytest.mark.django_db
def test_snapshot_api_makes_lists_downloads_and_validates(client, corpus, other_tenant):
    key = make_key(corpus.workspace, scopes=[Scope.EXPORT])
    headers = {"Authorization": f"Bearer {key}"}
    made = client.post("/api/v1/snapshots", {"name": "nov", "min_reward": 0},
                       content_type="application/json", headers=headers)  # fmt: skip
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["version"] == 1 and body["counts"]["matched"] == 7
    listed = client.get("/api/v1/snapshots", headers=headers).json()
    assert [s["version"] for s in listed["items"]] == [1]
    download = client.get("/api/v1/snapshots/1/sft-train.jsonl", headers=headers)
    assert download.status_code == 200 and download["Content-Type"] == "application/x-ndjson"
    assert client.get("/api/v1/snapshots/1/nope.txt", headers=headers).status_code == 404
    bad = client.post("/api/v1/snapshots", {"heldout_percent": 90, "surprise": 1},
                      content_type="application/json", headers=headers)  # fmt: skip
    assert bad.status_code == 422
    # Keys without the scope, other workspaces' keys, and no key.
    assert client.post("/api/v1/snapshots", {}, content_type="application/json",
                       headers=corpus.api_headers()).status_code == 403  # fmt: skip
    other_key = make_key(other_tenant.workspace, scopes=[Scope.EXPORT])
    other = client.get("/api/v1/snapshots/1/sft-train.jsonl",
                       headers={"Authorization": f"Bearer {other_key}"})  # fmt: skip
    assert other.status_code == 404
    assert client.get("/api/v1/snapshots").status_code == 401


@pytest.mark.django_db
def test_snapshot_page_roles_and_isolation(corpus, other_tenant, anon):
    url = reverse("snapshot_list", kwargs={"slug": corpus.workspace.slug})
    lead = corpus.client_for(corpus.lead)
    response = lead.post(url, {"name": "from the page", "heldout_percent": 20})
    assert response.status_code == 302
    snapshot = Snapshot.objects.get(workspace=corpus.workspace)
    assert snapshot.filters["heldout_percent"] == 20
    viewer = corpus.client_for(corpus.viewer)
    assert viewer.get(url).status_code == 200 and b"from the page" in viewer.get(url).content
    assert viewer.post(url, {"heldout_percent": 10}).status_code == 403
    download = reverse("snapshot_download", kwargs={"slug": corpus.workspace.slug,
                                                    "version": 1, "filename": "dpo-pairs.jsonl"})  # fmt: skip
    assert viewer.get(download).status_code == 200
    outsider = other_tenant.client_for(other_tenant.admin)
    assert outsider.get(url).status_code == 404 and outsider.get(download).status_code == 404
    assert anon.get(url).status_code == 302 and anon.get(download).status_code == 302
    assert lead.post(url, {"heldout_percent": 99}).status_code == 422
    assert Snapshot.objects.count() == 1


@pytest.mark.django_db
def test_snapshot_command_writes_files(corpus, tmp_path, capsys):
    call_command("snapshot", "--workspace", corpus.workspace.slug, "--min-reward", "0",
                 "--out", str(tmp_path))  # fmt: skip
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["snapshot-v1-dpo-pairs.jsonl", "snapshot-v1-sft-heldout.jsonl",
                     "snapshot-v1-sft-train.jsonl"]  # fmt: skip
    assert "matched" in capsys.readouterr().out


def _tau2_like(external_id, *, status, task_key, opening):
    """A tau2 telecom run: the harness greets first, the simulated customer opens, and
    the customer's phone is worked by the customer's own tool calls (`user.*`)."""
    closing = "Your service is back." if status == "succeeded" else "I could not fix it."
    steps = [
        {"kind": "assistant_message", "output": "Hi! How can I help you today?"},
        {"kind": "user_prompt", "input": opening},
        {
            "kind": "tool_call",
            "name": "get_customer_by_phone",
            "input": {"phone": "555"},
            "output": {"customer_id": "C1001"},
        },
        {"kind": "tool_call", "name": "user.toggle_airplane_mode", "input": {}, "output": "OFF"},
        {"kind": "assistant_message", "output": closing},
    ]
    return {
        "external_id": external_id,
        "agent": "telecom",
        "task": opening,
        "status": status,
        "task_key": task_key,
        "steps": steps,
    }


@pytest.mark.django_db
def test_snapshot_keeps_the_agents_conversation_in_order_without_the_users_tools(tenant):
    ok = _tau2_like("ok", status="succeeded", task_key="telecom/7", opening='It says "No Service".')
    bad = _tau2_like("bad", status="failed", task_key="telecom/7", opening="It says 'No Service'.")
    ingest(workspace=tenant.workspace, items=[ok, bad])
    filters = SnapshotFilter(heldout_percent=0)
    snapshot = snapshot_create(workspace=tenant.workspace, filters=filters, actor=None)
    (example,) = _lines(snapshot.sft_train)
    messages = example["messages"]
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant", "tool", "assistant"]
    assert messages[1]["content"] == 'It says "No Service".'
    called = [c["function"]["name"] for m in messages for c in m.get("tool_calls") or []]
    assert called == ["get_customer_by_phone"]
    # The same task by its key, though the customer worded it otherwise; the prompt is
    # the conversation up to the customer's opening.
    (pair,) = _lines(snapshot.dpo_pairs)
    assert [m["role"] for m in pair["prompt"]] == ["assistant", "user"]
    assert pair["prompt"][1]["content"] == "It says 'No Service'."
    assert pair["chosen"][-1]["content"] == "Your service is back."
    assert pair["rejected"][-1]["content"] == "I could not fix it."


@pytest.mark.django_db
def test_a_hook_sessions_guessed_outcome_is_no_training_data_until_one_is_posted(client, tenant):
    """A Claude Code session's "succeeded" read from the session (no failed turn, no
    failed last call) is left out and counted; once the agent posts its outcome, the
    run is judged on what it recorded: the folder name the product gave its task is
    no user's request."""
    base = {"session_id": "s-9", "cwd": "/home/u/shop", "tool_use_id": "toolu_1"}
    call = {"tool_name": "Bash", "tool_input": {"command": "pytest"}}
    events = [
        {"hook_event_name": "PreToolUse", **call},
        {"hook_event_name": "PostToolUse", **call, "tool_response": {"stdout": "3 passed"}},
        {"hook_event_name": "Stop", "stop_hook_active": False},
    ]
    for event in events:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(
                "/api/v1/hooks/claude-code",
                json.dumps({**base, **event}),
                content_type="application/json",
                headers=tenant.api_headers(),
            )
        assert response.status_code == 200, response.content
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.status == "succeeded" and trace.metadata["inferred_status"]["status"]
    filters = SnapshotFilter(heldout_percent=0)
    guessed = snapshot_create(workspace=tenant.workspace, filters=filters, actor=None)
    assert guessed.counts["inferred_left_out"] == 1 and guessed.sft_train == ""
    posted = client.post(
        f"/api/v1/traces/{trace.external_id}/outcome",
        {"status": "succeeded"},
        content_type="application/json",
        headers=tenant.api_headers(),
    )
    assert posted.status_code == 200, posted.content
    reported = snapshot_create(workspace=tenant.workspace, filters=filters, actor=None)
    assert reported.counts["inferred_left_out"] == 0
    # No prompt was seen: "claude-code session in shop" is the product's name for the
    # run, not a request of the user's, so there is nothing to answer.
    assert reported.counts["incomplete"] == 1 and reported.sft_train == ""


REAL_LOGS = Path(__file__).parents[1] / "traces" / "real_logs"


def _valid_openai_chat(messages):
    """Each call answered by a tool message of its id before the next assistant turn,
    each tool message answering a call, and no message structure left as text."""
    waiting: set[str] = set()
    while messages and messages[0]["role"] == "system":
        messages = messages[1:]
    for message in messages:
        assert message["role"] in ("user", "assistant", "tool"), message
        if message["role"] == "tool":
            assert message["tool_call_id"] in waiting, message
            waiting.discard(message["tool_call_id"])
            continue
        assert not waiting, f"calls {waiting} were never answered"
        content = message["content"]
        assert content is None or not content.lstrip().startswith(("[", "{")), content
        waiting |= {call["id"] for call in message.get("tool_calls", [])}
        for call in message.get("tool_calls", []):
            assert isinstance(call["function"]["arguments"], str)
    assert not waiting


@pytest.mark.django_db
@pytest.mark.parametrize(
    "folder",
    [
        "openai-agents-0.24.0",
        "langgraph-1.2.24",
        "pydantic-ai-2.78.0",
        "openllmetry-openai-0.62.4",
        "opentelemetry-openai-v2-2.3b0",
        "strands-agents-1.62.0",
        "agno-3.1.10",
        "ai-sdk-6.0.333",
        "llama-index-0.14.25",
    ],
)
def test_model_calls_of_real_frameworks_become_openai_chat(tenant, folder):
    """Spans the frameworks themselves wrote (tests/traces/real_logs): each model
    answer is the assistant's turn, read from the shape its framework recorded, its
    calls answered by the tool's result once, never the recorded structure as text."""
    path = next(p for p in sorted((REAL_LOGS / folder).iterdir()) if p.suffix == ".jsonl")
    result = traces_import_file(
        workspace=tenant.workspace, fmt="otlp-json", path=path, status="succeeded"
    )
    assert result.ok, result.error
    filters = SnapshotFilter(heldout_percent=0)
    snapshot = snapshot_create(workspace=tenant.workspace, filters=filters, actor=None)
    examples = {
        next(m["content"] for m in e["messages"] if m["role"] == "user"): e["messages"]
        for e in _lines(snapshot.sft_train)
    }
    for messages in examples.values():
        _valid_openai_chat(messages)
    found = examples["Where is order A1?"]
    calls = [c["function"] for m in found for c in m.get("tool_calls", [])]
    # The scripts name the tool lookup_order (lookupOrder in JavaScript).
    assert calls and all(
        c["name"].lower().replace("_", "") == "lookuporder"
        and list(json.loads(c["arguments"]).values()) == ["A1"]
        for c in calls
    )
    assert [m["content"] for m in found if m["role"] == "tool"] == [
        "order A1: 2 items, shipped"
    ] * len(calls)
    assert found[-1]["role"] == "assistant" and "A1" in found[-1]["content"]


@pytest.mark.django_db
@pytest.mark.parametrize("folder", ["crewai-1.15.30", "semantic-kernel-1.45.0"])
def test_a_run_with_no_request_or_no_turn_of_the_agents_is_no_training_data(tenant, folder):
    """CrewAI's spans record the crew and its task, not the model's answers; Semantic
    Kernel's, without its content switch, neither the request nor the answers."""
    path = REAL_LOGS / folder / "spans.jsonl"
    result = traces_import_file(
        workspace=tenant.workspace, fmt="otlp-json", path=path, status="succeeded"
    )
    assert result.ok, result.error
    filters = SnapshotFilter(heldout_percent=0)
    snapshot = snapshot_create(workspace=tenant.workspace, filters=filters, actor=None)
    assert snapshot.counts["incomplete"] == snapshot.counts["matched"] > 0
    assert snapshot.sft_train == "" and snapshot.dpo_pairs == ""


@pytest.mark.django_db
def test_the_system_prompt_the_model_was_sent_comes_first(tenant):
    path = REAL_LOGS / "openai-agents-0.24.0" / "spans.jsonl"
    # The spans say no outcome (the SDK's OK says only that nothing raised): given.
    assert traces_import_file(
        workspace=tenant.workspace, fmt="otlp-json", path=path, status="succeeded"
    ).ok
    filters = SnapshotFilter(heldout_percent=0)
    snapshot = snapshot_create(workspace=tenant.workspace, filters=filters, actor=None)
    examples = _lines(snapshot.sft_train)
    assert examples
    for example in examples:
        system, request = example["messages"][:2]
        assert system == {"role": "system", "content": "Answer questions about orders."}
        assert request["role"] == "user" and request["content"].startswith("Where is order")


@pytest.mark.django_db
def test_held_out_examples_are_of_tasks_not_trained_on(tenant):
    """Two runs of each of 20 tasks, different steps: a task's runs fall on one side."""
    items = []
    for task in range(20):
        for attempt in range(2):
            run = _trace(f"t{task}-{attempt}", task=f"Refund order {task}")
            run["steps"][1]["input"] = {"order": task, "attempt": attempt}
            items.append(run)
    ingest(workspace=tenant.workspace, items=items)
    filters = SnapshotFilter(heldout_percent=50)
    snapshot = snapshot_create(workspace=tenant.workspace, filters=filters, actor=None)

    def tasks(text):
        return {e["messages"][0]["content"] for e in _lines(text)}

    train, heldout = tasks(snapshot.sft_train), tasks(snapshot.sft_heldout)
    assert train and heldout and not train & heldout
    assert snapshot.counts["sft_train"] + snapshot.counts["sft_heldout"] == 40


@pytest.mark.django_db
def test_a_failure_modes_snapshot_prefers_the_same_tasks_successful_runs(corpus):
    """A mode holds failed runs: the answers to prefer are the successful runs of
    the same tasks, which the mode does not hold. They are the SFT examples and the
    chosen side of each pair."""
    ws = corpus.workspace
    mode = FailureMode.objects.create(workspace=ws, label="rate limits")
    Incident.objects.filter(trace__external_id="bad-1").update(failure_mode=mode)
    filters = SnapshotFilter(failure_mode=mode.pk, heldout_percent=0)
    snapshot = snapshot_create(workspace=ws, filters=filters, actor=None)
    # ok-1 and its duplicate ok-dup ran "Refund order 12" and succeeded.
    assert snapshot.counts["matched"] == 1 and snapshot.counts["same_task_successes"] == 2
    assert [e["metadata"]["trace"] for e in _lines(snapshot.sft_train)] == ["ok-1"]
    (pair,) = _lines(snapshot.dpo_pairs)
    assert pair["metadata"] == {"chosen_trace": "ok-1", "rejected_trace": "bad-1"}


@pytest.mark.django_db
def test_the_list_names_a_snapshots_failure_mode_by_its_label(corpus):
    mode = FailureMode.objects.create(workspace=corpus.workspace, label="rate limits")
    snapshot_create(
        workspace=corpus.workspace, filters=SnapshotFilter(failure_mode=mode.pk), actor=None
    )
    url = reverse("snapshot_list", kwargs={"slug": corpus.workspace.slug})
    page = corpus.client_for(corpus.viewer).get(url).content.decode()
    assert "failure mode: rate limits" in page and "failure_mode=" not in page


@pytest.mark.django_db
def test_a_run_traced_at_its_model_client_keeps_the_users_turns(tenant):
    """A run that recorded no user step (its application traced its model client
    alone) has its user's turns only in what each model call was sent: they are its
    conversation's user turns, in their place, as for the same run recorded with
    user steps. Before, only the request was kept and the agent's turns followed
    one another, answering nothing."""
    call = {"id": "call_7", "type": "function",
            "function": {"name": "get_customer_by_phone", "arguments": '{"phone": "555"}'}}  # fmt: skip
    turns = [
        {"role": "assistant", "content": "Hi! How can I help you today?"},
        {"role": "user", "content": "My phone says No Service."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_7", "content": '{"customer_id": "C1001"}'},
        {"role": "assistant", "content": "Is it fixed now?"},
        {"role": "user", "content": "Yes, thanks."},
        {"role": "assistant", "content": "Glad to help."},
    ]
    model_calls = [{"kind": "llm_call", "name": "gpt", "input": turns[:i], "output": turn}
                   for i, turn in enumerate(turns) if turn["role"] == "assistant"]  # fmt: skip
    steps = [{"kind": "assistant_message", "output": turns[0]["content"]},
             {"kind": "user_prompt", "input": turns[1]["content"]},
             {"kind": "tool_call", "name": "get_customer_by_phone", "input": {"phone": "555"},
              "output": {"customer_id": "C1001"}},
             {"kind": "assistant_message", "output": turns[4]["content"]},
             {"kind": "user_prompt", "input": turns[5]["content"]},
             {"kind": "assistant_message", "output": turns[6]["content"]}]  # fmt: skip
    ingest(workspace=tenant.workspace, items=[
        {"external_id": name, "agent": "telecom", "task": turns[1]["content"], "status": "succeeded",
         "task_key": name, "steps": recorded}
        for name, recorded in (("model-calls", model_calls), ("steps", steps))])  # fmt: skip
    snapshot = snapshot_create(workspace=tenant.workspace, filters=SnapshotFilter(heldout_percent=0),
                               actor=None)  # fmt: skip
    examples = {e["metadata"]["trace"]: e["messages"] for e in _lines(snapshot.sft_train)}

    def shown(messages: list[dict]) -> list[tuple]:
        return [(m["role"], m.get("content"), [c["function"]["name"] for c in m.get("tool_calls") or []])
                for m in messages]  # fmt: skip

    assert (
        shown(examples["model-calls"])
        == shown(examples["steps"])
        == [
            ("assistant", "Hi! How can I help you today?", []),
            ("user", "My phone says No Service.", []),
            ("assistant", None, ["get_customer_by_phone"]),
            ("tool", '{"customer_id": "C1001"}', []),
            ("assistant", "Is it fixed now?", []),
            ("user", "Yes, thanks.", []),
            ("assistant", "Glad to help.", []),
        ]
    )


def test_a_group_chats_messages_name_their_speakers(tenant):
    """Several agents speaking in one run (AG2's and Magentic-One's group chats): each
    message names who said it (`name`, in the characters OpenAI allows), or a model
    trained on it could not tell its own turns from the others'. A run with one
    speaker, or only the product's own labels (a hook session's turn end), names none."""
    chat = [{"kind": "user_prompt", "input": "How much do 4 annual passes save?"},
            {"kind": "assistant_message", "name": "Ticket Pricing/Expert", "output": "Passes cost $90."},
            {"kind": "assistant_message", "name": "Verification_Expert", "output": "Checked: $120."}]  # fmt: skip
    alone = [{"kind": "user_prompt", "input": "Fix the test."},
             {"kind": "assistant_message", "name": "assistant", "output": "Fixed."},
             {"kind": "assistant_message", "name": "turn failed", "output": "API error"}]  # fmt: skip
    ingest(workspace=tenant.workspace, items=[
        {"external_id": name, "agent": name, "task": steps[0]["input"], "status": "succeeded",
         "task_key": name, "steps": steps}
        for name, steps in (("group", chat), ("alone", alone))])  # fmt: skip
    snapshot = snapshot_create(workspace=tenant.workspace, filters=SnapshotFilter(heldout_percent=0),
                               actor=None)  # fmt: skip
    examples = {e["metadata"]["trace"]: e["messages"] for e in _lines(snapshot.sft_train)}
    assert [m.get("name") for m in examples["group"]] == [
        None, "Ticket_Pricing_Expert", "Verification_Expert"]  # fmt: skip
    assert not any("name" in m for m in examples["alone"])
