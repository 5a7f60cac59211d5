from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import TestCase
from django.utils import timezone

from failures.models import Incident
from metrics.selectors import overview_get
from metrics.services import rollups_refresh_for_traces
from traces.claude_code import UNFINISHED
from traces.models import Step, StepKey, Trace

ROOT = Path(__file__).resolve().parents[2]
BASE = {"session_id": "abc-123", "transcript_path": "/home/u/.claude/projects/x/abc-123.jsonl",
        "cwd": "/home/u/shop", "permission_mode": "default"}  # fmt: skip

SESSION = [
    {"hook_event_name": "SessionStart", "source": "startup", "model": "claude-sonnet-4-5"},
    {"hook_event_name": "UserPromptSubmit", "prompt": "Fix the failing checkout test"},
    {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "toolu_1",
     "tool_input": {"command": "pytest tests/test_checkout.py"}},
    {"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "toolu_1",
     "tool_input": {"command": "pytest tests/test_checkout.py"}, "duration_ms": 5120,
     "tool_response": {"stdout": "1 failed", "stderr": "", "is_error": True, "content": "1 failed"}},
    {"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_use_id": "toolu_2",
     "tool_input": {"file_path": "/home/u/shop/checkout.py"}, "agent_id": "a1", "agent_type": "Explore"},
    {"hook_event_name": "PostToolUse", "tool_name": "Read", "tool_use_id": "toolu_2",
     "tool_input": {"file_path": "/home/u/shop/checkout.py"}, "agent_id": "a1", "agent_type": "Explore",
     "tool_response": {"content": "def checkout(): ..."}},
    {"hook_event_name": "SubagentStop", "stop_hook_active": False, "agent_id": "a1", "agent_type": "Explore",
     "agent_transcript_path": "/x/a1.jsonl", "last_assistant_message": "checkout() rounds wrongly"},
    {"hook_event_name": "PreToolUse", "tool_name": "Edit", "tool_use_id": "toolu_3",
     "tool_input": {"file_path": "/home/u/shop/checkout.py"}},
    {"hook_event_name": "Notification", "message": "Claude needs permission", "notification_type": "permission_prompt"},
    {"hook_event_name": "FutureEvent", "shiny": 1},
    {"hook_event_name": "Stop", "stop_hook_active": False, "last_assistant_message": "Could not fix it."},
    {"hook_event_name": "SessionEnd", "reason": "prompt_input_exit"},
]  # fmt: skip


def post(client, tenant, payload, **headers):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/api/v1/hooks/claude-code", json.dumps({**BASE, **payload}),
                       content_type="application/json", headers={**tenant.api_headers(), **headers})  # fmt: skip


@pytest.mark.django_db
def test_a_session_of_hook_payloads_becomes_one_trace(client, tenant):
    for payload in SESSION:
        assert post(client, tenant, payload).status_code == 200, payload
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.external_id == "claude-code-abc-123" and trace.session_id == "abc-123"
    assert trace.task == "Fix the failing checkout test" and trace.model == "claude-sonnet-4-5"
    steps = {(s.kind, s.name): s for s in Step.objects.filter(trace=trace)}
    assert steps[("tool_call", "Bash")].error == "1 failed"  # error inside tool_response
    assert steps[("tool_call", "Explore/Read")].output == {"content": "def checkout(): ..."}
    assert steps[("tool_call", "Edit")].error == UNFINISHED  # PreToolUse without PostToolUse
    assert steps[("assistant_message", "subagent:Explore")].output == "checkout() rounds wrongly"
    # The harness's events, not the agent's words: framework steps.
    assert ("span", "FutureEvent") in steps and ("span", "Notification") in steps
    assert len([s for s in steps if s[0] == "tool_call"]) == 3  # Pre and Post share one step
    assert trace.metadata["extra:FutureEvent"] == {"shiny": 1}
    assert set(Incident.objects.filter(trace=trace).values_list("tool", flat=True)) == {
        "Bash",
        "Edit",
    }


@pytest.mark.django_db
def test_calls_never_answered_fail_when_the_turn_ends_without_a_session_end(client, tenant):
    """No SessionEnd (a session still open, Codex, an older Claude Code): a call the
    turn never answered is failed at its Stop, or at the next prompt."""
    turn = [
        {"hook_event_name": "UserPromptSubmit", "prompt": "List the repo and open the PR"},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "t1",
         "tool_input": {"command": "ls missing/"}},
        {"hook_event_name": "Stop", "stop_hook_active": False, "last_assistant_message": "Done."},
        {"hook_event_name": "UserPromptSubmit", "prompt": "now open the PR"},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "t2",
         "tool_input": {"command": "gh pr create"}},
        {"hook_event_name": "UserPromptSubmit", "prompt": "try again"},
        {"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_use_id": "t3",
         "tool_input": {"file_path": "README.md"}},
        {"hook_event_name": "PostToolUse", "tool_name": "Read", "tool_use_id": "t3",
         "tool_response": {"content": "# Repo"}},
        {"hook_event_name": "Stop", "stop_hook_active": False, "last_assistant_message": "Read it."},
    ]  # fmt: skip
    statuses = []
    for payload in turn:
        assert post(client, tenant, payload).status_code == 200, payload
        statuses.append(Trace.objects.get(workspace=tenant.workspace).status)
    trace = Trace.objects.get(workspace=tenant.workspace)
    calls = {(s.input or {}).get("command") or s.name: s
             for s in Step.objects.filter(trace=trace, kind="tool_call")}  # fmt: skip
    assert calls["ls missing/"].error == UNFINISHED  # failed at the first Stop
    assert statuses[2] == "failed"  # the turn ended on a call that never answered
    assert calls["gh pr create"].error == UNFINISHED  # failed at the next prompt
    assert calls["Read"].error == "" and statuses[-1] == "succeeded"
    assert Step.objects.filter(trace=trace, kind="tool_call").exclude(error="").count() == 2


@pytest.mark.django_db
def test_retried_payload_with_the_same_event_id_is_one_step(client, tenant):
    payload = {"hook_event_name": "UserPromptSubmit", "prompt": "hi"}
    post(client, tenant, payload, **{"X-Hivemind-Event-Id": "e1"})
    post(client, tenant, payload, **{"X-Hivemind-Event-Id": "e1"})
    assert Step.objects.count() == 1


@pytest.mark.django_db
def test_bad_hook_payloads_get_clear_errors(client, tenant, other_tenant):
    response = client.post("/api/v1/hooks/claude-code", json.dumps({"hook_event_name": "Stop"}),
                           content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 422 and "session_id" in response.json()["detail"]
    assert client.post("/api/v1/hooks/claude-code", "[1]", content_type="application/json",
                       headers=tenant.api_headers()).status_code == 422  # fmt: skip
    assert (
        client.post("/api/v1/hooks/claude-code", "{}", content_type="application/json").status_code
        == 401
    )
    post(client, other_tenant, SESSION[1])
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def run_capture(payload: dict, env: dict, spool: Path) -> tuple[int, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "hivemind_client", "capture"], input=json.dumps(payload), text=True,
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HIVEMIND_SPOOL": str(spool), **env}, timeout=10,
    )  # fmt: skip
    return result.returncode, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_capture_command_live_dead_and_disabled(live_server, tenant, tmp_path):
    spool = tmp_path / "spool.jsonl"
    live = {"HIVEMIND_URL": live_server.url, "HIVEMIND_API_KEY": tenant.key}
    dead = {"HIVEMIND_URL": "http://127.0.0.1:9", "HIVEMIND_API_KEY": tenant.key}
    code, _ = run_capture({**BASE, **SESSION[1]}, live, spool)
    assert code == 0 and Step.objects.count() == 1
    code, _ = run_capture(
        {**BASE, "hook_event_name": "UserPromptSubmit", "prompt": "two"}, dead, spool
    )
    # (run_capture's 10 s timeout is the liveness bound; no wall-clock figure here)
    assert code == 0 and len(spool.read_text().splitlines()) == 1
    assert Step.objects.count() == 1
    code, _ = run_capture(
        {**BASE, "hook_event_name": "UserPromptSubmit", "prompt": "three"}, live, spool
    )
    assert (
        code == 0 and Step.objects.count() == 3
    )  # the spooled one, delivered once, and the new one
    assert not spool.exists() or spool.read_text() == ""
    run_capture({**BASE, "hook_event_name": "UserPromptSubmit", "prompt": "four"}, live, spool)
    assert Step.objects.count() == 4  # the spool was not sent twice
    code, _ = run_capture({**BASE, "hook_event_name": "UserPromptSubmit", "prompt": "off"},
                          {**live, "HIVEMIND_CAPTURE": "false"}, spool)  # fmt: skip
    assert code == 0 and Step.objects.count() == 4 and not spool.exists()


def test_capture_exits_0_on_garbage_input(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hivemind_client", "capture"], input="not json",
                            text=True, cwd=ROOT, timeout=10, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0


def test_install_hooks_keeps_existing_hooks(tmp_path):
    from hivemind_client.capture import capture_command
    from hivemind_client.install import install_claude_hooks

    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    mine = {"matcher": "Bash", "hooks": [{"type": "command", "command": "./my-guard.sh"}]}
    settings.write_text(json.dumps({"model": "x", "hooks": {"PreToolUse": [mine]}}))
    added, kind = install_claude_hooks(tmp_path, hook_type="command")
    data = json.loads(settings.read_text())
    assert kind == "command" and data["model"] == "x" and data["hooks"]["PreToolUse"][0] == mine
    assert any(h["command"] == capture_command()
               for e in data["hooks"]["PreToolUse"] for h in e["hooks"])  # fmt: skip
    assert "SessionEnd" in added and "SessionStart (skills pull)" in added
    assert install_claude_hooks(tmp_path, hook_type="command")[0] == []


def test_http_hooks_name_the_key_variable_never_the_key(tmp_path, monkeypatch):
    from hivemind_client import install

    monkeypatch.setattr(install, "claude_code_version", lambda: (2, 1, 70))
    monkeypatch.setenv("HIVEMIND_API_KEY", "hm_secret_value")
    added, kind = install.install_claude_hooks(tmp_path, url="http://hm.example:8000")
    text = (tmp_path / ".claude" / "settings.json").read_text()
    data = json.loads(text)
    assert kind == "http" and "hm_secret_value" not in text
    hook = data["hooks"]["PostToolUseFailure"][0]["hooks"][0]
    assert hook == {"type": "http", "url": "http://hm.example:8000/api/v1/hooks/claude-code?reply=empty",
                    "headers": {"Authorization": "Bearer $HIVEMIND_API_KEY"},
                    "allowedEnvVars": ["HIVEMIND_API_KEY"], "timeout": 2}  # fmt: skip
    # SessionStart: command hooks (capture, and the skills pull within its budget).
    session_start = [h for e in data["hooks"]["SessionStart"] for h in e["hooks"]]
    assert {h["type"] for h in session_start} == {"command"}
    assert any("skills pull --hook --budget 5" in h["command"] for h in session_start)
    # Stop and SessionEnd: a command hook too, which starts the import of the
    # session's transcript (the server is handed only its path); added once.
    for event in ("Stop", "SessionEnd"):
        commands = [h["command"] for e in data["hooks"][event] for h in e["hooks"]
                    if h["type"] == "command"]  # fmt: skip
        assert len(commands) == 1 and "merge-transcript --url http://hm.example:8000" in commands[0]
        assert f"{event} (transcript)" in added
    assert install.install_claude_hooks(tmp_path, url="http://hm.example:8000")[0] == []
    # An older Claude Code, or no URL: command hooks, whose capture merges it itself.
    monkeypatch.setattr(install, "claude_code_version", lambda: (2, 0, 14))
    added, kind = install.install_claude_hooks(tmp_path / "old", url="http://x")
    assert kind == "command" and not [a for a in added if "transcript" in a]


def test_merge_transcript_starts_the_import_at_a_turns_end(tmp_path, monkeypatch):
    """`merge-transcript` (the http install's Stop and SessionEnd command hook) reads
    the payload and starts `import --format claude-transcript` on its transcript and
    its subagents' beside it, for the server named; any other event, a missing file
    or garbage: nothing, and exit 0."""
    import io

    from hivemind_client import capture

    transcript = tmp_path / "s1.jsonl"
    transcript.write_text("{}\n")
    (tmp_path / "s1" / "subagents").mkdir(parents=True)
    (tmp_path / "s1" / "subagents" / "agent-a1.jsonl").write_text("{}\n")
    started: list = []
    monkeypatch.setattr(capture.subprocess, "Popen",
                        lambda command, **kw: started.append((command, kw["env"])))  # fmt: skip
    monkeypatch.delenv("HIVEMIND_URL", raising=False)
    for event, path in (("PreToolUse", transcript), ("Stop", tmp_path / "gone.jsonl"),
                        ("Stop", transcript)):  # fmt: skip
        payload = json.dumps({"hook_event_name": event, "transcript_path": str(path)})
        monkeypatch.setattr(sys, "stdin", io.StringIO(payload))
        assert capture.merge_transcript_main("claude-code", "http://hm.example:8000") == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    assert capture.merge_transcript_main("claude-code") == 0
    assert len(started) == 1
    command, env = started[0]
    assert command[-5:] == ["import", "--format", "claude-transcript", str(transcript),
                            str(tmp_path / "s1" / "subagents" / "agent-a1.jsonl")]  # fmt: skip
    assert env["HIVEMIND_URL"] == "http://hm.example:8000"


def test_the_codex_installer_says_codex_must_trust_the_hooks(tmp_path, capsys):
    """Codex CLI runs a project's hooks only in a trusted project and only once they
    are trusted, skipping them without a word otherwise (seen on 0.171): the
    installer says so and how, and that its hooks give no exit codes."""
    from hivemind_client.__main__ import main

    assert main(["install-codex-hooks", "--project", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "trusted project" in said and "/hooks" in said and "codex exec --trust" in said
    assert "--dangerously-bypass-hook-trust" in said and "no exit code" in said
    assert "HIVEMIND_CODEX_ROLLOUT=off" in said
    assert main(["install-cursor-hooks", "--project", str(tmp_path)]) == 0
    assert "trusted project" not in capsys.readouterr().out


def test_the_gemini_installer(tmp_path, capsys):
    """install-gemini-hooks adds the capture hook to .gemini/settings.json for the
    events that make a run (keeping what the file has), once, and says that Gemini
    CLI reads it only in a trusted folder."""
    from hivemind_client.__main__ import main

    (tmp_path / ".gemini").mkdir()
    (tmp_path / ".gemini" / "settings.json").write_text('{"model": {"name": "gemini-3"}}')
    assert main(["install-gemini-hooks", "--project", str(tmp_path)]) == 0
    assert "trusted folder" in capsys.readouterr().out
    settings = json.loads((tmp_path / ".gemini" / "settings.json").read_text())
    assert settings["model"] == {"name": "gemini-3"}
    assert sorted(settings["hooks"]) == sorted(
        ["SessionStart", "BeforeAgent", "AfterTool", "AfterAgent", "SessionEnd"])  # fmt: skip
    hook = settings["hooks"]["AfterTool"][0]
    assert hook["matcher"] == "*" and "--source gemini-cli" in hook["hooks"][0]["command"]
    main(["install-gemini-hooks", "--project", str(tmp_path)])
    assert "nothing (already there)" in capsys.readouterr().out
    main(["status", "--project", str(tmp_path)])
    assert ".gemini/settings.json: Hivemind installed" in capsys.readouterr().out


def test_the_openhands_installer(tmp_path, capsys):
    """install-openhands-hooks adds the capture hook to .openhands/hooks.json for the
    events that make a run, once; a file that keeps its events at the top level, in
    the SDK's snake_case names, keeps them there (a "hooks" key beside them would
    make OpenHands ignore them)."""
    from hivemind_client.__main__ import main

    assert main(["install-openhands-hooks", "--project", str(tmp_path)]) == 0
    data = json.loads((tmp_path / ".openhands" / "hooks.json").read_text())
    assert sorted(data["hooks"]) == sorted(
        ["SessionStart", "UserPromptSubmit", "PostToolUse", "Stop", "SessionEnd"])  # fmt: skip
    hook = data["hooks"]["PostToolUse"][0]
    assert hook["matcher"] == "*" and "--source openhands" in hook["hooks"][0]["command"]
    main(["install-openhands-hooks", "--project", str(tmp_path)])
    assert "nothing (already there)" in capsys.readouterr().out
    main(["status", "--project", str(tmp_path)])
    assert ".openhands/hooks.json: Hivemind installed" in capsys.readouterr().out
    mine = {"type": "command", "command": "lint.sh"}
    other = tmp_path / "other"
    (other / ".openhands").mkdir(parents=True)
    (other / ".openhands" / "hooks.json").write_text(
        json.dumps({"stop": [{"matcher": "*", "hooks": [mine]}]}))  # fmt: skip
    main(["install-openhands-hooks", "--project", str(other)])
    data = json.loads((other / ".openhands" / "hooks.json").read_text())
    assert "hooks" not in data and "Stop" not in data
    assert data["stop"][0]["hooks"] == [mine] and "--source openhands" in json.dumps(data["stop"])
    assert "SessionEnd" in data and "PostToolUse" in data


def test_the_opencode_plugin_installer(tmp_path, capsys):
    """install-opencode-plugin writes .opencode/plugins/hivemind.js, which OpenCode
    loads at start: at each turn's end (session.idle) it runs this client's
    send-opencode-session with the OpenCode binary and the session, detached. Written
    again it is the same file."""
    from hivemind_client.__main__ import main

    assert main(["install-opencode-plugin", "--project", str(tmp_path)]) == 0
    plugin = (tmp_path / ".opencode" / "plugins" / "hivemind.js").read_text()
    assert '"send-opencode-session"' in plugin and "session.idle" in plugin
    assert "process.execPath" in plugin and "detached: true" in plugin
    main(["install-opencode-plugin", "--project", str(tmp_path)])
    assert "nothing (already there)" in capsys.readouterr().out
    main(["status", "--project", str(tmp_path)])
    assert ".opencode/plugins/hivemind.js: Hivemind installed" in capsys.readouterr().out


def test_codex_and_cursor_installers(tmp_path):
    from hivemind_client.install import install_codex_hooks, install_cursor_hooks

    (tmp_path / ".codex").mkdir()
    (tmp_path / ".codex" / "config.toml").write_text('model = "gpt-5-codex"\n')
    assert "PostToolUse" in install_codex_hooks(tmp_path) and install_codex_hooks(tmp_path) == []
    codex = json.loads((tmp_path / ".codex" / "hooks.json").read_text())
    assert "--source codex" in codex["hooks"]["Stop"][0]["hooks"][0]["command"]
    config = (tmp_path / ".codex" / "config.toml").read_text()
    assert 'model = "gpt-5-codex"' in config and "codex_hooks = true" in config
    (tmp_path / ".cursor").mkdir()
    (tmp_path / ".cursor" / "hooks.json").write_text(json.dumps(
        {"version": 1, "hooks": {"afterFileEdit": [{"command": "./format.sh"}]}}))  # fmt: skip
    assert "stop" in install_cursor_hooks(tmp_path) and install_cursor_hooks(tmp_path) == []
    cursor = json.loads((tmp_path / ".cursor" / "hooks.json").read_text())
    assert cursor["hooks"]["afterFileEdit"][0] == {"command": "./format.sh"}
    assert "--source cursor" in cursor["hooks"]["afterFileEdit"][1]["command"]


def _session_with_failures(session="sess-29"):
    """A session as Claude Code sends it: 29 tool calls, two of which fail
    (PostToolUseFailure: an `ls` exiting 1 and a `gh` call answered 401)."""
    events = [
        {"hook_event_name": "SessionStart", "source": "startup", "model": "claude-sonnet-4-5"},
        {"hook_event_name": "UserPromptSubmit", "prompt": "Open a PR for the checkout fix"},
    ]
    for i in range(29):
        tool, command = ("Bash", f"cat src/file_{i}.py")
        failed = None
        if i == 7:
            command, failed = (
                "ls build/",
                "Exit code 1\nls: cannot access 'build/': No such file or directory",
            )
        if i == 20:
            command, failed = (
                "gh pr create --fill",
                "Exit code 1\nHTTP 401: Bad credentials (https://api.github.com/graphql)",
            )
        call = {
            "tool_name": tool,
            "tool_use_id": f"toolu_{i:02d}",
            "tool_input": {"command": command},
        }
        events.append({"hook_event_name": "PreToolUse", **call})
        if failed:
            events.append({"hook_event_name": "PostToolUseFailure", **call, "error": failed,
                           "is_interrupt": False})  # fmt: skip
        else:
            events.append({"hook_event_name": "PostToolUse", **call,
                           "tool_response": {"stdout": "ok", "stderr": "", "interrupted": False}})  # fmt: skip
    events.append(
        {
            "hook_event_name": "Stop",
            "stop_hook_active": False,
            "last_assistant_message": "PR opened.",
        }
    )
    events.append({"hook_event_name": "SessionEnd", "reason": "prompt_input_exit"})
    return [{**e, "session_id": session} for e in events]


@pytest.mark.django_db
def test_failed_tool_calls_are_failed_steps_with_their_error_text_and_steps_count_from_0(
    client, tenant
):
    for payload in _session_with_failures():
        assert post(client, tenant, payload).status_code == 200, payload
    trace = Trace.objects.get(workspace=tenant.workspace)
    steps = list(Step.objects.filter(trace=trace).order_by("index"))
    assert [s.index for s in steps] == list(range(len(steps)))
    assert len([s for s in steps if s.kind == "tool_call"]) == 29
    failed = [s for s in steps if s.error]
    assert [s.input["command"] for s in failed] == ["ls build/", "gh pr create --fill"]
    assert "No such file or directory" in failed[0].error and "HTTP 401" in failed[1].error
    # The session recovered after both (later calls succeeded, the turn ended): succeeded.
    assert trace.status == "succeeded" and trace.ended_at is not None
    assert trace.error_count == 2
    # Each failed call is an incident with its own error text, kept out of failure modes.
    incidents = list(Incident.objects.filter(trace=trace).order_by("step_index"))
    assert [i.step_index for i in incidents] == [s.index for s in failed]
    assert {i.kind for i in incidents} == {"recovered"}
    assert "cannot access 'build/'" in incidents[0].error_text
    assert "HTTP 401: Bad credentials" in incidents[1].error_text


@pytest.mark.django_db
def test_a_failed_turn_or_an_unrecovered_failure_fails_the_session(client, tenant):
    events = _session_with_failures("sess-stopfail")[:-2] + [
        {"hook_event_name": "StopFailure", "session_id": "sess-stopfail", "error": "rate_limit",
         "error_details": "429 from the API"},
        {"hook_event_name": "SessionEnd", "session_id": "sess-stopfail", "reason": "other"},
    ]  # fmt: skip
    for payload in events:
        post(client, tenant, payload)
    trace = Trace.objects.get(external_id="claude-code-sess-stopfail")
    assert trace.status == "failed"
    assert trace.metadata["inferred_status"]["reason"].startswith("a turn ended on an error")
    assert Step.objects.get(trace=trace, name="turn failed").error == "rate_limit: 429 from the API"
    # Ending right after a failed call, with nothing after it: failed.
    last_failed = _session_with_failures("sess-end-on-failure")[:18] + [
        {"hook_event_name": "SessionEnd", "session_id": "sess-end-on-failure", "reason": "other"}
    ]  # fmt: skip
    for payload in last_failed:
        post(client, tenant, payload)
    ended = Trace.objects.get(external_id="claude-code-sess-end-on-failure")
    assert ended.status == "failed"
    texts = " ".join(Incident.objects.filter(trace=ended).values_list("error_text", flat=True))
    assert "cannot access 'build/'" in texts


@pytest.mark.django_db
def test_a_correction_as_the_last_prompt_fails_the_session(client, tenant):
    events = _session_with_failures("sess-corrected")[:-1] + [
        {"hook_event_name": "UserPromptSubmit", "session_id": "sess-corrected",
         "prompt": "That's wrong, the PR targets the wrong branch"},
        {"hook_event_name": "SessionEnd", "session_id": "sess-corrected", "reason": "prompt_input_exit"},
    ]  # fmt: skip
    for payload in events:
        post(client, tenant, payload)
    trace = Trace.objects.get(external_id="claude-code-sess-corrected")
    assert trace.status == "failed"
    # The trace page says the status was read from the session, and from what.
    page = tenant.client_for(tenant.viewer).get(f"/w/acme/traces/{trace.pk}/").content.decode()
    assert "read from the session (the agent reported no outcome)" in page
    assert "the user&#x27;s last prompt was a correction: “That&#x27;s wrong, the PR" in page
    # The Overview's success rate says how many of its outcomes were read, not reported.
    rollups_refresh_for_traces(trace_ids=[trace.pk])  # the task ingest queues after commit
    assert overview_get(workspace=tenant.workspace).inferred_7d == 1
    page = tenant.client_for(tenant.viewer).get("/w/acme/").content.decode()
    assert "all of them read from the session because the agent reported no outcome" in page
    assert "(its one outcome this week read from its sessions, not reported)" in page
    # The Metrics chart's hover and its CSV say so too.
    viewer = tenant.client_for(tenant.viewer)
    assert "1 read from sessions, not reported" in viewer.get("/w/acme/metrics/").content.decode()
    rows = viewer.get("/w/acme/metrics/series.csv").content.decode().splitlines()
    assert rows[0].endswith(",outcomes_read_from_sessions") and rows[1].endswith(",1")
    # An outcome posted for it decides instead, and the page no longer says why; even
    # an outcome that agrees makes it reported.
    response = client.post(
        f"/api/v1/traces/{trace.external_id}/outcome", json.dumps({"status": "failed"}),
        content_type="application/json", headers=tenant.api_headers(),
    )  # fmt: skip
    assert response.status_code in (200, 201, 202), response.content
    page = tenant.client_for(tenant.viewer).get(f"/w/acme/traces/{trace.pk}/").content.decode()
    assert "read from the session" not in page
    rollups_refresh_for_traces(trace_ids=[trace.pk])
    assert overview_get(workspace=tenant.workspace).inferred_7d == 0
    assert (
        "read from the session"
        not in tenant.client_for(tenant.viewer).get("/w/acme/").content.decode()
    )


@pytest.mark.django_db
def test_each_inferred_status_says_why(client, tenant):
    from traces.claude_code import session_status

    steps = [{"index": 0, "kind": "user_prompt", "input": "Fix it"},
             {"index": 1, "kind": "tool_call", "name": "Bash", "error": "exit 1"}]  # fmt: skip
    assert session_status(None, steps, turn_failed=False) == (
        "failed", "its last tool call, step 1 (Bash), failed, and nothing ran after it")  # fmt: skip
    steps[1]["error"] = (
        "The user doesn't want to proceed with this tool use. The tool use was rejected"
    )
    assert session_status(None, steps, turn_failed=False) == ("failed", (
        "its last tool call, step 1 (Bash), was refused, and nothing ran after it"))  # fmt: skip
    # A call with no answer by its turn's end (refused, stopped, or failed before
    # Claude Code sent PostToolUseFailure), in today's words and in those stored before.
    for unfinished in (UNFINISHED, "No PostToolUse before the turn ended: the tool call failed."):
        steps[1]["error"] = unfinished
        assert session_status(None, steps, turn_failed=False) == ("failed", (
            "its last tool call, step 1 (Bash), did not complete, and nothing ran after it"))  # fmt: skip
    steps[1].pop("error")
    assert session_status(None, steps, turn_failed=False)[0] == "succeeded"
    assert session_status(None, steps, turn_failed=True)[0] == "failed"


@pytest.mark.django_db(transaction=True)
def test_installed_hook_command_runs_from_another_directory(tmp_path, live_server, tenant):
    """The written command carries its interpreter and package path: run from
    elsewhere with only the documented variables, it delivers an event."""
    from hivemind_client.install import install_claude_hooks

    project = tmp_path / "project"
    install_claude_hooks(project, hook_type="command")
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    command = settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
    assert sys.executable in command and "PYTHONPATH=" in command
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HIVEMIND_URL": live_server.url,
           "HIVEMIND_API_KEY": tenant.key, "HIVEMIND_SPOOL": str(tmp_path / "spool.jsonl")}  # fmt: skip
    result = subprocess.run(command, shell=True, cwd=elsewhere, env=env, input=json.dumps(
        {**BASE, "hook_event_name": "UserPromptSubmit", "prompt": "x"}), text=True,
        capture_output=True, timeout=30)  # fmt: skip
    assert result.returncode == 0 and "No module named" not in result.stderr
    trace = Trace.objects.get(workspace=tenant.workspace, session_id=BASE["session_id"])
    assert trace.task == "x" and not (tmp_path / "spool.jsonl").exists()


def test_capture_without_a_key_warns_once_and_caps_the_spool(tmp_path):
    spool = tmp_path / "spool.jsonl"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HIVEMIND_SPOOL": str(spool),
           "HIVEMIND_SPOOL_MAX_MB": "0.01", "PYTHONPATH": str(ROOT)}  # 10 KB  # fmt: skip
    warnings = []
    for i in range(60):
        payload = {**BASE, "hook_event_name": "UserPromptSubmit", "prompt": f"p{i} " + "x" * 400}
        result = subprocess.run([sys.executable, "-m", "hivemind_client", "capture"], env=env,
                                input=json.dumps(payload), text=True, capture_output=True)  # fmt: skip
        assert result.returncode == 0
        warnings.append(result.stderr)
    assert "HIVEMIND_API_KEY" in warnings[0] and not any(warnings[1:])
    assert spool.stat().st_size <= int(0.01 * 1024 * 1024)  # HIVEMIND_SPOOL_MAX_MB=0.01
    dropped = int((tmp_path / "spool.jsonl.dropped").read_text())
    kept = len(spool.read_text().splitlines())
    assert dropped > 0 and dropped + kept == 60
    assert "p59 " in spool.read_text().splitlines()[-1]  # the newest are kept


@pytest.mark.django_db
def test_http_hooks_get_an_empty_success(client, tenant):
    """What an http hook posts (no event id, ?reply=empty): stored, and a 204."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/api/v1/hooks/claude-code?reply=empty",
                               json.dumps({**BASE, **SESSION[1]}), content_type="application/json",
                               headers={"Authorization": f"Bearer {tenant.key}"})  # fmt: skip
    assert response.status_code == 204 and response.content == b""
    assert Trace.objects.get(workspace=tenant.workspace).task == "Fix the failing checkout test"


@pytest.mark.django_db
def test_subagent_calls_are_nested_under_their_subagent(client, tenant):
    events = [
        {"hook_event_name": "UserPromptSubmit", "prompt": "Why does checkout round wrongly?"},
        {"hook_event_name": "SubagentStart", "agent_id": "ag-1", "agent_type": "Explore"},
        {"hook_event_name": "PreToolUse", "tool_name": "Grep", "tool_use_id": "t1",
         "tool_input": {"pattern": "round("}, "agent_id": "ag-1", "agent_type": "Explore"},
        {"hook_event_name": "PostToolUse", "tool_name": "Grep", "tool_use_id": "t1",
         "tool_input": {"pattern": "round("}, "agent_id": "ag-1", "agent_type": "Explore",
         "tool_response": {"matches": 3}},
        {"hook_event_name": "SubagentStop", "agent_id": "ag-1", "agent_type": "Explore",
         "stop_hook_active": False, "last_assistant_message": "round() truncates"},
    ]  # fmt: skip
    for payload in events:
        assert post(client, tenant, payload).status_code == 200
    steps = {s.name: s for s in Step.objects.filter(trace__workspace=tenant.workspace)}
    assert steps["Explore/Grep"].parent_index == steps["subagent:Explore"].index
    assert steps["subagent:Explore"].output == "round() truncates"
    assert sorted(s.index for s in steps.values()) == [0, 1, 2]


@pytest.mark.django_db
def test_older_payloads_without_event_names_or_session_events(client, tenant):
    """An older Claude Code: no hook_event_name, no SessionStart/SessionEnd."""
    old = [
        {"tool_name": "Bash", "tool_input": {"command": "make"}},
        {"tool_name": "Bash", "tool_input": {"command": "make"},
         "tool_response": {"stdout": "ok", "stderr": ""}},
        {"stop_hook_active": False},
    ]  # fmt: skip
    for payload in old:
        assert post(client, tenant, payload).status_code == 200, payload
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.status == "succeeded"  # the Stop closed the turn
    assert trace.task == "claude-code session in shop"  # no prompt was sent: the folder
    post(client, tenant, {"hook_event_name": "UserPromptSubmit", "prompt": "Now deploy it"})
    trace.refresh_from_db()
    assert trace.task == "Now deploy it" and trace.status == "running"


@pytest.mark.django_db
def test_redactions_add_up_across_hook_events_and_a_resent_event_counts_once(client, tenant):
    post(client, tenant, {"hook_event_name": "UserPromptSubmit", "prompt": "Mail ann@example.com"})
    call = {
        "tool_name": "Bash",
        "tool_use_id": "t9",
        "tool_input": {"command": "mail bob@example.com"},
    }
    post(client, tenant, {"hook_event_name": "PreToolUse", **call}, **{"X-Hivemind-Event-Id": "e1"})
    post(client, tenant, {"hook_event_name": "PreToolUse", **call}, **{"X-Hivemind-Event-Id": "e1"})
    trace = Trace.objects.get(workspace=tenant.workspace)
    # ann@ in the task and in the prompt step, bob@ in the call: 3, not 2 and not 4.
    assert trace.redaction_counts.get("EMAIL") == 3, trace.redaction_counts


@pytest.mark.django_db
def test_codex_and_cursor_hooks_make_their_own_traces(client, tenant, other_tenant):
    def send(source, payload):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return client.post(f"/api/v1/hooks/{source}", json.dumps(payload),
                               content_type="application/json", headers=tenant.api_headers())  # fmt: skip

    codex = {"session_id": "cx-1", "cwd": "/w/api", "model": "gpt-5-codex", "turn_id": "t-1",
             "permission_mode": "default", "transcript_path": None}  # fmt: skip
    assert (
        send(
            "codex", {**codex, "hook_event_name": "UserPromptSubmit", "prompt": "Run the tests"}
        ).status_code
        == 200
    )
    assert send("codex", {**codex, "hook_event_name": "PostToolUse", "tool_name": "Bash",
                          "tool_use_id": "c1", "tool_input": {"command": "pytest"},
                          "tool_response": {"exit_code": 2, "output": "ImportError: no module named api"}}).status_code == 200  # fmt: skip
    assert send("codex", {**codex, "hook_event_name": "Stop", "stop_hook_active": False,
                          "last_assistant_message": "Tests fail."}).status_code == 200  # fmt: skip
    trace = Trace.objects.get(workspace=tenant.workspace, agent="codex")
    assert trace.external_id == "codex-cx-1" and trace.task == "Run the tests"
    assert trace.status == "failed"  # ended on a failed call
    assert "ImportError" in Step.objects.get(trace=trace, name="Bash").error

    cursor = {"conversation_id": "cu-1", "generation_id": "g1", "workspace_roots": ["/w/web"],
              "cursor_version": "2.1", "model": "claude-4.5-sonnet"}  # fmt: skip
    for payload in [
        {"hook_event_name": "beforeSubmitPrompt", "prompt": "Fix the navbar"},
        {"hook_event_name": "afterShellExecution", "command": "npm test", "output": "1 failing", "duration": 900, "exit_code": 1},
        {"hook_event_name": "afterFileEdit", "file_path": "/w/web/nav.tsx", "edits": [{"old_string": "a", "new_string": "b"}]},
        {"hook_event_name": "afterAgentResponse", "text": "The navbar is fixed."},
        {"hook_event_name": "stop", "status": "completed", "loop_count": 0},
    ]:  # fmt: skip
        assert send("cursor", {**cursor, **payload}).status_code == 200, payload
    trace = Trace.objects.get(workspace=tenant.workspace, agent="cursor")
    assert trace.task == "Fix the navbar" and trace.status == "succeeded"
    # The reply is the agent's one message; the loop's `stop` that follows carries no
    # words, so it is the harness's turn end, not a second, empty "assistant" step.
    assert [(s.kind, s.name, s.output) for s in Step.objects.filter(trace=trace).order_by("index")] == [
        ("user_prompt", "", None),
        ("tool_call", "Shell", {"output": "1 failing", "exit_code": 1}),
        ("tool_call", "Edit", {"edits": [{"old_string": "a", "new_string": "b"}]}),
        ("assistant_message", "assistant", "The navbar is fixed."),
        ("span", "turn end", None),
    ]  # fmt: skip
    assert Step.objects.get(trace=trace, name="Shell").error.startswith("exit code 1")
    send(
        "cursor",
        {**cursor, "conversation_id": "cu-2", "hook_event_name": "stop", "status": "error"},
    )
    assert Trace.objects.get(external_id="cursor-cu-2").status == "failed"
    # Bad input: clear 400s, nothing stored; another workspace's key sees nothing.
    bad = client.post("/api/v1/hooks/cursor", json.dumps({"hook_event_name": "stop"}),
                      content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert bad.status_code == 422 and "conversation_id" in bad.json()["detail"]
    anon = client.post("/api/v1/hooks/codex", json.dumps(codex), content_type="application/json")
    assert anon.status_code == 401
    assert not Trace.objects.filter(workspace=other_tenant.workspace).exists()


@pytest.mark.django_db
def test_a_hook_session_silent_for_a_day_is_no_longer_running(client, tenant):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import ingest
    from traces.services import traces_settle_stale_sessions

    post(client, tenant, {"hook_event_name": "UserPromptSubmit", "session_id": "sess-killed",
                          "prompt": "Deploy it"})  # fmt: skip
    post(client, tenant, {"hook_event_name": "UserPromptSubmit", "session_id": "sess-live",
                          "prompt": "Deploy it"})  # fmt: skip
    ingest(tenant.workspace, [{"external_id": "own-run", "status": "running",
                               "steps": [{"kind": "tool_call", "name": "t"}]}])  # fmt: skip
    day_ago = timezone.now() - timedelta(hours=25)
    Trace.objects.exclude(external_id="claude-code-sess-live").update(updated_at=day_ago)
    assert traces_settle_stale_sessions() == 1
    statuses = dict(Trace.objects.values_list("external_id", "status"))
    assert statuses == {"claude-code-sess-killed": "unknown", "claude-code-sess-live": "running",
                        "own-run": "running"}  # an agent's own "running" stays  # fmt: skip
    killed = Trace.objects.get(external_id="claude-code-sess-killed")
    page = tenant.client_for(tenant.viewer).get(f"/w/acme/traces/{killed.pk}/").content.decode()
    assert "no event for 24 hours and no end of its turn" in page
    assert traces_settle_stale_sessions() == 0


@pytest.mark.django_db
def test_a_call_whose_key_looks_like_a_card_number_keeps_its_step(client, tenant):
    """The hooks number steps by keys the server makes (a hash in hex). About one
    key in 2,000 holds 13 digits in a row that pass Luhn; redacting it as a card
    number once moved the call's PostToolUse to a new step and failed the call."""
    from collections import Counter

    from traces.claude_code import key_hash
    from workspaces.redaction import POLICY_SWITCHES, build_redactor

    redactor = build_redactor(enabled=dict.fromkeys(POLICY_SWITCHES, True))
    tool_use_id = next(
        f"toolu_{i}" for i in range(100_000)
        if redactor.text(f"tool:{key_hash(f'toolu_{i}')}", Counter()) != f"tool:{key_hash(f'toolu_{i}')}"
    )  # fmt: skip
    call = {"tool_name": "Bash", "tool_use_id": tool_use_id, "tool_input": {"command": "make"}}
    for payload in (
        {"hook_event_name": "UserPromptSubmit", "prompt": "Build it"},
        {"hook_event_name": "PreToolUse", **call},
        {"hook_event_name": "PostToolUse", **call, "tool_response": {"stdout": "built"}},
        {"hook_event_name": "Stop", "stop_hook_active": False, "last_assistant_message": "Built."},
    ):
        assert post(client, tenant, payload).status_code == 200, payload
    trace = Trace.objects.get(workspace=tenant.workspace)
    calls = list(Step.objects.filter(trace=trace, kind="tool_call"))
    assert [(c.error, c.output) for c in calls] == [("", {"stdout": "built"})]
    assert StepKey.objects.filter(trace=trace, key=f"tool:{key_hash(tool_use_id)}").exists()
    assert trace.status == "succeeded" and trace.redaction_counts == {}


@pytest.mark.django_db
def test_personal_data_under_the_step_maps_names_is_still_redacted(client, tenant):
    """Only maps of the server's own shape (hex keys, step numbers) skip redaction:
    anything else an agent sends under those names is redacted like all metadata."""
    from tests.factories import ingest, trace_payload

    ingest(tenant.workspace, [trace_payload("maps", metadata={
        "hook_steps": {"tool:ann@example.com": 0},
        "otlp_spans": {"4539578763621486": 0, "note": "call 4539 5787 6362 1486"},
    })])  # fmt: skip
    metadata = Trace.objects.get(workspace=tenant.workspace).metadata
    assert "ann@example.com" not in json.dumps(metadata)
    assert "4539578763621486" not in json.dumps(metadata)


@pytest.mark.django_db(transaction=True)
def test_a_stored_sessions_step_map_moves_to_its_keys_and_back():
    """Migration 0017: a session stored with `metadata.hook_steps` keeps its steps'
    keys (a later PostToolUse still lands on its call), is still a hook session to
    the sweep that settles silent ones, and the map comes back when migrated back."""
    from tests.factories import latest_migrations, migrate
    from traces.claude_code import external_id, hook_ingest, key_hash

    before = [("traces", "0016_linear_trace_words")]
    latest = latest_migrations()
    call = f"tool:{key_hash('toolu_9')}"
    try:
        old = migrate(before).loader.project_state(before).apps
        ws = old.get_model("workspaces", "Workspace").objects.create(name="Old", slug="old-map")
        trace = old.get_model("traces", "Trace").objects.create(
            workspace=ws, external_id=external_id("s-old"), session_id="s-old", status="running",
            started_at=timezone.now(),
            metadata={"cwd": "/w", "hook_steps": {f"event:{key_hash('p')}": 0, call: 1}},
        )  # fmt: skip
        OldStep = old.get_model("traces", "Step")
        OldStep.objects.create(trace=trace, index=0, kind="user_prompt", input="build")
        OldStep.objects.create(trace=trace, index=1, kind="tool_call", name="Bash",
                               input={"command": "make"})  # fmt: skip
        migrate(latest)
        from workspaces.models import Workspace

        stored = Trace.objects.get(pk=trace.pk)
        assert "hook_steps" not in stored.metadata and stored.metadata["hook_session"] is True
        assert dict(StepKey.objects.filter(trace=stored).values_list("key", "index")) == {
            f"event:{key_hash('p')}": 0, call: 1}  # fmt: skip
        hook_ingest(workspace=Workspace.objects.get(pk=ws.pk), payload={
            "session_id": "s-old", "hook_event_name": "PostToolUse", "tool_name": "Bash",
            "tool_use_id": "toolu_9", "tool_input": {"command": "make"},
            "tool_response": {"stdout": "built"}})  # fmt: skip
        steps = list(Step.objects.filter(trace=stored).order_by("index").values_list(
            "index", "kind", "output"))  # fmt: skip
        assert steps == [(0, "user_prompt", None), (1, "tool_call", {"stdout": "built"})]
        migrate(before)
        back = old.get_model("traces", "Trace").objects.get(pk=trace.pk)
        assert back.metadata["hook_steps"] == {f"event:{key_hash('p')}": 0, call: 1}
        assert "hook_session" not in back.metadata
    finally:
        migrate(latest)
