"""Files the tools themselves wrote (tests/traces/real_logs/README.md), imported as
a user would: what each run says, where it failed, and that importing again
changes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hivemind_client.formats import files_under
from traces.importing import traces_import_file
from traces.models import Trace

LOGS = Path(__file__).parent / "real_logs"


def _runs(workspace) -> dict:  # type: ignore[no-untyped-def]
    return {t.external_id: t for t in Trace.objects.filter(workspace=workspace)}


def test_an_inspect_eval_archive(tenant):
    path = next((LOGS / "inspect-0.3.285").glob("*.eval"))
    result = traces_import_file(workspace=tenant.workspace, fmt="inspect-log", path=path)
    assert result.ok and result.created == 2, result.error
    runs = sorted(_runs(tenant.workspace).values(), key=lambda t: t.task_key)
    assert [(t.task_key, t.status, t.task) for t in runs] == [
        ("task/s1", "succeeded", "Where is order A1?"),
        ("task/s2", "failed", "Where is order B2?"),
    ]
    assert [c["passed"] for t in runs for c in t.checks] == [True, False]
    calls = [list(t.steps.filter(kind="tool_call").values_list("name", "input", "output", "error"))
             for t in runs]  # fmt: skip
    assert calls == [
        [("lookup", {"order_id": "A1"}, "order A1: 2 items, shipped", "")],
        [("lookup", {"order_id": "missing"}, "", "order not found: missing")],
    ]
    again = traces_import_file(workspace=tenant.workspace, fmt="inspect-log", path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_mini_swe_agent_trajectories(tenant):
    folder = LOGS / "mini-swe-agent-2.4.6"
    for path in sorted(folder.glob("*/*.traj.json")):
        result = traces_import_file(workspace=tenant.workspace, fmt="swe-agent", path=path)
        assert result.ok and result.created == 1, result.error
    runs = {t.task_key: t for t in _runs(tenant.workspace).values()}
    submitted, stopped = runs["swe:acme__utils-1"], runs["swe:acme__utils-2"]
    # No SWE-bench report beside them: a submitted run's outcome is not known; one
    # stopped by its step limit never submitted a patch.
    assert (submitted.status, stopped.status) == ("unknown", "failed")
    assert submitted.metadata["exit_status"] == "Submitted"
    assert submitted.task.startswith("<pr_description>")
    tools = list(submitted.steps.filter(kind="tool_call").order_by("index")
                 .values_list("name", "input", "error"))  # fmt: skip
    assert [(name, args["command"]) for name, args, _ in tools] == [
        ("bash", "ls -la"), ("bash", "cat src/utils.py"),
        ("bash", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
    ]  # fmt: skip
    assert [bool(error) for *_, error in tools] == [False, True, False]
    assert "No such file or directory" in tools[1][2]
    # The text-action run: each command a call named by its program, its end an error.
    steps = list(stopped.steps.order_by("index").values_list("kind", "name"))
    assert steps.count(("tool_call", "python")) == 3
    assert steps[-1][0] == "error"
    assert "LimitsExceeded" in stopped.steps.get(kind="error").error
    for path in sorted(folder.glob("*/*.traj.json")):
        again = traces_import_file(workspace=tenant.workspace, fmt="swe-agent", path=path)
        assert again.unchanged == 1


def test_openhands_sdk_conversations_saved_where_the_sdk_keeps_them(tenant):
    """A folder of conversations (`base_state.json` and `events/` each): a run per
    conversation, its model's tokens on its steps, and one the SDK's stuck detection
    stopped failed; a run that finished has no verdict."""
    folder = LOGS / "openhands-sdk-1.58.2"
    files = files_under([folder], "openhands")
    assert [f.parent.name[-2:] for f in files] == ["01", "02"]
    for path in files:
        result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=path)
        assert result.ok and result.created == 1, result.error
    runs = _runs(tenant.workspace)
    finished = runs["openhands-7d0c5a52-0000-4000-8000-000000000001"]
    stuck = runs["openhands-7d0c5a52-0000-4000-8000-000000000002"]
    assert (finished.status, stuck.status) == ("unknown", "failed")
    assert finished.agent == stuck.agent == "OpenHands/openai/scripted-gpt"
    assert finished.session_id == "7d0c5a52-0000-4000-8000-000000000001"
    assert finished.task == "Read notes/todo.txt and tell me what is left to do."
    assert finished.metadata["execution_status"] == "finished"
    assert stuck.metadata["outcome_from"] == "execution_status"
    calls = list(finished.steps.filter(kind="tool_call").order_by("index")
                 .values_list("name", "input", "error", "tokens"))  # fmt: skip
    assert [(name, args.get("command")) for name, args, *_ in calls] == [
        ("terminal", "cat notes/todo.txt"), ("terminal", "ls"), ("finish", None),
    ]  # fmt: skip
    assert "No such file or directory" in calls[0][2] and calls[1][2] == ""
    # Each model answer's usage, from the conversation's state, on the call it made.
    assert [tokens for *_, tokens in calls] == [135, 155, 175]
    assert finished.total_tokens == 465
    assert finished.cost_usd is None  # the SDK priced this model at 0: unknown
    kinds = list(stuck.steps.order_by("index").values_list("kind", flat=True))
    assert kinds == ["user_prompt", *["tool_call"] * 4, "error"]
    assert "stuck detection" in stuck.steps.get(kind="error").error
    for path in files:
        again = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=path)
        assert again.unchanged == 1


def test_openhands_hooks_make_a_run_that_its_saved_conversation_replaces(
    client, tenant, other_tenant
):
    """The OpenHands SDK 1.58.2's own hook payloads (a project's .openhands/hooks.json),
    posted to `/api/v1/hooks/openhands` as the capture hook posts them (an event id
    each): a run per conversation, `openhands-<session>`. Each call is recorded when
    it ends, the same command run four times four calls; a PreToolUse stores
    nothing. The stuck conversation failed, read from the session (its last call
    failed). Importing the conversations the SDK saved then replaces the hook-built
    steps with the complete record: one run each, not two. Another workspace's key
    reaches nothing; anonymous is refused."""
    import uuid

    from django.test import TestCase

    folder = LOGS / "openhands-sdk-1.58.2"
    lines = [line for line in (folder / "hooks.jsonl").read_text().splitlines() if line]
    assert client.post("/api/v1/hooks/openhands", lines[0],
                       content_type="application/json").status_code == 401  # fmt: skip
    for line in lines:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(
                "/api/v1/hooks/openhands", line, content_type="application/json",
                headers={**tenant.api_headers(), "X-Hivemind-Event-Id": uuid.uuid4().hex},
            )  # fmt: skip
        assert response.status_code == 200, response.content
    runs = _runs(tenant.workspace)
    finished = runs["openhands-7d0c5a52-0000-4000-8000-000000000001"]
    stuck = runs["openhands-7d0c5a52-0000-4000-8000-000000000002"]
    assert (finished.agent, finished.task) == (
        "openhands", "Read notes/todo.txt and tell me what is left to do.")  # fmt: skip
    calls = list(stuck.steps.filter(kind="tool_call").order_by("index")
                 .values_list("name", "input", "error"))  # fmt: skip
    assert calls == [("terminal", {"command": "cat notes/plan.txt", "is_input": False,
                                   "timeout": None, "reset": False},
                      "cat: notes/plan.txt: No such file or directory")] * 4  # fmt: skip
    assert stuck.status == "failed"
    assert "its last tool call" in stuck.metadata["inferred_status"]["reason"]
    assert [n for n, *_ in finished.steps.filter(kind="tool_call").order_by("index")
            .values_list("name")] == ["terminal", "terminal", "finish"]  # fmt: skip
    assert finished.status == "succeeded"  # read from the session: nothing failed last
    for path in files_under([folder], "openhands"):
        result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=path)
        assert result.ok and result.updated == 1, result.error
    runs = _runs(tenant.workspace)
    assert len(runs) == 2
    stuck = runs["openhands-7d0c5a52-0000-4000-8000-000000000002"]
    kinds = list(stuck.steps.order_by("index").values_list("kind", flat=True))
    assert kinds == ["user_prompt", *["tool_call"] * 4, "error"]
    assert stuck.step_count == 6 and stuck.total_tokens == 900
    # Not written over by index: the hooks' turn end and session end are gone too.
    finished = runs["openhands-7d0c5a52-0000-4000-8000-000000000001"]
    assert list(finished.steps.order_by("index").values_list("kind", "tokens")) == [
        ("user_prompt", None), ("tool_call", 135), ("tool_call", 155), ("tool_call", 175)]  # fmt: skip
    assert finished.step_count == 4 and finished.error_count == 1
    # The record gives no outcome: read from the session again, from its steps.
    assert finished.status == "succeeded"
    assert "no failed last call" in finished.metadata["inferred_status"]["reason"]
    assert not Trace.objects.filter(workspace=other_tenant.workspace).exists()


def test_opencode_sessions_as_opencode_exports_them(tenant):
    """OpenCode 1.18.33's `opencode export` of two headless sessions: a run each, its
    calls with their input, output and error (a command's exit code 1, a read the
    tool failed), each model call's tokens on the step it made, the outcome unknown
    (nothing in the file says it); imported again, nothing changes."""
    folder = LOGS / "opencode-1.18.33"
    for name in ("finished", "failed"):
        result = traces_import_file(workspace=tenant.workspace, fmt="opencode",
                                    path=folder / f"{name}.json")  # fmt: skip
        assert result.ok and result.created == 1, result.error
        assert len(result.no_outcome) == 1  # named in the import's summary
    # A folder import leaves the subagent's session to its parent's export.
    assert [p.name for p in files_under([folder], "opencode")] == [
        "failed.json", "finished.json", "subagent.json"]  # fmt: skip
    runs = {t.task.strip('"'): t for t in _runs(tenant.workspace).values()}
    finished = runs["Read notes/todo.txt and tell me what is left to do."]
    failed = runs["What does notes/plan.txt say"]
    assert (finished.agent, finished.model, finished.status) == (
        "opencode", "scripted/scripted-gpt", "unknown")  # fmt: skip
    assert finished.external_id == f"opencode-{finished.session_id}"
    steps = list(finished.steps.order_by("index").values_list("kind", "name", "error", "tokens"))
    assert [(kind, name, bool(error), tokens) for kind, name, error, tokens in steps] == [
        ("user_prompt", "", False, None), ("tool_call", "bash", True, 920),
        ("tool_call", "bash", False, 920), ("assistant_message", "", False, 920)]  # fmt: skip
    assert steps[1][2] == "cat: notes/todo.txt: No such file or directory\n"  # it exited 1
    assert finished.total_tokens == 2760  # the session's own count: 2,700 in, 60 out
    read = failed.steps.get(kind="tool_call")
    assert (read.name, read.input, read.error) == (
        "read", {"filePath": "notes/plan.txt"}, "File not found: /tmp/ocgen/project/notes/plan.txt")  # fmt: skip
    for name in ("finished", "failed"):
        again = traces_import_file(workspace=tenant.workspace, fmt="opencode",
                                   path=folder / f"{name}.json")  # fmt: skip
        assert again.unchanged == 1


def _cline_file(name: str) -> Path:
    folder = LOGS / "cline-3.0.65" / name
    return next(p for p in folder.glob("*.messages.json") if not p.name.startswith("agent_"))


def test_cline_sessions_as_the_cline_cli_saves_them(tenant):
    """The Cline CLI 3.0.65's saved sessions (`<id>.messages.json` with its record
    `<id>.json` beside it), imported as a folder: a run each, its prompt without the
    mode wrapper Cline adds, its calls with their input and output, a call failed
    when one of its commands or files did (with which one and why), each model
    answer's tokens on the first step it made; a subagent's session inside the call
    that spawned it; a session that ended on the model API's error failed, the
    error its last step; the others' outcome unknown. Imported again, nothing
    changes."""
    folder = LOGS / "cline-3.0.65"
    files = files_under([folder], "cline")
    # The subagent's messages are read with the session that spawned it.
    assert sorted(p.parent.name for p in files) == ["failed", "finished", "subagent"]
    for path in files:
        result = traces_import_file(workspace=tenant.workspace, fmt="cline", path=path)
        assert result.ok and result.created == 1, result.error
    runs = {t.task: t for t in _runs(tenant.workspace).values()}
    finished = runs["Read notes/todo.txt and tell me what is left to do."]
    assert (finished.agent, finished.model, finished.status) == (
        "cline", "openai-compatible/scripted-gpt", "unknown")  # fmt: skip
    assert finished.external_id == f"cline-{finished.session_id}"
    steps = list(finished.steps.order_by("index").values_list("kind", "name", "error", "tokens"))
    assert steps == [
        ("user_prompt", "", "", None),
        ("tool_call", "run_commands", "cat notes/todo.txt: Command exited with code 1", 920),
        ("tool_call", "read_files", "/tmp/cline-logs/project/notes/plan.txt: Error reading "
         "file: ENOENT: no such file or directory, statx '/tmp/cline-logs/project/notes/plan.txt'", 920),
        ("assistant_message", "", "", 920),
    ]  # fmt: skip
    commands = finished.steps.get(name="run_commands")
    assert commands.input == {"commands": ["cat notes/todo.txt", "ls"]}
    assert [item["success"] for item in commands.output] == [False, True]
    subagent = runs["Use a subagent to find the plan"]
    assert list(subagent.steps.order_by("index").values_list("index", "kind", "name",
                                                             "parent_index")) == [
        (0, "user_prompt", "", None), (1, "tool_call", "spawn_agent", None),
        (2, "tool_call", "run_commands", 1), (3, "assistant_message", "", 1),
        (4, "assistant_message", "", None),
    ]  # fmt: skip
    failed = runs["Say what notes/todo.txt holds"]
    assert failed.status == "failed"
    assert failed.metadata["outcome_from"] == "the session's record (status: failed)"
    last = failed.steps.order_by("-index").first()
    assert last is not None and last.kind == "error" and "context window" in last.error
    for path in files:
        again = traces_import_file(workspace=tenant.workspace, fmt="cline", path=path)
        assert again.unchanged == 1


def test_qwen_code_sessions_as_qwen_code_records_them(tenant):
    """Qwen Code 0.24.4's chat records (`~/.qwen/projects/<project>/chats/<id>.jsonl`):
    a run each, its calls with their input and output, a command's failure its own
    output and exit code, a missing file Qwen Code's error, each model answer's tokens
    on the first step it made; a session whose model requests were refused ends
    failed on that error. Read as Claude Code's or Gemini CLI's records, a chat log
    was a run with no step: now refused, naming the format. The headless run's
    stream, in Claude Code's shape, is a run of Qwen Code's too."""
    from hivemind_client.formats import FormatError, parse

    folder = LOGS / "qwen-code-0.24.4"
    for name in ("finished", "failed"):
        result = traces_import_file(workspace=tenant.workspace, fmt="qwen-code",
                                    path=folder / f"{name}.jsonl")  # fmt: skip
        assert result.ok and result.created == 1, result.error
    runs = {t.task: t for t in _runs(tenant.workspace).values()}
    finished = runs["Read notes/todo.txt and tell me what is left to do."]
    assert (finished.agent, finished.model, finished.status) == (
        "qwen-code", "scripted-gpt", "unknown")  # fmt: skip
    assert finished.external_id == f"qwen-code-{finished.session_id}"
    steps = list(finished.steps.order_by("index").values_list("kind", "name", "error", "tokens"))
    assert steps == [
        ("user_prompt", "", "", None),
        ("tool_call", "run_shell_command",
         "cat: notes/todo.txt: No such file or directory\n(exit code 1)", 920),
        ("tool_call", "read_file", "File not found: /tmp/qwen-logs/project/notes/plan.txt", 920),
        ("tool_call", "run_shell_command", "", 920),
        ("assistant_message", "", "", 920),
    ]  # fmt: skip
    failed = runs["Say what notes/todo.txt holds"]
    assert failed.status == "failed"
    assert failed.metadata["outcome_from"] == "the session ended on a failed model request"
    assert "maximum context length" in failed.steps.get(kind="error").error
    for fmt in ("claude-transcript", "gemini-session"):
        with pytest.raises(
            FormatError, match="a Qwen Code chat log; import it with --format qwen-code"
        ):
            parse(fmt, folder / "finished.jsonl")
    stream = parse("claude-transcript", folder / "stream.jsonl").traces[0]
    assert (stream["agent"], stream["external_id"]) == (
        "qwen-code", f"qwen-code-stream-{finished.session_id}")  # fmt: skip
    assert [s["name"] for s in stream["steps"] if s["kind"] == "tool_call"] == [
        "run_shell_command", "read_file", "run_shell_command"]  # fmt: skip


def test_continue_sessions_as_continue_saves_them(tenant):
    """The Continue CLI 1.5.47's saved session (`~/.continue/sessions/<id>.json`, the
    format its IDE extensions save too), imported as a folder (the list beside it,
    `sessions.json`, is no session): its calls with their input (the parsed
    arguments) and output, failed where Continue says the call errored, with why (a
    command's exit code, a missing file); each answer's tokens on the first step it
    made; the session's time from the list; the outcome unknown."""
    folder = LOGS / "continue-cli-1.5.47" / "sessions"
    files = files_under([folder], "continue")
    assert [p.name for p in files] == [p.name for p in folder.glob("*-*.json")]
    result = traces_import_file(workspace=tenant.workspace, fmt="continue", path=files[0])
    assert result.ok and result.created == 1, result.error
    run = Trace.objects.get(workspace=tenant.workspace)
    assert (run.agent, run.model, run.status, run.task) == (
        "continue", "scripted-gpt", "unknown", "Read notes/todo.txt and tell me what is left to do.")  # fmt: skip
    assert run.external_id == f"continue-{run.session_id}" and run.started_at is not None
    steps = list(
        run.steps.order_by("index").values_list("kind", "name", "input", "error", "tokens")
    )
    assert steps == [
        ("user_prompt", "", "Read notes/todo.txt and tell me what is left to do.", "", None),
        ("tool_call", "Bash", {"command": "cat notes/todo.txt"}, "Error executing tool Bash: "
         "Error (exit code 1): cat: notes/todo.txt: No such file or directory\n", 920),
        ("tool_call", "Read", {"filepath": "notes/plan.txt"},
         "Error executing tool Read: File does not exist: notes/plan.txt", 920),
        ("tool_call", "Bash", {"command": "ls"}, "", 920),
        ("assistant_message", "", None, "", 920),
    ]  # fmt: skip
    assert run.steps.get(index=3).output == "README.md\n"
    again = traces_import_file(workspace=tenant.workspace, fmt="continue", path=files[0])
    assert again.unchanged == 1


def test_a_continue_session_that_holds_one_call_state_an_item(tenant, tmp_path):
    """Continue's history items once held one call's state (`toolCallState`, which its
    type definitions still declare) rather than a list: the same session saved so
    reads the same."""
    from hivemind_client.formats import parse

    saved = next((LOGS / "continue-cli-1.5.47" / "sessions").glob("*-*.json"))
    data = json.loads(saved.read_text())
    for item in data["history"]:
        if item.get("toolCallStates"):
            item["toolCallState"] = item.pop("toolCallStates")[0]
    older = tmp_path / saved.name
    older.write_text(json.dumps(data))

    def steps(path: Path) -> list[tuple]:
        return [(s["kind"], s.get("name"), s.get("error"))
                for s in parse("continue", path).traces[0]["steps"]]  # fmt: skip

    assert steps(older) == steps(saved)
    assert sum(1 for _, _, error in steps(older) if error) == 2


def test_a_qwen_code_hook_session_and_its_chat_record_make_one_run(client, tenant, other_tenant):
    """Qwen Code 0.24.4's hook payloads (Claude Code's shape) for a session, sent to
    its endpoint as the capture hook sends them: one run, `qwen-code-<session>`, its
    prompt and each call when it ended (two failed); Qwen Code fires
    UserPromptSubmit before every model request, the follow-ups with no prompt, which
    make no step. The session's chat record, imported at the turn's end by the
    capture hook, replaces those steps in the same run, with each answer's tokens."""
    from django.test import TestCase

    folder = LOGS / "qwen-code-0.24.4"
    payloads = [json.loads(line) for line in (folder / "hooks.jsonl").read_text().splitlines()
                if line.strip()]  # fmt: skip
    for n, payload in enumerate(payloads):
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post("/api/v1/hooks/qwen-code", json.dumps(payload),
                                   content_type="application/json",
                                   headers={**tenant.api_headers(), "X-Hivemind-Event-Id": f"e{n}"})  # fmt: skip
        assert response.status_code == 200, response.content
    session = payloads[0]["session_id"]
    run = Trace.objects.get(workspace=tenant.workspace)
    assert (run.external_id, run.agent) == (f"qwen-code-{session}", "qwen-code")
    steps = list(run.steps.order_by("index").values_list("kind", "name"))
    assert [s for s in steps if s[0] in ("user_prompt", "tool_call")] == [
        ("user_prompt", ""), ("tool_call", "run_shell_command"), ("tool_call", "read_file"),
        ("tool_call", "run_shell_command")]  # fmt: skip
    assert run.steps.filter(kind="tool_call").exclude(error="").count() == 2
    assert run.task == "Read notes/todo.txt and tell me what is left to do."
    # Qwen Code's bookkeeping (the provider's call ids, the context window's use) is
    # not kept as the events' extra fields; a notification's words are.
    extras = [k for k in run.metadata if k.startswith("extra:")]
    assert extras == ["extra:Notification"], run.metadata
    result = traces_import_file(workspace=tenant.workspace, fmt="qwen-code",
                                path=folder / "finished.jsonl")  # fmt: skip
    assert result.ok and result.updated == 1, result.error
    run = Trace.objects.get(workspace=tenant.workspace)
    assert run.step_count == 5 and run.total_tokens == 4 * 920
    assert not Trace.objects.filter(workspace=other_tenant.workspace).exists()
    anonymous = client.post("/api/v1/hooks/qwen-code", json.dumps(payloads[0]),
                            content_type="application/json")  # fmt: skip
    assert anonymous.status_code == 401


def test_install_qwen_hooks_adds_the_capture_hook_once(tmp_path):
    from hivemind_client.install import install_qwen_hooks

    settings = tmp_path / ".qwen" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"model": {"name": "qwen3-coder"}}))
    added = install_qwen_hooks(tmp_path)
    assert {"UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Stop"} <= set(added)
    data = json.loads(settings.read_text())
    assert data["model"] == {"name": "qwen3-coder"}  # the rest of the file is kept
    hook = data["hooks"]["PostToolUse"][0]
    assert hook["matcher"] == "*" and "capture --source qwen-code" in hook["hooks"][0]["command"]
    # The published skills go where Qwen Code finds a project's.
    assert "SessionStart (skills pull)" in added
    pulls = [h["command"] for entry in data["hooks"]["SessionStart"] for h in entry["hooks"]
             if "skills pull" in h["command"]]  # fmt: skip
    assert len(pulls) == 1 and str((tmp_path / ".qwen" / "skills").resolve()) in pulls[0]
    assert install_qwen_hooks(tmp_path) == []


def test_an_opencode_subagents_session_is_read_into_the_call_that_started_it(tenant):
    """OpenCode's `task` tool runs a subagent in a session of its own. Exported beside
    its parent's (`<session id>.json`, the id the call names), its steps are inside
    that call in the parent's run: one run, not two."""
    folder = LOGS / "opencode-1.18.33"
    result = traces_import_file(workspace=tenant.workspace, fmt="opencode",
                                path=folder / "subagent.json")  # fmt: skip
    assert result.ok and result.created == 1, result.error
    run = Trace.objects.get(workspace=tenant.workspace)
    steps = list(run.steps.order_by("index").values_list("index", "kind", "name", "parent_index"))
    # The subagent's session opens with the call's prompt, which no person said: the
    # call's input holds it.
    assert steps == [
        (0, "user_prompt", "", None), (1, "tool_call", "task", None),
        (2, "tool_call", "bash", 1), (3, "assistant_message", "", 1),
        (4, "assistant_message", "", None)]  # fmt: skip
    assert "No such file or directory" in run.steps.get(index=2).error
    assert run.total_tokens == 4 * 920  # the subagent's two model calls counted too


def test_the_opencode_plugin_sends_the_session_its_binary_exports(
    live_server, tmp_path, monkeypatch, capsys
):
    """What the OpenCode plugin runs at a turn's end: `send-opencode-session` exports
    the session with the OpenCode binary it is given and sends it through the API (a
    stand-in binary prints OpenCode 1.18.33's real export here); with no outcome, its
    status is read from the session as a hook-built run's is. An export that fails
    sends nothing and says why."""
    import stat

    from hivemind_client.capture import send_opencode_session
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="OpenCode capture", owner=make_user("opencode-capture"))
    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", make_key(workspace, scopes=[Scope.INGEST]))
    exported = LOGS / "opencode-1.18.33" / "failed.json"
    session = json.loads(exported.read_text())["info"]["id"]
    binary = tmp_path / "opencode"
    binary.write_text(f'#!/bin/sh\n[ "$1" = export ] && [ "$2" = {session} ] && cat {exported}\n')
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    assert send_opencode_session(str(binary), session) == 0
    run = Trace.objects.get(workspace=workspace)
    assert (run.external_id, run.agent) == (f"opencode-{session}", "opencode")
    assert run.steps.get(kind="tool_call").error.startswith("File not found")
    # Read from the session, as a hook-built run's status is: its last call failed.
    assert run.status == "failed"
    assert "its last tool call" in run.metadata["inferred_status"]["reason"]
    assert send_opencode_session(str(binary), session) == 0  # sent again: unchanged
    assert Trace.objects.filter(workspace=workspace).count() == 1
    assert send_opencode_session(str(tmp_path / "missing"), session) == 1
    assert "nothing sent" in capsys.readouterr().err
    # A subagent's session goes with its parent's: exported beside it, inside its call.
    parent = json.loads((LOGS / "opencode-1.18.33" / "subagent.json").read_text())["info"]["id"]
    child = next(p.stem for p in (LOGS / "opencode-1.18.33").glob("ses_*.json"))
    cases = "".join(f"  {sid}) cat {path} ;;\n" for sid, path in (
        (parent, LOGS / "opencode-1.18.33" / "subagent.json"),
        (child, LOGS / "opencode-1.18.33" / f"{child}.json")))  # fmt: skip
    binary.write_text(f'#!/bin/sh\ncase "$2" in\n{cases}  *) exit 1 ;;\nesac\n')
    assert send_opencode_session(str(binary), child) == 0  # left to its parent's turn end
    assert not Trace.objects.filter(workspace=workspace, external_id=f"opencode-{child}").exists()
    assert send_opencode_session(str(binary), parent) == 0
    nested = Trace.objects.get(workspace=workspace, external_id=f"opencode-{parent}")
    assert nested.steps.filter(parent_index=1).count() == 2


def test_the_cline_hooks_send_the_session_cline_saved(live_server, tmp_path, monkeypatch, capsys):
    """What the hooks `install-cline-hooks` writes run when a task ends: the hook
    answers Cline at once and starts `send-cline-session` for the payload's session
    in a process of its own; that sends the session Cline saved (the CLI 3.0.65's
    real files here) through the API, its status read from the session as a
    hook-built run's is. A session that is not there sends nothing and says why."""
    import io
    import shutil
    import subprocess

    from hivemind_client import capture
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="Cline capture", owner=make_user("cline-capture"))
    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", make_key(workspace, scopes=[Scope.INGEST]))
    monkeypatch.setenv("HIVEMIND_CLINE_SESSIONS", str(tmp_path / "sessions"))
    saved = _cline_file("finished")
    session = saved.name.removesuffix(".messages.json")
    shutil.copytree(saved.parent, tmp_path / "sessions" / session)
    started: list[list[str]] = []
    payload = {"hookName": "agent_end", "sessionContext": {"rootSessionId": session}}
    with monkeypatch.context() as hook:
        hook.setattr(subprocess, "Popen", lambda args, **kw: started.append(args))
        hook.setattr("sys.stdin", io.StringIO(json.dumps(payload)))
        assert capture.send_cline_hook() == 0
        assert json.loads(capsys.readouterr().out) == {"cancel": False}  # Cline goes on
        assert started and started[0][-3:] == ["send-cline-session", "--session", session]
        for odd in ("{nope", json.dumps({"sessionContext": {"rootSessionId": "../../etc"}}), "[]"):
            hook.setattr("sys.stdin", io.StringIO(odd))
            assert capture.send_cline_hook() == 0
    assert len(started) == 1  # nothing started for a payload naming no session
    assert capture.send_cline_session(session, settle=0.05) == 0
    run = Trace.objects.get(workspace=workspace)
    assert (run.external_id, run.agent, run.step_count) == (f"cline-{session}", "cline", 4)
    # Read from the session, as a hook-built run's status is: its last call failed.
    assert run.status == "failed"
    assert "its last tool call" in run.metadata["inferred_status"]["reason"]
    assert capture.send_cline_session(session, settle=0.05) == 0  # sent again: unchanged
    assert Trace.objects.filter(workspace=workspace).count() == 1
    assert capture.send_cline_session("1796000000000_none", settle=0.05, wait=0.2) == 1
    assert "not sent (no " in capsys.readouterr().err


def test_install_cline_hooks_writes_the_task_end_hooks_once_and_leaves_others_alone(
    tmp_path, capsys
):
    import stat

    from hivemind_client.install import install_cline_hooks

    assert install_cline_hooks(tmp_path) == ["TaskComplete", "TaskCancel"]
    hook = tmp_path / ".clinerules" / "hooks" / "TaskComplete"
    assert hook.stat().st_mode & stat.S_IXUSR and "send-cline-session --hook" in hook.read_text()
    assert "HIVEMIND_API_KEY=" not in hook.read_text()  # the key is never written there
    assert install_cline_hooks(tmp_path) == []  # written again: the same files
    from hivemind_client.__main__ import main

    main(["status", "--project", str(tmp_path)])
    assert ".clinerules/hooks/TaskComplete: Hivemind installed" in capsys.readouterr().out
    other = tmp_path / "other"
    (other / ".clinerules" / "hooks").mkdir(parents=True)
    (other / ".clinerules" / "hooks" / "TaskCancel").write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(ValueError, match="TaskCancel hook of its own"):
        install_cline_hooks(other)
    assert (other / ".clinerules" / "hooks" / "TaskCancel").read_text() == "#!/bin/sh\necho mine\n"
    assert not (other / ".clinerules" / "hooks" / "TaskComplete").exists()


def test_a_batch_that_replaces_a_hook_built_run_still_skips_its_unchanged_traces(client, tenant):
    """One batch holding a conversation whose hooks built its run and one already
    stored as sent: the first replaces the hook-built steps, the second is unchanged
    (not written or analysed again), each result at its place in the batch."""
    import uuid

    from django.test import TestCase

    from hivemind_client.formats import parse
    from traces.transcripts import trace_ingest_merging

    folder = LOGS / "openhands-sdk-1.58.2"
    first, second = [parse("openhands", path).traces[0]
                     for path in files_under([folder], "openhands")]  # fmt: skip
    ingest = trace_ingest_merging(workspace=tenant.workspace, items=[second])
    assert [r.status for r in ingest.results] == ["created"]
    for line in (folder / "hooks.jsonl").read_text().splitlines():
        if line and json.loads(line)["session_id"].endswith("01"):
            with TestCase.captureOnCommitCallbacks(execute=True):
                client.post("/api/v1/hooks/openhands", line, content_type="application/json",
                            headers={**tenant.api_headers(), "X-Hivemind-Event-Id": uuid.uuid4().hex})  # fmt: skip
    batch = trace_ingest_merging(workspace=tenant.workspace, items=[first, second])
    assert [(r.index, r.status) for r in batch.results] == [(0, "updated"), (1, "unchanged")]
    run = Trace.objects.get(workspace=tenant.workspace, external_id=first["external_id"])
    assert run.step_count == 4 and run.total_tokens == 465


def _span_steps(trace: Trace) -> list[tuple]:
    return list(trace.steps.order_by("index").values_list(
        "kind", "name", "input", "output", "error", "parent_index"))  # fmt: skip


def _by_file_and_over_otlp(
    client, tenant, other_tenant, path: Path, json_body: bool = False
) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """The runs of an OTLP/JSON file imported, and its exports posted as protobuf (or,
    `json_body`, each line as the JSON it is, as a JavaScript exporter sends it)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    result = traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=path)
    assert result.ok and result.created == 2, result.error
    for line in path.read_text().splitlines():
        if json_body:
            body, content_type = line.encode(), "application/json"
        else:
            body = json_format.Parse(line, ExportTraceServiceRequest()).SerializeToString()
            content_type = "application/x-protobuf"
        response = client.post("/v1/traces", body, content_type=content_type,
                               headers={"x-hivemind-api-key": other_tenant.key})  # fmt: skip
        assert response.status_code == 200
    by_file, by_otlp = _runs(tenant.workspace), _runs(other_tenant.workspace)
    assert sorted(by_file) == sorted(by_otlp)
    assert all(len(key) == 32 and int(key, 16) for key in by_file)
    for key, trace in by_file.items():
        assert _span_steps(trace) == _span_steps(by_otlp[key])
        same = ("task", "status", "agent", "model", "session_id", "task_key", "checks",
                "skills_in_scope")  # fmt: skip
        assert [getattr(trace, f) for f in same] == [getattr(by_otlp[key], f) for f in same]
    return by_file, by_otlp


def test_langgraph_spans_name_the_users_request_and_the_failing_tool(client, tenant, other_tenant):
    """A LangGraph ReAct agent's spans (OpenInference's LangChain instrumentation):
    the task is the user's message inside the graph's input envelope (before: the
    envelope's JSON), the model call an LLM call with its tokens, and the tool
    error that ended one run is counted once, on the tool, the run failed."""
    path = LOGS / "langgraph-1.2.24" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    ok, failed = runs["Where is order A1?"], runs["Where is order B2?"]
    # The graph's span is OpenInference's: its OK says only that nothing raised.
    assert (ok.status, failed.status, ok.agent) == ("unknown", "failed", "refund-graph")
    assert list(ok.steps.filter(kind="llm_call").values_list("tokens", flat=True)) == [135, 135]
    # The graph, its nodes and its routing are framework steps; the agent's one call
    # is the tool's.
    assert list(ok.steps.filter(kind="tool_call").values_list("name", flat=True)) == [
        "lookup_order"
    ]
    assert {"LangGraph", "agent", "call_model", "should_continue", "tools"} <= set(
        ok.steps.filter(kind="span").values_list("name", flat=True)
    )
    errors = list(failed.steps.exclude(error="").values_list("kind", "name", "error"))
    assert errors == [("tool_call", "lookup_order", "ValueError: order not found: B2")]
    # The routing's Send, as where it goes (before: its repr, the graph state in it).
    routes = list(ok.steps.filter(name="should_continue").order_by("index").values_list(
        "output", flat=True))  # fmt: skip
    assert routes == ["→ tools: lookup_order({'order_id': 'A1'})", "__end__"]


def test_openai_agents_spans_take_the_task_from_the_models_messages(client, tenant, other_tenant):
    """The OpenAI Agents SDK's spans (OpenInference's instrumentation) carry the
    user's request only in the model call's input messages: by file as over OTLP,
    it is the task (before, the file importer left it empty). Model calls count
    their prompt and completion tokens; the workflow, agent and turn spans are
    framework steps; the tool's error the SDK handled is the tool's. The SDK's span
    says OK whenever nothing raised, so the outcome is unknown."""
    path = LOGS / "openai-agents-0.24.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    for trace in runs.values():
        # OK on the SDK's agent span, set though a tool raised on B2: read as unset.
        assert (trace.agent, trace.model, trace.status) == ("orders-agent", "scripted-gpt",
                                                            "unknown")  # fmt: skip
        assert list(trace.steps.filter(kind="llm_call").values_list("tokens", flat=True)) == [
            120,
            120,
        ]
        assert list(trace.steps.filter(kind="tool_call").values_list("name", flat=True)) == [
            "lookup_order"
        ]
        assert set(trace.steps.filter(kind="span").values_list("name", flat=True)) == {
            "Agent workflow",
            "Orders",
            "turn",
        }
    tool = runs["Where is order B2?"].steps.get(kind="tool_call")
    assert tool.input == {"order_id": "B2"} and "lookup_order" in tool.error


def test_pydantic_ai_genai_spans(client, tenant, other_tenant):
    """Pydantic AI's own OpenTelemetry GenAI spans: the agent's `invoke_agent` span
    a framework step, each `chat` span a model call with its tokens and the run's
    model, each tool run a call with its arguments. A root span that sets no status
    gives no outcome; the run that ran out of retries on its tool failed, its
    errors counted on the tool's calls."""
    path = LOGS / "pydantic-ai-2.78.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    ok, failed = runs["Where is order A1?"], runs["Where is order B2?"]
    assert (ok.status, failed.status) == ("unknown", "failed")
    assert (ok.agent, ok.model) == ("orders-pydantic", "scripted-gpt")
    assert ok.steps.get(kind="span").name == "invoke_agent orders"
    assert all(tokens and tokens > 0 for tokens in
               ok.steps.filter(kind="llm_call").values_list("tokens", flat=True))  # fmt: skip
    calls = list(failed.steps.filter(kind="tool_call").values_list("name", "input"))
    assert calls == [("lookup_order", {"order_id": "B2"})] * 2
    assert list(failed.steps.exclude(error="").values_list("kind", flat=True)) == [
        "tool_call",
        "tool_call",
    ]


def test_autogen_spans_make_no_run_of_an_agents_creation(client, tenant, other_tenant):
    """AutoGen AgentChat traces each agent's construction (`create_agent`) on a
    trace of its own: no run, by file as over OTLP (before: a run per agent built,
    with nothing in it). Its `invoke_agent` span is a framework step holding the
    tool's calls, the failing one with its error; AutoGen sets no status, so no
    outcome, and records no request."""
    path = LOGS / "autogen-agentchat-0.7.5" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    steps = sorted(list(t.steps.order_by("index").values_list("kind", "name", "error"))
                   for t in by_file.values())  # fmt: skip
    assert steps == [
        [("span", "invoke_agent orders", ""), ("tool_call", "lookup_order", "")],
        [("span", "invoke_agent orders", ""),
         ("tool_call", "lookup_order", "ValueError: order not found: B2")],
    ]  # fmt: skip
    assert {(t.agent, t.status, t.task) for t in by_file.values()} == {
        ("orders-autogen", "unknown", "")
    }


def test_strands_spans_keep_their_content_in_genai_events(client, tenant, other_tenant):
    """Strands Agents writes GenAI spans whose messages are events
    (`gen_ai.user.message`, `gen_ai.tool.message`, `gen_ai.choice`), not
    attributes: the task, each model call's messages and reply, and each tool's
    arguments and result are read from them, by file as over OTLP (before, all
    empty, and each turn of its event loop a "tool call")."""
    path = LOGS / "strands-agents-1.62.0" / "spans.jsonl"
    by_file, by_otlp = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed = runs["Where is order B2?"]
    assert list(failed.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "invoke_agent orders"), ("span", "execute_event_loop_cycle"),
        ("llm_call", "chat"), ("tool_call", "lookup_order"),
        ("span", "execute_event_loop_cycle"), ("llm_call", "chat"),
    ]  # fmt: skip
    tool = failed.steps.get(kind="tool_call")
    assert tool.input == {"order_id": "B2"}
    assert tool.output == [{"text": "Error: order not found: B2"}]
    assert tool.error == "ValueError: order not found: B2"
    # The agent span's usage (240) sums its two model calls': counted once, also
    # when the spans come again (an exporter's retry: the steps are upserted).
    assert failed.total_tokens == 240
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    for line in path.read_text().splitlines():
        body = json_format.Parse(line, ExportTraceServiceRequest()).SerializeToString()
        client.post("/v1/traces", body, content_type="application/x-protobuf",
                    headers={"x-hivemind-api-key": other_tenant.key})  # fmt: skip
    assert {t.total_tokens for t in Trace.objects.filter(workspace=other_tenant.workspace)} == {240}
    first_call = failed.steps.filter(kind="llm_call").order_by("index").first()
    assert first_call.input == [{"role": "user", "content": [{"text": "Where is order B2?"}]}]
    assert first_call.tokens == 120


def test_smolagents_spans_by_file_and_over_otlp_are_the_same_runs(client, tenant, other_tenant):
    """Spans smolagents' OpenInference instrumentation made, encoded by the
    OpenTelemetry SDK: imported from the file (`otlp-json`, protobuf's base64 ids
    read as hex) and posted to `/v1/traces` as protobuf, they give the same runs,
    named by the same trace ids. A tool's recorded Python call is read as its
    keyword arguments; its exception is its error, counted where it happened."""
    path = LOGS / "smolagents-1.26.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    for trace in by_file.values():
        assert (trace.agent, trace.status) == ("support-agent", "unknown")  # an agent span's OK
        calls = trace.steps.filter(kind="tool_call").order_by("index")
        assert list(calls.values_list("name", flat=True)) == ["lookup_order", "final_answer"]
        assert set(trace.steps.filter(kind="span").values_list("name", flat=True)) == {
            "ToolCallingAgent.run",
            "agent step",
        }
    failed = next(t for t in by_file.values() if t.task == "Where is order B2?")
    tool = failed.steps.get(name="lookup_order")
    assert (tool.kind, tool.input, tool.error) == (
        "tool_call",
        {"order_id": "B2"},
        "ValueError: order not found: B2",
    )
    assert failed.steps.exclude(error="").count() == 1  # not again on its agent step


def test_llama_index_spans_take_the_request_from_the_model_call_and_count_it_once(
    client, tenant, other_tenant
):
    """A LlamaIndex workflow agent's spans (OpenInference's LlamaIndex
    instrumentation): the run's root records the workflow's state, not the request,
    so the task is the model call's user message (before: 5 KB of the state's JSON);
    a model call made through a wrapper (`astream_chat` → `stream_chat` →
    `stream_complete`, each with the call's tokens; `stream_chat` also recorded
    beside `astream_chat`, with the same messages and no output) counts once, by file as over
    OTLP, also when each span arrives in an export of its own, children first (as
    a batch span processor sends them); a model call's input is its messages, not
    the Python reprs of LlamaIndex's message objects."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    path = LOGS / "llama-index-0.14.25" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed = runs["Where is order B2?"]
    assert (failed.agent, failed.model) == ("order-desk", "scripted-react")
    # Two model turns of 135 tokens each.
    assert failed.total_tokens == 270
    assert failed.steps.filter(kind="llm_call", tokens__isnull=False).count() == 2
    # And two model calls: `stream_chat`, recorded beside `astream_chat` with the
    # same messages and nothing of its own, is the same call (before: 4 calls).
    assert failed.steps.filter(kind="llm_call").count() == 2
    tool = failed.steps.get(kind="tool_call")
    assert (tool.name, tool.input, tool.error) == (
        "lookup_order", {"order_id": "B2"}, "ValueError: order not found: B2")  # fmt: skip
    first = failed.steps.filter(kind="llm_call").order_by("index").first()
    assert first.input[1] == {"role": "user", "content": "Where is order B2?"}
    # Span by span, in the order they ended.
    Trace.objects.filter(workspace=other_tenant.workspace).delete()
    for line in path.read_text().splitlines():
        export = json_format.Parse(line, ExportTraceServiceRequest())
        spans = [(span, resource, scope) for resource in export.resource_spans
                 for scope in resource.scope_spans for span in scope.spans]  # fmt: skip
        for span, resource, scope in sorted(spans, key=lambda s: s[0].end_time_unix_nano):
            one = ExportTraceServiceRequest()
            target = one.resource_spans.add(resource=resource.resource).scope_spans.add(
                scope=scope.scope)  # fmt: skip
            target.spans.append(span)
            response = client.post("/v1/traces", one.SerializeToString(),
                                   content_type="application/x-protobuf",
                                   headers={"x-hivemind-api-key": other_tenant.key})  # fmt: skip
            assert response.status_code == 200
    by_span = _runs(other_tenant.workspace)
    for key, trace in by_file.items():
        assert _span_steps(trace) == _span_steps(by_span[key])
        assert (by_span[key].task, by_span[key].total_tokens) == (trace.task, 270)


def test_crewai_spans_take_the_task_from_the_crews_tasks(client, tenant, other_tenant):
    """A CrewAI crew's spans (OpenInference's CrewAI instrumentation): the crew and
    its agent's task execution, framework steps both. Neither span's input states
    the request (the agent's is its configuration), so the task is the crew's first
    task (`crew_tasks`; before: the agent's configuration as JSON). The crew's span
    is named by a UUID glued to "Crew_", an identifier kept as it is (before: taken
    for a secret and redacted). This instrumentation records no model or tool span
    for a CrewAI 1.15 crew (the tool raised four times on one request, unseen), so
    the runs hold no calls."""
    path = LOGS / "crewai-1.15.30" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    for trace in runs.values():
        assert (trace.agent, trace.status, trace.redaction_counts) == (
            "order-crew",
            "unknown",  # the crew span's OK, set though its tool raised on B2
            {},
        )
        steps = list(trace.steps.order_by("index").values_list("kind", "name"))
        assert [kind for kind, _ in steps] == ["span", "span"]
        assert steps[0][1].startswith("Crew_") and steps[0][1].endswith(".kickoff")
        assert steps[1][1] == "Order desk._execute_core"


def test_google_adk_genai_spans(client, tenant, other_tenant):
    """Google ADK's own GenAI spans, message content captured on them: the workflow
    and the agent are framework steps, each `generate_content` a model call with
    its messages and tokens, each `execute_tool` a call with its arguments and
    result; the tool's error ends one run, which failed, counted once on the tool.
    The other run's root sets no status: its outcome is unknown."""
    path = LOGS / "google-adk-2.13.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    ok, failed = runs["Where is order A1?"], runs["Where is order B2?"]
    assert (ok.status, failed.status) == ("unknown", "failed")
    assert (ok.agent, ok.model, ok.total_tokens) == ("order-adk", "scripted-gemini", 270)
    assert list(ok.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "invoke_workflow orders"), ("span", "invoke_agent orders"),
        ("llm_call", "scripted-gemini"), ("tool_call", "lookup_order"),
        ("llm_call", "scripted-gemini"),
    ]  # fmt: skip
    assert ok.steps.get(kind="tool_call").output == {"result": "order A1: 2 items, shipped"}
    errors = list(failed.steps.exclude(error="").values_list("kind", "input", "error"))
    assert errors == [("tool_call", {"order_id": "B2"}, "ValueError: order not found: B2")]
    assert ok.session_id and ok.session_id != failed.session_id


def test_ai_sdk_spans_name_tools_and_the_request(client, tenant, other_tenant):
    """The AI SDK's (Vercel's `ai`) telemetry, as its JavaScript OTLP/JSON exporter
    sends it (hex ids, posted as JSON): `ai.generateText` is the agent's loop, a
    framework step holding the request (`ai.prompt`) and the answer; each
    `.doGenerate` a model call with its messages, reply and tokens; each
    `ai.toolCall` a call of the tool it names, with its arguments and result. Before,
    the tool calls were all "ai.toolCall" with nothing in them (a successful one
    left out), the loop's span dropped and the task empty."""
    path = LOGS / "ai-sdk-6.0.333" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path, json_body=True)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    ok, failed = runs["Where is order A1?"], runs["Where is order B2?"]
    assert (ok.agent, ok.model, ok.status, ok.total_tokens) == (
        "order-ai-sdk", "scripted-model", "unknown", 270)  # fmt: skip
    assert list(ok.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "ai.generateText"), ("llm_call", "scripted-model"),
        ("tool_call", "lookupOrder"), ("llm_call", "scripted-model"),
    ]  # fmt: skip
    tool = ok.steps.get(kind="tool_call")
    assert (tool.input, tool.output) == ({"orderId": "A1"}, "order A1: 2 items, shipped")
    errors = list(failed.steps.exclude(error="").values_list("kind", "name", "error"))
    assert errors == [("tool_call", "lookupOrder", "Error: order not found: B2")]
    reply = failed.steps.filter(kind="llm_call").order_by("index").last()
    assert reply.output == "I could not find order B2."


def test_a_hand_written_loop_over_the_openai_sdk_keeps_its_tool_runs(client, tenant, other_tenant):
    """An application's own loop over the OpenAI SDK, its model calls traced by
    OpenLLMetry's OpenAI instrumentation, its request and each tool run by plain
    spans of its own: a plain span named as a tool the model was offered is that
    tool's call, also when it carries nothing else (before, by file, the successful
    run lost its call, while the failing run kept its); the request's span, which
    holds the calls, is a framework step (before: a "tool call" over /v1/traces, and
    left out by file). By file as over OTLP."""
    path = LOGS / "openllmetry-openai-0.62.4" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    for trace in runs.values():
        assert (trace.agent, trace.model, trace.total_tokens) == ("order-loop", "scripted-gpt", 270)
        assert list(trace.steps.order_by("index").values_list("kind", "name")) == [
            ("span", "handle_request"), ("llm_call", "scripted-gpt"),
            ("tool_call", "lookup_order"), ("llm_call", "scripted-gpt"),
        ]  # fmt: skip
    assert runs["Where is order B2?"].steps.get(kind="tool_call").error == (
        "ValueError: order not found: B2")  # fmt: skip


@pytest.mark.parametrize(
    "folder", ["openllmetry-anthropic-0.62.4", "openinference-anthropic-3.1.0"]
)
def test_an_anthropic_loop_traced_at_its_model_client_alone(client, tenant, other_tenant, folder):
    """A hand-written loop over the Anthropic SDK, its model calls traced by
    OpenLLMetry's or OpenInference's Anthropic instrumentation, its tool run
    untraced. OpenInference's assistant turn keeps its text, given as content
    parts, beside its tool call. The SDK records
    each call too, in a span of its own beside OpenLLMetry's, with the call's
    tokens and no messages: the same call seen twice, so it is a framework step and
    the tokens count once (before: four model calls and 540 tokens a run). The tool
    call, only in the model calls' messages, is read from them, with the error the
    loop sent back."""
    from failures.selectors import run_calls
    from traces.messages import chat_text

    path = LOGS / folder / "spans.jsonl"
    by_file, by_otlp = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    for runs in (by_file, by_otlp):
        for trace in runs.values():
            assert (trace.agent, trace.model, trace.total_tokens) == (
                "order-desk", "scripted-claude", 270)  # fmt: skip
            assert list(trace.steps.order_by("index").values_list("kind", flat=True)) == [
                "span", "llm_call", "span", "llm_call", "span"]  # fmt: skip
        failed = next(t for t in runs.values() if t.task == "Where is order B2?")
        calls = run_calls(workspace_id=failed.workspace_id, trace_ids=[failed.pk])[failed.pk]
        assert [(c.index, c.name, c.input, c.error) for c in calls] == [
            (1, "lookup_order", {"order_id": "B2"}, "Error: order not found: B2")]  # fmt: skip
        answer = failed.steps.filter(kind="llm_call").order_by("index").last()
        said = chat_text(answer.input)
        assert 'assistant: Let me look that up.\n    → lookup_order({"order_id": "B2"})' in said
        assert said.endswith("← (toolu_B2) Error: order not found: B2")


def test_an_openai_loop_traced_by_openinference_at_its_model_client_alone(
    client, tenant, other_tenant
):
    """OpenInference's OpenAI instrumentation (Arize Phoenix's), a loop whose tool
    runs untraced: a model call's earlier tool calls and the call each result
    answers are kept from its indexed messages (before, the assistant turn that
    called the tool was stored as an empty message and the result named no call),
    and its answer, recorded as the whole chat completion response, reads as its
    message. So the run's tool call is read from its model calls (before: none)."""
    from failures.selectors import run_calls
    from traces.messages import chat_text

    path = LOGS / "openinference-openai-0.1.66" / "spans.jsonl"
    by_file, by_otlp = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    for runs in (by_file, by_otlp):
        failed = next(t for t in runs.values() if t.task == "Where is order B2?")
        first, second = failed.steps.filter(kind="llm_call").order_by("index")
        assert second.input[1:] == [
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
             "function": {"name": "lookup_order", "arguments": '{"order_id": "B2"}'}}]},
            {"role": "tool", "content": "error: order not found: B2", "tool_call_id": "call_1"},
        ]  # fmt: skip
        assert chat_text(first.output) == 'assistant: → lookup_order({"order_id": "B2"})'
        calls = run_calls(workspace_id=failed.workspace_id, trace_ids=[failed.pk])[failed.pk]
        assert [(c.index, c.name, c.input, c.error) for c in calls] == [
            (first.index, "lookup_order", {"order_id": "B2"}, "error: order not found: B2")]  # fmt: skip


def test_semantic_kernel_genai_spans(client, tenant, other_tenant):
    """Semantic Kernel's own GenAI spans (its OpenAI connector against a scripted
    server): the agent's invocation a framework step, its function-calling loop,
    a span of its own with no convention's attributes that holds the calls, a
    framework step too; each `chat` a model call with its tokens, the plugin's
    function a tool call whose exception is the run's one error. Semantic Kernel
    writes messages to logs, not spans: no task. A text completion ("text_completions",
    as it names them) is a model call."""
    from hivemind_client.formats import span_role

    path = LOGS / "semantic-kernel-1.45.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    steps = {t.error_count: list(t.steps.order_by("index").values_list("kind", "name"))
             for t in by_file.values()}  # fmt: skip
    assert sorted(steps) == [0, 1]
    for found in steps.values():
        assert found == [
            ("span", "invoke_agent orders"), ("span", "AutoFunctionInvocationLoop"),
            ("llm_call", "scripted-gpt"), ("tool_call", "Orders-lookup_order"),
            ("llm_call", "scripted-gpt"),
        ]  # fmt: skip
    failed = next(t for t in by_file.values() if t.error_count)
    assert (failed.agent, failed.total_tokens, failed.task) == ("order-sk", 270, "")
    assert failed.steps.get(kind="tool_call").error == "ValueError: order not found: B2"
    attrs = {"gen_ai.operation.name": "text_completions", "gen_ai.request.model": "m"}
    assert span_role(attrs, "text_completions m")[0] == "llm_call"


def test_microsoft_agent_framework_genai_spans(client, tenant, other_tenant):
    """Microsoft Agent Framework's own GenAI spans, sensitive data on (its OpenAI chat
    completions client against a scripted server): the agent's invocation a
    framework step whose summed usage is not counted again; each `chat` a model call
    with its messages and tokens; the tool a call whose exception, which the
    framework hands back to the model, is the run's one error; the request the
    task."""
    path = LOGS / "agent-framework-1.26.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    for run in runs.values():
        assert list(run.steps.order_by("index").values_list("kind", "name")) == [
            ("span", "invoke_agent orders"), ("llm_call", "scripted-gpt"),
            ("tool_call", "lookup_order"), ("llm_call", "scripted-gpt"),
        ]  # fmt: skip
        assert (run.agent, run.model, run.total_tokens) == ("order-maf", "scripted-gpt", 270)
    failed = runs["Where is order B2?"]
    assert (failed.error_count, runs["Where is order A1?"].error_count) == (1, 0)
    call = failed.steps.get(kind="tool_call")
    assert (call.input, call.error) == ({"order_id": "B2"}, "ValueError: order not found: B2")
    answer = failed.steps.filter(kind="llm_call").order_by("-index").first()
    assert answer is not None and "I could not find order B2." in str(answer.output)


def test_microsoft_agent_framework_workflow_spans(client, tenant, other_tenant):
    """The same requests through an Agent Framework workflow (the agent, then a
    reviewer), sent a span an export as they ended: the workflow's run and each
    executor's processing are framework steps holding the agents' steps; its edge
    groups and message sends, spans that carry nothing and hold nothing, are left
    out, over OTLP as by file, and its build, a trace of its own, is no run."""
    path = LOGS / "agent-framework-1.26.0" / "workflow_spans.jsonl"
    by_file, by_otlp = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    for runs in (by_file, by_otlp):
        failed = next(t for t in runs.values() if t.task == "Where is order B2?")
        assert list(failed.steps.order_by("index").values_list("kind", "name")) == [
            ("span", "invoke_workflow Sequential"), ("span", "executor.process orders"),
            ("span", "invoke_agent orders"), ("llm_call", "scripted-gpt"),
            ("tool_call", "lookup_order"), ("llm_call", "scripted-gpt"),
            ("span", "executor.process reviewer"), ("span", "invoke_agent reviewer"),
            ("llm_call", "scripted-gpt"),
        ]  # fmt: skip
        assert failed.steps.get(kind="tool_call").error == "ValueError: order not found: B2"
        assert (failed.agent, failed.total_tokens, failed.error_count) == ("order-maf", 405, 1)
    # The tool names the receiver keeps between exports are its bookkeeping, not shown.
    failed = next(t for t in by_otlp.values() if t.task == "Where is order B2?")
    assert failed.metadata["otlp_tools"] == ["lookup_order"]
    page = other_tenant.client_for(other_tenant.viewer).get(f"/w/globex/traces/{failed.pk}/")
    assert page.status_code == 200 and "otlp_tools" not in page.content.decode()


def test_mastra_spans_sent_in_chunks(client, tenant, other_tenant):
    """Mastra 1.71's OpenTelemetry exporter (OTLP/JSON, which its JavaScript exporter
    sent in chunks, with no length: `hivemind_web/chunked.py`), read by file and over
    OTLP alike: the agent's run a framework step whose own input (`mastra.agent_run.
    input`) is the task; each model call with its answer and tokens; the tool a call
    whose thrown error is the run's one error. The pieces of a streamed answer
    (`model_chunk`), which the model call holding them records whole, are left out."""
    path = LOGS / "mastra-1.71.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path, json_body=True)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed = runs["Where is order B2?"]
    assert (failed.agent, failed.model, failed.total_tokens) == (
        "order-mastra",
        "scripted-gpt",
        1840,
    )
    assert failed.steps.filter(kind="llm_call").count() == 2
    tool = failed.steps.get(kind="tool_call")
    assert (tool.name, tool.input, tool.error) == (
        "lookupOrder", {"orderId": "B2"}, "Error: order not found: B2")  # fmt: skip
    assert (failed.error_count, runs["Where is order A1?"].error_count) == (1, 0)
    root = failed.steps.get(parent_index=None)
    assert (root.kind, root.input) == ("span", "Where is order B2?")
    assert list(failed.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "invoke_agent orders"), ("span", "model_generation scripted-gpt"),
        ("span", "agent_step orders"), ("llm_call", "scripted-gpt"), ("tool_call", "lookupOrder"),
        ("span", "agent_step orders"), ("llm_call", "scripted-gpt"),
    ]  # fmt: skip


def test_agno_spans(client, tenant, other_tenant):
    """Agno's agent (OpenInference's Agno instrumentation, its OpenAI model against a
    scripted server): the agent's run a framework step holding the request, which is
    the task, and its session; each model call with its messages and tokens; the
    tool's error, which Agno hands back to the model, is the run's one error."""
    path = LOGS / "agno-3.1.10" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed = runs["Where is order B2?"]
    assert (failed.agent, failed.model, failed.total_tokens) == ("order-agno", "scripted-gpt", 270)
    assert failed.session_id and failed.session_id != runs["Where is order A1?"].session_id
    assert list(failed.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "orders.run"), ("llm_call", "scripted-gpt"),
        ("tool_call", "lookup_order"), ("llm_call", "scripted-gpt"),
    ]  # fmt: skip
    errors = list(failed.steps.exclude(error="").values_list("kind", "input", "error"))
    assert errors == [("tool_call", {"order_id": "B2"}, "order not found: B2")]


def test_dspy_spans(client, tenant, other_tenant):
    """A DSPy ReAct module (OpenInference's DSPy instrumentation, its LM against a
    scripted server in ChatAdapter's text format): the task is the question inside
    the module's keyword arguments (`{"input_args": {"question": ...}}`; before, the
    first model call's formatted prompt); each tool call is named by its tool (the
    span says `lookup_order.__call__`); a model call's output the assistant's message
    OpenInference lists; the tool's error, which DSPy hands back to
    the model as the observation, is the run's one error; the root span's OK is the
    instrumentation's, so the outcome is unknown, and says why."""
    path = LOGS / "dspy-3.4.1" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed = runs["Where is order B2?"]
    assert (failed.agent, failed.model, failed.status) == ("order-dspy", "scripted-gpt", "unknown")
    assert "instrumentation" in failed.metadata["inferred_status"]["reason"]
    calls = list(failed.steps.filter(kind="llm_call").order_by("index"))
    assert len(calls) == 3
    # Its answer, as the assistant's message (before: the completions' texts, a list).
    assert calls[0].output == [{"role": "assistant", "content": (
        '[[ ## next_thought ## ]]\nI should look up order B2.\n\n[[ ## next_tool_name ## ]]\n'
        'lookup_order\n\n[[ ## next_tool_args ## ]]\n{"order_id": "B2"}\n\n[[ ## completed ## ]]')}]  # fmt: skip
    assert list(failed.steps.filter(kind="tool_call").order_by("index").values_list(
        "name", "input")) == [("lookup_order", {"order_id": "B2"}), ("finish", {})]  # fmt: skip
    errors = list(failed.steps.exclude(error="").values_list("kind", "name", "error"))
    assert errors == [("tool_call", "lookup_order", "ValueError: order not found: B2")]
    assert runs["Where is order A1?"].error_count == 0


def test_openllmetry_langgraph_spans(client, tenant, other_tenant):
    """A LangGraph ReAct agent traced by OpenLLMetry's LangChain instrumentation (its
    GenAI spans: invoke_agent, execute_task, execute_tool, chat), its ChatOpenAI model
    against a scripted server: each step's input and output without the LangChain
    callback's envelope (before: `{"inputs": ..., "tags", "metadata", "kwargs"}`), a
    tool's arguments its input and its `ToolMessage`'s text its output; the tool's
    error that ended one run is counted once, on the tool, the run failed."""
    path = LOGS / "openllmetry-langgraph-0.62.4" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed, passed = runs["Where is order B2?"], runs["Where is order A1?"]
    assert (failed.status, failed.model, failed.total_tokens, failed.error_count) == (
        "failed", "scripted-gpt", 135, 1)  # fmt: skip
    tool = failed.steps.get(kind="tool_call")
    assert (tool.name, tool.input, tool.error) == (
        "lookup_order", {"order_id": "B2"}, "ValueError: order not found: B2")  # fmt: skip
    ok = passed.steps.get(kind="tool_call")
    assert (ok.input, ok.output) == ({"order_id": "A1"}, "order A1: 2 items, shipped")
    graph = failed.steps.get(kind="span", name="LangGraph")
    assert graph.input == {"messages": [["user", "Where is order B2?"]]}
    answer = passed.steps.filter(kind="span", name="RunnableSequence").order_by("index").last()
    assert answer.output == "Order A1 has shipped."
    # The conditional edge's Send, as where it goes (before: its repr, the graph state in it).
    route = failed.steps.get(kind="span", name="should_continue")
    assert route.output == "→ tools: lookup_order({'order_id': 'B2'})"
    assert passed.steps.filter(kind="llm_call").count() == 2 and passed.error_count == 0


def test_logfire_spans(client, tenant, other_tenant):
    """A hand-written loop traced by Pydantic Logfire (`instrument_openai`, and the
    application's own `logfire.span`s): a span is named by its message, the template
    filled in (before: `{tool}`, `handle_request {question}`), and given the fields it
    was given as its input (before: none, so a tool span that did not fail was left
    out as carrying nothing); the request's span, which holds the model calls and
    records no result, is a framework step; the tool's error is the run's one error."""
    path = LOGS / "logfire-5.4.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    for order, trace in (("A1", runs["Where is order A1?"]), ("B2", runs["Where is order B2?"])):
        assert list(trace.steps.order_by("index").values_list("kind", "name", "input")) == [
            ("span", f"handle_request Where is order {order}?", {"question": f"Where is order {order}?"}),
            ("llm_call", "scripted-gpt", trace.steps.get(index=1).input),
            ("tool_call", "lookup_order", {"tool": "lookup_order", "arguments": {"order_id": order}}),
            ("llm_call", "scripted-gpt", trace.steps.get(index=3).input),
        ]  # fmt: skip
        assert (trace.agent, trace.total_tokens) == ("order-logfire", 270)
    failed = runs["Where is order B2?"]
    assert list(failed.steps.exclude(error="").values_list("name", "error")) == [
        ("lookup_order", "ValueError: order not found: B2")]  # fmt: skip
    assert runs["Where is order A1?"].error_count == 0


def test_logfire_openai_agents_spans(client, tenant, other_tenant):
    """The OpenAI Agents SDK traced by Logfire's integration of it: the SDK's trace,
    task, agent run and turns framework steps (before: its trace, task and agent run
    calls, named by their templates); each model call with the messages it was sent
    and its reply (Logfire's `input` and `output` fields; before: none), the task its
    first user message (before: the trace's fields as JSON); the function tool a call
    of the tool by its name (before: `Function: lookup_order failed: ...`), its
    arguments and result, and the error the SDK records as a field (before: 'span
    status ERROR')."""
    path = LOGS / "logfire-5.4.0" / "agents_spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed, passed = runs["Where is order B2?"], runs["Where is order A1?"]
    assert list(failed.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "OpenAI Agents trace: Agent workflow"), ("span", "Task: Agent workflow"),
        ("span", "Agent run: 'orders'"), ("span", "Turn 1 for agent orders"),
        ("llm_call", "scripted-gpt"), ("tool_call", "lookup_order"),
        ("span", "Turn 2 for agent orders"), ("llm_call", "scripted-gpt"),
    ]  # fmt: skip
    first = failed.steps.filter(kind="llm_call").order_by("index").first()
    assert first.input[1] == {"role": "user", "content": "Where is order B2?"}
    assert first.output[0]["tool_calls"][0]["function"]["name"] == "lookup_order"
    tool = failed.steps.get(kind="tool_call")
    assert (tool.input, tool.error) == ({"order_id": "B2"}, (
        "Error running tool (non-fatal): Tool execution failed. Error details are redacted."))  # fmt: skip
    ok = passed.steps.get(kind="tool_call")
    assert (ok.input, ok.output, ok.error) == ({"order_id": "A1"}, "order A1: 2 items, shipped", "")
    assert (failed.error_count, passed.error_count, failed.total_tokens) == (1, 0, 270)


def test_logfire_pydantic_ai_spans(client, tenant, other_tenant):
    """Pydantic AI traced through Logfire (`instrument_pydantic_ai`): its own GenAI
    spans, which Logfire's message templates and fields ride along with, read as
    without Logfire: the agent's run a framework step, the model calls with their
    messages, the tool a call of the tool with its arguments and result; the tool's
    error, which ended one run, counted once, on the tool, the run failed."""
    path = LOGS / "logfire-5.4.0" / "pydantic_ai_spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    passed, failed = runs["Where is order A1?"], runs["Where is order B2?"]
    assert list(passed.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "invoke_agent agent"), ("llm_call", "scripted-gpt"),
        ("tool_call", "lookup_order"), ("llm_call", "scripted-gpt"),
    ]  # fmt: skip
    ok = passed.steps.get(kind="tool_call")
    assert (ok.input, ok.output) == ({"order_id": "A1"}, "order A1: 2 items, shipped")
    assert (failed.status, failed.error_count, passed.error_count) == ("failed", 1, 0)
    tool = failed.steps.get(kind="tool_call")
    assert (tool.input, tool.error) == ({"order_id": "B2"}, "ValueError: order not found: B2")


def test_claude_code_hooks_then_its_headless_output_make_one_run(client, tenant):
    """Claude Code 2.1.332's own hook payloads, posted as its hooks post them, make
    one run whose failing Bash call ended it (failed, read from the session); its
    headless `stream-json` output for the same session then merges into that run:
    the call gains its output and tokens (each response's input and output, as the
    result line sums them; before, the output alone), the closing reply is one step, not two
    (the Stop hook's copy and the transcript's; before, both were kept), and the
    run's step count is the steps it has (before, the merge added the new count to
    the old: 9 for 4). Merged again: the same."""
    from django.test import TestCase

    folder = LOGS / "claude-code-2.1.332"
    # Hooks post as the session runs; these are posted now, so each is dated as it
    # would have arrived (the time a replayed log gives, `timestamp`): around the
    # run's first message in the headless output.
    first = json.loads(next(line for line in (folder / "stream.jsonl").read_text().splitlines()
                            if '"timestamp"' in line))["timestamp"]  # fmt: skip
    start = datetime.fromisoformat(first.replace("Z", "+00:00")) - timedelta(seconds=1)
    for n, line in enumerate((folder / "hooks.jsonl").read_text().splitlines()):
        payload = {**json.loads(line), "timestamp": (start + timedelta(seconds=n)).isoformat()}
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post("/api/v1/hooks/claude-code", json.dumps(payload),
                                   content_type="application/json", headers=tenant.api_headers())  # fmt: skip
        assert response.status_code == 200, response.content
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.agent, trace.status, trace.task) == (
        "claude-code", "failed", "Where is order B2? The orders are in orders/.")  # fmt: skip
    assert "Bash" in trace.metadata["inferred_status"]["reason"]
    # 2.1's bookkeeping fields (prompt_id, effort…) are not kept per event as unknown.
    assert not [key for key in trace.metadata if key.startswith("extra:")]
    expected = [("user_prompt", "", None), ("tool_call", "Bash", "cat orders/B2.json"),
                ("assistant_message", "", None), ("span", "session end", None)]  # fmt: skip
    for again in (False, True):
        result = traces_import_file(workspace=tenant.workspace, fmt="claude-transcript",
                                    path=folder / "stream.jsonl")  # fmt: skip
        assert result.ok and (result.updated, result.unchanged) == ((0, 1) if again else (1, 0))
        trace.refresh_from_db()
        steps = list(trace.steps.order_by("index"))
        assert [(s.kind, s.name, (s.input or {}).get("command") if s.kind == "tool_call" else None)
                for s in steps] == expected  # fmt: skip
        assert trace.step_count == len(steps) == 4 and trace.error_count == 1
        call = steps[1]
        assert call.output == call.error == (
            "Exit code 1\ncat: orders/B2.json: No such file or directory")  # fmt: skip
        # Each response's tokens, read and written (120 + 15), once: the run's are
        # the result line's (240 input, 30 output).
        assert (call.tokens, trace.total_tokens, trace.model) == (135, 270, "claude-opus-5-5")
        assert trace.cost_usd is not None and trace.status == "failed"


def test_claude_code_own_opentelemetry_spans(client, tenant, other_tenant):
    """Claude Code 2.1.332's own OpenTelemetry tracing (beta; `span.type`: an
    interaction, model requests, a tool call, inside it the tool's execution and the
    wait for permission), exported as OTLP/JSON: the task is the interaction's
    prompt, the call is Bash with the command it ran and the execution's failure
    (the tool failed), the execution and the permission wait are framework steps.
    Before, the task was empty and the failure was a call named
    `claude_code.tool.execution` under a Bash framework step. The same by file, over
    `/v1/traces` (JSON, as its exporter sends it), and span by span in the order
    they ended (the execution before its call)."""
    path = LOGS / "claude-code-2.1.332" / "otel_traces.json"
    result = traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.agent, trace.model, trace.task, trace.total_tokens) == (
        "claude-code", "claude-opus-5-5", "Where is order B2? The orders are in orders/.", 270)  # fmt: skip
    assert trace.session_id and trace.error_count == 1
    steps = list(trace.steps.order_by("index").values_list("kind", "name", "input", "error"))
    assert steps == [
        ("span", "claude_code.interaction", "Where is order B2? The orders are in orders/.", ""),
        ("llm_call", "claude-opus-5-5", None, ""),
        ("tool_call", "Bash", {"command": "cat orders/B2.json"}, "Shell command failed"),
        ("span", "claude_code.tool.blocked_on_user", None, ""),
        ("span", "claude_code.tool.execution", None, ""),
        ("llm_call", "claude-opus-5-5", None, ""),
    ]  # fmt: skip
    export = json.loads(path.read_text())
    response = client.post("/v1/traces", json.dumps(export), content_type="application/json",
                           headers={"x-hivemind-api-key": other_tenant.key})  # fmt: skip
    assert response.status_code == 200
    over_otlp = Trace.objects.get(workspace=other_tenant.workspace)
    assert _span_steps(over_otlp) == _span_steps(trace)
    assert (over_otlp.task, over_otlp.error_count) == (trace.task, 1)
    # Span by span, in the order they ended.
    over_otlp.delete()
    spans = [(span, rs, ss) for rs in export["resourceSpans"] for ss in rs["scopeSpans"]
             for span in ss["spans"]]  # fmt: skip
    for span, rs, ss in sorted(spans, key=lambda s: int(s[0]["endTimeUnixNano"])):
        one = {"resourceSpans": [{**rs, "scopeSpans": [{**ss, "spans": [span]}]}]}
        response = client.post("/v1/traces", json.dumps(one), content_type="application/json",
                               headers={"x-hivemind-api-key": other_tenant.key})  # fmt: skip
        assert response.status_code == 200
    by_span = Trace.objects.get(workspace=other_tenant.workspace)
    assert _span_steps(by_span) == _span_steps(trace)
    assert (by_span.task, by_span.error_count) == (trace.task, 1)


def test_claude_code_own_spans_without_prompts_or_tool_details(tenant, tmp_path):
    """Without OTEL_LOG_USER_PROMPTS and OTEL_LOG_TOOL_DETAILS, Claude Code writes
    `<REDACTED>` for the prompt and leaves out the command (as a run of 2.1.332 made
    that way showed): the run has no task rather than `<REDACTED>`, and the Bash
    call stays the failed call, with what its span still says (the program, its
    class, the call's id). Before, it became a framework step and the run had no
    failed call."""
    export = json.loads((LOGS / "claude-code-2.1.332" / "otel_traces.json").read_text())
    for rs in export["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                span["attributes"] = [
                    {**a, "value": {"stringValue": "<REDACTED>"}} if a["key"] == "user_prompt" else a
                    for a in span["attributes"] if a["key"] not in ("full_command", "description")
                ]  # fmt: skip
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(export))
    assert traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=path).ok
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.task == "" and trace.error_count == 1
    call = trace.steps.get(kind="tool_call")
    assert (call.name, call.error) == ("Bash", "Shell command failed")
    assert call.input == {"bash_argv0": "cat", "bash_command_class": "file_read",
                          "tool_use_id": "toolu_01"}  # fmt: skip


def test_a_gemini_cli_record_log(tenant, tmp_path):
    """Gemini CLI 0.61 keeps a session as a record log (`session-*.jsonl`: a header,
    `$set` lines, message records updated by id), not one JSON document: before, the
    reader refused it ("not valid JSON"). The CLI's own context message is no prompt;
    the shell command's failure is read past the untrusted-context wrapper the CLI
    now puts around its output; a folder import finds the file."""
    from hivemind_client.formats import files_under

    folder = LOGS / "gemini-cli-0.61.0"
    path = folder / "session.jsonl"
    result = traces_import_file(workspace=tenant.workspace, fmt="gemini-session", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.agent, trace.model, trace.task, trace.total_tokens) == (
        "gemini-cli", "gemini-3.1-pro-preview", "Where is order B2? The orders are in orders/.",
        270)  # fmt: skip
    steps = list(trace.steps.order_by("index").values_list("kind", "name", "error"))
    assert steps == [
        ("user_prompt", "", ""),
        ("tool_call", "run_shell_command", "cat: orders/B2.json: No such file or directory\nExit Code: 1"),
        ("assistant_message", "", ""),
    ]  # fmt: skip
    again = traces_import_file(workspace=tenant.workspace, fmt="gemini-session", path=path)
    assert (again.created, again.unchanged) == (0, 1)
    chats = tmp_path / "chats"
    chats.mkdir()
    (chats / "session-2026-12-06T12-07-abc.jsonl").write_bytes(path.read_bytes())
    assert [p.name for p in files_under([tmp_path], "gemini-session")] == [
        "session-2026-12-06T12-07-abc.jsonl"
    ]


def test_a_gemini_cli_headless_stream(tenant, tmp_path):
    """Gemini CLI 0.61.0's headless output (`--output-format stream-json`) of the
    same run as its chat recording: one run of its own (`gemini-stream-<session>`,
    the recording's session id), the prompt, the shell call with what it printed,
    the reply (its chunks joined), the model that did the work (the CLI said `auto`
    and routed) and the run's tokens. Before, the reader took it for a chat recording with no
    messages: an empty run. The
    stream does not say the command failed (the tool ran: status `success`), so
    the call carries no error there. A run that ended in an error, with a call that
    failed (the same lines, as the CLI writes those), ends on an error step."""
    folder = LOGS / "gemini-cli-0.61.0"
    result = traces_import_file(workspace=tenant.workspace, fmt="gemini-session",
                                path=folder / "stream.jsonl")  # fmt: skip
    assert result.ok and result.created == 1, result.error
    recording = traces_import_file(workspace=tenant.workspace, fmt="gemini-session",
                                   path=folder / "session.jsonl")  # fmt: skip
    assert recording.ok and recording.created == 1
    stream = Trace.objects.get(workspace=tenant.workspace, external_id__startswith="gemini-stream-")
    session = Trace.objects.exclude(pk=stream.pk).get(workspace=tenant.workspace)
    assert stream.session_id == session.session_id
    assert stream.external_id == f"gemini-stream-{session.session_id}"
    assert (stream.agent, stream.model, stream.task, stream.status) == (
        "gemini-cli", "scripted-gemini", "Where is order B2? The orders are in orders/.", "unknown")  # fmt: skip
    # The run's tokens (the routing model's too), on the first step it made.
    assert stream.metadata["gemini_stream_tokens"] == stream.total_tokens == 405
    steps = list(stream.steps.order_by("index"))
    assert [(s.kind, s.name, s.error) for s in steps] == [
        ("user_prompt", "", ""), ("tool_call", "run_shell_command", ""),
        ("assistant_message", "", "")]  # fmt: skip
    assert steps[1].input["command"] == "cat orders/B2.json"
    assert steps[1].output == "cat: orders/B2.json: No such file or directory"
    assert steps[2].output == "I could not find order B2: orders/B2.json does not exist."

    lines = [json.loads(line) for line in (folder / "stream.jsonl").read_text().splitlines()]
    for line in lines:
        line["session_id"] = "ended-in-error" if line["type"] == "init" else line.get("session_id")
        if line["type"] == "tool_result":
            line |= {"status": "error", "output": "",
                     "error": {"type": "TOOL_EXECUTION_ERROR", "message": "Command failed: exit 1"}}  # fmt: skip
        if line["type"] == "message" and line["role"] == "assistant":
            first = {**line, "content": "I could not "}
            line["content"] = "find it."
        if line["type"] == "result":
            line |= {"status": "error",
                     "error": {"type": "FatalTurnLimitedError", "message": "Reached max turns"}}  # fmt: skip
    at = next(
        i
        for i, line in enumerate(lines)
        if line["type"] == "message" and line["role"] == "assistant"
    )
    lines.insert(at, first)
    path = tmp_path / "failed.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    assert traces_import_file(workspace=tenant.workspace, fmt="gemini-session", path=path).ok
    failed = Trace.objects.get(
        workspace=tenant.workspace, external_id="gemini-stream-ended-in-error"
    )
    assert list(failed.steps.order_by("index").values_list("kind", "error", "output")) == [
        ("user_prompt", "", None), ("tool_call", "Command failed: exit 1", None),
        ("assistant_message", "", "I could not find it."),
        ("error", "The run ended: Reached max turns", None)]  # fmt: skip


def test_gemini_cli_hooks_make_a_run(client, tenant, other_tenant):
    """Gemini CLI 0.61.0's own hook payloads (the events `install-gemini-hooks`
    installs), posted to `/api/v1/hooks/gemini-cli` as the capture hook posts them,
    make one run (`gemini-cli-<session>`, apart from the chat recording's run): the
    prompt, the failing shell command failed with its own words and exit code, the
    reply, the session's end; failed, read from the session. The same run as the
    recording of that session says. Another workspace's key reaches nothing;
    anonymous is refused."""
    from django.test import TestCase

    folder = LOGS / "gemini-cli-0.61.0"
    lines = (folder / "hooks.jsonl").read_text().splitlines()
    assert client.post("/api/v1/hooks/gemini-cli", lines[0],
                       content_type="application/json").status_code == 401  # fmt: skip
    for line in lines:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post("/api/v1/hooks/gemini-cli", line,
                                   content_type="application/json", headers=tenant.api_headers())  # fmt: skip
        assert response.status_code == 200, response.content
    trace = Trace.objects.get(workspace=tenant.workspace)
    session = json.loads(lines[0])["session_id"]
    assert (trace.external_id, trace.agent, trace.task, trace.status) == (
        f"gemini-cli-{session}", "gemini-cli", "Where is order B2? The orders are in orders/.",
        "failed")  # fmt: skip
    steps = list(trace.steps.order_by("index").values_list("kind", "name", "error"))
    assert steps == [
        ("user_prompt", "", ""),
        ("tool_call", "run_shell_command", "cat: orders/B2.json: No such file or directory\nExit Code: 1"),
        ("assistant_message", "assistant", ""),
        ("span", "session end", ""),
    ]  # fmt: skip
    assert "run_shell_command" in trace.metadata["inferred_status"]["reason"]
    # Each event's time is its step's, not an unknown field kept per event.
    assert not [key for key in trace.metadata if key.startswith("extra:")]
    recording = traces_import_file(workspace=tenant.workspace, fmt="gemini-session",
                                   path=folder / "session.jsonl")  # fmt: skip
    assert recording.ok and recording.created == 1  # a run of its own, as documented
    recorded = Trace.objects.get(workspace=tenant.workspace, external_id=f"gemini-{session}")
    assert recorded.steps.get(kind="tool_call").error == steps[1][2]
    assert not Trace.objects.filter(workspace=other_tenant.workspace).exists()


def test_codex_cli_hooks_then_its_rollout(client, tenant):
    """Codex CLI 0.171.0's own hook payloads (the events `install-codex-hooks`
    installs) make one run; Codex sends a command's result as its printed text, with
    no exit code, so the failing command is not seen as failed and the run ends
    `unknown`, saying why and what to import (before: `succeeded`, a state nothing
    backed). The same session's rollout, imported, completes the run: the call
    failed, and the run with it."""
    from django.test import TestCase

    folder = LOGS / "codex-cli-0.171.0"
    for line in (folder / "hooks.jsonl").read_text().splitlines():
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post("/api/v1/hooks/codex", line, content_type="application/json",
                                   headers=tenant.api_headers())  # fmt: skip
        assert response.status_code == 200, response.content
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.agent, trace.task, trace.status) == (
        "codex", "Where is order B2? The orders are in orders/.", "unknown")  # fmt: skip
    assert "no exit code" in trace.metadata["inferred_status"]["reason"]
    call = trace.steps.get(kind="tool_call")
    assert (call.name, call.error) == ("Bash", "")
    assert call.output == "cat: orders/B2.json: No such file or directory\n"
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout",
                                path=folder / "rollout.jsonl")  # fmt: skip
    assert result.ok and result.updated == 1, result.error
    trace.refresh_from_db()
    assert trace.status == "failed"
    failed = trace.steps.exclude(error="").get(kind="tool_call")
    assert "No such file or directory" in failed.error


@pytest.fixture
def capture_processes(monkeypatch):  # type: ignore[no-untyped-def]
    """The processes the capture hook starts (a transcript's merge at a turn's end),
    waited for before the test's database is emptied: one still sending then
    deadlocked the flush at teardown (a fresh clone's CI, session 61)."""
    import subprocess

    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    def keep(*args, **kwargs):  # type: ignore[no-untyped-def]
        process = real(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", keep)
    yield started
    for process in started:
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()


def _capture_session(live_server, tmp_path, monkeypatch, *, source: str, folder: str,
                     transcript: str, saved_as: str) -> tuple[object, dict]:  # type: ignore[no-untyped-def]  # fmt: skip
    """A new workspace's key and this server in the environment, then each of the
    folder's real hook payloads through the capture hook, naming a copy of the
    folder's `transcript` (saved as `saved_as`) as the session's: the workspace,
    and the last payload sent. Nothing is left in the spool."""
    import time

    from hivemind_client.capture import capture
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name=f"{source} capture", owner=make_user(f"{source}-capture"))
    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", make_key(workspace, scopes=[Scope.INGEST]))
    monkeypatch.setenv("HIVEMIND_SPOOL", str(tmp_path / "spool.jsonl"))
    copy = tmp_path / saved_as
    copy.write_bytes((LOGS / folder / transcript).read_bytes())
    payload: dict = {}
    for line in (LOGS / folder / "hooks.jsonl").read_text().splitlines():
        payload = {**json.loads(line), "transcript_path": str(copy)}
        # A hook has 0.9 s; a test server on a busy machine may take longer.
        capture(json.dumps(payload), source=source, started=time.monotonic() + 60)
    assert not (tmp_path / "spool.jsonl").exists() or not (tmp_path / "spool.jsonl").read_text()
    return workspace, payload


def _waited(read, done):  # type: ignore[no-untyped-def]
    """`read()` again every half second until `done` says it is done, for at most two
    minutes (a wait for another process, not a measure); its last value."""
    import time

    deadline = time.monotonic() + 120
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def test_codex_capture_merges_the_rollout_at_the_end_of_a_turn(live_server, tmp_path,
                                                              monkeypatch, capture_processes):  # fmt: skip
    """The capture hook, at a Codex turn's end (`Stop`), imports the session's
    rollout in a process of its own: the run its hooks built gets the exit codes
    they lack, and ends failed at the failing command without anyone importing
    anything (seen end to end with Codex CLI 0.171.0 against `make run`'s server).
    HIVEMIND_CODEX_ROLLOUT=off leaves it to the person."""

    workspace, payload = _capture_session(live_server, tmp_path, monkeypatch, source="codex",
                                          folder="codex-cli-0.171.0", transcript="rollout.jsonl",
                                          saved_as="rollout.jsonl")  # fmt: skip
    trace = _waited(lambda: Trace.objects.get(workspace=workspace), lambda t: t.status == "failed")
    assert trace.status == "failed", trace.metadata.get("inferred_status")
    assert "No such file or directory" in trace.steps.exclude(error="").get().error

    monkeypatch.setenv("HIVEMIND_CODEX_ROLLOUT", "off")
    from hivemind_client.capture import merge_transcript_later

    assert not merge_transcript_later({**payload, "hook_event_name": "Stop"}, "codex")


def test_claude_code_capture_merges_the_transcript_at_the_end_of_a_turn(
    live_server, tmp_path, monkeypatch, capture_processes
):
    """The capture hook, at a Claude Code turn's end (`Stop`, `SessionEnd`), imports
    the session's transcript in a process of its own: the run its hooks built (the
    prompt, the failing Bash call, the turn's end) gets what they lack, each model
    response's tokens, in one run. Claude Code 2.1.332's real hook payloads;
    the same session's headless output stands for its transcript (the session file
    is not committed; `claude-transcript` reads both).
    HIVEMIND_CLAUDE_TRANSCRIPT=off leaves it to the person."""

    from hivemind_client.capture import merge_transcript_later

    workspace, payload = _capture_session(
        live_server, tmp_path, monkeypatch, source="claude-code", folder="claude-code-2.1.332",
        transcript="stream.jsonl", saved_as="b1f7816d-5a4b-4a81-8393-e2e2ada707ba.jsonl",
    )  # fmt: skip
    trace = _waited(lambda: Trace.objects.get(workspace=workspace), lambda t: t.total_tokens)
    assert trace.external_id == "claude-code-b1f7816d-5a4b-4a81-8393-e2e2ada707ba"
    assert trace.total_tokens == 270  # the session's two model responses
    reply = "I could not find order B2: orders/B2.json does not exist."
    assert trace.steps.filter(kind="assistant_message", output=reply).exists()
    assert trace.steps.filter(kind="tool_call", name="Bash").count() == 1  # merged, not twice
    assert trace.status == "failed"

    monkeypatch.setenv("HIVEMIND_CLAUDE_TRANSCRIPT", "off")
    assert not merge_transcript_later({**payload, "hook_event_name": "Stop"}, "claude-code")
    monkeypatch.delenv("HIVEMIND_CLAUDE_TRANSCRIPT")
    assert not merge_transcript_later({**payload, "hook_event_name": "PreToolUse"}, "claude-code")


def test_openhands_capture_imports_the_saved_conversation_at_the_end_of_a_turn(
    live_server, tmp_path, monkeypatch, capture_processes
):
    """The capture hook, at an OpenHands turn's end (`Stop`) and the session's
    (`SessionEnd`), imports the conversation OpenHands saved (found by the session's
    id under HIVEMIND_OPENHANDS_CONVERSATIONS, else ~/.openhands/conversations) in a
    process of its own, through the API: it replaces the steps the hooks built, in
    one run, with each model answer's tokens. HIVEMIND_OPENHANDS_CONVERSATION=off
    leaves it to the person."""

    from hivemind_client.capture import merge_transcript_later

    conversations = LOGS / "openhands-sdk-1.58.2" / "conversations"
    monkeypatch.setenv("HIVEMIND_OPENHANDS_CONVERSATIONS", str(conversations))
    workspace, payload = _capture_session(
        live_server, tmp_path, monkeypatch, source="openhands", folder="openhands-sdk-1.58.2",
        transcript="hooks.jsonl", saved_as="unused.jsonl",
    )  # fmt: skip
    runs = _waited(lambda: _runs(workspace),
                   lambda r: len(r) == 2 and all(t.total_tokens for t in r.values()))  # fmt: skip
    finished = runs["openhands-7d0c5a52-0000-4000-8000-000000000001"]
    assert list(finished.steps.order_by("index").values_list("kind", "tokens")) == [
        ("user_prompt", None), ("tool_call", 135), ("tool_call", 155), ("tool_call", 175)]  # fmt: skip
    stuck = runs["openhands-7d0c5a52-0000-4000-8000-000000000002"]
    assert stuck.status == "failed" and stuck.steps.filter(kind="tool_call").count() == 4

    monkeypatch.setenv("HIVEMIND_OPENHANDS_CONVERSATION", "off")
    assert not merge_transcript_later(payload, "openhands")
    monkeypatch.delenv("HIVEMIND_OPENHANDS_CONVERSATION")
    assert not merge_transcript_later({**payload, "event_type": "PostToolUse"}, "openhands")
    assert not merge_transcript_later({**payload, "session_id": "not-a-uuid"}, "openhands")


def test_codex_cli_rollout_and_exec_output(tenant):
    """Codex CLI 0.171.0's own session rollout and `codex exec --json` output, made
    against a scripted Responses API: the rollout is one run with the request as its
    task, the failing `exec_command` call (its decisive line the command's, past
    Codex's chunk header) and the answer; each model response's tokens
    (`token_count`) are on the first step it made (before, a rollout's runs had no
    tokens). The exec output is a run of its own, as documented, each turn's
    tokens on the first step it made."""
    from traces.errors import decisive_line

    folder = LOGS / "codex-cli-0.171.0"
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout",
                                path=folder / "rollout.jsonl")  # fmt: skip
    assert result.ok and result.created == 1, result.error
    run = Trace.objects.get(workspace=tenant.workspace)
    assert (run.agent, run.model, run.task, run.total_tokens) == (
        "codex", "scripted-codex", "Where is order B2? The orders are in orders/.", 270)  # fmt: skip
    steps = list(run.steps.order_by("index"))
    assert [(s.kind, s.name, s.tokens) for s in steps] == [
        ("user_prompt", "", None), ("tool_call", "exec_command", 135),
        ("assistant_message", "", 135),
    ]  # fmt: skip
    assert decisive_line(steps[1].error) == "cat: orders/B2.json: No such file or directory"
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout",
                                path=folder / "exec.jsonl")  # fmt: skip
    assert result.ok and result.created == 1, result.error
    exec_run = Trace.objects.get(workspace=tenant.workspace, external_id__startswith="codex-exec-")
    call = exec_run.steps.get(kind="tool_call")
    assert call.error.strip() == "cat: orders/B2.json: No such file or directory"
    # The turn's tokens (240 + 30), on the first step it made; before, the run had
    # none (only `metadata.codex_exec_tokens`).
    assert (call.tokens, exec_run.total_tokens, exec_run.metadata["codex_exec_tokens"]) == (
        270, 270, 270)  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_rollout_merge_waits_for_the_sessions_hook_events():
    """A transcript or rollout merged into a hook session takes the session's lock
    from reading its hook steps to writing the merge, as each hook event does: an
    event arriving meanwhile (the capture hook imports a Codex rollout at a turn's
    end while the next turn begins) is numbered after it, not lost in the rewrite.
    Here the lock is held by another transaction; the merge waits on it."""
    import threading
    import time

    from django.db import connection, connections, transaction

    from tests.factories import make_user, make_workspace
    from traces.claude_code import hook_ingest, session_lock

    workspace = make_workspace(name="Merge lock", owner=make_user("merge-lock"))
    folder = LOGS / "codex-cli-0.171.0"
    lines = [json.loads(line) for line in (folder / "hooks.jsonl").read_text().splitlines()]
    for payload in lines:
        hook_ingest(workspace=workspace, payload=payload, source="codex")
    external = f"codex-{lines[0]['session_id']}"
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            session_lock(workspace.pk, external)
            held.set()
            release.wait(120)
        connections.close_all()

    def merge() -> None:
        result = traces_import_file(workspace=workspace, fmt="codex-rollout",
                                    path=folder / "rollout.jsonl")  # fmt: skip
        if result.ok and result.updated == 1:
            done.set()
        connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(60)
    merger = threading.Thread(target=merge)
    merger.start()
    waiting, deadline = False, time.monotonic() + 120  # a wait, not a measure
    while not waiting and time.monotonic() < deadline and not done.is_set():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND wait_event_type = 'Lock' AND wait_event = 'advisory'")  # fmt: skip
            waiting = cursor.fetchone()[0] > 0
        time.sleep(0.05)
    release.set()
    holder.join(60)
    merger.join(120)
    assert waiting and done.is_set()
    assert Trace.objects.get(workspace=workspace, external_id=external).status == "failed"


def test_claude_codes_own_spans_of_a_session_its_hooks_capture_are_left_to_the_hooks(
    client, tenant
):
    """With the hooks and the beta tracing both on, a session was two runs (and
    counted twice in every figure): its spans are now left to the hooks' run."""
    export = json.loads((LOGS / "claude-code-2.1.332" / "otel_traces.json").read_text())
    session = "98a62394-81c3-4ecf-949e-2633041b0857"  # the spans' session.id
    hook = {"hook_event_name": "UserPromptSubmit", "session_id": session,
            "prompt": "Where is order B2? The orders are in orders/.", "cwd": "/tmp/project",
            "transcript_path": "/tmp/t.jsonl"}  # fmt: skip
    response = client.post("/api/v1/hooks/claude-code", json.dumps(hook),
                           content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200
    response = client.post("/v1/traces", json.dumps(export), content_type="application/json",
                           headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 200 and response.json() == {}
    assert list(_runs(tenant.workspace)) == [f"claude-code-{session}"]


def test_inspect_runs_stored_under_their_former_ids_are_found_again(tenant):
    """Until 2026-12-07 an Inspect run's id ("inspect-<22-character run id>-s1-e1")
    was stored as "[SECRET:…]". Importing the same log after the upgrade finds those
    runs, gives them their id, and adds none."""
    from collections import Counter

    from workspaces.models import PiiPolicy
    from workspaces.redaction import redactor_for_policy

    path = next((LOGS / "inspect-0.3.285").glob("*.eval"))
    first = traces_import_file(workspace=tenant.workspace, fmt="inspect-log", path=path)
    assert first.ok and first.created == 2, first.error
    runs = list(_runs(tenant.workspace).values())
    assert all(t.external_id.startswith("inspect-") for t in runs)
    redactor = redactor_for_policy(PiiPolicy.objects.get(workspace=tenant.workspace))
    for trace in runs:  # as an earlier version stored them
        former = redactor.former_identifier(trace.external_id)
        assert former is not None and former.startswith("[SECRET:")
        Trace.objects.filter(pk=trace.pk).update(external_id=former)
    assert redactor.identifier(runs[0].external_id, Counter()) == runs[0].external_id
    again = traces_import_file(workspace=tenant.workspace, fmt="inspect-log", path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2), again.error
    assert sorted(_runs(tenant.workspace)) == sorted(t.external_id for t in runs)


def test_haystack_agent_spans(client, tenant, other_tenant):
    """A Haystack Agent (its OpenTelemetry tracer, content tracing on), its
    OpenAIChatGenerator against a scripted server: each model call is a call of the
    model its replies name, with the messages sent and the replies as OpenAI's messages
    (before: nothing, every span a call named by the span with no input or output);
    each tool call is named by its tool with its arguments and result; the tool's
    failure, which Haystack records as `haystack.tool.error` and an `{"error": ...}`
    output and not in the span's status, is the run's one error; the Agent's run and
    steps are framework steps."""
    path = LOGS / "haystack-3.4.1" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed, passed = runs["Where is order B2?"], runs["Where is order A1?"]
    assert list(failed.steps.order_by("index").values_list("kind", "name")) == [
        ("span", "haystack.agent.run"), ("span", "haystack.agent.step"),
        ("llm_call", "scripted-gpt"), ("tool_call", "lookup_order"),
        ("span", "haystack.agent.step"), ("llm_call", "scripted-gpt"),
    ]  # fmt: skip
    assert (failed.agent, failed.model, failed.total_tokens, failed.status) == (
        "support-agent", "scripted-gpt", 270, "unknown")  # fmt: skip
    first = failed.steps.get(index=2)
    assert first.input == [
        {"role": "system", "content": "You answer questions about orders."},
        {"role": "user", "content": "Where is order B2?"},
    ]
    assert first.output == [{"role": "assistant", "content": "", "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id": "B2"}'}}]}]  # fmt: skip
    # The tool's result, handed back to the model, is a tool message answering the call.
    assert failed.steps.get(index=5).input[-1] == {
        "role": "tool", "tool_call_id": "call_1", "content": "Failed to invoke Tool "
        "`lookup_order` with parameters {'order_id': 'B2'}. Error: order not found: B2"}  # fmt: skip
    assert list(failed.steps.exclude(error="").values_list("kind", "name", "input", "error")) == [
        ("tool_call", "lookup_order", {"order_id": "B2"}, "Failed to invoke Tool `lookup_order` "
         "with parameters {'order_id': 'B2'}. Error: order not found: B2")]  # fmt: skip
    ok = passed.steps.get(kind="tool_call")
    assert (ok.input, ok.output, ok.error) == ({"order_id": "A1"}, "order A1: 2 items, shipped", "")
    assert passed.error_count == 0


def test_haystack_pipeline_spans(client, tenant, other_tenant):
    """The same Agent as a component of a Haystack Pipeline, after a prompt builder:
    the pipeline's input is its components' (`{"prompt": {"order": ...}}`), so the task
    is the first user message (before: that input as JSON); the builder's run is a call
    named by the component, the Agent component a framework step holding its run."""
    path = LOGS / "haystack-3.4.1" / "pipeline_spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed = runs["Where is order B2?"]
    assert list(failed.steps.order_by("index").values_list("kind", "name"))[:4] == [
        ("span", "haystack.pipeline.run"), ("tool_call", "prompt"), ("span", "agent"),
        ("span", "haystack.agent.run"),
    ]  # fmt: skip
    builder = failed.steps.get(name="prompt")
    assert builder.output == {"prompt": [{"role": "user", "content": "Where is order B2?"}]}
    assert failed.steps.get(index=0).input == {"prompt": {"order": "B2"}}
    assert list(failed.steps.exclude(error="").values_list("name", flat=True)) == ["lookup_order"]
    assert runs["Where is order A1?"].error_count == 0


def test_mlflow_tracing_spans_exported_over_otlp(client, tenant, other_tenant):
    """A hand-written loop traced by MLflow (`mlflow.openai.autolog()`, the loop and the
    tool under `@mlflow.trace`), as MLflow's exporter posts it to a collector: each
    span read by its `mlflow.spanType` with its `mlflow.spanInputs` and
    `mlflow.spanOutputs` (JSON text), so a model call is a call of its model with the
    messages sent and the reply, and its tokens (before: a call named `Completions`
    with nothing in it, left out of the run whose tool failed); the task is the
    agent's input; MLflow's OK on the root, set whenever nothing raised, is no
    outcome (before: succeeded)."""
    path = LOGS / "mlflow-tracing-3.17.2" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed, passed = runs["Where is order B2?"], runs["Where is order A1?"]
    assert list(failed.steps.order_by("index").values_list("kind", "name", "error")) == [
        ("span", "handle_request", ""), ("llm_call", "scripted-gpt", ""),
        ("tool_call", "lookup_order", "ValueError: order not found: B2"),
        ("llm_call", "scripted-gpt", ""),
    ]  # fmt: skip
    assert (failed.agent, failed.model, failed.total_tokens, failed.status) == (
        "support-agent", "scripted-gpt", 270, "unknown")  # fmt: skip
    assert "instrumentation" in failed.metadata["inferred_status"]["reason"]
    call = failed.steps.get(index=1)
    assert call.input == [{"role": "user", "content": "Where is order B2?"}]
    assert call.output[0]["tool_calls"][0]["function"] == {
        "name": "lookup_order", "arguments": '{"order_id": "B2"}'}  # fmt: skip
    assert failed.steps.get(index=2).input == {"order_id": "B2"}
    assert failed.steps.get(index=0).output == "I could not find order B2."
    ok = passed.steps.get(kind="tool_call")
    assert (ok.input, ok.output, passed.error_count) == (
        {"order_id": "A1"}, "order A1: 2 items, shipped", 0)  # fmt: skip


def test_langfuse_sdk_spans(client, tenant, other_tenant):
    """A hand-written loop traced by the Langfuse SDK (`@observe` as an agent and a tool,
    its OpenAI client for the model calls), its spans sent to a second backend through
    the TracerProvider Langfuse was given: each span read by its
    `langfuse.observation.type`, a generation as a call of its model with the messages
    sent, the reply and its tokens, a tool with its keyword arguments (Langfuse records
    `{"args": [], "kwargs": {...}}`), the agent a framework step whose one argument is the
    task (before: each generation a call named `OpenAI-generation` with nothing in it,
    left out of the run whose tool failed, and no tokens)."""
    path = LOGS / "langfuse-5.2.0" / "spans.jsonl"
    by_file, _ = _by_file_and_over_otlp(client, tenant, other_tenant, path)
    runs = {t.task: t for t in by_file.values()}
    assert sorted(runs) == ["Where is order A1?", "Where is order B2?"]
    failed, passed = runs["Where is order B2?"], runs["Where is order A1?"]
    assert list(failed.steps.order_by("index").values_list("kind", "name", "error")) == [
        ("span", "handle_request", ""), ("llm_call", "scripted-gpt", ""),
        ("tool_call", "lookup_order", "order not found: B2"), ("llm_call", "scripted-gpt", ""),
    ]  # fmt: skip
    assert (failed.model, failed.total_tokens, failed.status) == ("scripted-gpt", 270, "unknown")
    call = failed.steps.get(index=1)
    assert call.input == [{"role": "user", "content": "Where is order B2?"}]
    assert call.output[0]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert failed.steps.get(index=2).input == {"order_id": "B2"}
    assert failed.steps.get(index=0).output == "I could not find order B2."
    ok = passed.steps.get(kind="tool_call")
    assert (ok.input, ok.output, passed.error_count) == (
        {"order_id": "A1"}, "order A1: 2 items, shipped", 0)  # fmt: skip


@pytest.mark.parametrize("path", [
    "haystack-3.4.1/spans.jsonl", "haystack-3.4.1/pipeline_spans.jsonl",
    "mlflow-tracing-3.17.2/spans.jsonl", "langfuse-5.2.0/spans.jsonl",
])  # fmt: skip
def test_mutated_framework_spans_are_stored_or_refused_never_a_5xx(client, tenant, path):
    """A fixed-seed fuzz of the run whose tool failed, posted as OTLP/JSON: values of
    Haystack's, MLflow's and Langfuse's attributes swapped for others of every JSON
    type, keys deleted. Each answer is a 200 or a 400 that says why."""
    import base64

    from tests.mutations import fuzz_otlp_json

    sample = json.loads((LOGS / path).read_text().splitlines()[1])
    for resource in sample["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    response = client.post("/v1/traces", json.dumps(sample), content_type="application/json",
                           headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 200
    assert Trace.objects.filter(workspace=tenant.workspace).count() == 1
    fuzz_otlp_json(client, "/v1/traces", sample, tenant.key, runs=30, seed=20261207)


def test_every_framework_attribute_of_any_type_is_read_without_raising():
    """Each attribute of every span in the Haystack, MLflow and Langfuse files, set in
    turn to a value of every JSON type (and JSON text of the wrong shape): the span is
    still read as a step (`span_role`), with an error text (`haystack_error`), a task
    and the tools it declares, never an exception."""

    from hivemind_client.formats import (
        attributes_user_prompt,
        declared_tools,
        haystack_error,
        span_role,
        speaks_convention,
    )
    from tests.mutations import ODD

    def value(v: dict) -> object:
        return next(iter(v.values())) if v else None

    odd = [*ODD, '{"messages": 1}', '{"replies": [1, {"meta": 2}]}', '[{"content": [1]}]',
           '{"args": 1, "kwargs": []}', '"CHAT_MODEL"', '{"choices": [{"message": 1}]}']  # fmt: skip
    for path in ("haystack-3.4.1/pipeline_spans.jsonl", "mlflow-tracing-3.17.2/spans.jsonl",
                 "langfuse-5.2.0/spans.jsonl"):  # fmt: skip
        export = json.loads((LOGS / path).read_text().splitlines()[1])
        spans = [s for r in export["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
        for span in spans:
            attrs = {a["key"]: value(a["value"]) for a in span.get("attributes", [])}
            for key in attrs:
                for bad in odd:
                    changed = {**attrs, key: bad}
                    kind, name, _, _, tokens = span_role(changed, span["name"], [])
                    assert kind in ("span", "tool_call", "llm_call") and isinstance(name, str)
                    assert isinstance(tokens, int)
                    assert isinstance(haystack_error(changed), str)
                    assert isinstance(attributes_user_prompt(changed), str)
                    assert isinstance(declared_tools(changed), set)
                    speaks_convention(changed)
