"""Hook-log folders replay in the order the session happened (5/8, items 4 and 5):
event files merged by time, a transcript beside them merged into the trace its
hooks built, re-imports unchanged, the same merge over HTTP (`hivemind replay`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from hivemind_client.hooklog import session_events
from traces.claude_code import UNFINISHED, hook_ingest
from traces.importing import traces_import_file, traces_import_hook_logs
from traces.models import Step, Trace

pytestmark = pytest.mark.django_db

DEVDATA = Path(__file__).resolve().parents[3] / "shared" / "devdata" / "claude_code"
S = "3f1c0d4e-session"


def _event(name: str, **fields: object) -> dict:
    return {"session_id": S, "transcript_path": "/x.jsonl", "cwd": "/work/app",
            "hook_event_name": name, **fields}  # fmt: skip


def _bash(command: str) -> dict:
    return {"command": command, "description": command}


def _disler_folder(tmp_path: Path, with_transcript: bool = False) -> Path:
    """A session as the widespread logger writes it: one JSON array per event type,
    no times; a failed Bash call fires no PostToolUse."""
    folder = tmp_path / "logs"
    folder.mkdir()
    files = {
        "session_start": [_event("SessionStart", source="startup")],
        "user_prompt_submit": [_event("UserPromptSubmit", prompt="deploy the api")],
        "pre_tool_use": [_event("PreToolUse", tool_name="Bash", tool_input=_bash(c))
                         for c in ("git status", "ls missing/", "make deploy", "gh run list")],
        "post_tool_use": [
            _event("PostToolUse", tool_name="Bash", tool_input=_bash("git status"),
                   tool_response={"stdout": "clean", "stderr": "", "interrupted": False}),
            _event("PostToolUse", tool_name="Bash", tool_input=_bash("make deploy"),
                   tool_response={"stdout": "deployed", "stderr": "", "interrupted": False}),
        ],
        "notification": [_event("Notification", message="Claude needs your permission")],
        "stop": [_event("Stop", stop_hook_active=False)],
    }  # fmt: skip
    for name, payloads in files.items():
        (folder / f"{name}.json").write_text(json.dumps(payloads))
    if with_transcript:
        (folder / "chat.json").write_text(json.dumps(_transcript()))
    return folder


def _transcript() -> list[dict]:
    def entry(kind: str, stamp: str, content: object, **extra: object) -> dict:
        return {"type": kind, "sessionId": S, "timestamp": f"2025-08-11T18:{stamp}Z",
                "uuid": stamp, "message": {"role": kind, "content": content}, **extra}  # fmt: skip

    calls = []
    for n, (command, result, error) in enumerate([
        ("git status", "clean", False), ("ls missing/", "ls: missing/: No such file", True),
        ("make deploy", "deployed", False), ("gh run list", "HTTP 401: Bad credentials", True),
    ]):  # fmt: skip
        calls += [
            entry("assistant", f"3{n}:00.000", [{"type": "tool_use", "id": f"toolu_{n}",
                                                "name": "Bash", "input": _bash(command)}]),
            entry("user", f"3{n}:05.000", [{"type": "tool_result", "tool_use_id": f"toolu_{n}",
                                           "content": result, "is_error": error}]),
        ]  # fmt: skip
    return [
        entry("user", "29:00.000", "deploy the api"),
        *calls,
        entry("assistant", "39:00.000", [{"type": "text", "text": "The deploy is done."}]),
    ]


def _steps(workspace) -> list[tuple]:  # type: ignore[no-untyped-def]
    return list(Step.objects.filter(trace__workspace=workspace).order_by("index")
                .values_list("index", "kind", "name", "input", "error"))  # fmt: skip


def test_event_files_merge_into_the_order_of_a_live_session(tenant, tmp_path):
    folder = _disler_folder(tmp_path)
    result = traces_import_hook_logs(workspace=tenant.workspace, paths=sorted(folder.iterdir()))
    assert result.ok and (result.created, result.updated) == (1, 0)
    steps = _steps(tenant.workspace)
    assert steps[0][1] == "user_prompt"
    calls = [(s[3]["command"], bool(s[4])) for s in steps if s[1] == "tool_call"]
    # Each call in the order it was made; the two that fired no PostToolUse failed at Stop.
    assert calls == [("git status", False), ("ls missing/", True), ("make deploy", False),
                     ("gh run list", True)]  # fmt: skip
    failed = [s for s in steps if s[4]]
    assert len(failed) == 2 and all(s[4] == UNFINISHED for s in failed)
    # The Stop ends the session; its payload (Claude Code of mid-2025) holds no reply.
    assert steps[-1][1:3] == ("span", "turn end")
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.status == "failed"  # its last call failed, as a live session says


def test_a_transcript_beside_the_hooks_completes_their_trace(tenant, tmp_path):
    folder = _disler_folder(tmp_path, with_transcript=True)
    paths = sorted(folder.iterdir())
    result = traces_import_hook_logs(workspace=tenant.workspace, paths=paths)
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)  # one trace, not two
    steps = _steps(tenant.workspace)
    calls = [(s[3]["command"], s[4]) for s in steps if s[1] == "tool_call"]
    # The transcript's own errors replace "no PostToolUse" for the calls it answers.
    assert calls == [("git status", ""), ("ls missing/", "ls: missing/: No such file"),
                     ("make deploy", ""), ("gh run list", "HTTP 401: Bad credentials")]  # fmt: skip
    assert [s[1] for s in steps].count("user_prompt") == 1  # the prompt is not doubled
    assert any(s[1] == "span" and s[2] == "Notification" for s in steps)
    assert trace.status == "failed"
    assert trace.started_at.year == 2025  # dated by the session, not by the import
    first = Step.objects.filter(trace=trace).order_by("index").first()
    assert first is not None and first.started_at.year == 2025
    again = traces_import_hook_logs(workspace=tenant.workspace, paths=paths)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert _steps(tenant.workspace) == steps


def test_a_prompt_holding_pii_is_not_doubled_when_the_transcript_merges(tenant, tmp_path):
    """The hooks' prompt is stored redacted; the transcript's is compared as it will be
    stored, so the two are one step (getmany-software_llm-guard's prompt with an IP
    address was two)."""
    folder = _disler_folder(tmp_path, with_transcript=True)
    for name in ("user_prompt_submit.json", "chat.json"):
        path = folder / name
        path.write_text(
            path.read_text().replace("deploy the api", "deploy the api for ops@example.com")
        )
    result = traces_import_hook_logs(workspace=tenant.workspace, paths=sorted(folder.iterdir()))
    assert result.ok, result.error
    prompts = [s[3] for s in _steps(tenant.workspace) if s[1] == "user_prompt"]
    assert prompts == ["deploy the api for [EMAIL]"]


def test_hook_events_after_an_imported_transcript_never_overwrite_its_steps(tenant, tmp_path):
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in _transcript()))
    assert traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=path).ok
    before = _steps(tenant.workspace)
    hook_ingest(workspace=tenant.workspace, payload=_event(
        "PreToolUse", tool_name="Bash", tool_input=_bash("make smoke")))  # fmt: skip
    after = _steps(tenant.workspace)
    assert after[: len(before)] == before
    assert after[-1][0] == len(before) and after[-1][3] == _bash("make smoke")


def test_times_in_the_payloads_order_events_across_files():
    early = {"session_id": "a", "hook_event_name": "PostToolUse", "tool_name": "Read",
             "tool_input": {"f": 1}, "timestamp": "2025-01-01T10:00:02Z"}  # fmt: skip
    pre = {**early, "hook_event_name": "PreToolUse", "timestamp": "2025-01-01T10:00:01Z"}
    stop = {"session_id": "a", "hook_event_name": "Stop", "timestamp": "2025-01-01T10:00:03Z"}
    prompt = {"session_id": "a", "hook_event_name": "UserPromptSubmit", "prompt": "go",
              "timestamp": "2025-01-01T10:00:00Z"}  # fmt: skip
    # Alphabetical file order (post, pre, stop, user) is not the session's order.
    ordered = session_events([[early], [pre], [stop], [prompt]])
    assert [e["hook_event_name"] for e in ordered] == [
        "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"]  # fmt: skip


def test_undated_events_follow_the_causal_order_of_a_session():
    def e(name: str, **fields: object) -> dict:
        return {"session_id": "b", "hook_event_name": name, **fields}

    files = [
        [e("SessionEnd")], [e("PostToolUse", tool_name="T", tool_input=1),
                            e("PostToolUse", tool_name="T", tool_input=2)],
        [e("PreToolUse", tool_name="T", tool_input=1), e("PreToolUse", tool_name="T", tool_input=2)],
        [e("SessionStart")], [e("Stop")], [e("UserPromptSubmit", prompt="x")],
    ]  # fmt: skip
    names = [(p["hook_event_name"], p.get("tool_input")) for p in session_events(files)]
    assert names == [("SessionStart", None), ("UserPromptSubmit", None), ("PreToolUse", 1),
                     ("PostToolUse", 1), ("PreToolUse", 2), ("PostToolUse", 2), ("Stop", None),
                     ("SessionEnd", None)]  # fmt: skip


def test_calls_logged_after_the_transcript_ends_pair_with_their_results():
    """A session that went on after its transcript was saved: the calls the transcript
    dates come first, and each later call is followed by its own PostToolUse, whatever
    the two files' lengths (conneroisu_templar's session 5e052a87: 116 calls after the
    transcript replayed as never answered, 87 of them answered in the log)."""
    transcript = _transcript()  # four Bash calls; two of them failed (no PostToolUse)
    pre = [_event("PreToolUse", tool_name="Bash", tool_input=_bash(c))
           for c in ("git status", "ls missing/", "make deploy", "gh run list",
                     "make test", "make lint")]  # fmt: skip
    post = [_event("PostToolUse", tool_name="Bash", tool_input=_bash(c),
                   tool_response={"stdout": "ok"}) for c in ("make test", "make lint")]  # fmt: skip
    ordered = session_events([post, pre], transcript)
    calls = [(p["hook_event_name"][:4], p["tool_input"]["command"]) for p in ordered]
    assert calls == [("PreT", "git status"), ("PreT", "ls missing/"), ("PreT", "make deploy"),
                     ("PreT", "gh run list"), ("PreT", "make test"), ("Post", "make test"),
                     ("PreT", "make lint"), ("Post", "make lint")]  # fmt: skip
    stamps = [p["hivemind_time"] for p in ordered]
    assert stamps == sorted(stamps)
    # Dated after the transcript's last entry (its closing reply at 18:39), not at its
    # last call: they happened after the transcript was saved.
    assert stamps[4:] == ["2025-08-11T18:39:00.001000+00:00"] * 4


def test_events_no_file_dates_are_not_moved_past_the_transcript():
    """Notifications in a file with no dated event say nothing of when they happened:
    they keep the time of the last dated event, as before, and only a file dated in
    part that goes on past its last dated event dates its rest after the transcript."""
    post = [_event("PostToolUse", tool_name="Bash", tool_input=_bash("git status"),
                   tool_response={"stdout": "clean"})]  # fmt: skip
    notes = [_event("Notification", message="Claude needs your permission")]
    ordered = session_events([notes, post], _transcript())
    times = {p["hook_event_name"]: p["hivemind_time"] for p in ordered}
    assert times == {"PostToolUse": "2025-08-11T18:30:05+00:00",
                     "Notification": "2025-08-11T18:30:05+00:00"}  # fmt: skip


def test_one_undated_log_of_every_event_keeps_its_own_order():
    """A JSON-lines log of every event (one file) is the session's order, its turns
    included; only events split over files by type are put in a session's causal order."""

    def e(name: str, **fields: object) -> dict:
        return {"session_id": "c", "hook_event_name": name, **fields}

    log = [e("UserPromptSubmit", prompt="one"), e("PreToolUse", tool_name="T", tool_input=1),
           e("PostToolUse", tool_name="T", tool_input=1), e("Stop"),
           e("UserPromptSubmit", prompt="two"), e("PreToolUse", tool_name="T", tool_input=2),
           e("Stop")]  # fmt: skip
    assert session_events([log]) == log


def test_the_command_imports_a_hook_folder_with_its_transcript(tenant, tmp_path, capsys):
    folder = _disler_folder(tmp_path, with_transcript=True)
    call_command("import_traces", str(folder), workspace=tenant.workspace.slug, fmt="claude-hooks")
    out = capsys.readouterr().out
    assert "Imported 1 of 1 folders" in out and "not imported" not in out
    assert Trace.objects.filter(workspace=tenant.workspace).count() == 1


def test_a_broken_event_file_stores_nothing_of_the_folder(tenant, tmp_path):
    folder = _disler_folder(tmp_path)
    (folder / "stop.json").write_text('[{"session_id": "x"}]')
    result = traces_import_hook_logs(workspace=tenant.workspace, paths=sorted(folder.iterdir()))
    assert not result.ok and "stop.json" in result.error and "hook_event_name" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


@pytest.mark.django_db(transaction=True)
def test_replay_sends_a_folder_in_session_order_over_http(live_server, tmp_path, monkeypatch):
    from hivemind_client.capture import replay
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="Replay folder", owner=make_user("replay-folder"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", key)
    folder = _disler_folder(tmp_path, with_transcript=True)
    assert replay(folder) == 0
    trace = Trace.objects.get(workspace=workspace)
    errors = list(
        Step.objects.filter(trace=trace).exclude(error="").values_list("error", flat=True)
    )
    assert sorted(errors) == ["HTTP 401: Bad credentials", "ls: missing/: No such file"]
    # A JSON-lines log replays too (one payload per line).
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join(json.dumps(_event("UserPromptSubmit", prompt=p)) for p in "ab"))
    assert replay(lines) == 0


@pytest.mark.django_db(transaction=True)
def test_a_replayed_log_leaves_no_session_running_and_says_what_it_dated_by_arrival(
    live_server, tmp_path, monkeypatch, capsys, client
):
    """A hook log replayed by the client left each session its log ends mid-turn
    "running" (a day, until the silent-session sweep), and dated the sessions with no
    time by their arrival without a word: Claude Code logs of July 2025 read as this
    week's runs on the Overview. Now such a session is unknown at once (as the
    server's own import leaves it), and the replay and the trace page say which runs
    the arrival dated."""
    from hivemind_client.capture import replay
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    owner = make_user("replay-dates")
    workspace = make_workspace(name="Replay dates", owner=owner)
    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", make_key(workspace, scopes=[Scope.INGEST]))
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in [
        {**_event("UserPromptSubmit", prompt="fix the tests"), "session_id": "ended"},
        {**_event("Stop"), "session_id": "ended"},
        {**_event("UserPromptSubmit", prompt="now the docs"), "session_id": "cut"},
        {**_event("UserPromptSubmit", prompt="dated"), "session_id": "dated",
         "timestamp": "2025-07-21T18:42:58Z"},
        # A logger's epoch time under another name: the server read only `timestamp`.
        {**_event("UserPromptSubmit", prompt="epoch"), "session_id": "epoch", "ts": 1753123378},
    ]))  # fmt: skip
    assert replay(log) == 0
    out = capsys.readouterr().out
    assert "2 of the 4 session(s) carried no time of their own" in out
    runs = {t.session_id: t for t in Trace.objects.filter(workspace=workspace)}
    assert {s: t.status for s, t in runs.items()} == {
        "ended": "succeeded", "cut": "unknown", "dated": "unknown", "epoch": "unknown"}  # fmt: skip
    assert runs["dated"].started_at.year == 2025 and runs["epoch"].started_at.year == 2025
    client.force_login(owner)
    page = client.get(f"/w/{workspace.slug}/traces/{runs['cut'].pk}/").content.decode()
    assert "dated by its arrival: nothing in it gave a time of its own" in page
    assert "its log ends inside a turn (no Stop or SessionEnd after its last prompt)" in page
    assert "dated_by_arrival" not in page  # said in words, not as bookkeeping
    page = client.get(f"/w/{workspace.slug}/traces/{runs['dated'].pk}/").content.decode()
    assert "dated by its arrival" not in page
    # A live session's next event sets it running again.
    from traces.claude_code import hook_ingest

    hook_ingest(workspace=workspace, payload={**_event("UserPromptSubmit", prompt="more"),
                                              "session_id": "cut"}, event_id="live-1")  # fmt: skip
    assert Trace.objects.get(pk=runs["cut"].pk).status == "running"


def test_a_replayed_openhands_hook_log_keeps_each_repeated_call(live_server, monkeypatch, capsys):
    """OpenHands' hook payloads name no call: the same command run four times is four
    equal PostToolUse payloads, and four calls; replaying the log again adds nothing.
    A server that does not take the source says so, and what it answered."""
    from hivemind_client.capture import replay
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="Replay OpenHands", owner=make_user("replay-openhands"))
    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", make_key(workspace, scopes=[Scope.INGEST]))
    log = Path(__file__).parent / "real_logs" / "openhands-sdk-1.58.2" / "hooks.jsonl"
    assert replay(log, "openhands") == 0
    assert replay(log, "openhands") == 0
    stuck = Trace.objects.get(workspace=workspace, external_id__endswith="000000000002")
    assert stuck.steps.filter(kind="tool_call").count() == 4 and stuck.status == "failed"
    monkeypatch.setenv("HIVEMIND_URL", live_server.url + "/nowhere")
    assert replay(log, "openhands") == 1
    assert "the server answered HTTP 404" in capsys.readouterr().err


@pytest.mark.skipif(not DEVDATA.is_dir(), reason="needs ../shared/devdata")
@pytest.mark.parametrize(
    "folder", ["applab-nl_dmux", "conneroisu_templar", "getmany-software_llm-guard"]
)
def test_each_devdata_hook_folder_imports_with_its_transcript_and_again_unchanged(tenant, folder):
    from hivemind_client.formats import files_under

    paths = files_under([DEVDATA / folder / "logs"], "claude-hooks")
    first = traces_import_hook_logs(workspace=tenant.workspace, paths=paths)
    assert first.ok, first.error
    merged = Trace.objects.get(workspace=tenant.workspace, metadata__transcript=True)
    assert merged.status in ("succeeded", "failed")
    steps = list(
        Step.objects.filter(trace=merged).order_by("index").values_list("started_at", flat=True)
    )
    assert steps == sorted(steps)  # in the order the session happened
    # A call the log or the transcript answers is never replayed as unanswered: at
    # most the PreToolUse events of the session that no PostToolUse has are.
    logged: dict[str, list[str]] = {"PreToolUse": [], "PostToolUse": []}
    for path in paths:
        for item in json.loads(path.read_text()):
            name = item.get("hook_event_name")
            if name in logged and item.get("session_id") == merged.session_id:
                logged[name].append(json.dumps([item["tool_name"], item["tool_input"]]))
            content = (item.get("message") or {}).get("content") if path.name == "chat.json" else 0
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "tool_use":  # the transcript answers its calls
                    logged["PostToolUse"].append(json.dumps([block["name"], block["input"]]))
    unpaired = len(logged["PreToolUse"]) - sum(
        min(logged["PreToolUse"].count(k), logged["PostToolUse"].count(k))
        for k in set(logged["PostToolUse"])
    )
    never_answered = Step.objects.filter(trace=merged, error=UNFINISHED).count()
    assert never_answered <= unpaired
    prompts = list(Step.objects.filter(trace=merged, kind="user_prompt").values_list("input"))
    assert len(prompts) == len(set(map(str, prompts)))  # the hooks' and the transcript's: one
    again = traces_import_hook_logs(workspace=tenant.workspace, paths=paths)
    assert (again.created, again.updated) == (
        0,
        0,
    ) and again.unchanged == first.created + first.updated


def _subagent_entries(agent: str = "a1b2c3") -> list[dict]:
    def entry(kind: str, stamp: str, content: object) -> dict:
        return {"type": kind, "sessionId": S, "isSidechain": True, "agentId": agent,
                "timestamp": f"2025-08-11T18:{stamp}Z", "uuid": f"sub-{stamp}",
                "message": {"role": kind, "content": content}}  # fmt: skip

    return [
        entry("user", "40:01.000", "Find where the deploy is configured"),
        entry("assistant", "40:02.000", [{"type": "tool_use", "id": "toolu_s1", "name": "Grep",
                                          "input": {"pattern": "deploy"}}]),
        entry("user", "40:03.000", [{"type": "tool_result", "tool_use_id": "toolu_s1",
                                     "content": "render.yaml", "is_error": False}]),
    ]  # fmt: skip


def _with_task_call() -> list[dict]:
    main = _transcript()
    task = {"type": "assistant", "sessionId": S, "timestamp": "2025-08-11T18:40:00.000Z",
            "uuid": "task", "message": {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_task", "name": "Task",
                 "input": {"description": "find the deploy config"}}]}}  # fmt: skip
    result = {"type": "user", "sessionId": S, "timestamp": "2025-08-11T18:41:00.000Z",
              "uuid": "task-result", "message": {"role": "user", "content": [
                  {"type": "tool_result", "tool_use_id": "toolu_task",
                   "content": "render.yaml (agentId: a1b2c3)"}]}}  # fmt: skip
    return [*main, task, result]


def test_a_subagent_transcript_nests_under_the_call_that_started_it(tenant, tmp_path):
    parent = tmp_path / "session.jsonl"
    parent.write_text("\n".join(json.dumps(e) for e in _with_task_call()))
    assert traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=parent).ok
    before = _steps(tenant.workspace)
    child = tmp_path / "agent-a1b2c3.jsonl"
    child.write_text("\n".join(json.dumps(e) for e in _subagent_entries()))
    result = traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=child)
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)  # the parent is not overwritten
    steps = list(Step.objects.filter(trace=trace).order_by("index")
                 .values_list("index", "name", "parent_index"))  # fmt: skip
    assert [s[:2] for s in steps[: len(before)]] == [(s[0], s[2]) for s in before]
    task = next(s[0] for s in steps if s[1] == "Task")
    nested = [s for s in steps if s[2] == task]
    assert [s[1] for s in nested] == ["", "Grep"]  # its prompt and its call
    again = traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=child)
    assert again.unchanged == 1 and Step.objects.filter(trace=trace).count() == len(steps)


def test_a_response_written_as_several_entries_counts_its_tokens_once(tenant, tmp_path):
    """Claude Code writes an entry per content block of a model response (a thought,
    a text, each tool call), each with the response's id and usage, the output count
    growing as it streams (as in the dev set's transcripts). Its tokens are counted
    once, on its first step, and are all it read and wrote: input, cache written and
    read, output. Before, each tool call's entry added the output count again (4 ×
    388 for one response of 388 in the dev set) and the input was never counted."""

    def usage(output: int) -> dict:
        return {"input_tokens": 4, "cache_creation_input_tokens": 300,
                "cache_read_input_tokens": 20_000, "output_tokens": output}  # fmt: skip

    def said(n: int, response: str, block: dict, output: int) -> dict:
        return {"type": "assistant", "sessionId": S, "timestamp": f"2026-12-06T10:00:0{n}Z",
                "message": {"id": response, "role": "assistant", "model": "claude-x",
                            "content": [block], "usage": usage(output)}}  # fmt: skip

    def result(n: int, call: str) -> dict:
        return {"type": "user", "sessionId": S, "timestamp": f"2026-12-06T10:00:0{n}Z",
                "message": {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": call, "content": "ok"}]}}  # fmt: skip

    entries = [
        {"type": "user", "sessionId": S, "timestamp": "2026-12-06T10:00:00Z",
         "message": {"role": "user", "content": "tidy the repo"}},
        said(1, "msg_a", {"type": "thinking", "thinking": "look first"}, 2),
        said(2, "msg_a", {"type": "text", "text": "Listing it."}, 8),
        said(3, "msg_a", {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}, 90),
        said(4, "msg_a", {"type": "tool_use", "id": "t2", "name": "Glob", "input": {}}, 105),
        result(5, "t1"), result(6, "t2"),
        said(7, "msg_b", {"type": "text", "text": "Done."}, 12),
    ]  # fmt: skip
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in entries))
    assert traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=path).ok
    trace = Trace.objects.get(workspace=tenant.workspace)
    steps = list(trace.steps.order_by("index").values_list("kind", "tokens"))
    assert steps == [("user_prompt", None), ("assistant_message", 20_409),
                     ("tool_call", None), ("tool_call", None), ("assistant_message", 20_316)]  # fmt: skip
    assert trace.total_tokens == 20_409 + 20_316


def test_subagent_entries_inline_in_a_transcript_nest_in_the_same_trace(tenant, tmp_path):
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in [*_with_task_call(), *_subagent_entries()]))
    assert traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=path).ok
    trace = Trace.objects.get(workspace=tenant.workspace)
    grep = Step.objects.get(trace=trace, name="Grep")
    assert grep.parent_index == Step.objects.get(trace=trace, name="Task").index


def test_a_session_whose_log_ends_before_it_did_is_unknown_not_running(tenant, tmp_path):
    """A replayed log will send nothing more: a session with no Stop or SessionEnd in
    it is no longer running (35 of the Claude Code dev set's 90 sessions were)."""
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "user_prompt_submit.json").write_text(
        json.dumps([_event("UserPromptSubmit", prompt="continue")])
    )
    result = traces_import_hook_logs(workspace=tenant.workspace, paths=sorted(folder.iterdir()))
    assert result.ok and result.no_outcome == [f"claude-code-{S}"]
    assert Trace.objects.get(workspace=tenant.workspace).status == "unknown"
    # Live hooks for the same session set it running again.
    hook_ingest(workspace=tenant.workspace, payload=_event("UserPromptSubmit", prompt="go on"),
                event_id="live-1")  # fmt: skip
    assert Trace.objects.get(workspace=tenant.workspace).status == "running"


@pytest.mark.parametrize("rewrite_below", [0.0, 1.1], ids=["written-over", "rewritten"])
def test_a_transcript_merged_over_stored_steps_leaves_exactly_the_merged_steps(
    tenant, tmp_path, monkeypatch, rewrite_below
):
    """The merge writes over the session's stored steps by index (a step it leaves as
    it was is not written again), or deletes and rewrites them when most move: either
    way, where its steps shift (a reply only the transcript has, before a subagent's
    calls), each step's parent is the merge's, not the one stored at that index before."""
    from traces import transcripts
    from traces.models import StepKey
    from traces.transcripts import transcript_merge

    monkeypatch.setattr(transcripts, "REWRITE_BELOW", rewrite_below)

    for payload in [
        _event("UserPromptSubmit", prompt="find the flaky test"),
        _event("PreToolUse", tool_name="Task", tool_use_id="t1", tool_input={"prompt": "look"}),
        _event("SubagentStart", agent_id="a1", agent_type="explorer"),
        _event("PreToolUse", tool_name="Grep", tool_use_id="t2", agent_id="a1",
               agent_type="explorer", tool_input={"pattern": "flaky"}),
        _event("PostToolUse", tool_name="Grep", tool_use_id="t2", agent_id="a1",
               agent_type="explorer", tool_input={"pattern": "flaky"},
               tool_response={"stdout": "tests/test_io.py"}),
        _event("SubagentStop", agent_id="a1", agent_type="explorer",
               last_assistant_message="tests/test_io.py is flaky"),
        _event("PostToolUse", tool_name="Task", tool_use_id="t1", tool_input={"prompt": "look"},
               tool_response={"content": "tests/test_io.py is flaky"}),
    ]:  # fmt: skip
        hook_ingest(workspace=tenant.workspace, payload=payload)
    trace = Trace.objects.get(workspace=tenant.workspace)
    before = list(trace.steps.order_by("index").values_list("index", "name", "parent_index"))
    assert any(parent is not None for *_, parent in before)  # the subagent's call is nested

    def entry(n: int, role: str, content: object) -> dict:
        return {"type": role, "sessionId": S, "timestamp":
                f"2026-12-06T10:00:0{n}Z", "message": {"role": role, "content": content}}  # fmt: skip

    transcript = [
        entry(0, "user", "find the flaky test"),
        entry(1, "assistant", [{"type": "text", "text": "I will ask an explorer."}]),
        entry(2, "assistant", [{"type": "tool_use", "id": "t1", "name": "Task",
                                "input": {"prompt": "look"}}]),
        entry(3, "user", [{"type": "tool_result", "tool_use_id": "t1",
                           "content": "tests/test_io.py is flaky"}]),
        entry(4, "assistant", [{"type": "text", "text": "It is tests/test_io.py."}]),
    ]  # fmt: skip
    path = tmp_path / f"{S}.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in transcript))
    from hivemind_client.formats import parse

    sent = parse("claude-transcript", path).traces[0]
    sent["external_id"] = trace.external_id
    expected, replaced = transcript_merge(
        workspace=tenant.workspace, trace=json.loads(json.dumps(sent))
    )
    assert replaced == trace.pk
    assert traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=path).ok
    stored = list(trace.steps.order_by("index").values_list("index", "name", "parent_index"))
    assert stored == [
        (s["index"], s.get("name", ""), s.get("parent_index")) for s in expected["steps"]
    ]
    assert len(stored) > len(before) and stored != before  # the steps did shift
    assert StepKey.objects.filter(trace=trace).exists()


def test_a_merge_that_moves_most_steps_rewrites_them_and_one_that_does_not_writes_over_them(
    tenant, tmp_path
):
    """A session's first merge puts the transcript's replies between the hooks'
    calls, so nearly every stored step moves: its steps are deleted and written anew
    (new rows). A turn's end adds steps after the stored ones: the steps it leaves as
    they were keep their rows."""
    from hivemind_client.formats import parse

    calls = [(f"t{n}", {"command": f"ls dir{n}"}, f"file{n}.py") for n in range(6)]
    hook_ingest(workspace=tenant.workspace, payload=_event("UserPromptSubmit", prompt="list"))
    for tool_id, tool_input, out in calls:
        hook_ingest(workspace=tenant.workspace, payload=_event(
            "PreToolUse", tool_name="Bash", tool_use_id=tool_id, tool_input=tool_input))  # fmt: skip
        hook_ingest(workspace=tenant.workspace, payload=_event(
            "PostToolUse", tool_name="Bash", tool_use_id=tool_id, tool_input=tool_input,
            tool_response={"stdout": out}))  # fmt: skip
    trace = Trace.objects.get(workspace=tenant.workspace)

    def entry(n: int, role: str, content: object) -> dict:
        return {"type": role, "sessionId": S, "timestamp": f"2026-12-06T10:{n:02d}:00Z",
                "message": {"role": role, "content": content}}  # fmt: skip

    lines = [entry(0, "user", "list")]
    for n, (tool_id, tool_input, out) in enumerate(calls):
        lines += [
            entry(3 * n + 1, "assistant", [{"type": "text", "text": f"Listing dir{n}."}]),
            entry(3 * n + 2, "assistant", [{"type": "tool_use", "id": tool_id, "name": "Bash",
                                            "input": tool_input}]),
            entry(3 * n + 3, "user", [{"type": "tool_result", "tool_use_id": tool_id,
                                       "content": out}]),
        ]  # fmt: skip
    path = tmp_path / f"{S}.jsonl"

    def merge(count: int, hooks_only: list[str]) -> dict[int, int]:
        """The stored steps' rows by index after merging the transcript's first lines
        (the steps only the hooks saw yet stay after them)."""
        path.write_text("\n".join(json.dumps(e) for e in lines[:count]))
        sent = parse("claude-transcript", path).traces[0]
        assert traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=path).ok
        assert (
            list(trace.steps.order_by("index").values_list("kind", flat=True))
            == [s["kind"] for s in sent["steps"]] + hooks_only
        )
        return dict(trace.steps.values_list("index", "pk"))

    hooks = dict(trace.steps.values_list("index", "pk"))
    first = merge(len(lines) - 3, ["tool_call"])  # the last call is not in it yet
    assert not set(first.values()) & set(hooks.values())  # every step written anew
    grown = merge(len(lines), [])
    assert len(grown) == len(first) + 1  # its reply before the last call
    # The steps before the turn's new reply keep their rows.
    assert [grown[i] for i in sorted(first)[:-1]] == [first[i] for i in sorted(first)[:-1]]
