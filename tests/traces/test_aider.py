"""Aider's chat history (`--format aider`) and its live capture (`install-aider-hooks`,
`send-aider-session`). The real history is Aider 0.86.2's own, made by
`real_logs/aider-0.86.2/make_logs.sh`."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivemind_client.formats import files_under, parse
from traces.importing import traces_import_file
from traces.models import Trace

HISTORY = Path(__file__).parent / "real_logs" / "aider-0.86.2" / ".aider.chat.history.md"
FORMATS = HISTORY.with_name("formats.aider.chat.history.md")


def _steps(trace: dict) -> list[tuple]:
    return [(s["kind"], s.get("name", ""), s.get("error", ""), s.get("tokens"))
            for s in trace["steps"]]  # fmt: skip


def test_aider_sessions_as_aider_writes_them(tenant):
    """Each session of the history a run: what was typed a prompt; each answer what
    the model said (its tokens Aider's rounded count) and each SEARCH/REPLACE block
    an `edit` call, applied (with its commit) or failed with why; Aider's lint a
    failed `lint` call with what it found; its failed test command a `test` call;
    Aider giving up after three fixes, and the model API's token limit, error steps.
    The run that ended on the API's refusal failed; the other's outcome is unknown.
    A folder import finds the file; imported again, nothing changes."""
    assert files_under([HISTORY.parent], "aider") == [HISTORY, FORMATS]
    result = traces_import_file(workspace=tenant.workspace, fmt="aider", path=HISTORY)
    assert result.ok and result.created == 2, result.error
    first, second = Trace.objects.filter(workspace=tenant.workspace).order_by("started_at")
    assert (first.agent, first.model, first.status, first.task) == (
        "aider", "openai/scripted-gpt", "unknown", "Fix the add function in calc.py so the tests pass.")  # fmt: skip
    assert (first.metadata["aider_version"], first.metadata["edit_format"]) == ("v0.86.2", "diff")
    steps = list(first.steps.order_by("index").values_list("kind", "name", "error", "tokens"))
    test_failed = ("the test command failed; Aider gave the model its {} lines of output, which "
                   "its chat history does not keep")  # fmt: skip
    assert steps == [
        ("user_prompt", "", "", None),
        ("assistant_message", "", "", 2647),
        ("tool_call", "edit", "SearchReplaceNoExactMatch: This SEARCH block failed to exactly "
                              "match lines in calc.py", None),
        ("assistant_message", "", "", 2749),
        ("tool_call", "edit", "", None),
        ("tool_call", "lint", "calc.py:2:16: F821 undefined name 'bb'", None),
        ("assistant_message", "", "", 2932),
        ("tool_call", "edit", "", None),
        ("tool_call", "test", test_failed.format(15), None),
        ("assistant_message", "", "", 3447),
        ("tool_call", "edit", "", None),
        ("tool_call", "test", test_failed.format(13), None),
        ("error", "aider", "Only 3 reflections allowed, stopping.", None),
        ("user_prompt", "", "", None),
        ("assistant_message", "", "", 3732),
        ("tool_call", "edit", "", None),
    ]  # fmt: skip
    edit = first.steps.get(index=2)
    assert edit.input == {"file": "calc.py", "search": "def add(a, b):\n    return a - b  # wrong\n",
                          "replace": "def add(a, b):\n    return a + b\n"}  # fmt: skip
    assert first.steps.get(index=4).output.startswith("Applied edit to calc.py\nCommit ")
    lint = first.steps.get(index=5)
    assert lint.input["command"].endswith("-m flake8 --select=E9,F821,F823,F831,F406,F407,F701,"
                                          "F702,F704,F706 --show-source --isolated calc.py")  # fmt: skip
    assert first.steps.get(index=15).input["replace"] == "    return a - b\n"
    assert (second.status, second.task) == ("failed", "What does calc.py do?")
    assert list(second.steps.order_by("index").values_list("kind", "input", "error")) == [
        ("user_prompt", '/run python3 -c "import calc; print(calc.mul(2, 3))"', ""),
        ("user_prompt", "What does calc.py do?", ""),
        ("error", None, "Model openai/scripted-gpt has hit a token limit!"),
    ]  # fmt: skip
    again = traces_import_file(workspace=tenant.workspace, fmt="aider", path=HISTORY)
    assert again.unchanged == 2


def test_aiders_whole_and_udiff_edit_formats():
    """Aider's other edit formats, as it wrote them: a whole file, an `edit` call known
    by Aider's `Applied edit` line; a unified diff, an `edit` call holding its diff,
    failed with Aider's reason when its lines are not in the file."""
    whole, udiff = parse("aider", FORMATS).traces
    assert whole["metadata"]["edit_format"] == "whole"
    assert [(s["kind"], s.get("input"), s.get("error", "")) for s in whole["steps"][1:]] == [
        ("assistant_message", None, ""),
        ("tool_call", {"file": "calc.py"}, ""),
    ]  # fmt: skip
    assert whole["steps"][2]["output"].startswith("Applied edit to calc.py\nCommit ")
    edit = udiff["steps"][2]
    assert (edit["name"], edit["input"]["file"], edit["error"]) == (
        "edit", "calc.py", "UnifiedDiffNoMatch: hunk failed to apply!")  # fmt: skip
    assert edit["input"]["diff"].startswith("--- calc.py\n+++ calc.py\n@@ ... @@\n")
    assert "does not contain these 2 exact lines in a row" in edit["output"]
    assert udiff["steps"][3]["kind"] == "assistant_message" and udiff["status"] == "unknown"


def test_a_session_read_as_it_grows_is_the_same_run(tmp_path):
    """A session's id is its start and its first lines, so the history read at an
    earlier turn's end names the same run, its steps the first of the whole one's."""
    text = HISTORY.read_text()
    early = tmp_path / ".aider.chat.history.md"
    early.write_text(text[: text.index("#### Make sub return")])
    whole = parse("aider", HISTORY).traces[0]
    grown = parse("aider", early).traces
    assert len(grown) == 1 and grown[0]["external_id"] == whole["external_id"]
    assert grown[0]["status"] == "failed"  # its last turn: Aider gave up
    assert _steps(grown[0]) == _steps(whole)[:13]
    assert whole["external_id"] != parse("aider", HISTORY).traces[1]["external_id"]


def test_a_session_read_where_another_time_zone_is_set_is_the_same_run(monkeypatch):
    """Aider writes its local time with no zone: it is read in this machine's zone
    (its start moves with it), but the run's id is the header's own time."""
    import time

    here = parse("aider", HISTORY).traces[0]
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        there = parse("aider", HISTORY).traces[0]
    finally:
        monkeypatch.undo()
        time.tzset()
    assert there["external_id"] == here["external_id"]
    assert there["started_at"] != here["started_at"]


# Written as Aider 0.86's `InputOutput` writes its chat history (`append_chat_history`:
# its own messages quoted, a message written in one piece quoting its first line
# only), to show what the real session above does not: one of two blocks failing,
# the model API failing and retried, a quoted line of the model's own, a command the
# model suggested, a cost, a count with cache (its cost then on a line of its own).
# `|` ends a line as Aider's two trailing spaces do.
MADE_UP = """
# aider chat started at 2026-11-30 10:00:00

> Aider v0.86.2|
> Main model: anthropic/claude-sonnet-4-5 with diff edit format, infinite output|

#### Rename total to sum in both files|
> litellm.InternalServerError: AnthropicException - Overloaded|
> The API provider's servers are down or overloaded.|
> Retrying in 0.2 seconds...|
> litellm.InternalServerError: AnthropicException - Overloaded|
> The API provider's servers are down or overloaded.|
> Retrying in 0.5 seconds...|

As the README says:
> totals are kept per day

a.py
```python
<<<<<<< SEARCH
total = 0
=======
sum_ = 0
>>>>>>> REPLACE
```

b.py
```python
<<<<<<< SEARCH
print(totl)
=======
print(sum_)
>>>>>>> REPLACE
```

```bash
python a.py
```

> Tokens: 12k sent, 1.2k received. Cost: $0.05 message, $0.05 session.|
> The LLM did not conform to the edit format.|
> https://aider.chat/docs/troubleshooting/edit-errors.html|
> # 1 SEARCH/REPLACE block failed to match!

## SearchReplaceNoExactMatch: This SEARCH block failed to exactly match lines in b.py
<<<<<<< SEARCH
print(totl)
=======
print(sum_)
>>>>>>> REPLACE

The SEARCH section must exactly match an existing block of lines including all white space, comments, indentation, docstrings, etc

# The other 1 SEARCH/REPLACE block were applied successfully.
Don't re-send them.
Just reply with fixed versions of the block above that failed to match.|

b.py
```python
<<<<<<< SEARCH
print(total)
=======
print(sum_)
>>>>>>> REPLACE
```

> Tokens: 13k sent, 2.0k cache write, 9.5k cache hit, 40 received.
Cost: $0.04 message, $0.09 session.|
> Applied edit to b.py|
> Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: y|
> Running python a.py|
> Add command output to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: n|
""".replace("|\n", "  \n")  # a line ending in a Markdown line break


def test_a_history_aider_writes_with_failed_blocks_retries_and_costs(tmp_path):
    path = tmp_path / ".aider.chat.history.md"
    path.write_text(MADE_UP)
    (run,) = parse("aider", path).traces
    assert (run["model"], run["status"], run["cost_usd"]) == (
        "anthropic/claude-sonnet-4-5", "unknown", 0.09)  # fmt: skip
    assert run["started_at"] is not None and run["task"] == "Rename total to sum in both files"
    assert _steps(run) == [
        ("user_prompt", "", "", None),
        ("error", "model API", "litellm.InternalServerError: AnthropicException - Overloaded", None),
        ("assistant_message", "", "", 13_200),
        ("tool_call", "edit", "", None),
        ("tool_call", "edit", "SearchReplaceNoExactMatch: This SEARCH block failed to exactly "
                              "match lines in b.py", None),
        ("assistant_message", "", "", 22_540),  # the cache read counted too
        ("tool_call", "edit", "", None),
        ("tool_call", "shell", "", None),
    ]  # fmt: skip
    steps = run["steps"]
    assert "> totals are kept per day" in steps[2]["output"]  # the model's own quote
    assert steps[3]["input"]["file"] == "a.py" and "applied" in steps[3]["output"]
    assert steps[6]["output"] == "Applied edit to b.py"
    assert steps[7]["input"] == {"command": "python a.py"}


def test_a_file_with_no_aider_session_is_refused_and_an_empty_session_is_no_run(tmp_path):
    from hivemind_client.formats import FormatError

    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\n#### not a session  \n")
    with pytest.raises(FormatError, match="no Aider chat history here"):
        parse("aider", path)
    opened = "\n# aider chat started at 2026-11-30 10:00:00\n\n> Aider v0.86.2  \n"
    path.write_text(opened + HISTORY.read_text())
    assert len(parse("aider", path).traces) == 2  # opened and closed: no run
    path.write_text(opened)
    with pytest.raises(FormatError, match="no aider trace found"):
        parse("aider", path)
    path.write_text(opened.replace("10:00:00", "10:00:61") + "#### hi  \n")
    with pytest.raises(FormatError, match="line 2: a session Aider's format does not hold"):
        parse("aider", path)


def test_aiders_notifications_command_sends_the_session_it_is_writing(
    live_server, tmp_path, monkeypatch
):
    """What `install-aider-hooks` sets Aider to run when it waits for the user: the
    hook starts `send-aider-session` for the history in a process of its own and
    returns; that sends the history's last session (the one Aider is writing), its
    status read from the session as a hook-built run's is; sent again as it grows,
    the same run is updated."""
    import subprocess

    from hivemind_client import capture
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="Aider capture", owner=make_user("aider-capture"))
    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", make_key(workspace, scopes=[Scope.INGEST]))
    text = HISTORY.read_text()
    first = text[: text.index("\n# aider chat started at", 10) + 1]
    history = tmp_path / ".aider.chat.history.md"
    history.write_text("\n# aider chat started at 2026-11-01 09:00:00\n\n#### older  \n\nOk.\n"
                       + first[: first.index("#### Make sub return")])  # fmt: skip
    started: list[list[str]] = []
    with monkeypatch.context() as hook:
        hook.setattr(subprocess, "Popen", lambda args, **kw: started.append(args))
        assert capture.send_aider_hook(str(history)) == 0
    assert started[0][-3:] == ["send-aider-session", "--file", str(history.resolve())]
    assert capture.send_aider_session(str(history)) == 0
    run = Trace.objects.get(workspace=workspace)  # the last session only
    assert (run.agent, run.step_count, run.status) == ("aider", 13, "failed")
    history.write_text(history.read_text() + first[first.index("#### Make sub return") :])
    assert capture.send_aider_session(str(history)) == 0
    run = Trace.objects.get(workspace=workspace)
    assert run.step_count == 16
    # With no outcome in the file, read from the session: the last call was applied.
    assert run.status == "succeeded"
    assert "no failed last call" in run.metadata["inferred_status"]["reason"]
    assert capture.send_aider_session(str(tmp_path / "none.md")) == 1


def test_install_aider_hooks_sets_the_notifications_command_once(tmp_path, monkeypatch, capsys):
    from hivemind_client.install import install_aider_hooks

    monkeypatch.delenv("HIVEMIND_URL", raising=False)
    config = tmp_path / ".aider.conf.yml"
    config.write_text("model: sonnet\nauto-commits: false")
    assert install_aider_hooks(tmp_path) == ["notifications-command", "read"]
    lines = config.read_text().splitlines()
    assert lines[:2] == ["model: sonnet", "auto-commits: false"]  # the file's own kept
    assert lines[3] == "notifications: true"
    assert lines[4].startswith("notifications-command: 'PYTHONPATH=")
    assert "send-aider-session --hook --file" in lines[4] and "HIVEMIND_API_KEY" not in lines[4]
    skills = tmp_path.resolve() / ".hivemind" / "aider-skills.md"
    assert lines[5] == f"read: '{skills}'"
    # Aider reads only files there when it starts: written before any pull.
    assert "No skill is published yet." in skills.read_text()
    assert install_aider_hooks(tmp_path) == []  # again: nothing changes
    from hivemind_client.__main__ import main

    main(["status", "--project", str(tmp_path)])
    assert ".aider.conf.yml: Hivemind installed" in capsys.readouterr().out
    assert config.read_text().count("notifications-command") == 1
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / ".aider.conf.yml").write_text("notifications: true\nnotifications-command: say hi\n")
    with pytest.raises(ValueError, match="a notifications command of its own"):
        install_aider_hooks(theirs)
    off = tmp_path / "off"
    off.mkdir()
    (off / ".aider.conf.yml").write_text("notifications: false\n")
    with pytest.raises(ValueError, match="switches Aider's notifications off"):
        install_aider_hooks(off)
    assert (off / ".aider.conf.yml").read_text() == "notifications: false\n"
    reads = tmp_path / "reads"
    reads.mkdir()
    (reads / ".aider.conf.yml").write_text("read:\n  - CONVENTIONS.md\n")
    with pytest.raises(ValueError, match="capture installed, but .* has a `read` of its own"):
        install_aider_hooks(reads)
    assert "send-aider-session" in (reads / ".aider.conf.yml").read_text()
    assert (reads / ".aider.conf.yml").read_text().count("read:") == 1


def test_a_turns_end_pulls_the_published_skills_into_the_file_aider_reads(
    live_server, tenant, tmp_path, monkeypatch
):
    """After sending the session, the turn's end pulls the workspace's published
    skills into the one file Aider reads with each request; a skill retired since is
    gone from it at the next turn's end. No session is named, so a skill on trial
    is withheld (its arm is a session's)."""
    from hivemind_client import capture
    from skills import review
    from tests.skills.test_review_and_api import make_skill

    monkeypatch.setenv("HIVEMIND_URL", live_server.url)
    monkeypatch.setenv("HIVEMIND_API_KEY", tenant.key)
    monkeypatch.setenv("HIVEMIND_SESSION_ID", "some-other-session")
    skill = review.skill_approve(skill=make_skill(tenant.workspace), number=1, actor=tenant.lead)
    on_trial = make_skill(tenant.workspace, name="on-trial", description="A trial.")
    review.skill_approve(skill=on_trial, number=1, actor=tenant.lead, rollout="trial")
    history = tmp_path / ".aider.chat.history.md"
    history.write_text(HISTORY.read_text())
    assert capture.send_aider_session(str(history)) == 0
    one_file = tmp_path / ".hivemind" / "aider-skills.md"
    text = one_file.read_text()
    assert f"## Skill: {skill.name}" in text and f"name: {skill.name}" in text
    assert "on-trial" not in text
    review.skill_retire(skill=skill, reason="", actor=tenant.lead)
    assert capture.send_aider_session(str(history)) == 0
    assert skill.name not in one_file.read_text()
    assert "No skill is published yet." in one_file.read_text()
