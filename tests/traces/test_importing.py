"""Importing agent log files: every format, idempotent, whole files or nothing,
clear per-file errors; the same parsers in hivemind_client send files over HTTP."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tests.failures.test_diagnosis import FORMAT_SAMPLES
from traces.claude_code import hook_ingest
from traces.importing import traces_import_file
from traces.models import Step, Trace

pytestmark = pytest.mark.django_db

DEVDATA = Path(__file__).resolve().parents[3] / "shared" / "devdata"


def _steps(trace: Trace, *fields: str) -> list[tuple]:
    """A run's steps in order, as tuples of the fields named."""
    return list(trace.steps.order_by("index").values_list(*fields))


def _file(tmp_path: Path, fmt: str, content: object) -> Path:
    suffix = {"chat-jsonl": ".jsonl", "swe-agent": ".traj"}.get(fmt, ".json")
    path = tmp_path / f"{fmt}{suffix}"
    path.write_text(json.dumps(content))
    return path


def _snapshot(workspace) -> list:  # type: ignore[no-untyped-def]
    traces = list(Trace.objects.filter(workspace=workspace).values_list(
        "external_id", "status", "task", "updated_at", "step_count"))  # fmt: skip
    steps = list(Step.objects.filter(trace__workspace=workspace).values_list(
        "trace__external_id", "index", "kind", "name", "error"))  # fmt: skip
    return sorted(traces) + sorted(steps)


@pytest.mark.parametrize("fmt", sorted(FORMAT_SAMPLES))
def test_import_of_each_format_is_idempotent(fmt, tenant, tmp_path):
    path = _file(tmp_path, fmt, FORMAT_SAMPLES[fmt])
    first = traces_import_file(workspace=tenant.workspace, fmt=fmt, path=path)
    assert first.ok and first.created == 1
    before = _snapshot(tenant.workspace)
    again = traces_import_file(workspace=tenant.workspace, fmt=fmt, path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert _snapshot(tenant.workspace) == before


def test_the_claude_hook_log_format_replays_payloads(tenant, tmp_path):
    payloads = [
        {"session_id": "s1", "hook_event_name": "UserPromptSubmit", "prompt": "run tests"},
        {"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Bash",
         "tool_input": {"command": "make test"}},
    ]  # fmt: skip
    path = _file(tmp_path, "claude-hooks", payloads)
    assert traces_import_file(workspace=tenant.workspace, fmt="claude-hooks", path=path).ok
    before = _snapshot(tenant.workspace)
    assert len(before) == 3  # one trace, two steps
    traces_import_file(workspace=tenant.workspace, fmt="claude-hooks", path=path)
    assert [row[:3] for row in _snapshot(tenant.workspace)] == [row[:3] for row in before]


@pytest.mark.parametrize("fmt", ["tau2-bench", "intercode", "chat-jsonl", "claude-transcript"])
def test_a_corrupt_file_names_the_file_and_line_and_stores_nothing(fmt, tenant, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "a": 1,\n  "b": [1, 2\n}\n')
    result = traces_import_file(workspace=tenant.workspace, fmt=fmt, path=path)
    assert not result.ok
    assert str(path) in result.error and "line" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_a_file_with_one_bad_trace_stores_none_of_it(tenant, tmp_path):
    good = {"external_id": "ok-1", "status": "failed", "steps": []}
    bad = {"external_id": "bad-1", "status": "exploded", "steps": []}
    path = _file(tmp_path, "native", {"traces": [good, bad]})
    result = traces_import_file(workspace=tenant.workspace, fmt="native", path=path)
    assert not result.ok and "trace 1" in result.error and "bad-1" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_a_wrongly_shaped_file_says_what_was_expected(tenant, tmp_path):
    path = _file(tmp_path, "tau2-bench", {"simulations": [{"messages": "not a list"}]})
    result = traces_import_file(workspace=tenant.workspace, fmt="tau2-bench", path=path)
    assert not result.ok and "simulations[0]" in result.error and "messages" in result.error


def test_the_command_imports_folders_and_exits_1_on_a_bad_file(tenant, tmp_path, capsys):
    (tmp_path / "good.json").write_text(json.dumps(FORMAT_SAMPLES["intercode"]))
    (tmp_path / "bad.json").write_text("{ nope")
    with pytest.raises(SystemExit) as exit_:
        call_command(
            "import_traces", str(tmp_path), workspace=tenant.workspace.slug, fmt="intercode"
        )
    assert exit_.value.code == 1
    out = capsys.readouterr()
    assert "1 created" in out.out and "bad.json" in out.err and "line 1" in out.err
    assert Trace.objects.filter(workspace=tenant.workspace).count() == 1


@pytest.mark.skipif(not DEVDATA.exists(), reason="../shared/devdata is not beside the checkout")
def test_real_tau2_and_intercode_files_import(tenant):
    tau2 = next((DEVDATA / "tau2-bench_sierra_gpt-4.1").rglob("gpt-4.1_retail_*.json"))
    result = traces_import_file(workspace=tenant.workspace, fmt="tau2-bench", path=tau2)
    assert result.ok and result.created == 40
    statuses = set(
        Trace.objects.filter(workspace=tenant.workspace).values_list("status", flat=True)
    )
    assert statuses == {"succeeded", "failed"}
    # What the agent saw, not the simulated user's private scenario.
    raw = json.loads(tau2.read_text())
    sim = raw["simulations"][0]
    first = next(m["content"] for m in sim["messages"] if m["role"] == "user" and m.get("content"))
    trace = Trace.objects.get(external_id=f"tau2-{sim['id']}")
    assert trace.task == first and trace.task_key == f"retail:{sim['task_id']}"
    scenario = json.dumps(raw["tasks"][0]["user_scenario"])
    assert "reason_for_call" in scenario
    for t in Trace.objects.filter(workspace=tenant.workspace):
        assert not any(c["name"].startswith("action:") for c in t.checks)
    # These runs are from 2025, far past the 90-day retention: imported today, they stay.
    from traces.services import traces_purge_expired

    assert Trace.objects.filter(workspace=tenant.workspace, started_at__year=2025).count() == 40
    assert traces_purge_expired(workspace_id=tenant.workspace.pk) == 0 and result.purge_next == 0


@pytest.mark.django_db(transaction=True)
def test_the_client_sends_a_file_over_http(live_server, tmp_path):
    from hivemind_client.importer import main as client_import
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="Client import", owner=make_user("client-import"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    path = _file(tmp_path, "intercode", FORMAT_SAMPLES["intercode"])
    assert client_import(live_server.url, key, "intercode", [path]) == 0
    assert client_import(live_server.url, key, "intercode", [path]) == 0  # again: an update
    assert Trace.objects.filter(workspace=workspace).count() == 1
    (tmp_path / "bad.json").write_text("[")
    assert client_import(live_server.url, key, "intercode", [tmp_path / "bad.json"]) == 1


@pytest.mark.django_db(transaction=True)
def test_the_client_sends_a_file_all_or_nothing(live_server, tmp_path, capsys):
    from hivemind_client.importer import main as client_import
    from tests.factories import make_key, make_user, make_workspace, trace_payload
    from workspaces.models import Scope

    workspace = make_workspace(name="All or nothing", owner=make_user("all-or-nothing"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    good = [trace_payload(f"good-{i}") for i in range(250)]  # two batches of the client's
    bad = {**trace_payload("bad-1"), "status": "exploded"}
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"traces": [*good[:210], bad, *good[210:]]}))
    assert client_import(live_server.url, key, "native", [path]) == 1
    err = capsys.readouterr().err
    assert "nothing of it was sent" in err and "trace 210" in err
    assert not Trace.objects.filter(workspace=workspace).exists()
    path.write_text(json.dumps({"traces": good}))
    assert client_import(live_server.url, key, "native", [path]) == 0
    assert Trace.objects.filter(workspace=workspace).count() == 250


@pytest.mark.django_db(transaction=True)
def test_the_client_says_which_runs_came_with_no_outcome_or_no_time(live_server, tmp_path, capsys):
    """manage.py named the runs an import could not give an outcome or a time; the
    client (an agent machine's importer) printed only its counts."""
    from hivemind_client.importer import main as client_import
    from tests.factories import make_key, make_user, make_workspace, trace_payload
    from workspaces.models import Scope

    workspace = make_workspace(name="Client summary", owner=make_user("client-summary"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    bare = {k: v for k, v in trace_payload("bare-run").items() if k not in ("status", "started_at")}
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"traces": [trace_payload("dated-run"), bare]}))
    assert client_import(live_server.url, key, "native", [path]) == 0
    out = capsys.readouterr().out
    assert "1 run came in with no outcome" in out and "bare-run" in out
    assert "1 run carried no time of their own (no start, end or step time)" in out
    assert "dated-run" not in out.split("came in with no outcome", 1)[1]
    # Sent again: nothing new is dated by this arrival.
    assert client_import(live_server.url, key, "native", [path]) == 0
    assert "carried no time" not in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_client_takes_a_swe_bench_report_given_apart(live_server, tmp_path, capsys):
    """`--results`, which the README gives for SWE runs whose report is not beside
    them, was manage.py's only: the client (an agent machine's importer) answered
    "unrecognized arguments" and sent the runs with no outcome."""
    from hivemind_client.__main__ import main as client
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="SWE report", owner=make_user("swe-report"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    run = tmp_path / "run1"
    for instance in ("astropy__astropy-1", "django__django-2"):
        (run / instance).mkdir(parents=True)
        (run / instance / f"{instance}.traj.json").write_text(json.dumps(_mini_traj()))
    report = tmp_path / "sb-cli-report.json"
    report.write_text(json.dumps({"resolved_ids": ["astropy__astropy-1"],
                                  "unresolved_ids": ["django__django-2"]}))  # fmt: skip
    common = ["import", "--url", live_server.url, "--key", key]
    assert client([*common, "--format", "swe-agent", "--results", str(report), str(run)]) == 0
    statuses = dict(Trace.objects.filter(workspace=workspace).values_list("external_id", "status"))
    assert statuses == {"swe-run1-astropy__astropy-1": "succeeded",
                        "swe-run1-django__django-2": "failed"}  # fmt: skip
    outcome_from = Trace.objects.get(external_id="swe-run1-django__django-2").metadata
    assert outcome_from["outcome_from"] == str(report)
    # Given with a format whose runs are no SWE-bench instances, or unreadable: said, nothing sent.
    capsys.readouterr()
    assert client([*common, "--format", "intercode", "--results", str(report), str(run)]) == 2
    assert "--results gives the outcomes of SWE-bench runs" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert client([*common, "--format", "swe-agent", "--results",
                   str(tmp_path / "broken.json"), str(run)]) == 2  # fmt: skip
    assert "not a readable JSON report" in capsys.readouterr().err


def test_manage_py_refuses_a_report_it_could_not_use(tenant, tmp_path):
    run = tmp_path / "run1" / "astropy__astropy-1"
    run.mkdir(parents=True)
    (run / "astropy__astropy-1.traj.json").write_text(json.dumps(_mini_traj()))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(CommandError, match="not of intercode runs"):
        call_command("import_traces", str(run), workspace=tenant.workspace.slug,
                     fmt="intercode", results=tmp_path / "broken.json")  # fmt: skip
    with pytest.raises(CommandError, match="--results: .*not a readable JSON report"):
        call_command("import_traces", str(run), workspace=tenant.workspace.slug,
                     fmt="swe-agent", results=tmp_path / "broken.json")  # fmt: skip
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


@pytest.mark.parametrize(
    ("fmt", "name", "content"),
    [
        ("claude-transcript", "chat.jsonl", {"messages": [], "title": "not a run"}),
        ("claude-transcript", "settings.jsonl", {"theme": "dark"}),
        ("native", "empty.json", {"traces": []}),
    ],
)
def test_a_file_with_no_trace_is_an_error_not_zero_traces(tenant, tmp_path, capsys, fmt, name,
                                                          content):  # fmt: skip
    from hivemind_client.formats import FormatError, parse

    path = tmp_path / name
    path.write_text(json.dumps(content) + "\n")
    with pytest.raises(FormatError, match="no .* trace found in this file"):
        parse(fmt, path)
    with pytest.raises(SystemExit) as exit_:
        call_command("import_traces", str(path), workspace=tenant.workspace.slug, fmt=fmt)
    assert exit_.value.code == 1
    assert "no " + fmt in capsys.readouterr().err


def test_json_lines_that_are_no_gemini_recording_are_an_error_not_an_empty_run(tenant, tmp_path):
    """A Gemini CLI chat recording is a record log; JSON lines holding no session
    header, `$set` line or message record (another tool's log) are refused with
    what was expected. Before, they became a run with no steps."""
    from hivemind_client.formats import FormatError, parse

    path = tmp_path / "session-x.jsonl"
    path.write_text('{"theme": "dark"}\n{"level": "info", "msg": "started"}\n')
    with pytest.raises(FormatError, match="is it a Gemini CLI chat recording"):
        parse("gemini-session", path)
    result = traces_import_file(workspace=tenant.workspace, fmt="gemini-session", path=path)
    assert not result.ok and "Gemini CLI chat recording" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_dry_run_checks_a_batch_and_stores_nothing(client, tenant):
    from tests.factories import trace_payload

    body = {"traces": [trace_payload("dry-1"), {**trace_payload("dry-2"), "status": "nope"}]}
    answer = client.post("/api/v1/traces?dry_run=true", json.dumps(body),
                         content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert answer.status_code == 422 and answer.json()["dry_run"] is True
    assert [r["status"] for r in answer.json()["results"]] == ["valid", "rejected"]
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def _tau2_file(tmp_path: Path, domain: str, runs: int) -> Path:
    path = tmp_path / f"gpt-4.1_{domain}.json"
    path.write_text(json.dumps({
        "info": {"environment_info": {"domain_name": domain}, "agent_info": {"llm": "gpt-4.1"}},
        "tasks": [], "simulations": [{
            "id": f"{domain}-{i}", "task_id": str(i), "reward_info": {"reward": 1.0},
            "messages": [{"role": "assistant", "content": "Hi! How can I help?"},
                         {"role": "user", "content": f"Please help with order {i}."}],
        } for i in range(runs)],
    }))  # fmt: skip
    return path


def test_agents_come_from_the_data_or_are_named_and_the_summary_names_them(
    tenant, tmp_path, capsys
):
    # Both tau2 domains of one model are one agent (each the other's contrast).
    for domain in ("retail", "telecom"):
        call_command("import_traces", str(_tau2_file(tmp_path, domain, 3)),
                     workspace=tenant.workspace.slug, fmt="tau2-bench")  # fmt: skip
        assert "Agents: gpt-4.1 (3 runs)." in capsys.readouterr().out
    agents = set(Trace.objects.filter(workspace=tenant.workspace).values_list("agent", flat=True))
    assert agents == {"gpt-4.1"}
    trace = Trace.objects.get(external_id="tau2-retail-1")
    assert trace.task == "Please help with order 1." and trace.task_key == "retail:1"
    call_command("import_traces", str(tmp_path / "gpt-4.1_retail.json"),
                 workspace=tenant.workspace.slug, fmt="tau2-bench", agent="support-bot")  # fmt: skip
    assert "Agents: support-bot (3 runs)." in capsys.readouterr().out
    assert Trace.objects.filter(workspace=tenant.workspace, agent="support-bot").count() == 3


def _mini_traj(model: str = "claude-x") -> dict:
    return {"info": {"exit_status": "Submitted", "config": {"model": {"model_name": model}}},
            "messages": [{"role": "system", "content": "You are a coder."},
                         {"role": "user", "content": "Fix the failing date parser."},
                         {"role": "assistant", "content": "```bash\nls\n```"},
                         {"role": "user", "content": "<returncode>0</returncode>\nsetup.py"}]}  # fmt: skip


def test_a_swe_agent_command_its_harness_refused_or_cut_off_is_a_failed_step(tenant, tmp_path):
    """SWE-agent's observations carry no exit code; what SWE-agent itself says
    when a command did not run or did not finish (an edit its linter refused, a
    timeout, bash that would not parse) makes the step failed. A command's own
    output, a traceback included, is left to the diagnosis to read."""
    lint = ("Your proposed edit has introduced new syntax error(s). Please understand the fixes "
            "and retry your edit commmand.\n\nERRORS:\n- E999 SyntaxError: unmatched ']'\n"
            "Your changes have NOT been applied.")  # fmt: skip
    timeout = (
        "The command 'pytest' was cancelled because it took more than 30 seconds. Please try again."
    )
    run = {"environment": "swe_main", "history": [{"role": "user", "content": "Fix it"}],
           "info": {"exit_status": "submitted"},
           "trajectory": [
               {"action": "edit 287:295\n]\nend_of_edit\n", "observation": lint, "thought": "Edit."},
               {"action": "pytest\n", "observation": timeout, "thought": ""},
               {"action": "python r.py\n", "observation": "Traceback (most recent call last):\nKeyError: 1",
                "thought": ""},
               {"action": "submit\n", "observation": "diff --git a/x b/x", "thought": ""}]}  # fmt: skip
    path = tmp_path / "run4" / "pydicom__pydicom-1458.traj"
    path.parent.mkdir()
    path.write_text(json.dumps(run))
    assert traces_import_file(workspace=tenant.workspace, fmt="swe-agent", path=path).ok
    calls = Step.objects.filter(trace__workspace=tenant.workspace, kind="tool_call").order_by(
        "index"
    )
    assert [(c.name, c.error[:27]) for c in calls] == [
        ("edit", "Your proposed edit has intr"), ("pytest", "The command 'pytest' was ca"),
        ("python", ""), ("submit", ""),
    ]  # fmt: skip


def test_swe_runs_get_their_outcome_where_the_harness_wrote_it(tenant, tmp_path, capsys):
    run = tmp_path / "run1"
    for instance in ("astropy__astropy-1", "django__django-2", "sphinx__sphinx-3"):
        (run / instance).mkdir(parents=True)
        (run / instance / f"{instance}.traj.json").write_text(json.dumps(_mini_traj()))
    (run / "results_summary.json").write_text(
        json.dumps({"resolved_ids": ["astropy__astropy-1"], "unresolved_ids": ["django__django-2"]})
    )
    report = run / "logs" / "run_evaluation" / "r" / "claude-x" / "django__django-2"
    report.mkdir(parents=True)
    (report / "report.json").write_text(json.dumps({"django__django-2": {
        "resolved": False, "tests_status": {
            "FAIL_TO_PASS": {"success": [], "failure": ["tests/test_dates.py::test_parse"]},
            "PASS_TO_PASS": {"success": ["t1", "t2"], "failure": ["tests/test_x.py::test_keep"]}}}}))  # fmt: skip
    call_command("import_traces", str(run), workspace=tenant.workspace.slug, fmt="swe-agent")
    out = capsys.readouterr().out
    traces = {t.external_id: t for t in Trace.objects.filter(workspace=tenant.workspace)}
    assert traces["swe-run1-astropy__astropy-1"].status == "succeeded"
    django = traces["swe-run1-django__django-2"]
    assert django.status == "failed" and django.agent == "claude-x"
    assert django.checks == [
        {"name": "FAIL_TO_PASS: tests/test_dates.py::test_parse", "passed": False, "detail": ""},
        {"name": "PASS_TO_PASS: tests/test_x.py::test_keep", "passed": False, "detail": ""},
    ]
    assert traces["swe-run1-sphinx__sphinx-3"].status == "unknown"
    assert "1 run came in with no outcome" in out and "swe-run1-sphinx__sphinx-3" in out
    assert "import them again with --status failed" in out
    # A report given with --results settles the rest.
    given = tmp_path / "sb-cli-report.json"
    given.write_text(json.dumps({"resolved_ids": ["sphinx__sphinx-3"], "unresolved_ids": []}))
    call_command("import_traces", str(run / "sphinx__sphinx-3"), workspace=tenant.workspace.slug,
                 fmt="swe-agent", results=given)  # fmt: skip
    assert Trace.objects.get(external_id="swe-run1-sphinx__sphinx-3").status == "succeeded"


def test_mini_swe_agent_trajectories_as_early_and_later_versions_wrote_them(tenant, tmp_path):
    """Early mini-swe-agent saved a run as the list of its messages, with no info:
    read as the same messages in today's object (outcome from the harness, else
    unknown); a list of anything else is still refused. Its action fence is now
    ```mswea_bash_command, read as ```bash was."""
    run = tmp_path / "run2" / "astropy__astropy-1"
    run.mkdir(parents=True)
    (run / "astropy__astropy-1.traj.json").write_text(json.dumps(_mini_traj()["messages"]))
    result = traces_import_file(workspace=tenant.workspace, fmt="swe-agent",
                                path=run / "astropy__astropy-1.traj.json")  # fmt: skip
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.status, trace.task) == (
        "swe-run2-astropy__astropy-1", "unknown", "Fix the failing date parser.")  # fmt: skip
    assert [s.kind for s in trace.steps.order_by("index")][-1] == "tool_call"
    # mini-swe-agent's fence since then: ```mswea_bash_command, not ```bash.
    messages = _mini_traj()["messages"] + [
        {"role": "assistant", "content": "Run it.\n\n```mswea_bash_command\npython3 t.py\n```"},
        {"role": "user", "content": "<returncode>1</returncode>\n<output>\nZeroDivisionError\n</output>"},
    ]  # fmt: skip
    (run / "astropy__astropy-1.traj.json").write_text(json.dumps(messages))
    assert traces_import_file(workspace=tenant.workspace, fmt="swe-agent",
                              path=run / "astropy__astropy-1.traj.json").ok  # fmt: skip
    last = trace.steps.order_by("index").last()
    assert (last.kind, last.name, last.input) == (
        "tool_call",
        "python3",
        {"command": "python3 t.py"},
    )
    assert "ZeroDivisionError" in last.error
    (tmp_path / "numbers.traj.json").write_text("[1, 2]")
    refused = traces_import_file(workspace=tenant.workspace, fmt="swe-agent",
                                 path=tmp_path / "numbers.traj.json")  # fmt: skip
    assert not refused.ok and "expected a trajectory object, found list" in refused.error


def _mini_v2_traj() -> dict:
    """mini-swe-agent 2's trajectory: bash tool calls (two at once), each result a
    tool message by call id with its exit code and any exception in `extra`, a
    reply the harness rejected, and the closing `exit` message."""

    def calls(*commands: tuple[str, str]) -> dict:
        return {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": cid,
                    "type": "function",
                    "function": {"name": "bash", "arguments": json.dumps({"command": command})},
                }
                for cid, command in commands
            ],
        }

    def result(cid: str, text: str, code: int, exception: str = "") -> dict:
        extra = {"raw_output": text, "returncode": code, "timestamp": 1.0}
        if exception:
            extra["exception_info"] = exception
        return {"role": "tool", "tool_call_id": cid, "content": text, "extra": extra}

    return {"trajectory_format": "mini-swe-agent-1.1",
            "info": {"exit_status": "LimitsExceeded", "submission": "",
                     "config": {"model": {"model_name": "claude-x"}}},
            "messages": [
                {"role": "system", "content": "You are a coder."},
                {"role": "user", "content": "Fix the failing date parser."},
                calls(("c1", "ls"), ("c2", "python -m pytest -q")),
                # The results in another order than the calls: joined by id.
                result("c2", "1 failed\n[exit code 1]", 1),
                result("c1", "setup.py\n[exit code 0]", 0),
                {"role": "user", "content": "Tool call error:\n<error>No tool calls found</error>",
                 "extra": {"interrupt_type": "FormatError"}},
                calls(("c3", "sleep 999")),
                result("c3", "Exception: timed out after 60 s\n[exit code -1]", -1,
                       exception="timed out after 60 s"),
                {"role": "exit", "content": "", "extra": {"exit_status": "LimitsExceeded"}},
            ]}  # fmt: skip


def test_mini_swe_agent_2_trajectories_join_results_by_call_and_read_their_extra(tenant, tmp_path):
    path = tmp_path / "run3" / "django__django-2" / "django__django-2.traj.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_mini_v2_traj()))
    result = traces_import_file(workspace=tenant.workspace, fmt="swe-agent", path=path)
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.status == "failed"  # not submitted
    steps = [(s.kind, s.input, s.error[:40]) for s in trace.steps.order_by("index")]
    assert steps == [
        ("user_prompt", "Fix the failing date parser.", ""),
        ("assistant_message", None, ""),
        ("tool_call", {"command": "ls"}, ""),
        ("tool_call", {"command": "python -m pytest -q"}, "1 failed\n[exit code 1]"),
        ("error", None, "The reply was rejected: No tool calls fo"),
        ("assistant_message", None, ""),
        ("tool_call", {"command": "sleep 999"}, "Exception: timed out after 60 s\n[exit co"),
        ("error", None, "The run ended: LimitsExceeded"),
    ]  # fmt: skip
    assert trace.steps.get(index=2).output == "setup.py\n[exit code 0]"
    rejected = trace.steps.get(index=4)
    assert rejected.error == "The reply was rejected: No tool calls found"
    assert rejected.output.startswith("Tool call error:")


def test_mini_swe_agent_text_observations_say_what_failed():
    """Without `extra` (v1), the observation's own words: a non-zero
    <returncode> or [exit code], an exception, a timeout."""
    from hivemind_client.formats import _mini_error

    assert _mini_error({}, "<returncode>2</returncode>\n<output>no</output>")
    assert not _mini_error({}, "<returncode>0</returncode>\n<output>ok</output>")
    assert _mini_error({}, "oops\n[exit code 1]") and not _mini_error({}, "ok\n[exit code 0]")
    assert _mini_error(
        {}, "The last command <command>sleep 9</command> timed out and has been killed."
    )
    assert _mini_error({}, "Exception: boom")
    assert not _mini_error({"extra": {"returncode": 0}}, "<returncode>1</returncode>")  # extra wins
    assert not _mini_error({}, "printed [exit code 1] midway\nthen more")


def test_swe_runs_of_a_leaderboard_submission_take_its_results_json(tenant, tmp_path):
    """SWE-bench/experiments keeps a submission's outcome in `results/results.json`:
    the resolved ids, and lists such as `no_generation`; every other instance of the
    submission was not resolved."""
    submission = tmp_path / "20240402_sweagent_gpt4"
    (submission / "trajs").mkdir(parents=True)
    (submission / "results").mkdir()
    for instance in ("astropy__astropy-1", "django__django-2", "sympy__sympy-3"):
        (submission / "trajs" / f"{instance}.traj.json").write_text(json.dumps(_mini_traj()))
    (submission / "results" / "results.json").write_text(json.dumps(
        {"no_generation": ["sympy__sympy-3"], "no_logs": [], "resolved": ["astropy__astropy-1"]}
    ))  # fmt: skip
    call_command("import_traces", str(submission), workspace=tenant.workspace.slug,
                 fmt="swe-agent")  # fmt: skip
    status = dict(Trace.objects.filter(workspace=tenant.workspace)
                  .values_list("external_id", "status"))  # fmt: skip
    # Named by the submission, not its `trajs` folder: two submissions' runs of one
    # instance are two runs.
    assert status == {"swe-20240402_sweagent_gpt4-astropy__astropy-1": "succeeded",
                      "swe-20240402_sweagent_gpt4-django__django-2": "failed",
                      "swe-20240402_sweagent_gpt4-sympy__sympy-3": "failed"}  # fmt: skip
    # The same file given with --results says the same.
    Trace.objects.filter(workspace=tenant.workspace).delete()
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "django__django-2.traj.json").write_text(json.dumps(_mini_traj()))
    call_command("import_traces", str(alone), workspace=tenant.workspace.slug, fmt="swe-agent",
                 results=submission / "results" / "results.json")  # fmt: skip
    assert Trace.objects.get(workspace=tenant.workspace).status == "failed"


def test_intercode_task_ids_that_restart_per_dataset_file_are_different_tasks(tenant, tmp_path):
    """nl2bash numbers its tasks from 0 in each file system's file: "0" of fs_1 and
    "0" of fs_2 are different tasks; the same file run by two models is one task."""

    def episode(dataset: str, query: str) -> dict:
        return {"0": {"environment": "ic_bash", "dataset": dataset, "query": query, "task_id": 0,
                      "turn_history": {"actions": ["ls"], "observations": ["a"]},
                      "summary": {"max_reward": 1.0}}}  # fmt: skip

    files = {
        "ic_bash_multiturn_gpt-4_10_turns_fs_1.json": episode("./data/nl2bash/nl2bash_fs_1.json", "md5"),
        "ic_bash_multiturn_gpt-4_10_turns_fs_2.json": episode("./data/nl2bash/nl2bash_fs_2.json", "grep"),
        "ic_bash_react_10_turns_fs_1.json": episode("./data/nl2bash/nl2bash_fs_1.json", "md5"),
    }  # fmt: skip
    for name, data in files.items():
        path = tmp_path / name
        path.write_text(json.dumps(data))
        assert traces_import_file(workspace=tenant.workspace, fmt="intercode", path=path).ok
    keys = dict(
        Trace.objects.filter(workspace=tenant.workspace).values_list("task", "task_key").distinct()
    )
    assert keys == {"md5": "ic_bash:nl2bash_fs_1:0", "grep": "ic_bash:nl2bash_fs_2:0"}
    assert Trace.objects.filter(task_key="ic_bash:nl2bash_fs_1:0").count() == 2


def test_tau_runs_keep_what_the_agent_saw_and_old_runs_survive_the_purge(tenant, tmp_path, capsys):
    """Without the dev data: the task is the user's first turn, the simulated
    user's script and the expected actions are stored nowhere, the user's own
    phone calls are the user's, and runs from last year are kept by retention."""
    from traces.services import traces_purge_expired

    secret = "You are mia_li_3668. If the agent says no, insist."
    tau2 = tmp_path / "gpt-4.1_telecom.json"
    tau2.write_text(json.dumps({
        "info": {"environment_info": {"domain_name": "telecom"}, "agent_info": {"llm": "gpt-4.1"}},
        "tasks": [{"id": "7", "user_scenario": {"instructions": secret}}],
        "simulations": [{
            "id": "sim-7", "task_id": "7", "start_time": "2025-01-02T10:00:00",
            "end_time": "2025-01-02T10:05:00",
            "reward_info": {"reward": 0.0, "reward_basis": ["ENV_ASSERTION"],
                            "action_checks": [{"action": {"name": "refuel_data",
                                                          "arguments": {"gb_amount": 2}},
                                               "action_match": False}]},
            "messages": [
                {"role": "assistant", "content": "Hi! How can I help?"},
                {"role": "user", "content": "My phone has no data."},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "a1", "name": "get_customer_by_phone", "arguments": {"phone": "1"}}]},
                {"role": "tool", "id": "a1", "content": "{\"customer_id\": \"C1\"}"},
                {"role": "assistant", "content": "Please turn airplane mode off."},
                {"role": "user", "content": None, "tool_calls": [
                    {"id": "u1", "name": "toggle_airplane_mode", "arguments": {}}]},
                {"role": "tool", "id": "u1", "content": "Airplane mode is off."},
            ],
        }],
    }))  # fmt: skip
    tau = tmp_path / "tau-bench-airline.json"
    tau.write_text(json.dumps([{
        "task_id": 3, "reward": 1.0,
        "info": {"model": "gpt-4o", "task": {"instruction": secret, "user_id": "mia_li_3668"}},
        "traj": [{"role": "system", "content": "Airline policy."},
                 {"role": "user", "content": "I want to change my flight."},
                 {"role": "assistant", "content": "Sure."}],
    }]))  # fmt: skip
    for path, fmt in ((tau2, "tau2-bench"), (tau, "tau-bench")):
        call_command("import_traces", str(path), workspace=tenant.workspace.slug, fmt=fmt)
    out = capsys.readouterr().out
    assert out.count("The next daily purge deletes nothing in this workspace.") == 2
    sim = Trace.objects.get(workspace=tenant.workspace, external_id="tau2-sim-7")
    assert sim.task == "My phone has no data." and sim.task_key == "telecom:7"
    assert sim.started_at.year == 2025 and sim.status == "failed"
    assert not any(c["name"].startswith("action") for c in sim.checks)
    names = list(
        sim.steps.filter(kind="tool_call").order_by("index").values_list("name", flat=True)
    )
    assert names == ["get_customer_by_phone", "user.toggle_airplane_mode"]
    airline = Trace.objects.get(workspace=tenant.workspace, agent="gpt-4o")
    assert airline.task == "I want to change my flight." and airline.task_key.endswith(":3")
    assert airline.metadata["policy"] == "Airline policy."
    stored = json.dumps([
        list(Trace.objects.filter(workspace=tenant.workspace).values()),
        list(Step.objects.filter(trace__workspace=tenant.workspace).values(
            "input", "output", "error", "name")),
    ], default=str)  # fmt: skip
    assert "mia_li_3668" not in stored and "refuel_data" not in stored
    # Imported today, last year's runs are inside the 90-day retention.
    assert traces_purge_expired(workspace_id=tenant.workspace.pk) == 0
    assert Trace.objects.filter(workspace=tenant.workspace).count() == 2


def test_tau_bench_results_of_two_domains_are_different_tasks_and_agents(tenant, tmp_path):
    """tau-bench's own result files name neither the model nor the domain, and task
    ids restart in each domain: airline task 0 is no retail task 0 (a same-task
    contrast between them would name a wrong call), and two files are not one agent."""

    def results(policy: str, rewards: list[float]) -> list[dict]:
        return [{"task_id": 0, "trial": trial, "reward": reward, "info": {"task": {}},
                 "traj": [{"role": "system", "content": policy},
                          {"role": "user", "content": f"Help me, try {trial}."},
                          {"role": "assistant", "content": "Sure."}]}
                for trial, reward in enumerate(rewards)]  # fmt: skip

    airline = "# Airline Agent Policy\n\nThe current time is 2024-05-15 15:00:00 EST."
    for name, policy, rewards in (("gpt-4o-airline", airline, [1.0, 0.0]),
                                  ("gpt-4o-retail", "# Retail agent policy\n\nAs a retail agent", [0.0]),
                                  ("sonnet-airline", airline, [1.0])):  # fmt: skip
        (tmp_path / f"{name}.json").write_text(json.dumps(results(policy, rewards)))
        call_command("import_traces", str(tmp_path / f"{name}.json"),
                     workspace=tenant.workspace.slug, fmt="tau-bench")  # fmt: skip
    runs = set(Trace.objects.filter(workspace=tenant.workspace)
               .values_list("agent", "task_key", "status"))  # fmt: skip
    assert runs == {
        ("gpt-4o-airline", "airline-agent-policy:0", "succeeded"),
        ("gpt-4o-airline", "airline-agent-policy:0", "failed"),
        ("gpt-4o-retail", "retail-agent-policy:0", "failed"),
        ("sonnet-airline", "airline-agent-policy:0", "succeeded"),
    }


def test_the_summary_names_runs_nothing_dated_which_are_dated_by_their_import(
    tenant, tmp_path, capsys
):
    """Claude Code hook logs carry no times: 87 of 90 imported sessions landed on the
    import's day, and Overview read '100% success rate this week' beside three failed
    runs dated by their transcripts months before. The summary says so."""
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "user_prompt_submit.json").write_text(json.dumps([
        {"session_id": "s-undated", "hook_event_name": "UserPromptSubmit", "prompt": "fix ci"},
        {"session_id": "s-dated", "hook_event_name": "UserPromptSubmit", "prompt": "deploy",
         "timestamp": "2025-07-21T18:42:00Z"},
    ]))  # fmt: skip
    (folder / "stop.json").write_text(json.dumps([
        {"session_id": "s-undated", "hook_event_name": "Stop"},
        {"session_id": "s-dated", "hook_event_name": "Stop", "timestamp": "2025-07-21T18:50:00Z"},
    ]))  # fmt: skip
    call_command("import_traces", str(folder), workspace=tenant.workspace.slug, fmt="claude-hooks")
    out = capsys.readouterr().out
    dated = Trace.objects.get(external_id="claude-code-s-dated")
    assert dated.started_at.isoformat() == "2025-07-21T18:42:00+00:00"  # its first event's
    assert "1 run carried no time of their own" in out
    assert "claude-code-s-undated" in out.split("carried no time")[1]
    assert "claude-code-s-dated" not in out.split("carried no time")[1]
    native = _file(tmp_path, "native", {"traces": [
        {"external_id": "no-time", "status": "failed", "steps": [{"kind": "tool_call", "name": "t"}]},
        {"external_id": "timed", "status": "failed", "started_at": "2025-01-02T03:04:05Z",
         "steps": [{"kind": "tool_call", "name": "t"}]},
    ]})  # fmt: skip
    call_command("import_traces", str(native), workspace=tenant.workspace.slug, fmt="native")
    out = capsys.readouterr().out
    assert "1 run carried no time of their own" in out and ": no-time." in out


def test_a_tau2_turns_refusals_come_before_the_turn_that_was_kept(tenant, tmp_path):
    """tau2 records the harness's refusals of a turn's earlier attempts on the turn
    that was kept: they happened first."""
    sim = {"id": "r1", "task_id": "t", "reward_info": {"reward": 0.0}, "messages": [
        {"role": "user", "content": "my phone has no data"},
        {"role": "assistant", "content": None, "errors": ["Invalid message format. Error: both"],
         "tool_calls": [{"id": "c1", "name": "transfer", "arguments": {"summary": "s"}}]},
        {"role": "tool", "id": "c1", "content": "Transfer successful"},
    ]}  # fmt: skip
    path = _file(tmp_path, "tau2-bench", {"simulations": [sim]})
    assert traces_import_file(workspace=tenant.workspace, fmt="tau2-bench", path=path).ok
    steps = list(Trace.objects.get(workspace=tenant.workspace).steps.order_by("index")
                 .values_list("kind", "name"))  # fmt: skip
    assert steps == [("user_prompt", ""), ("error", ""), ("tool_call", "transfer")]


def _tau2_sim(sim_id: str, reason: str, reward: float = 0.0) -> dict:
    return {"id": sim_id, "task_id": "7", "trial": 0, "termination_reason": reason,
            "end_time": "2025-08-01T16:16:50.700788",
            "reward_info": {"reward": reward, "reward_basis": None,
                            "info": {"note": f"Simulation terminated prematurely. Termination "
                                             f"reason: {reason}"}},
            "messages": [
                {"role": "user", "content": "I want to return my order"},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c1", "name": "get_order_details",
                                 "arguments": {"order_id": "#W1"}}]},
                {"role": "tool", "id": "c1", "content": "Error: order not found", "error": True},
            ]}  # fmt: skip


def test_a_tau2_run_the_harness_stopped_says_why_and_is_failed_only_if_the_agent_was(
    tenant, tmp_path, capsys
):
    """tau2 scores 0 every run neither side ended (its TerminationReason). A stop
    of the agent's own making (the step limit, too many tool errors) is the run's
    last step, an error; one on the harness's side (the simulated user's or the
    infrastructure's error) leaves the run without an outcome, saying why, and no
    step blames the agent. A user's or an agent's own end adds nothing."""
    sims = [_tau2_sim("max", "max_steps"), _tau2_sim("errors", "too_many_errors"),
            _tau2_sim("infra", "infrastructure_error"), _tau2_sim("user", "user_error"),
            _tau2_sim("done", "user_stop", 1.0)]  # fmt: skip
    path = _file(tmp_path, "tau2-bench", {"info": {}, "simulations": sims})
    call_command("import_traces", str(path), workspace=tenant.workspace.slug, fmt="tau2-bench")
    out = capsys.readouterr().out
    runs = {t.external_id: t for t in Trace.objects.filter(workspace=tenant.workspace)}
    last = {key: runs[key].steps.order_by("index").last() for key in runs}
    assert runs["tau2-max"].status == "failed" and last["tau2-max"].kind == "error"
    assert "step limit (max_steps)" in last["tau2-max"].error
    assert "too many of its tool calls failed" in last["tau2-errors"].error
    for key in ("tau2-infra", "tau2-user"):
        assert runs[key].status == "unknown" and runs[key].reward == 0.0
        assert last[key].kind == "tool_call"
        assert "is not the agent's" in runs[key].metadata["outcome_from"]
    assert "infrastructure failed" in runs["tau2-infra"].metadata["outcome_from"]
    assert runs["tau2-done"].status == "succeeded" and last["tau2-done"].kind == "tool_call"
    assert "2 runs stopped by the harness, not the agent" in out
    assert "came in with no outcome" not in out
    page = tenant.client_for(tenant.viewer).get(
        reverse("trace_detail", args=[tenant.workspace.slug, runs["tau2-infra"].pk]),
        HTTP_HOST="127.0.0.1",
    )
    assert "infrastructure failed" in page.content.decode()


def test_a_tau2_results_directory_imports_its_simulations_once(tenant, tmp_path, capsys):
    """tau2's directory format: results.json holds the run's info and an index, each
    simulation is a file in simulations/ beside it. A folder import reads them
    through results.json (not twice); a simulation file named on its own takes its
    info from the results.json above it; a results.json whose folder is missing is
    a per-file error."""
    run = tmp_path / "run"
    (run / "simulations").mkdir(parents=True)
    info = {"agent_info": {"llm": "gpt-5"}, "environment_info": {"domain_name": "airline"}}
    sims = [_tau2_sim("a", "user_stop", 1.0), _tau2_sim("b", "max_steps")]
    (run / "results.json").write_text(
        json.dumps({"info": info, "tasks": [], "simulation_index": [{"id": s["id"]} for s in sims]})
    )
    for sim in sims:
        (run / "simulations" / f"{sim['id']}.json").write_text(json.dumps(sim))
    call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug, fmt="tau2-bench")
    assert "Imported 1 of 1 files: 2 traces created" in capsys.readouterr().out
    runs = Trace.objects.filter(workspace=tenant.workspace).order_by("external_id")
    assert [(t.external_id, t.agent, t.task_key, t.status) for t in runs] == [
        ("tau2-a", "gpt-5", "airline:7", "succeeded"),
        ("tau2-b", "gpt-5", "airline:7", "failed"),
    ]
    Trace.objects.filter(workspace=tenant.workspace).delete()
    one = traces_import_file(workspace=tenant.workspace, fmt="tau2-bench",
                             path=run / "simulations" / "b.json")  # fmt: skip
    assert one.ok and Trace.objects.get(workspace=tenant.workspace).task_key == "airline:7"
    for sim in sims:
        (run / "simulations" / f"{sim['id']}.json").unlink()
    (run / "simulations").rmdir()
    missing = traces_import_file(workspace=tenant.workspace, fmt="tau2-bench",
                                 path=run / "results.json")  # fmt: skip
    assert "no simulations/ folder beside it" in missing.error


def test_a_tau2_voice_simulation_is_refused_with_why(tenant, tmp_path):
    sim = {"id": "v", "task_id": "1", "messages": None, "ticks": [{"tick_id": 0}]}
    path = _file(tmp_path, "tau2-bench", {"info": {}, "simulations": [sim]})
    result = traces_import_file(workspace=tenant.workspace, fmt="tau2-bench", path=path)
    assert "full-duplex (voice) simulation" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def _swe_dataset_rows() -> list[dict]:
    """Rows of public SWE trajectory datasets as their cards describe them: OpenAI
    messages under `trajectory` with a 0/1 `resolved` (SWE-rebench's OpenHands
    runs), `{role: "ai", text}` turns whose command ends the turn with a `target`
    verdict (nebius's SWE-agent runs), and a ShareGPT conversation."""
    rebench = {
        "trajectory_id": "chatcmpl-27dd",
        "instance_id": "acme__lib-24",
        "resolved": 0,
        "exit_status": "submit",
        "trajectory": [
            {"role": "system", "content": "You are OpenHands agent.", "tool_calls": None},
            {"role": "user", "content": "Fix the bug in open_dataset", "tool_calls": None},
            {
                "role": "assistant",
                "content": "Run the tests.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "execute_bash",
                            "arguments": '{"command": "pytest -x"}',
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "content": "ImportError: x\n[The command completed with exit code 1.]",
                "name": "execute_bash",
                "tool_call_id": "call_1",
            },
        ],
    }
    nebius = {
        "instance_id": "django__django-11099",
        "model_name": "swe-llama",
        "target": False,
        "exit_status": "submitted",
        "trajectory": [
            {"role": "system", "system_prompt": "SETTING: ...", "text": "", "mask": False},
            {"role": "user", "text": "We're solving this issue: a trailing newline", "mask": False},
            {
                "role": "ai",
                "text": 'DISCUSSION\nFind it.\n```\nfind_file "validators.py"\n```\n',
                "mask": True,
            },
            {"role": "user", "text": 'Found 1 matches for "validators.py"\nbash-$', "mask": False},
            {
                "role": "ai",
                "text": "DISCUSSION\nOpen it.\n```\nopen auth/validators.py\n```",
                "mask": True,
            },
            {"role": "user", "text": "File auth/validators.py not found\nbash-$", "mask": False},
        ],
    }
    sharegpt = {"id": "sg-1", "conversations": [
        {"from": "human", "value": "What's the weather in Paris?"},
        {"from": "function_call", "value": "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"},
        {"from": "observation", "value": "Error: city not found"},
        {"from": "gpt", "value": "Sorry, I could not find it."}]}  # fmt: skip
    return [rebench, nebius, sharegpt]


def test_calls_written_as_function_text_are_tool_calls(tenant, tmp_path):
    """OpenHands' prompt-based function calling (its and SWE-Gym's training
    trajectories), SWE-agent's xml_function_calling and R2E-Gym write each call as
    `<function=NAME><parameter=KEY>VALUE</parameter></function>` text, its result
    the next user turn: each is a call of NAME with its parameters, the result its
    output, a non-zero exit code in OpenHands' words its error. SWE-smith's rows
    keep their messages as JSON text and their id as `traj_id`."""
    call = "<function={}>\n{}\n</function>".format
    param = "<parameter={}>\n{}\n</parameter>".format
    messages = [
        {"role": "system", "content": "You are OpenHands agent. You have these functions: ..."},
        {"role": "user", "content": "Fix the failing test in utils.py"},
        {"role": "assistant", "content": "Let me run the tests first.\n"
         + call("execute_bash", param("command", "cd /repo && pytest -x"))},
        {"role": "user", "content": "EXECUTION RESULT of [execute_bash]:\nE   AssertionError\n"
         "[The command completed with exit code 1.]"},
        {"role": "assistant", "content": call("str_replace_editor", param("command", "view")
                                              + "\n" + param("path", "/repo/utils.py"))},
        {"role": "user", "content": "EXECUTION RESULT of [str_replace_editor]:\n1  def f(): ..."},
        {"role": "assistant", "content": call("execute_bash", param("command", "pytest -x"))},
        {"role": "user", "content": "EXECUTION RESULT of [execute_bash]:\n1 passed\n"
         "[Command finished with exit code 0]"},
        {"role": "assistant", "content": call("finish", "")},
    ]  # fmt: skip
    row = {"traj_id": "swesmith-1", "instance_id": "acme__utils.1", "resolved": False,
           "model": "claude-3-7-sonnet", "messages": json.dumps(messages)}  # fmt: skip
    path = _file(tmp_path, "chat-jsonl", row)
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.status, trace.task) == (
        "swesmith-1",
        "failed",
        "Fix the failing test in utils.py",
    )
    calls = list(trace.steps.filter(kind="tool_call").order_by("index")
                 .values_list("name", "input", "error"))  # fmt: skip
    assert [(name, args) for name, args, _ in calls] == [
        ("execute_bash", {"command": "cd /repo && pytest -x"}),
        ("str_replace_editor", {"command": "view", "path": "/repo/utils.py"}),
        ("execute_bash", {"command": "pytest -x"}),
        ("finish", {}),
    ]
    assert calls[0][2].startswith("E   AssertionError") and "exit code 1" in calls[0][2]
    assert calls[1][2] == calls[2][2] == ""
    # The harness's wrapper ("EXECUTION RESULT of [...]:") is not the tool's output.
    assert trace.steps.get(kind="tool_call", name="str_replace_editor").output == "1  def f(): ..."


def test_a_chat_assistant_ending_an_answer_on_a_code_block_is_not_a_text_acting_agent(
    tenant, tmp_path
):
    """Only a conversation whose assistant turns (two or more, 80% of them) end on a
    command block is read as an agent acting in text; a chat that ends one answer
    on a shell snippet keeps the user's reply as the user's."""
    chat = {"id": "c-9", "messages": [
        {"role": "user", "content": "How do I list files?"},
        {"role": "assistant", "content": "Use ls:\n```bash\nls -la\n```"},
        {"role": "user", "content": "Thanks! And what is a symlink?"},
        {"role": "assistant", "content": "A file that points at another file."}]}  # fmt: skip
    path = _file(tmp_path, "chat-jsonl", chat)
    assert traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path).ok
    kinds = list(Trace.objects.get(workspace=tenant.workspace).steps.order_by("index")
                 .values_list("kind", flat=True))  # fmt: skip
    assert kinds == ["user_prompt", "assistant_message", "user_prompt", "assistant_message"]


def test_swe_trajectory_datasets_and_sharegpt_rows_import_as_chat_jsonl(tenant, tmp_path):
    """What public trajectory datasets hold, exported as JSON lines: the messages
    under `trajectory` or `conversations`, roles named `ai`, `gpt`, `human`,
    `observation`, text under `text` or `value`, a 0/1 `resolved` or a `target`;
    a text-acting agent's command (the block its turn ends on) is a tool call whose
    output is the next turn; a result naming no call joins the call waiting for it."""
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in _swe_dataset_rows()))
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path)
    assert result.ok and result.created == 3, result.error
    runs = {t.external_id: t for t in Trace.objects.filter(workspace=tenant.workspace)}

    def steps(key: str) -> list[tuple]:
        return list(runs[key].steps.order_by("index").values_list("kind", "name", "output"))

    rebench = runs["chatcmpl-27dd"]
    assert (rebench.status, rebench.task_key, rebench.task) == ("failed", "acme__lib-24",
                                                                "Fix the bug in open_dataset")  # fmt: skip
    assert rebench.metadata["exit_status"] == "submit"
    assert [s[:2] for s in steps("chatcmpl-27dd")][-1] == ("tool_call", "execute_bash")
    nebius = next(t for key, t in runs.items() if key.startswith("chat-"))
    assert (nebius.status, nebius.agent, nebius.task_key) == ("failed", "swe-llama",
                                                              "django__django-11099")  # fmt: skip
    calls = [s for s in steps(nebius.external_id) if s[0] == "tool_call"]
    assert [c[1] for c in calls] == ["find_file", "open"]
    assert "not found" in calls[1][2]
    assert steps("sg-1") == [("user_prompt", "", None),
                             ("tool_call", "get_weather", "Error: city not found"),
                             ("assistant_message", "", "Sorry, I could not find it.")]  # fmt: skip


def _harbor_trial(
    root: Path,
    name: str,
    *,
    reward: float | None,
    exception: dict | None = None,
    continued: bool = False,
) -> Path:
    """A Harbor trial folder as Harbor writes it: result.json (the verifier's reward,
    an exception) and the agent's ATIF trajectory in agent/trajectory.json, here a
    Terminus-2 run whose context was summarised into a continuation file."""
    trial = root / "job-1" / name
    (trial / "agent").mkdir(parents=True)
    (trial / "result.json").write_text(
        json.dumps(
            {
                "task_name": "terminal-bench/fix-git",
                "trial_name": name,
                "agent_info": {"name": "terminus-2", "version": "2.0.0"},
                "config": {"agent": {"model_name": "openai/gpt-5"}},
                "verifier_result": None if reward is None else {"rewards": {"reward": reward}},
                "exception_info": exception,
                "started_at": "2026-01-31T13:04:54.109208",
                "finished_at": "2026-01-31T13:18:56.677395",
            }
        )
    )
    first = {
        "schema_version": "ATIF-v1.7",
        "session_id": f"s-{name}",
        "agent": {"name": "terminus-2", "version": "2.0.0", "model_name": "openai/gpt-5"},
        "steps": [
            {"step_id": 1, "source": "system", "message": "You are an AI assistant in a terminal."},
            {
                "step_id": 2,
                "source": "user",
                "message": "You are an AI assistant tasked with solving "
                "command-line tasks.\n\nTask Description:\nRecover the lost commit in /app/repo.\n\n\n"
                "Current terminal state:\nCurrent Terminal Screen:\nroot@c:/app#",
            },
            {
                "step_id": 3,
                "source": "agent",
                "message": "Look at the reflog.",
                "timestamp": "2026-01-31T13:06:50Z",
                "metrics": {"prompt_tokens": 900, "completion_tokens": 40},
                "tool_calls": [
                    {
                        "tool_call_id": "call_1",
                        "function_name": "bash_command",
                        "arguments": {"keystrokes": "git reflog\n", "duration": 1},
                    }
                ],
                "observation": {
                    "results": [
                        {"source_call_id": "call_1", "content": "fatal: not a git repository"}
                    ]
                },
            },
            {
                "step_id": 4,
                "source": "agent",
                "message": "Delegate the search.",
                "tool_calls": [
                    {
                        "tool_call_id": "call_2",
                        "function_name": "Task",
                        "arguments": {"prompt": "find the repo"},
                    }
                ],
                "observation": {
                    "results": [
                        {
                            "source_call_id": "call_2",
                            "subagent_trajectory_ref": [{"session_id": "sub-1"}],
                        }
                    ]
                },
            },
        ],
        "subagent_trajectories": [
            {
                "schema_version": "ATIF-v1.7",
                "session_id": "sub-1",
                "agent": {"name": "explorer", "version": "1"},
                "steps": [
                    {
                        "step_id": 1,
                        "source": "agent",
                        "message": "",
                        "tool_calls": [
                            {
                                "tool_call_id": "c9",
                                "function_name": "Glob",
                                "arguments": {"p": "**/.git"},
                            }
                        ],
                        "observation": {
                            "results": [{"source_call_id": "c9", "content": "/srv/repo/.git"}]
                        },
                    }
                ],
            }
        ],
    }
    if continued:
        first["continued_trajectory_ref"] = "trajectory.cont-1.json"
        (trial / "agent" / "trajectory.cont-1.json").write_text(
            json.dumps(
                {
                    "schema_version": "ATIF-v1.7",
                    "session_id": f"s-{name}-cont-1",
                    "agent": {"name": "terminus-2", "version": "2.0.0"},
                    "steps": [
                        {
                            "step_id": 1,
                            "source": "agent",
                            "message": "",
                            "tool_calls": [
                                {
                                    "tool_call_id": "call_3",
                                    "function_name": "bash_command",
                                    "arguments": {
                                        "keystrokes": "cd /srv/repo && git fsck --lost-found\n"
                                    },
                                }
                            ],
                            "observation": {"results": [{"content": "dangling commit 4f2a"}]},
                        }
                    ],
                }
            )
        )
    (trial / "agent" / "trajectory.json").write_text(json.dumps(first))
    return trial  # fmt: skip


def test_harbor_trials_import_as_atif_with_the_verifiers_outcome(tenant, tmp_path, capsys):
    """Harbor's ATIF trajectories (Terminal-Bench and every agent Harbor runs): each
    agent step's message and tool calls, results joined by source_call_id (or to
    the call waiting, when a result names none), an embedded subagent's steps
    inside the call that delegated to it, continuation files followed; the outcome
    is the trial verifier's reward; the task is the first user turn, or the "Task
    Description:" section of Terminus' prompt. A trial that ended on an exception after which
    the verifier ran ends on an error step; one whose verifier never ran has no
    outcome, and says why."""
    _harbor_trial(tmp_path, "fix-git__a1", reward=0.0, continued=True)
    _harbor_trial(tmp_path, "fix-git__b2", reward=1.0)
    _harbor_trial(
        tmp_path,
        "fix-git__c3",
        reward=0.0,
        exception={
            "exception_type": "AgentTimeoutError",
            "exception_message": "Agent timed out after 900s",
        },
    )
    _harbor_trial(
        tmp_path,
        "fix-git__d4",
        reward=None,
        exception={
            "exception_type": "DaytonaError",
            "exception_message": "sandbox failed to start",
        },
    )
    call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug, fmt="atif")
    assert "Imported 4 of 4 files: 4 traces created" in capsys.readouterr().out
    runs = {t.external_id: t for t in Trace.objects.filter(workspace=tenant.workspace)}
    first = runs["atif-s-fix-git__a1"]
    assert (first.status, first.agent, first.task_key, first.task) == (
        "failed", "terminus-2/openai/gpt-5", "terminal-bench/fix-git",
        "Recover the lost commit in /app/repo.")  # fmt: skip
    steps = _steps(first, "kind", "name", "output", "parent_index", "tokens")
    assert steps[1:] == [
        ("assistant_message", "", "Look at the reflog.", None, 940),
        ("tool_call", "bash_command", "fatal: not a git repository", None, None),
        ("assistant_message", "", "Delegate the search.", None, None),
        ("tool_call", "Task", "Delegated to subagent sub-1", None, None),
        ("tool_call", "Glob", "/srv/repo/.git", 4, None),
        ("tool_call", "bash_command", "dangling commit 4f2a", None, None)]  # fmt: skip
    assert runs["atif-s-fix-git__b2"].status == "succeeded"
    timed_out = runs["atif-s-fix-git__c3"]
    last = timed_out.steps.order_by("index").last()
    assert timed_out.status == "failed" and last.kind == "error"
    assert "AgentTimeoutError: Agent timed out after 900s" in last.error
    broken = runs["atif-s-fix-git__d4"]
    assert broken.status == "unknown" and broken.steps.filter(kind="error").count() == 0
    assert "before its verifier ran: DaytonaError" in broken.metadata["outcome_from"]


def test_an_atif_subagent_in_a_file_of_its_own_is_read_only_from_beside_the_trajectory(
    tenant, tmp_path
):
    """A subagent whose trajectory is a file the reference names
    (`trajectory_path`) is read when the file is in the trajectory's folder or
    below it, its steps inside the delegating call; a path outside it is not."""
    (tmp_path / "run" / "subagents").mkdir(parents=True)
    outside = {
        "schema_version": "ATIF-v1.7",
        "session_id": "x",
        "agent": {"name": "x"},
        "steps": [{"step_id": 1, "source": "agent", "message": "secret elsewhere"}],
    }
    (tmp_path / "outside.json").write_text(json.dumps(outside))
    inside = {
        **outside,
        "session_id": "sub-2",
        "steps": [
            {
                "step_id": 1,
                "source": "agent",
                "message": "",
                "tool_calls": [
                    {"tool_call_id": "g", "function_name": "Grep", "arguments": {"pattern": "TODO"}}
                ],
            }
        ],
    }
    (tmp_path / "run" / "subagents" / "sub-2.json").write_text(json.dumps(inside))
    trajectory = {"schema_version": "ATIF-v1.6", "session_id": "main", "agent": {"name": "cc"},
                  "steps": [{"step_id": 1, "source": "user", "message": "tidy up"},
                            {"step_id": 2, "source": "agent", "message": "", "tool_calls": [
                                {"tool_call_id": "t1", "function_name": "Task", "arguments": {}},
                                {"tool_call_id": "t2", "function_name": "Task", "arguments": {}}],
                             "observation": {"results": [
        {"source_call_id": "t1", "subagent_trajectory_ref": [
            {"session_id": "sub-2", "trajectory_path": "subagents/sub-2.json"}]},
        {"source_call_id": "t2", "subagent_trajectory_ref": [
            {"session_id": "x", "trajectory_path": "../outside.json"}]}]}}]}  # fmt: skip
    path = tmp_path / "run" / "trajectory.json"
    path.write_text(json.dumps(trajectory))
    assert traces_import_file(workspace=tenant.workspace, fmt="atif", path=path).ok
    steps = list(Trace.objects.get(workspace=tenant.workspace).steps.order_by("index")
                 .values_list("name", "parent_index", "output"))  # fmt: skip
    assert steps == [("", None, None), ("Task", None, "Delegated to subagent sub-2"),
                     ("Task", None, "Delegated to subagent x"), ("Grep", 1, None)]  # fmt: skip


def test_a_file_that_is_not_atif_is_a_per_file_error(tenant, tmp_path):
    path = tmp_path / "trajectory.json"
    path.write_text(json.dumps({"info": {}, "messages": []}))  # mini-swe-agent's own log
    result = traces_import_file(workspace=tenant.workspace, fmt="atif", path=path)
    assert 'expected an ATIF trajectory ("schema_version"' in result.error


def test_a_magentic_one_log_reads_its_outcome_prompt_and_terminal(tenant, tmp_path):
    """Who&When's hand-crafted runs are Magentic-One teams in the AG2 chat shape:
    a role and no name per message, `is_corrected` for the outcome, a `human` turn
    and a `ComputerTerminal` that says "exited with an error (POSIX exit code: N)".
    An AG2 CaptainAgent log beside it is read as before."""
    magentic = {"question": "How many more seconds?", "question_ID": "q-m1",
                "is_corrected": False, "mistake_step": "3", "mistake_reason": "a gold label",
                "history": [
        {"role": "human", "content": "How many more seconds?\n"},
        {"role": "Orchestrator (thought)", "content": "Initial plan: ask the terminal."},
        {"role": "Orchestrator (-> ComputerTerminal)",
         "content": "Run this:\n```python\nprint(spans[1] - spans[0])\n```"},
        {"role": "ComputerTerminal", "content": "The script ran, then exited with an error "
         "(POSIX exit code: 1)\nIts output was:\nNameError: name 'spans' is not defined"},
        {"role": "ComputerTerminal", "content": "The script ran but produced no output to "
         "console. The POSIX exit code was: 0."},
        {"role": "Orchestrator (termination condition)", "content": "FINAL ANSWER: 3"},
    ]}  # fmt: skip
    ag2 = {"question": "Population?", "question_ID": "q-a1", "is_correct": False, "history": [
        {"role": "assistant", "name": "Stats_Expert", "content": "```python\nprint(1/0)\n```"},
        {"role": "user", "name": "Computer_terminal", "content": "exitcode: 1 (execution failed)"},
        {"role": "user", "name": "human", "content": "an expert named human"},
    ]}  # fmt: skip
    for name, data in (("magentic.json", magentic), ("ag2.json", ag2)):
        (tmp_path / name).write_text(json.dumps(data))
        assert traces_import_file(workspace=tenant.workspace, fmt="ag2-chat",
                                  path=tmp_path / name).ok  # fmt: skip

    run = Trace.objects.get(workspace=tenant.workspace, session_id="q-m1")
    assert (run.status, run.agent, run.task) == ("failed", "magentic-one", "How many more seconds?")
    steps = list(run.steps.order_by("index"))
    assert [s.index for s in steps] == list(range(6))  # step i is message i, as labelled
    assert [(s.kind, s.name) for s in steps[:4]] == [
        ("user_prompt", ""), ("assistant_message", "Orchestrator (thought)"),
        ("assistant_message", "Orchestrator (-> ComputerTerminal)"),
        ("tool_call", "ComputerTerminal"),
    ]  # fmt: skip
    assert steps[3].input == {"code": "print(spans[1] - spans[0])\n"}
    assert "NameError" in steps[3].error and not steps[4].error
    assert "gold label" not in json.dumps([run.metadata, [s.output for s in steps]])

    chat = Trace.objects.get(workspace=tenant.workspace, session_id="q-a1")
    assert (chat.status, chat.agent) == ("failed", "ag2-group-chat")
    kinds = _steps(chat, "kind", "name", "error")
    assert kinds[1][:2] == ("tool_call", "Computer_terminal") and kinds[1][2]
    assert kinds[2][:2] == ("assistant_message", "human")  # a named expert, not the person


def test_a_browsing_agents_page_is_what_it_saw_not_what_it_said(tenant, tmp_path):
    """A message that reports a browser's page (Magentic-One's WebSurfer screenshot
    report, the text browser's viewport of AG2's web agents) is a browse call whose
    output is the page: page text about simulations is no agent saying it went on
    with simulated data. An expert's own words still are."""
    from failures.diagnosis.facts import StepView, trace_facts

    page = ("I clicked 'Methods'.\n\nHere is a screenshot of [Numerical simulations]"
            "(https://example.org/frb). The viewport shows 40% of the webpage.\nAutomatic "
            "OCR of the page screenshot has detected the following text:\n\nWe simulated "
            "data for the bursts; let's assume that the spans are 3 s.")  # fmt: skip
    viewport = ("Address: bing: simulated burst spans\nTitle: simulated burst spans - Search\n"
                "Viewport position: Showing page 1 of 1.\n=======================\nA Bing "
                "search for 'simulated burst spans' found 3 results: we can assume the "
                "sample data is fine")  # fmt: skip
    magentic = {"question": "q", "question_ID": "q-m2", "is_corrected": False, "history": [
        {"role": "human", "content": "q"},
        {"role": "Orchestrator (-> WebSurfer)", "content": "Open the paper."},
        {"role": "WebSurfer", "content": page},
        {"role": "FileSurfer", "content": viewport},
    ]}  # fmt: skip
    ag2 = {"question": "q", "question_ID": "q-a2", "is_correct": False, "history": [
        {"role": "assistant", "name": "Planner_Expert", "content": "Search for it."},
        {"role": "user", "name": "WebServing_Expert", "content": viewport},
        {"role": "user", "name": "Stats_Expert",
         "content": "Since we don't have the table, let's assume the spans are 3 s."},
    ]}  # fmt: skip
    for name, data in (("m.json", magentic), ("a.json", ag2)):
        (tmp_path / name).write_text(json.dumps(data))
        assert traces_import_file(workspace=tenant.workspace, fmt="ag2-chat",
                                  path=tmp_path / name).ok  # fmt: skip

    def steps(session: str) -> list[Step]:
        run = Trace.objects.get(workspace=tenant.workspace, session_id=session)
        return list(run.steps.order_by("index"))

    def assumed(session: str) -> list[int]:
        views = [StepView(s.index, s.kind, s.name, s.input, s.output, s.error)
                 for s in steps(session)]  # fmt: skip
        return [index for index, _ in trace_facts(views).assumptions]

    m = steps("q-m2")
    assert [(s.kind, s.name) for s in m[2:]] == [
        ("tool_call", "WebSurfer.browse"),
        ("tool_call", "FileSurfer.browse"),
    ]
    assert m[2].input == {"action": "I clicked 'Methods'."} and m[2].output == page
    assert m[3].input == {"action": "Address: bing: simulated burst spans"}
    assert assumed("q-m2") == []
    a = steps("q-a2")
    assert (a[1].kind, a[1].name) == ("tool_call", "WebServing_Expert.browse")
    assert assumed("q-a2") == [2]  # the expert's own words


def test_chat_runs_read_a_swe_datasets_resolved_and_group_by_instance(tenant, tmp_path):
    """SWE-Gym's OpenHands trajectories are chat records with `resolved` and
    `instance_id`: several runs of one instance are runs of one task, each with its
    outcome."""
    rows = [
        {"instance_id": "conan-io__conan-123", "resolved": ok, "model": "gpt-4o",
         "messages": [{"role": "user", "content": "Fix the login bug."},
                      {"role": "assistant", "content": f"Patched, attempt {n}."}]}
        for n, ok in enumerate([True, False])
    ] + [{"task_id": 7, "reward": 0.0, "messages": [{"role": "user", "content": "Sum."}]}]  # fmt: skip
    path = tmp_path / "swe-gym.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path).ok
    runs = sorted(Trace.objects.filter(workspace=tenant.workspace)
                  .values_list("task_key", "status", "agent"))  # fmt: skip
    assert runs == [("7", "failed", "chat"), ("conan-io__conan-123", "failed", "gpt-4o"),
                    ("conan-io__conan-123", "succeeded", "gpt-4o")]  # fmt: skip


def test_an_outcome_given_at_import_fills_only_runs_whose_file_gives_none(tenant, tmp_path, capsys):
    """`--status failed` for transcripts of sessions a lead knows failed: the runs
    with no outcome take it and say where it came from; a run whose file gives an
    outcome keeps it; hook logs, whose outcome is read from the session, refuse it."""
    from django.core.management.base import CommandError

    transcript = _file(tmp_path, "claude-transcript", FORMAT_SAMPLES["claude-transcript"])
    tau = tmp_path / "tau.json"
    tau.write_text(json.dumps([{"task_id": 1, "reward": 1.0, "info": {}, "traj": [
        {"role": "user", "content": "Cancel my order."}]}]))  # fmt: skip
    for path, fmt in ((transcript, "claude-transcript"), (tau, "tau-bench")):
        call_command("import_traces", str(path), workspace=tenant.workspace.slug, fmt=fmt,
                     status="failed")  # fmt: skip
    out = capsys.readouterr().out
    assert "1 run whose file gave no outcome took the one given with --status (failed)" in out
    session = Trace.objects.get(workspace=tenant.workspace, session_id="cc1")
    assert session.status == "failed"
    assert session.metadata["outcome_from"] == "given at import (--status)"
    assert (
        Trace.objects.get(workspace=tenant.workspace, task_key__endswith="1").status == "succeeded"
    )
    page = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/traces/{session.pk}/").content.decode()  # fmt: skip
    assert "outcome from: given at import (--status)" in page
    with pytest.raises(CommandError, match="does not apply to hook logs"):
        call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug,
                     fmt="claude-hooks", status="failed")  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_client_gives_the_outcome_it_is_told_to_runs_whose_file_gives_none(
    live_server, tmp_path
):
    from hivemind_client.importer import main as client_import
    from tests.factories import make_key, make_user, make_workspace
    from workspaces.models import Scope

    workspace = make_workspace(name="Client status", owner=make_user("client-status"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    path = _file(tmp_path, "claude-transcript", FORMAT_SAMPLES["claude-transcript"])
    assert client_import(live_server.url, key, "claude-transcript", [path], status="failed") == 0
    trace = Trace.objects.get(workspace=workspace)
    assert trace.status == "failed" and trace.metadata["outcome_from"].startswith("given at import")
    assert client_import(live_server.url, key, "claude-hooks", [tmp_path], status="failed") == 2


def _span(span_id: str, name: str, at: str, attrs: dict, children: list, **extra: object) -> dict:
    return {"span_id": span_id, "span_name": name, "span_kind": "Internal", "timestamp": at,
            "status_code": "Unset", "span_attributes": attrs, "child_spans": children, **extra}  # fmt: skip


def test_an_openinference_span_tree_reads_as_the_otlp_receiver_reads_spans(
    tenant, tmp_path, capsys
):
    """A TRAIL-shaped file (Patronus' export of smolagents runs: a tree by
    child_spans, flat dotted attributes, ISO durations): spans ordered by start time,
    a tool call named by tool.name and its arguments read as JSON, the failing
    tool's parent step keeping its error aside (one failure, not two), the task from
    the agent span's input, the harness's root, which holds the agent, a framework
    step, and the harness's own leaf spans, whose logs hold the benchmark's answer,
    left out."""
    tool = _span("t1", "tool_call", "2025-03-19T16:40:49Z",
                 {"openinference.span.kind": "TOOL", "tool.name": "inspect_file_as_text",
                  "input.value": '{"file_path": "data/report.pdf"}'}, [],
                 status_code="Error", status_message="FileNotFoundError: data/report.pdf")  # fmt: skip
    llm = _span("l1", "LiteLLMModel.__call__", "2025-03-19T16:40:48Z",
                {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
                 "output.value": "I will read the report.", "llm.token_count.total": 812}, [],
                duration="PT1.5S")  # fmt: skip
    step = _span("s1", "Step 1", "2025-03-19T16:40:47.900Z",
                 {"openinference.span.kind": "CHAIN", "output.value": "Execution logs: failed"},
                 [tool, llm], status_code="Error", status_message="Step 1 failed")  # fmt: skip
    agent = _span("a1", "CodeAgent.run", "2025-03-19T16:40:47Z",
                  {"openinference.span.kind": "AGENT",
                   "input.value": '{"task": "What is the total in the report?", "stream": false}'},
                  [step])  # fmt: skip
    harness = _span(
        "h1",
        "get_examples_to_answer",
        "2025-03-19T16:40:46Z",
        {},
        [],
        logs=[{"body": {"function.output": [{"true_answer": "GOLD-42"}]}}],
    )
    run = {"trace_id": "9f3c", "spans": [_span("r1", "main", "2025-03-19T16:40:46Z",
                                                {"pat.app": "GAIA"}, [harness, agent])]}  # fmt: skip
    path = tmp_path / "trail.json"
    path.write_text(json.dumps(run))
    call_command("import_traces", str(path), workspace=tenant.workspace.slug,
                 fmt="openinference-json", status="failed")  # fmt: skip
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.agent, trace.model, trace.status) == (
        "9f3c", "CodeAgent", "gpt-4o", "failed")  # fmt: skip
    assert trace.task == "What is the total in the report?"
    steps = _steps(trace, "index", "kind", "name", "parent_index", "error", "tokens", "duration_ms")
    assert steps == [
        (0, "span", "main", None, "", None, None),
        (1, "span", "CodeAgent.run", 0, "", None, None),
        (2, "span", "agent step", 1, "", None, None),
        (3, "llm_call", "gpt-4o", 2, "", 812, 1500.0),
        (4, "tool_call", "inspect_file_as_text", 2, "FileNotFoundError: data/report.pdf", None, None),
    ]  # fmt: skip
    assert trace.steps.get(index=4).input == {"file_path": "data/report.pdf"}
    assert trace.metadata["propagated_errors"] == {"2": "Step 1 failed"}
    stored = json.dumps([list(trace.steps.values()), trace.metadata], default=str)
    assert "GOLD-42" not in stored


def _smolagents_run() -> dict:
    """A smolagents run: two numbered turns, the first with a recovered tool error."""
    recovery = {
        "Name": "agent.step_recovery",
        "Attributes": {
            "type": "AgentToolCallError",
            "message": "Unknown tool search_web",
            "severity": "expected",
        },
    }
    first = _span("s1", "Step 1", "2025-03-19T16:40:48Z",
                  {"openinference.span.kind": "CHAIN"}, [], events=[recovery])  # fmt: skip
    second = _span("s2", "Step 2", "2025-03-19T16:40:49Z",
                   {"openinference.span.kind": "CHAIN", "output.value": "found it"}, [])  # fmt: skip
    agent = _span("a1", "ToolCallingAgent.run", "2025-03-19T16:40:47Z",
                  {"openinference.span.kind": "AGENT", "input.value": "Find the report"},
                  [first, second])  # fmt: skip
    return {"trace_id": "9f3d", "spans": [agent]}


def test_a_span_export_of_genai_and_openllmetry_spans_reads_them_by_their_attributes(
    tenant, tmp_path
):
    """The file importer reads spans by the same rule as the OTLP receiver
    (`formats.span_role`): an OpenLLMetry model call (`llm.request.type`) is an LLM
    call named by its model and an OpenLLMetry tool a tool call, kept although no
    OpenInference kind marks them."""
    llm = _span(
        "l1",
        "openai.chat",
        "2025-03-19T16:40:48Z",
        {
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 50,
            "gen_ai.usage.completion_tokens": 12,
        },
        [],
    )
    tool = _span(
        "t1",
        "get_weather.tool",
        "2025-03-19T16:40:49Z",
        {"traceloop.span.kind": "tool", "traceloop.entity.name": "get_weather"},
        [],
    )
    path = tmp_path / "spans.json"
    path.write_text(json.dumps({"trace_id": "ab12", "spans": [llm, tool]}))  # fmt: skip
    result = traces_import_file(workspace=tenant.workspace, fmt="openinference-json", path=path)
    assert result.ok, result.error
    steps = list(Trace.objects.get(workspace=tenant.workspace).steps.order_by("index")
                 .values_list("kind", "name", "tokens"))  # fmt: skip
    assert steps == [("llm_call", "gpt-4o-mini", 62), ("tool_call", "get_weather", None)]


def _otlp_line(trace_id: str, *, failed: bool) -> dict:
    """One line of the OpenTelemetry Collector's file exporter (OTLP/JSON): hex
    ids, int64 times as strings, typed attribute values."""

    def attr(key: str, value: object) -> dict:
        kind = {str: "stringValue", int: "intValue", bool: "boolValue"}[type(value)]
        return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}

    tool = {
        "traceId": trace_id,
        "spanId": "bb00000000000002",
        "parentSpanId": "aa00000000000001",
        "name": "execute_tool payments.refund",
        "kind": 1,
        "startTimeUnixNano": "1764000001000000000",
        "endTimeUnixNano": "1764000002000000000",
        "attributes": [
            attr("gen_ai.operation.name", "execute_tool"),
            attr("gen_ai.tool.name", "payments.refund"),
            attr("gen_ai.tool.call.arguments", '{"order": "8812"}'),
        ],
        "events": [
            {
                "name": "exception",
                "timeUnixNano": "1764000002000000000",
                "attributes": [
                    attr("exception.type", "RuntimeError"),
                    attr("exception.message", "429 Too Many Requests"),
                ],
            }
        ]
        if failed
        else [],
        "status": {"code": 2, "message": "rate limited"} if failed else {"code": 1},
    }
    llm = {
        "traceId": trace_id,
        "spanId": "cc00000000000003",
        "parentSpanId": "aa00000000000001",
        "name": "chat",
        "startTimeUnixNano": "1764000000500000000",
        "endTimeUnixNano": "1764000000900000000",
        "attributes": [
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.request.model", "claude-haiku-4-5"),
            attr("gen_ai.usage.input_tokens", 120),
            attr("gen_ai.usage.output_tokens", 30),
        ],
        "status": {},
    }
    root = {
        "traceId": trace_id,
        "spanId": "aa00000000000001",
        "parentSpanId": "",
        "name": "invoke_agent",
        "startTimeUnixNano": "1764000000000000000",
        "endTimeUnixNano": "1764000003000000000",
        "attributes": [
            attr("gen_ai.operation.name", "invoke_agent"),
            attr("input.value", "Refund order 8812"),
        ],
        "status": {"code": 2} if failed else {"code": 1},
    }
    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "refund-bot")]},
                               "scopeSpans": [{"scope": {"name": "app"}, "spans": [root, llm, tool]}]}]}  # fmt: skip


def test_ok_on_an_instrumentations_root_span_is_no_outcome_but_on_the_applications_it_is(
    client, tenant, tmp_path
):
    """The root span's OK: an instrumentation sets it on its agent span whenever
    nothing raised (OpenTelemetry asks libraries to leave it unset), so there it says
    nothing of the outcome; on the application's own span it is the application's
    word that the run succeeded. ERROR fails the run either way. The same by file and
    over OTLP."""
    lines = {
        "agent-ok": _otlp_line("2bf7651916cd43dd8448eb211c80319d", failed=False),
        "app-ok": _otlp_line("3bf7651916cd43dd8448eb211c80319d", failed=False),
        "app-error": _otlp_line("4bf7651916cd43dd8448eb211c80319d", failed=True),
    }
    for name in ("app-ok", "app-error"):  # the root a plain span of the application's
        root = lines[name]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        root["name"] = "handle_request"
        root["attributes"] = [a for a in root["attributes"] if a["key"] != "gen_ai.operation.name"]
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines.values()) + "\n")
    result = traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=path)
    assert result.ok and result.created == 3, result.error
    by_file = dict(
        Trace.objects.filter(workspace=tenant.workspace).values_list("external_id", "status")
    )
    file_reasons = {
        t.external_id
        for t in Trace.objects.filter(workspace=tenant.workspace)
        if "inferred_status" in t.metadata
    }
    Trace.objects.filter(workspace=tenant.workspace).delete()
    for line in lines.values():
        response = client.post("/v1/traces", json.dumps(line), content_type="application/json",
                               headers={"x-hivemind-api-key": tenant.key})  # fmt: skip
        assert response.status_code == 200
    over_otlp = dict(
        Trace.objects.filter(workspace=tenant.workspace).values_list("external_id", "status")
    )
    assert (
        by_file
        == over_otlp
        == {
            "2bf7651916cd43dd8448eb211c80319d": "unknown",
            "3bf7651916cd43dd8448eb211c80319d": "succeeded",
            "4bf7651916cd43dd8448eb211c80319d": "failed",
        }
    )
    # Why the first is unknown is said beside its status on its page, by file too.
    assert file_reasons == {"2bf7651916cd43dd8448eb211c80319d"}
    unknown = Trace.objects.get(external_id="2bf7651916cd43dd8448eb211c80319d")
    assert unknown.metadata["inferred_status"]["status"] == "unknown"
    client.force_login(tenant.viewer)
    page = client.get(f"/w/{tenant.workspace.slug}/traces/{unknown.pk}/").content.decode()
    assert "which says OK whenever nothing raised" in page
    others = Trace.objects.exclude(pk=unknown.pk).filter(workspace=tenant.workspace)
    assert [t for t in others if "inferred_status" in t.metadata] == []


def test_an_otel_collector_file_export_imports_each_trace_as_the_endpoint_reads_it(
    tenant, tmp_path
):
    """`--format otlp-json`: the OpenTelemetry Collector's file exporter writes one
    OTLP/JSON export per line. Each trace id is one run, its id the hex trace id
    (as the OTLP endpoint names it), its agent the resource's `service.name`, its
    spans steps by the endpoint's rule (a tool, a model call), the tool's exception
    its error and the root's copy of the failure kept aside, the root status the
    outcome."""
    path = tmp_path / "traces.jsonl"
    path.write_text(
        json.dumps(_otlp_line("0af7651916cd43dd8448eb211c80319c", failed=True))
        + "\n"
        + json.dumps(_otlp_line("1bf7651916cd43dd8448eb211c80319d", failed=False))
        + "\n"
    )
    result = traces_import_file(workspace=tenant.workspace, fmt="otlp-json", path=path)
    assert result.ok and result.created == 2, result.error
    failed = Trace.objects.get(external_id="0af7651916cd43dd8448eb211c80319c")
    assert (failed.status, failed.agent, failed.task) == (
        "failed",
        "refund-bot",
        "Refund order 8812",
    )
    steps = _steps(failed, "kind", "name", "parent_index", "error", "tokens")
    assert steps == [
        ("span", "invoke_agent", None, "", None),
        ("llm_call", "claude-haiku-4-5", 0, "", 150),
        ("tool_call", "payments.refund", 0, "RuntimeError: 429 Too Many Requests", None),
    ]  # fmt: skip
    assert failed.steps.get(index=2).input == {"order": "8812"}
    # The root is an instrumentation's agent span: its OK says nothing raised, not
    # that the run succeeded (`formats.root_outcome`).
    assert Trace.objects.get(external_id="1bf7651916cd43dd8448eb211c80319d").status == "unknown"


def _phoenix_rows() -> list[dict]:
    """Phoenix's spans dataframe saved with pandas' `to_json(orient="records",
    lines=True)`: a row per span, flattened `context.*` and `attributes.*`
    columns, times in epoch milliseconds, nulls for absent attributes."""
    base = {"context.trace_id": "7f3e", "status_message": "", "events": []}
    return [
        {**base, "name": "AgentExecutor", "span_kind": "CHAIN", "context.span_id": "s1",
         "parent_id": None, "start_time": 1764000000000, "end_time": 1764000003000,
         "status_code": "ERROR", "attributes.input.value": "Refund order 8812",
         "attributes.tool.name": None},
        {**base, "name": "ChatOpenAI", "span_kind": "LLM", "context.span_id": "s2",
         "parent_id": "s1", "start_time": 1764000000500, "end_time": 1764000000900,
         "status_code": "OK", "attributes.llm.model_name": "gpt-4o",
         "attributes.llm.token_count.total": 150},
        {**base, "name": "refund", "span_kind": "TOOL", "context.span_id": "s3",
         "parent_id": "s1", "start_time": 1764000001000, "end_time": 1764000002000,
         "status_code": "ERROR", "attributes.tool.name": "refund",
         "attributes.input.value": '{"order": "8812"}',
         "events": [{"name": "exception", "timestamp": 1764000002000,
                     "attributes": {"exception.type": "RuntimeError",
                                    "exception.message": "429 Too Many Requests"}}]},
    ]  # fmt: skip


def test_a_phoenix_span_table_imports_a_run_per_trace_id(tenant, tmp_path):
    """`openinference-json` also reads a span table, one span a row (Phoenix's spans
    dataframe saved to JSON lines): rows grouped by trace id, parents by
    `parent_id`, the kind from `span_kind`, pandas' millisecond times read as
    such, the tool's exception its error and the root's copy kept aside."""
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in _phoenix_rows()))
    result = traces_import_file(workspace=tenant.workspace, fmt="openinference-json", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.status, trace.task) == ("7f3e", "failed", "Refund order 8812")
    assert trace.started_at.isoformat() == "2025-11-24T16:00:00+00:00"
    steps = [(*row[:5], round(row[5])) for row in trace.steps.order_by("index").values_list(
        "kind", "name", "parent_index", "error", "tokens", "duration_ms")]  # fmt: skip
    assert steps == [
        ("span", "AgentExecutor", None, "", None, 3000),
        ("llm_call", "gpt-4o", 0, "", 150, 400),
        ("tool_call", "refund", 0, "RuntimeError: 429 Too Many Requests", None, 1000),
    ]  # fmt: skip


def _langfuse_trace() -> dict:
    """A trace as Langfuse's `GET /api/public/traces/{id}` answers it
    (TraceWithFullDetails): observations with parents, types and levels; scores."""

    def observation(oid: str, kind: str, name: str, start: str, **extra: object) -> dict:
        return {
            "id": oid,
            "traceId": "lf-1",
            "type": kind,
            "name": name,
            "startTime": start,
            "endTime": start.replace(":00.", ":01."),
            "level": "DEFAULT",
            "statusMessage": None,
            "parentObservationId": "o1" if oid != "o1" else None,
            "input": None,
            "output": None,
            "model": None,
            "usageDetails": {},
            **extra,
        }

    return {"id": "lf-1", "timestamp": "2026-11-20T10:00:00.000Z", "name": "support-agent",
            "sessionId": "chat-77", "input": {"question": "Where is order 8812?"},
            "totalCost": 0.0042, "htmlPath": "/project/p/traces/lf-1", "latency": 3.1,
            "scores": [{"name": "resolved", "dataType": "BOOLEAN", "value": 0, "comment": "no"},
                       {"name": "helpfulness", "dataType": "NUMERIC", "value": 0.4}],
            "observations": [
        observation("o1", "AGENT", "support-agent", "2026-11-20T10:00:00.000Z",
                    input="Where is order 8812?", level="ERROR", statusMessage="tool failed"),
        observation("o2", "GENERATION", "chat", "2026-11-20T10:00:00.100Z", model="gpt-4o",
                    usageDetails={"input": 90, "output": 20, "total": 110}),
        observation("o3", "TOOL", "lookup_order", "2026-11-20T10:00:00.200Z",
                    input={"order": "8812"}, level="ERROR", statusMessage="404 order not found"),
        observation("o4", "EVENT", "user-feedback", "2026-11-20T10:00:00.300Z", level="WARNING"),
    ]}  # fmt: skip


def test_a_langfuse_trace_export_imports_its_observations_as_steps(tenant, tmp_path):
    """`--format langfuse`: a trace as Langfuse's API gives it, with its
    observations. A GENERATION is a model call named by its model, a TOOL a tool
    call, level ERROR an error (counted once, on the tool, the agent's copy kept
    aside), WARNING not; the trace's name is the agent, BOOLEAN scores checks; an
    export has no outcome. The list endpoint's shape (observation ids) is refused
    with how to fetch whole traces."""
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(_langfuse_trace()))
    result = traces_import_file(workspace=tenant.workspace, fmt="langfuse", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.agent, trace.session_id, trace.status, trace.task) == (
        "langfuse-lf-1", "support-agent", "chat-77", "unknown", "Where is order 8812?")  # fmt: skip
    assert [(c["name"], c["passed"]) for c in trace.checks] == [("resolved", False)]
    steps = _steps(trace, "kind", "name", "parent_index", "error", "tokens")
    assert steps == [
        ("span", "support-agent", None, "", None),
        ("llm_call", "gpt-4o", 0, "", 110),
        ("tool_call", "lookup_order", 0, "404 order not found", None),
        ("tool_call", "user-feedback", 0, "", None),
    ]  # fmt: skip
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps({"data": [{**_langfuse_trace(), "observations": ["o1", "o2"]}]}))
    refused = traces_import_file(workspace=tenant.workspace, fmt="langfuse", path=listed)
    assert "GET /api/public/traces/{id}" in refused.error


def _langsmith_runs() -> list[dict]:
    """LangSmith runs as `Client.list_runs` gives them, dumped one a line: a root
    chain, a model call (its model in `extra.invocation_params`) and a tool that
    raised, flat with parent ids; then the same trace again, nested (a root run
    read with its `child_runs`), which must not double its steps."""

    def run(rid: str, kind: str, name: str, at: str, parent: str | None, **extra: object) -> dict:
        return {
            "id": rid,
            "trace_id": "t-1",
            "run_type": kind,
            "name": name,
            "start_time": at,
            "end_time": at.replace(":00.", ":01."),
            "parent_run_id": parent,
            "inputs": {},
            "outputs": None,
            "error": None,
            "extra": {},
            **extra,
        }

    root = run(
        "r1",
        "chain",
        "RefundAgent",
        "2026-11-20T10:00:00.000000",
        None,
        inputs={"input": "Refund order 8812"},
        error="ToolException: refund failed",
        total_cost="0.0031",
        feedback_stats={"correctness": {"n": 1, "avg": 0.0}},
    )
    llm = run(
        "r2",
        "llm",
        "ChatOpenAI",
        "2026-11-20T10:00:00.100000",
        "r1",
        total_tokens=140,
        extra={"invocation_params": {"model": "gpt-4o-mini"}},
    )
    tool = run(
        "r3",
        "tool",
        "refund",
        "2026-11-20T10:00:00.200000",
        "r1",
        inputs={"order": "8812"},
        error="ToolException: refund failed",
    )
    # A second trace, flat, its children naming every ancestor (`parent_run_ids`).
    other = [
        {
            **run("q1", "chain", "RefundAgent", "2026-11-20T11:00:00.000000", None),
            "trace_id": "t-2",
        },
        {
            **run("q2", "tool", "refund", "2026-11-20T11:00:00.200000", None),
            "trace_id": "t-2",
            "parent_run_ids": ["q1"],
        },
    ]
    return [root, llm, tool, {**root, "child_runs": [llm, tool]}, *other]  # fmt: skip


def test_langsmith_runs_import_a_run_per_trace_with_their_children_as_steps(tenant, tmp_path):
    """`--format langsmith`: runs grouped by trace id, flat or nested (a run read
    both ways is one step), an llm run a model call named by its model, a tool run
    a tool call, an error counted where it happened; the root run's name is the
    agent, a root that raised failed, feedback a check."""
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in _langsmith_runs()))
    result = traces_import_file(workspace=tenant.workspace, fmt="langsmith", path=path)
    assert result.ok and result.created == 2, result.error
    trace = Trace.objects.get(workspace=tenant.workspace, external_id="langsmith-t-1")
    assert (trace.external_id, trace.agent, trace.status, trace.cost_usd) == (
        "langsmith-t-1", "RefundAgent", "failed", 0.0031)  # fmt: skip
    other = Trace.objects.get(workspace=tenant.workspace, external_id="langsmith-t-2")
    assert _steps(other, "name", "parent_index") == [
        ("RefundAgent", None),
        ("refund", 0),
    ]
    assert other.status == "unknown"
    assert trace.checks == [{"name": "correctness", "passed": False,
                             "detail": "average 0.0 over 1"}]  # fmt: skip
    steps = _steps(trace, "kind", "name", "parent_index", "error", "tokens")
    assert steps == [
        ("span", "RefundAgent", None, "", None),
        ("llm_call", "gpt-4o-mini", 0, "", 140),
        ("tool_call", "refund", 0, "ToolException: refund failed", None),
    ]  # fmt: skip


def _gemini_session_file() -> dict:
    """A Gemini CLI session as its ChatRecordingService writes it."""

    def call(cid: str, name: str, status: str, response: dict, display: str) -> dict:
        return {
            "id": cid,
            "name": name,
            "args": {"command": "npm test"},
            "status": status,
            "timestamp": "2025-10-18T14:57:35.000Z",
            "resultDisplay": display,
            "result": [{"functionResponse": {"id": cid, "name": name, "response": response}}],
        }

    return {"sessionId": "f86f5318", "projectHash": "79b6fa86", "startTime": "2025-10-18T14:57:28.974Z",
            "lastUpdated": "2025-10-18T14:58:07.161Z", "messages": [
        {"id": "m1", "timestamp": "2025-10-18T14:57:28.974Z", "type": "user",
         "content": "Make the tests pass"},
        {"id": "m2", "timestamp": "2025-10-18T14:57:33.000Z", "type": "gemini", "model": "gemini-2.5-pro",
         "content": "I'll run the tests.", "tokens": {"input": 900, "output": 40, "total": 940},
         "toolCalls": [call("t1", "run_shell_command", "success",
                            {"output": "Command: npm test\nExit Code: 1\n2 failing"}, "2 failing"),
                       call("t2", "write_file", "error", {"error": "File not found: src/a.ts"},
                            "Error: File not found"),
                       call("t3", "run_shell_command", "cancelled", {}, "")]},
        {"id": "m3", "timestamp": "2025-10-18T14:58:00.000Z", "type": "info", "content": "Request cancelled."},
        {"id": "m4", "timestamp": "2025-10-18T14:58:07.000Z", "type": "error",
         "content": "[API Error: 429 Resource exhausted]"}]}  # fmt: skip


def test_a_gemini_cli_session_imports_its_calls_and_errors(tenant, tmp_path):
    """`--format gemini-session` (`~/.gemini/tmp/<project>/chats/session-*.json`):
    the user's prompts, the agent's text and tool calls (args, the function
    response's output or error), a call whose status is error failed and so did a
    shell command whose output states a non-zero exit code, a cancelled
    one has no result and says so, the CLI's error messages are error steps and
    its info lines are left out; no outcome."""
    folder = tmp_path / "chats"
    folder.mkdir()
    (folder / "session-2025-10-18T14-57-f86f5318.json").write_text(
        json.dumps(_gemini_session_file())
    )
    (tmp_path / "logs.json").write_text(
        "[]"
    )  # the CLI's prompt log beside the chats: not a session
    call_command(
        "import_traces", str(tmp_path), workspace=tenant.workspace.slug, fmt="gemini-session"
    )
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.agent, trace.model, trace.status, trace.task) == (
        "gemini-f86f5318", "gemini-cli", "gemini-2.5-pro", "unknown", "Make the tests pass")  # fmt: skip
    steps = _steps(trace, "kind", "name", "error", "tokens")
    assert steps == [
        ("user_prompt", "", "", None),
        ("assistant_message", "", "", 940),
        ("tool_call", "run_shell_command", "Exit Code: 1\n2 failing", None),
        ("tool_call", "write_file", "File not found: src/a.ts", None),
        ("tool_call", "run_shell_command",
         "No result: the call was cancelled (declined, or its turn was stopped).", None),
        ("error", "", "[API Error: 429 Resource exhausted]", None),
    ]  # fmt: skip
    assert "Exit Code: 1" in trace.steps.get(index=2).output


def test_numbered_agent_turns_are_one_kind_of_step_and_recovered_tool_errors_are_errors(
    tenant, tmp_path
):
    """smolagents opens a CHAIN span per turn ("Step 1", "Step 2"): each is an
    "agent step", not a call of its own named by its number (modes and same-task
    comparisons would read "Step 12" as a tool). A tool call that failed and that
    the agent went on from is an `agent.step_recovery` event on a step whose
    status stays OK: that is the step's error, as an `exception` event is (here in
    a ClickHouse-style export's capitalised keys)."""
    path = tmp_path / "steps.json"
    path.write_text(json.dumps(_smolagents_run()))
    result = traces_import_file(workspace=tenant.workspace, fmt="openinference-json", path=path)
    assert result.ok, result
    trace = Trace.objects.get(workspace=tenant.workspace, external_id="9f3d")
    assert _steps(trace, "name", "error") == [
        ("ToolCallingAgent.run", ""),
        ("agent step", "AgentToolCallError: Unknown tool search_web"),
        ("agent step", ""),
    ]


@pytest.mark.parametrize(("name", "expected"), [
    ("Step 3", "agent step"), ("step_12", "agent step"), ("Turn 2", "agent turn"),
    ("Iteration #4", "agent iteration"), ("Step 3: search", "Step 3: search"),
    ("Stepwise 3", "Stepwise 3"), ("CodeAgent.run", "CodeAgent.run"),
])  # fmt: skip
def test_span_step_name(name, expected):
    from hivemind_client.formats import span_step_name

    assert span_step_name(name) == expected


def test_an_openinference_span_export_with_parent_ids_and_bad_spans(tenant, tmp_path):
    """A flat span export (one run per line, nested attributes, parent ids, an
    exception event) reads the same way; a run whose spans are not a list names
    its line and stores nothing."""
    spans = [
        {"name": "agent", "context": {"trace_id": "t", "span_id": "p"}, "parent_id": None,
         "start_time": "2025-01-01T00:00:00+00:00", "end_time": "2025-01-01T00:00:02+00:00",
         "status_code": "OK", "attributes": {"openinference": {"span": {"kind": "AGENT"}},
                                             "input": {"value": "Book a table"}}},
        {"name": "search", "context": {"trace_id": "t", "span_id": "c"}, "parent_id": "p",
         "start_time": "2025-01-01T00:00:01+00:00", "status_code": "ERROR",
         "attributes": {"openinference": {"span": {"kind": "TOOL"}}, "tool": {"name": "search"}},
         "events": [{"name": "exception", "attributes": {"exception.type": "TimeoutError",
                                                         "exception.message": "no answer"}}]},
    ]  # fmt: skip
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps({"trace_id": "t", "spans": spans}) + "\n")
    assert traces_import_file(workspace=tenant.workspace, fmt="openinference-json", path=path).ok
    trace = Trace.objects.get(workspace=tenant.workspace, external_id="t")
    assert (trace.status, trace.task) == ("unknown", "Book a table")  # an agent span's OK
    assert _steps(trace, "name", "parent_index", "error") == [
        ("agent", None, ""), ("search", 0, "TimeoutError: no answer")]  # fmt: skip
    nested: object = 1
    for _ in range(68):
        nested = [nested]
    deep = json.dumps({"task": "x", "n": nested})
    spans[0]["attributes"]["input"]["value"] = deep  # deeper than a trace may be: kept as text
    path.write_text(json.dumps({"trace_id": "t", "spans": spans}) + "\n")
    assert traces_import_file(workspace=tenant.workspace, fmt="openinference-json", path=path).ok
    assert (
        Trace.objects.get(workspace=tenant.workspace, external_id="t").steps.get(index=0).input
        == deep
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"trace_id": "u", "spans": spans}) + "\n"
                   + json.dumps({"trace_id": "v", "spans": "nope"}) + "\n")  # fmt: skip
    result = traces_import_file(workspace=tenant.workspace, fmt="openinference-json", path=bad)
    assert not result.ok and "line 2" in result.error and "spans" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace, external_id="u").exists()


def _openhands_v0(instance: str, resolved: object = None) -> dict:
    record = {
        "instance_id": instance, "instruction": "Fix the URL validator.",
        "metadata": {"agent_class": "CodeActAgent",
                     "llm_config": {"model": "litellm_proxy/claude-3-5-sonnet-20241022"}},
        "metrics": {"accumulated_cost": 0.42},
        "history": [
            {"id": 0, "timestamp": "2024-10-28T17:02:38", "source": "agent", "action": "system",
             "args": {"content": "You are OpenHands agent."}},
            {"id": 1, "timestamp": "2024-10-28T17:02:39", "source": "user", "action": "message",
             "args": {"content": "Fix the URL validator."}},
            {"id": 2, "timestamp": "2024-10-28T17:02:40", "source": "environment",
             "observation": "agent_state_changed", "content": "", "extras": {"agent_state": "running"}},
            {"id": 3, "timestamp": "2024-10-28T17:02:45", "source": "agent", "action": "run",
             "args": {"command": "pytest tests/validators", "thought": "Reproduce it first."},
             "tool_call_metadata": {"function_name": "execute_bash", "tool_call_id": "toolu_01"}},
            {"id": 4, "timestamp": "2024-10-28T17:02:50", "source": "agent", "observation": "run",
             "cause": 3, "content": "ImportError: cannot import name 'URLValidator'",
             "extras": {"exit_code": None, "metadata": {"exit_code": 1}}},  # null as exported
            {"id": 5, "timestamp": "2024-10-28T17:03:00", "source": "agent", "action": "edit",
             "args": {"path": "validators.py", "command": "str_replace", "old_str": "$"},
             "tool_call_metadata": {"function_name": "str_replace_editor"}},
            {"id": 6, "timestamp": "2024-10-28T17:03:01", "source": "agent", "observation": "error",
             "cause": 5, "content": "No replacement was performed.", "extras": {}},
            {"id": 7, "timestamp": "2024-10-28T17:03:05", "source": "agent", "action": "run",
             "args": {"command": "sleep 100"}},
            {"id": 8, "timestamp": "2024-10-28T17:03:35", "source": "agent", "observation": "run",
             "cause": 7, "content": "[still running]", "extras": {"exit_code": -1}},
            {"id": 9, "timestamp": "2024-10-28T17:03:40", "source": "agent", "action": "finish",
             "args": {"final_thought": "Done."}},
        ],
    }  # fmt: skip
    if resolved is not None:
        record["test_result"] = {"git_patch": "", "report": {"resolved": resolved}}
    return record


def _openhands_v1(instance: str) -> dict:
    return {
        "instance_id": instance, "instruction": "Fix separability_matrix.",
        "metadata": {"agent_class": "CodeActAgent", "llm": {"model": "gpt-4o"}},
        "history": [
            {"kind": "SystemPromptEvent", "id": "e0", "timestamp": "2025-09-01T10:00:00Z",
             "source": "agent", "system_prompt": {"text": "You are OpenHands agent."}},
            {"kind": "MessageEvent", "id": "e1", "timestamp": "2025-09-01T10:00:01Z", "source": "user",
             "llm_message": {"role": "user", "content": [{"type": "text", "text": "Fix it."}]}},
            {"kind": "ActionEvent", "id": "e2", "timestamp": "2025-09-01T10:00:05Z", "source": "agent",
             "tool_name": "terminal", "tool_call_id": "call_1",
             "thought": [{"type": "text", "text": "Run the tests."}],
             "action": {"kind": "TerminalAction", "command": "pytest astropy/modeling"}},
            {"kind": "ObservationEvent", "id": "e3", "timestamp": "2025-09-01T10:00:09Z",
             "source": "environment", "tool_name": "terminal", "tool_call_id": "call_1",
             "observation": {"kind": "TerminalObservation", "exit_code": 1,
                             "content": [{"type": "text", "text": "2 failed, 10 passed"}]}},
            {"kind": "ActionEvent", "id": "e4", "timestamp": "2025-09-01T10:00:12Z", "source": "agent",
             "tool_name": "file_editor", "tool_call_id": "call_2",
             "action": {"kind": "FileEditorAction", "command": "view", "path": "/nowhere.py"}},
            {"kind": "AgentErrorEvent", "id": "e5", "timestamp": "2025-09-01T10:00:13Z",
             "source": "agent", "tool_name": "file_editor", "tool_call_id": "call_2",
             "error": "Invalid path: /nowhere.py does not exist."},
            {"kind": "ConversationStateUpdateEvent", "id": "e6", "key": "agent_status",
             "value": "finished"},
        ],
    }  # fmt: skip


@pytest.fixture
def new_york_time(monkeypatch):  # type: ignore[no-untyped-def]
    """The importing machine's zone is not UTC (a naive time must still read as UTC)."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_openhands_output_of_either_event_schema_imports_with_its_outcome(
    tenant, tmp_path, new_york_time
):
    """OpenHands' evaluation output: the classic event stream (actions and the
    observations that answer them by `cause`) and the software-agent SDK's `kind`
    events, one instance a line; the outcome from the instance's own evaluation
    report, else the `.swebench_eval.jsonl` beside the file, else unknown."""
    run = tmp_path / "CodeActAgent" / "claude-3-5-sonnet_maxiter_100"
    run.mkdir(parents=True)
    stuck = {
        **_openhands_v0("sympy__sympy-1"),
        "error": "AgentStuckInLoopError: Agent got stuck in a loop",
    }
    lines = [_openhands_v0("django__django-11099", resolved=False),
             _openhands_v1("astropy__astropy-12907"), stuck,
             _openhands_v0("django__django-11099", resolved=True)]  # fmt: skip
    (run / "output.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (run / "output.swebench_eval.jsonl").write_text(json.dumps(
        {"instance_id": "astropy__astropy-12907", "test_result": {"report": {"resolved": True}}}
    ) + "\n")  # fmt: skip
    (run / "metadata.json").write_text(json.dumps({"agent_class": "CodeActAgent"}))
    # A folder: only its output.jsonl is read (not the evaluation or metadata files).
    call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug, fmt="openhands")
    traces = {t.external_id: t for t in Trace.objects.filter(workspace=tenant.workspace)}
    prefix = "openhands-claude-3-5-sonnet_maxiter_100-"
    assert sorted(traces) == sorted(prefix + i for i in (
        "django__django-11099", "astropy__astropy-12907", "sympy__sympy-1", "django__django-11099#2"))  # fmt: skip
    django = traces[prefix + "django__django-11099"]
    assert django.status == "failed" and django.task_key == "swe:django__django-11099"
    assert django.agent == "CodeActAgent/claude-3-5-sonnet-20241022"
    assert django.model == "claude-3-5-sonnet-20241022" and django.cost_usd == 0.42
    assert django.metadata["outcome_from"] == "test_result.report.resolved"
    # A time without a zone is UTC.
    assert django.started_at.isoformat() == "2024-10-28T17:02:38+00:00"
    steps = [(s.kind, s.name, s.error) for s in django.steps.order_by("index")]
    assert steps == [
        ("user_prompt", "", ""),
        ("assistant_message", "", ""),  # the run's thought, before its call
        ("tool_call", "execute_bash", "ImportError: cannot import name 'URLValidator'"),
        ("tool_call", "str_replace_editor", "No replacement was performed."),
        ("tool_call", "run", ""),  # -1: still running, no exit code yet
        ("tool_call", "finish", ""),
    ]
    assert django.steps.get(name="execute_bash").input == {"command": "pytest tests/validators"}
    assert traces[prefix + "django__django-11099#2"].status == "succeeded"
    astropy = traces[prefix + "astropy__astropy-12907"]
    assert astropy.status == "succeeded" and astropy.agent == "CodeActAgent/gpt-4o"
    assert astropy.metadata["outcome_from"] == "output.swebench_eval.jsonl"
    assert [(s.kind, s.name, s.output, s.error) for s in astropy.steps.order_by("index")] == [
        ("user_prompt", "", None, ""),
        ("assistant_message", "", "Run the tests.", ""),
        ("tool_call", "terminal", "2 failed, 10 passed", "2 failed, 10 passed"),
        ("tool_call", "file_editor", None, "Invalid path: /nowhere.py does not exist."),
    ]
    sympy = traces[prefix + "sympy__sympy-1"]
    assert sympy.status == "unknown"
    # The run ended on an error: its last step, not only a note in its metadata.
    last = sympy.steps.order_by("index").last()
    assert (last.kind, last.error) == ("error", "AgentStuckInLoopError: Agent got stuck in a loop")
    assert sympy.metadata["error"] == last.error


def test_a_saved_openhands_event_stream_imports_and_a_broken_one_says_where(tenant, tmp_path):
    events = tmp_path / "conversation-7.json"
    events.write_text(json.dumps(_openhands_v0("x")["history"]))
    result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=events)
    assert result.ok and result.created == 1
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.external_id == "openhands-conversation-7-conversation-7"
    assert trace.task == "Fix the URL validator." and trace.status == "unknown"
    broken = tmp_path / "output.jsonl"
    broken.write_text(json.dumps(_openhands_v0("a")) + "\n" + json.dumps(
        {"instance_id": "b", "history": [{"id": 1, "args": {}}]}) + "\n")  # fmt: skip
    result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=broken)
    assert not result.ok and "line 2, history[0]" in result.error
    assert "neither" in result.error
    # SWE-Gym's chat-format OpenHands trajectories name the format that reads them.
    chat = tmp_path / "swe-gym.jsonl"
    chat.write_text(json.dumps({"instance_id": "a", "resolved": True, "messages": []}) + "\n")
    result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=chat)
    assert not result.ok and "--format chat-jsonl" in result.error
    assert Trace.objects.filter(workspace=tenant.workspace).count() == 1


def _sdk_conversation(folder: Path, events: list[dict], status: str = "finished") -> Path:
    """A conversation as the OpenHands SDK saves it: its state and numbered events."""
    (folder / "events").mkdir(parents=True)
    for n, event in enumerate(events):
        (folder / "events" / f"event-{n:05d}-{event['id']}.json").write_text(json.dumps(event))
    state = folder / "base_state.json"
    state.write_text(json.dumps({
        "id": folder.name, "execution_status": status,
        "agent": {"kind": "Agent", "llm": {"model": "anthropic/claude-sonnet-4-5"}},
        "stats": {"usage_to_metrics": {"agent": {"accumulated_cost": 0.031, "token_usages": [
            {"prompt_tokens": 900, "completion_tokens": 40, "response_id": "resp-1"}]}}},
    }))  # fmt: skip
    return state


def test_openhands_sdk_events_the_reader_did_not_know(tenant, tmp_path):
    """A run's own error (ConversationErrorEvent) is its last step; an agent driven
    over ACP makes one call per id however often it is updated; a streamed answer's
    fragments and the SDK's other record-keeping make no step."""
    history = _openhands_v1("x")["history"][:2] + [
        {"kind": "StreamingDeltaEvent", "id": "d1", "source": "agent", "content": "Let me"},
        {"kind": "ACPToolCallEvent", "id": "a1", "timestamp": "2025-09-01T10:00:02Z",
         "llm_response_id": "resp-1", "tool_call_id": "t1", "title": "`pytest -x`",
         "tool_kind": "execute", "status": "pending", "raw_input": {"command": "pytest -x"}},
        {"kind": "ACPToolCallEvent", "id": "a2", "tool_call_id": "t1", "title": "`pytest -x`",
         "tool_kind": "execute", "status": "failed", "is_error": True,
         "raw_output": "1 failed"},
        {"kind": "HookExecutionEvent", "id": "h1", "hook_event_type": "PreToolUse",
         "hook_command": "check.sh", "success": True, "exit_code": 0, "stdout": "ok"},
        {"kind": "ConversationErrorEvent", "id": "c1", "timestamp": "2025-09-01T10:00:30Z",
         "source": "environment", "code": "LLMBadRequestError",
         "detail": "context window exceeded"},
    ]  # fmt: skip
    state = _sdk_conversation(tmp_path / "conversations" / "c0ffee", history, status="error")
    result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=state)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.status) == ("openhands-c0ffee", "failed")
    assert trace.agent == "OpenHands/anthropic/claude-sonnet-4-5" and trace.cost_usd == 0.031
    steps = [(s.kind, s.name, s.input, s.output, s.error, s.tokens)
             for s in trace.steps.order_by("index")]  # fmt: skip
    assert steps == [
        ("user_prompt", "", "Fix it.", None, "", None),
        ("tool_call", "execute", {"command": "pytest -x"}, "1 failed", "1 failed", 940),
        ("error", "", None, None, "LLMBadRequestError: context window exceeded", None),
    ]


def test_a_folder_of_openhands_conversations_names_each_in_its_progress(tenant, tmp_path):
    """Every conversation's state is a `base_state.json`: the progress lines name each
    by its folder, or a person could not tell which one was refused."""
    for name in ("c1", "c2"):
        _sdk_conversation(tmp_path / "conversations" / name, _openhands_v1("x")["history"][:2])
    out, err = io.StringIO(), io.StringIO()
    call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug,
                 fmt="openhands", stdout=out, stderr=err)  # fmt: skip
    assert "1/2 c1/base_state.json: 1 created" in out.getvalue()
    assert "2/2 c2/base_state.json: 1 created" in out.getvalue()


def test_a_broken_openhands_conversation_says_which_file(tenant, tmp_path):
    state = _sdk_conversation(tmp_path / "c1", _openhands_v1("x")["history"][:2])
    (state.parent / "events" / "event-00002-zz.json").write_text("{not json")
    result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=state)
    assert not result.ok and "event-00002-zz.json" in result.error
    empty = tmp_path / "c2"
    empty.mkdir()
    (empty / "base_state.json").write_text(json.dumps({"id": "c2"}))
    result = traces_import_file(
        workspace=tenant.workspace, fmt="openhands", path=empty / "base_state.json"
    )
    assert not result.ok and "no events/event-*.json files" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_older_openhands_output_pairs_each_action_with_its_observation(tenant, tmp_path):
    """Older OpenHands output keeps `history` as `[action, observation]` pairs, with
    no `cause`: the observation answers the action beside it."""
    events = _openhands_v0("django__django-1", resolved=False)
    by_id = {e["id"]: e for e in events["history"]}
    pairs = [[by_id[1], {"observation": "null", "content": "", "extras": {}}]]
    for action, observation in ((3, 4), (5, 6), (9, None)):
        answer = dict(by_id[observation]) if observation else {"observation": "null", "content": ""}
        answer.pop("cause", None)
        pairs.append([by_id[action], answer])
    (tmp_path / "output.jsonl").write_text(json.dumps({**events, "history": pairs}) + "\n")
    result = traces_import_file(workspace=tenant.workspace, fmt="openhands",
                                path=tmp_path / "output.jsonl")  # fmt: skip
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert [(s.kind, s.name, s.error) for s in trace.steps.order_by("index")] == [
        ("user_prompt", "", ""),
        ("assistant_message", "", ""),
        ("tool_call", "execute_bash", "ImportError: cannot import name 'URLValidator'"),
        ("tool_call", "str_replace_editor", "No replacement was performed."),
        ("tool_call", "finish", ""),
    ]


def test_openhands_trajectories_of_a_submission_are_named_by_it(tenant, tmp_path):
    """`<submission>/trajs/<instance>.json`, each a bare event stream: two submissions'
    runs of one instance are two runs of one task, and the submission's
    `results/results.json` gives the outcome."""
    for submission, resolved in (
        ("20241029_OpenHands", ["django__django-1"]),
        ("20250101_Other", []),
    ):
        (tmp_path / submission / "trajs").mkdir(parents=True)
        (tmp_path / submission / "results").mkdir()
        events = _openhands_v0("ignored")["history"]
        (tmp_path / submission / "trajs" / "django__django-1.json").write_text(json.dumps(events))
        (tmp_path / submission / "results" / "results.json").write_text(
            json.dumps({"resolved": resolved, "no_generation": [], "no_logs": []}))  # fmt: skip
    call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug, fmt="openhands")
    runs = dict(Trace.objects.filter(workspace=tenant.workspace)
                .values_list("external_id", "status"))  # fmt: skip
    assert runs == {"openhands-20241029_OpenHands-django__django-1": "succeeded",
                    "openhands-20250101_Other-django__django-1": "failed"}  # fmt: skip
    assert set(Trace.objects.values_list("task_key", flat=True)) == {"swe:django__django-1"}


def test_a_folder_with_nothing_of_its_format_says_what_was_looked_for(tenant, tmp_path, capsys):
    """A folder holding no file of the format's names (a transcript saved as
    `chat.json`) is refused with the names looked for and how to import it anyway,
    by the command and by the client (which sends nothing)."""
    from django.core.management.base import CommandError

    from hivemind_client.importer import main as client_import

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "chat.json").write_text("[]")
    with pytest.raises(CommandError, match=r"searched for \*\.jsonl files \(--format claude-"):
        call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug,
                     fmt="claude-transcript")  # fmt: skip
    assert client_import("http://127.0.0.1:9", "hm_unused", "openhands", [tmp_path]) == 2
    assert (
        "searched for output.jsonl, trajs/*.json, base_state.json or *.parquet files (--format openhands); name a file"
        in (capsys.readouterr().err)
    )


# Fields of a type or range no reader checked for, each of which raised out of the
# importer (a traceback that ended a folder's import) before: now a per-file error
# that names the field where it can.
WRONGLY_TYPED = [
    ("openhands", lambda d: d["history"][0].update(id={"a": 1}), None),
    ("openhands", lambda d: d["history"][1].update(cause=[1]), None),
    (
        "openinference-json",
        lambda d: d["spans"][0]["span_attributes"].update({"openinference.span.kind": ["AGENT"]}),
        None,
    ),  # fmt: skip
    ("tau2-bench", lambda d: d["info"].update(agent_info=[None]), None),
    ("intercode", lambda d: d["0"]["turn_history"].update(observations=7), '"observations"'),
    ("claude-transcript", lambda d: d[0].update(type=["user"]), None),
    ("claude-transcript", lambda d: d[2]["message"].update(content=3), '"content"'),
    ("swe-agent", lambda d: d.update(history=1), '"history"'),
    ("chat-jsonl", lambda d: d.update(status=["failed"]), "unknown status"),
    ("tau-bench", lambda d: d[0]["traj"][1].update(tool_calls=True), '"tool_calls"'),
]


@pytest.mark.parametrize(("fmt", "change", "named"), WRONGLY_TYPED)
def test_a_field_of_an_unexpected_type_is_a_per_file_error_or_read_as_absent(
    fmt, change, named, tenant, tmp_path
):
    import copy

    data = copy.deepcopy(FORMAT_SAMPLES[fmt])
    change(data)
    result = traces_import_file(
        workspace=tenant.workspace, fmt=fmt, path=_file(tmp_path, fmt, data)
    )
    if named is None:  # an optional field, read as absent: the run imports
        assert result.ok and result.created == 1, result.error
    else:
        assert not result.ok and named in result.error and "does not read" not in result.error
        assert not Trace.objects.filter(workspace=tenant.workspace).exists()


@pytest.mark.parametrize("value", [1e308, 2**70, "99999-01-01T00:00:00"])
def test_a_time_no_calendar_holds_is_no_time(value, tenant, tmp_path):
    data = json.loads(json.dumps(FORMAT_SAMPLES["openhands"]))
    data["history"][0]["timestamp"] = value
    result = traces_import_file(
        workspace=tenant.workspace, fmt="openhands", path=_file(tmp_path, "openhands", data)
    )
    assert result.ok and result.created == 1, result.error
    assert Step.objects.filter(trace__workspace=tenant.workspace, started_at=None).exists()


def test_what_no_reader_checked_for_is_a_per_file_error_and_the_folder_goes_on(
    tenant, tmp_path, capsys, monkeypatch
):
    """The net under every reader: an exception a reader did not foresee refuses that
    file with what Python said, and a folder's other files are imported."""
    from hivemind_client import formats

    real = formats.FORMATS["intercode"]

    def reader(path: Path) -> formats.Parsed:
        if path.name == "odd.json":
            return {}["missing"]  # type: ignore[no-any-return]
        return real(path)

    monkeypatch.setitem(formats.FORMATS, "intercode", reader)
    (tmp_path / "good.json").write_text(json.dumps(FORMAT_SAMPLES["intercode"]))
    (tmp_path / "odd.json").write_text(json.dumps(FORMAT_SAMPLES["intercode"]))
    with pytest.raises(SystemExit):
        call_command("import_traces", str(tmp_path), workspace=tenant.workspace.slug,
                     fmt="intercode")  # fmt: skip
    err = capsys.readouterr().err
    assert "odd.json" in err and "--format intercode does not read (KeyError: 'missing')" in err
    assert Trace.objects.filter(workspace=tenant.workspace).count() == 1


REAL_LOGS = Path(__file__).resolve().parent / "real_logs"


def test_mutated_samples_of_every_format_never_raise_out_of_the_reader(tmp_path):
    """A fixed-seed fuzz: 80 mutations of each format's sample and of the richer
    OpenHands, mini-swe-agent, Codex, smolagents, Inspect and real tools' ones (values swapped for others of every JSON
    type, keys deleted). Each file is read or refused with a
    FormatError from a reader's own check, never by the net or a traceback."""
    import random

    from hivemind_client.formats import FormatError, parse
    from tests.mutations import mutated, places

    odd = [None, 0, -1, "", "x", [], {}, [1], {"a": 1}, True, 1e308, 2**70, [None], "\x00",
           "2025-13-45T99:00:00"]  # fmt: skip
    rng = random.Random(20261206)

    richer = [("openhands", _openhands_v0("django__django-1", resolved=False)),
              ("openhands", _openhands_v1("django__django-2")), ("swe-agent", _mini_traj()), ("swe-agent", _mini_v2_traj()),
              ("codex-rollout", _codex_rollout(aborted=True)), ("codex-rollout", _codex_code_mode()),
              ("openinference-json", _smolagents_run()),
              ("inspect-log", {**_inspect_log()[0], "samples": _inspect_log()[1]}),
              *[("chat-jsonl", row) for row in _swe_dataset_rows()],
              ("otlp-json", _otlp_line("0af7651916cd43dd8448eb211c80319c", failed=True)),
              ("openinference-json", _phoenix_rows()), ("langfuse", _langfuse_trace()),
              ("langsmith", _langsmith_runs()), ("gemini-session", _gemini_session_file()),
              ("codex-rollout", _codex_exec_stream()),
              ("atif", json.loads((_harbor_trial(tmp_path / "fuzz", "t", reward=0.0)
                                   / "agent" / "trajectory.json").read_text())),
              # Real tools' output (tests/traces/real_logs): Gemini CLI's stream-json
              # lines, Claude Code's headless output and its own OpenTelemetry spans.
              *[(fmt, [json.loads(line) for line in (REAL_LOGS / name).read_text().splitlines()])
                for fmt, name in (("gemini-session", "gemini-cli-0.61.0/stream.jsonl"),
                                  ("claude-transcript", "claude-code-2.1.332/stream.jsonl"))],
              ("otlp-json", json.loads((REAL_LOGS / "claude-code-2.1.332/otel_traces.json").read_text())),
              # The Continue CLI's saved session, its calls failed and not.
              ("continue", json.loads(next((REAL_LOGS / "continue-cli-1.5.47/sessions").glob(
                  "*-*.json")).read_text())),
              # Qwen Code's chat record of a session whose calls failed.
              ("qwen-code", [json.loads(line) for line in (
                  REAL_LOGS / "qwen-code-0.24.4/finished.jsonl").read_text().splitlines()]),
              # The Cline CLI's saved messages of a session whose calls failed.
              ("cline", json.loads(next((REAL_LOGS / "cline-3.0.65/finished").glob(
                  "*.messages.json")).read_text())),
              # The OpenTelemetry OpenAI instrumentation's spans and GenAI log events
              # in one file, as a Collector's file exporter may hold them.
              *[("otlp-json", [json.loads(line) for name in ("spans.jsonl", "logs.jsonl")
                               for line in (REAL_LOGS / folder / name).read_text().splitlines()[:1]])
                for folder in ("opentelemetry-openai-v2-2.4b0", "opentelemetry-openai-v2-2.3b0")]]  # fmt: skip
    for fmt, sample in [*sorted(FORMAT_SAMPLES.items()), *richer]:
        spots = places(sample)[1:]
        for _ in range(80):
            data = mutated(sample, spots, rng, odd)
            path = _file(tmp_path, fmt, data)
            try:
                parse(fmt, path)
            except FormatError as exc:
                assert "does not read (" not in str(exc), (fmt, json.dumps(data), str(exc))


# --- Codex rollouts -------------------------------------------------------------

CODEX_SESSION = "0199a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"


def _codex_line(second: int, kind: str, payload: dict) -> dict:
    return {"timestamp": f"2026-11-20T10:00:{second:02d}.000Z", "type": kind, "payload": payload}


def _codex_message(second: int, role: str, text: str) -> dict:
    block = "input_text" if role == "user" else "output_text"
    return _codex_line(second, "response_item", {"type": "message", "role": role,
                                                 "content": [{"type": block, "text": text}]})  # fmt: skip


def _codex_rollout(*, aborted: bool = False) -> list[dict]:
    """A Codex CLI session as its rollout file holds it: the session's header, the
    notes Codex adds to the first user message, a shell call whose tests fail
    (the shell's own result and the model's copy of it), a patch, a passing
    run, and, when `aborted`, a second turn interrupted while a call ran."""
    call = "function_call"
    lines = [
        _codex_line(0, "session_meta", {"id": CODEX_SESSION, "timestamp": "2026-11-20T10:00:00Z",
                    "cwd": "/repo", "originator": "codex_cli_rs", "cli_version": "0.98.0",
                    "model_provider": "openai", "git": {"branch": "main"}}),
        _codex_message(1, "user", "# AGENTS.md instructions for /repo\n\n<INSTRUCTIONS>Run the tests.</INSTRUCTIONS>"),
        _codex_message(1, "user", "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>"),
        _codex_line(2, "turn_context", {"cwd": "/repo", "approval_policy": "on-request",
                                        "model": "gpt-5-codex"}),
        _codex_message(2, "user", "Fix the failing date test"),
        _codex_line(2, "event_msg", {"type": "user_message", "message": "Fix the failing date test"}),
        _codex_line(3, "response_item", {"type": "reasoning", "summary": [
            {"type": "summary_text", "text": "Running the tests first"}], "encrypted_content": "x"}),
        _codex_line(4, "response_item", {"type": call, "name": "shell_command", "call_id": "call_1",
                    "arguments": json.dumps({"command": "pytest -q tests/test_dates.py", "workdir": "/repo"})}),
        _codex_line(5, "event_msg", {"type": "exec_command_end", "call_id": "call_1", "exit_code": 1,
                    "aggregated_output": "F\nFAILED tests/test_dates.py::test_leap - AssertionError\n1 failed",
                    "stdout": "", "stderr": ""}),
        _codex_line(5, "response_item", {"type": "function_call_output", "call_id": "call_1",
                    "output": "Exit code: 1\nWall time: 0.8 seconds\nOutput:\nF\n1 failed"}),
        _codex_line(6, "response_item", {"type": "custom_tool_call", "status": "completed",
                    "call_id": "call_2", "name": "apply_patch",
                    "input": "*** Begin Patch\n*** Update File: dates.py\n@@\n-return 28\n+return 29\n*** End Patch"}),
        _codex_line(7, "response_item", {"type": "custom_tool_call_output", "call_id": "call_2",
                    "output": json.dumps({"output": "Success. Updated the following files:\nM dates.py\n",
                                          "metadata": {"exit_code": 0, "duration_seconds": 0.0}})}),
        _codex_line(8, "response_item", {"type": call, "name": "exec_command", "call_id": "call_3",
                    "arguments": json.dumps({"cmd": "pytest -q"})}),
        _codex_line(9, "response_item", {"type": "function_call_output", "call_id": "call_3",
                    "output": "Chunk ID: ab12\nWall time: 1.0 seconds\nProcess exited with code 0\nOutput:\n3 passed"}),
        _codex_message(10, "assistant", "Fixed the leap-year case in dates.py; the tests pass."),
        _codex_line(10, "event_msg", {"type": "token_count", "info": {"total_token_usage": {"total_tokens": 900}}}),
        _codex_line(11, "event_msg", {"type": "task_complete", "last_agent_message": "Fixed"}),
    ]  # fmt: skip
    if aborted:
        lines += [
            _codex_message(20, "user", "Now run the linter"),
            _codex_line(21, "response_item", {"type": call, "name": "shell_command", "call_id": "call_4",
                        "arguments": json.dumps({"command": "ruff check ."})}),
            _codex_line(30, "event_msg", {"type": "turn_aborted", "reason": "interrupted"}),
        ]  # fmt: skip
    return lines


def _codex_file(tmp_path: Path, lines: list[dict]) -> Path:
    folder = tmp_path / "sessions" / "2026" / "11" / "20"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rollout-2026-11-20T10-00-00-{CODEX_SESSION}.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_a_codex_rollout_is_one_run_with_its_calls_results_and_failures(tenant, tmp_path):
    _codex_file(tmp_path, _codex_rollout(aborted=True))
    call_command("import_traces", str(tmp_path / "sessions"), workspace=tenant.workspace.slug,
                 fmt="codex-rollout")  # fmt: skip
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.agent, trace.model, trace.status) == (
        f"codex-{CODEX_SESSION}", "codex", "gpt-5-codex", "unknown")  # fmt: skip
    assert trace.task == "Fix the failing date test"  # not the notes Codex adds
    assert trace.started_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert trace.metadata["cwd"] == "/repo" and trace.metadata["git_branch"] == "main"
    steps = [(s.kind, s.name, s.error) for s in trace.steps.order_by("index")]
    assert steps == [
        ("user_prompt", "", ""),
        # The shell's own result (exec_command_end), not the model's copy of it.
        ("tool_call", "shell_command",
         "F\nFAILED tests/test_dates.py::test_leap - AssertionError\n1 failed"),
        ("tool_call", "apply_patch", ""),
        ("tool_call", "exec_command", ""),
        ("assistant_message", "", ""),
        ("user_prompt", "", ""),
        ("tool_call", "shell_command",
         "No result: the turn was interrupted before the call returned."),
    ]  # fmt: skip
    calls = list(trace.steps.filter(kind="tool_call").order_by("index"))
    assert calls[0].input == {"command": "pytest -q tests/test_dates.py", "workdir": "/repo"}
    assert calls[1].output.startswith("Success. Updated the following files")
    assert calls[2].output.endswith("3 passed")
    page = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/traces/{trace.pk}/").content.decode()  # fmt: skip
    assert "git_branch" in page and "tool_use_ids" not in page and "import_digest" not in page


def test_a_codex_result_states_its_exit_code_in_its_text_or_its_metadata(tenant, tmp_path):
    """With no exec_command_end (older rollouts, other tools), the output says the
    exit code: a JSON text's metadata, or the header Codex writes for the model."""
    lines = [line for line in _codex_rollout() if line["payload"].get("type") != "exec_command_end"]
    lines += [
        _codex_line(12, "response_item", {"type": "function_call", "name": "shell", "call_id": "c5",
                    "arguments": json.dumps({"command": ["bash", "-lc", "make build"]})}),
        _codex_line(13, "response_item", {"type": "function_call_output", "call_id": "c5",
                    "output": json.dumps({"output": "make: *** [build] Error 2",
                                          "metadata": {"exit_code": 2}})}),
        _codex_line(14, "response_item", {"type": "function_call", "name": "view_image",
                    "call_id": "c6", "arguments": json.dumps({"path": "/tmp/missing.png"})}),
        _codex_line(15, "response_item", {"type": "function_call_output", "call_id": "c6",
                    "output": {"content": "unable to locate image", "success": False}}),
    ]  # fmt: skip
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout",
                                path=_codex_file(tmp_path, lines))  # fmt: skip
    assert result.ok, result.error
    errors = dict(Step.objects.filter(trace__workspace=tenant.workspace, kind="tool_call")
                  .values_list("name", "error"))  # fmt: skip
    assert errors["shell_command"].startswith("Exit code: 1")
    assert errors["shell"] == "make: *** [build] Error 2"
    assert errors["view_image"] == "unable to locate image"
    assert errors["apply_patch"] == "" and errors["exec_command"] == ""


def _codex_code_mode() -> list[dict]:
    """A code-mode session: a script whose command fails and whose patch does not
    apply, then a result event outside any script."""
    script = "const r = await tools.exec_command({cmd: 'pytest -q'}); text(r.output);"
    return [
        _codex_line(0, "session_meta", {"id": CODEX_SESSION, "cwd": "/repo", "cli_version": "0.148.0"}),
        _codex_message(1, "user", "Fix the failing date test"),
        _codex_line(2, "response_item", {"type": "custom_tool_call", "status": "completed",
                    "call_id": "call_s1", "name": "exec", "input": script}),
        _codex_line(3, "event_msg", {"type": "exec_command_end", "call_id": "exec-7f0e", "turn_id": "t1",
                    "command": ["bash", "-lc", "pytest -q"], "exit_code": 1, "stderr": "",
                    "aggregated_output": "FAILED tests/test_dates.py::test_leap\n1 failed"}),
        _codex_line(4, "event_msg", {"type": "patch_apply_end", "call_id": "exec-8a1b", "success": False,
                    "stdout": "", "stderr": "Failed to find expected lines in dates.py",
                    "changes": {"/repo/dates.py": {"type": "update", "unified_diff": "@@\n-28\n+29\n"}}}),
        _codex_line(4, "event_msg", {"type": "mcp_tool_call_end", "call_id": "exec-mcp1", "invocation": {
                    "server": "github", "tool": "get_issue", "arguments": {"number": 12}},
                    "result": {"Ok": {"content": [{"type": "text", "text": "Leap years break"}]}}}),
        _codex_line(4, "event_msg", {"type": "mcp_tool_call_end", "call_id": "exec-mcp2", "invocation": {
                    "server": "github", "tool": "add_label", "arguments": {"label": "bug"}},
                    "result": {"Err": "tool call failed: 403 Forbidden"}}),
        _codex_line(5, "response_item", {"type": "custom_tool_call_output", "call_id": "call_s1",
                    "output": [{"type": "input_text", "text": "Script completed\nWall time 1.2 seconds\n"}]}),
        _codex_line(6, "event_msg", {"type": "exec_command_end", "call_id": "exec-9c2d", "exit_code": 2,
                    "command": ["ls"], "aggregated_output": "no such file"}),
    ]  # fmt: skip


def test_the_calls_a_codex_code_mode_script_makes_are_steps_inside_it(tenant, tmp_path):
    """Code mode: the model writes a script (`exec`) that calls the tools, and each
    call's result is an event with an id of its own (`exec-<uuid>`) that no
    response item names. Each is a call inside the script's step, a command that
    exited non-zero, a patch that did not apply or an MCP tool that answered `Err`
    failing there, while the script itself completed; a result event outside any
    script is passed over, as before."""
    lines = _codex_code_mode()
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout",
                                path=_codex_file(tmp_path, lines))  # fmt: skip
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    steps = [(s.index, s.name, s.parent_index, s.error) for s in trace.steps.order_by("index")]
    assert steps == [
        (0, "", None, ""),
        (1, "exec", None, ""),
        (2, "exec_command", 1, "FAILED tests/test_dates.py::test_leap\n1 failed"),
        (3, "apply_patch", 1, "Failed to find expected lines in dates.py"),
        (4, "github.get_issue", 1, ""),
        (5, "github.add_label", 1, "tool call failed: 403 Forbidden"),
    ]  # fmt: skip
    assert trace.steps.get(index=4).output == "Leap years break"
    assert trace.steps.get(index=4).input == {"number": 12}
    assert trace.steps.get(index=1).output == "Script completed\nWall time 1.2 seconds\n"
    assert trace.steps.get(index=2).input == {"command": "bash -lc pytest -q"}
    assert trace.steps.get(index=3).input == {"files": ["/repo/dates.py"]}


def test_a_codex_rollout_completes_the_trace_its_hooks_built(tenant, tmp_path):
    """A session captured by Codex hooks and later imported from its rollout is one
    run: the hooks' call is matched by its call id, not doubled."""
    hook_ingest(workspace=tenant.workspace, source="codex", payload={
        "session_id": CODEX_SESSION, "hook_event_name": "PostToolUse", "cwd": "/repo",
        "transcript_path": None, "model": "gpt-5-codex", "permission_mode": "default",
        "turn_id": "t1", "tool_name": "Bash", "tool_use_id": "call_1",
        "tool_input": {"command": "pytest -q tests/test_dates.py"},
        "tool_response": "1 failed"})  # fmt: skip
    assert Trace.objects.get(workspace=tenant.workspace).external_id == f"codex-{CODEX_SESSION}"
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout",
                                path=_codex_file(tmp_path, _codex_rollout()))  # fmt: skip
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)  # one run, not two
    names = list(
        trace.steps.filter(kind="tool_call").order_by("index").values_list("name", flat=True)
    )
    assert names == ["shell_command", "apply_patch", "exec_command"]


def test_a_file_with_no_codex_line_is_no_codex_rollout(tenant, tmp_path):
    path = tmp_path / "rollout-x.jsonl"
    path.write_text(json.dumps({"role": "user", "content": "hello"}) + "\n")
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout", path=path)
    assert not result.ok and "no codex-rollout trace found" in result.error


# --- Inspect eval logs ----------------------------------------------------------


def _inspect_log() -> tuple[dict, list[dict]]:
    """An Inspect eval log's header and samples: a solved sample, a failed one whose
    tool timed out and whose long output is kept as an attachment, and one that
    ended on an error before any score."""
    header = {"version": 2, "status": "success", "eval": {
        "run_id": "Fg3kR", "task": "ctf_lite", "model": "anthropic/claude-x",
        "created": "2026-11-20T10:00:00+00:00", "solver": "basic_agent"}}  # fmt: skip

    def sample(sid: object, messages: list[dict], **extra: object) -> dict:
        return {"id": sid, "epoch": 1, "input": f"Find the flag in box {sid}", "target": "flag{x}",
                "messages": [{"role": "system", "content": "You are a CTF player."},
                             {"role": "user", "content": f"Find the flag in box {sid}"}, *messages],
                **extra}  # fmt: skip

    def call(cid: str, cmd: str) -> dict:
        return {"role": "assistant", "source": "generate", "content": [
            {"type": "reasoning", "reasoning": "thinking"}, {"type": "text", "text": f"Running {cmd}"}],
            "tool_calls": [{"id": cid, "function": "bash", "arguments": {"cmd": cmd},
                            "parse_error": None, "type": "function"}]}  # fmt: skip

    samples = [
        sample(1, [call("c1", "cat flag.txt"),
                   {"role": "tool", "tool_call_id": "c1", "function": "bash", "content": "flag{x}"},
                   {"role": "assistant", "content": "flag{x}"}],
               scores={"includes": {"value": "C", "answer": "flag{x}"}}),
        sample("b-2", [call("c2", "nmap -p- 10.0.0.5"),
                       {"role": "tool", "tool_call_id": "c2", "function": "bash",
                        "content": "attachment://9f1c", "error": {"type": "timeout",
                        "message": "Command timed out before completing."}},
                       {"role": "assistant", "content": "flag{guess}"}],
               scores={"includes": {"value": "I", "answer": "flag{guess}",
                                    "explanation": "flag{x} not in the answer"}},
               attachments={"9f1c": "Starting Nmap 7.94 ... (output cut)"},
               limit={"type": "token", "limit": 50000}),
        sample(3, [call("c3", "ls")], error={"message": "RuntimeError: sandbox died",
                                             "traceback": "..."}),
    ]  # fmt: skip
    return header, samples


def _zstd_zip(entries: dict[str, bytes]) -> bytes:
    """A zip archive whose members are Zstandard-compressed (method 93), as current
    Inspect writes .eval logs: built by hand, since Python 3.11's zipfile cannot."""
    import struct
    import zlib

    import zstandard

    out, central = bytearray(), bytearray()
    for name, plain in entries.items():
        packed, encoded = zstandard.ZstdCompressor().compress(plain), name.encode()
        sizes = (zlib.crc32(plain), len(packed), len(plain), len(encoded))
        # Central directory entry, then local header: method 93, version 6.3.
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 63, 63, 0, 93, 0, 0, *sizes,
                               0, 0, 0, 0, 0, len(out)) + encoded  # fmt: skip
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 63, 0, 93, 0, 0, *sizes, 0) + encoded + packed  # fmt: skip
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                      len(out), 0)  # fmt: skip
    return bytes(out + central + end)


def _inspect_file(tmp_path: Path, kind: str) -> Path:
    import zipfile

    header, samples = _inspect_log()
    if kind == "json":
        path = tmp_path / "2026-11-20_ctf-lite_Fg3kR.json"
        path.write_text(json.dumps({**header, "samples": samples}))
        return path
    path = tmp_path / "2026-11-20_ctf-lite_Fg3kR.eval"
    if kind == "eval-zstd":
        path.write_bytes(_zstd_zip({
            "header.json": json.dumps(header).encode(),
            **{f"samples/{s['id']}_epoch_1.json": json.dumps(s).encode() for s in samples},
        }))  # fmt: skip
        return path
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_journal/start.json", json.dumps(header))
        archive.writestr("header.json", json.dumps(header))
        for s in samples:
            archive.writestr(f"samples/{s['id']}_epoch_1.json", json.dumps(s))
    return path


@pytest.mark.parametrize("kind", ["json", "eval", "eval-zstd"])
def test_an_inspect_log_is_a_run_per_sample_with_its_scores_and_errors(kind, tenant, tmp_path):
    result = traces_import_file(workspace=tenant.workspace, fmt="inspect-log",
                                path=_inspect_file(tmp_path, kind))  # fmt: skip
    assert result.ok and result.created == 3, result.error
    runs = {t.external_id: t for t in Trace.objects.filter(workspace=tenant.workspace)}
    assert sorted(runs) == ["inspect-Fg3kR-1-e1", "inspect-Fg3kR-3-e1", "inspect-Fg3kR-b-2-e1"]
    solved, failed, broken = (runs["inspect-Fg3kR-1-e1"], runs["inspect-Fg3kR-b-2-e1"],
                              runs["inspect-Fg3kR-3-e1"])  # fmt: skip
    assert (solved.status, failed.status, broken.status) == ("succeeded", "failed", "failed")
    assert solved.agent == "basic_agent/anthropic/claude-x" and solved.task_key == "ctf_lite/1"
    assert failed.task == "Find the flag in box b-2"
    assert failed.checks == [{"name": "includes", "passed": False,
                              "detail": "flag{x} not in the answer"}]  # fmt: skip
    steps = [(s.kind, s.name, s.error) for s in failed.steps.order_by("index")]
    assert steps == [
        ("user_prompt", "", ""), ("assistant_message", "", ""),
        ("tool_call", "bash", "Command timed out before completing."),
        ("assistant_message", "", ""),
        ("error", "", "The run hit its token limit (50000)."),
    ]  # fmt: skip
    timed_out = failed.steps.get(kind="tool_call")
    assert timed_out.output.startswith("Starting Nmap")  # the attachment, not its reference
    # No reasoning; the address redacted as ingest redacts every run.
    assert failed.steps.get(index=1).output == "Running nmap -p- [IP_ADDRESS]"
    assert [s.kind for s in broken.steps.order_by("index")][-1] == "error"
    assert "sandbox died" in broken.steps.get(kind="error").error
    again = traces_import_file(workspace=tenant.workspace, fmt="inspect-log",
                               path=_inspect_file(tmp_path, kind))  # fmt: skip
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_a_folder_of_inspect_logs_passes_over_the_listing_inspect_writes_beside_them(tmp_path):
    from hivemind_client.formats import files_under

    log = _inspect_file(tmp_path, "eval")
    (tmp_path / "logs.json").write_text(json.dumps({log.name: {"eval": {"task": "ctf_lite"}}}))
    (tmp_path / "run.json").write_text("{}")
    assert files_under([tmp_path], "inspect-log") == [log, tmp_path / "run.json"]
    # Named, it is read as what it was said to be (and refused as not a log).
    assert files_under([tmp_path / "logs.json"], "inspect-log") == [tmp_path / "logs.json"]


def test_a_broken_eval_archive_is_a_per_file_error(tenant, tmp_path, monkeypatch):
    path = tmp_path / "broken.eval"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    result = traces_import_file(workspace=tenant.workspace, fmt="inspect-log", path=path)
    assert not result.ok and "not a readable .eval archive" in result.error
    # A member that unpacks to more than the archive says is refused, not unpacked.
    lying = bytearray(_zstd_zip({"header.json": b'{"eval": {}}' + b" " * 5000}))
    at = lying.index(b"PK\x01\x02")  # the central directory's "uncompressed size"
    lying[at + 24 : at + 28] = (12).to_bytes(4, "little")
    path.write_bytes(bytes(lying))
    result = traces_import_file(workspace=tenant.workspace, fmt="inspect-log", path=path)
    assert not result.ok and "unpacks to another size" in result.error
    # Without the zstandard package (an agent's machine), the reason and the ways round it.
    path.write_bytes(_zstd_zip({"header.json": b'{"eval": {}}'}))
    monkeypatch.setitem(sys.modules, "zstandard", None)
    result = traces_import_file(workspace=tenant.workspace, fmt="inspect-log", path=path)
    assert not result.ok and "pip install zstandard" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


@pytest.mark.parametrize(
    "value", [1764000000, 1764000000000, 1764000000000000, 1764000000000000000]
)
def test_an_epoch_time_is_read_in_the_unit_its_size_says(value):
    """Seconds, milliseconds (pandas' JSON), microseconds and nanoseconds (OTLP):
    the same moment whatever the unit; before, microseconds read as 1970."""
    from hivemind_client.formats import _epoch

    assert _epoch(value) == pytest.approx(1764000000)


def _parquet(path: Path, rows: list[dict], **types: object) -> Path:
    """Rows saved as Parquet the way a dataset is: one table, its columns the union
    of the rows' keys (a key a row lacks is null there, nested ones too); `types`
    casts the named columns (integers to pandas' nanosecond times)."""
    import pyarrow
    import pyarrow.parquet

    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = pyarrow.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows])
    for name, kind in types.items():
        table = table.set_column(columns.index(name), name, table[name].cast(kind))
    pyarrow.parquet.write_table(table, path)
    return path


def _stored_runs(workspace) -> dict:  # type: ignore[no-untyped-def]
    return {
        t.external_id: (
            t.status,
            t.agent,
            t.task_key,
            t.task,
            t.started_at,
            list(
                t.steps.order_by("index").values_list(
                    "kind", "name", "input", "output", "error", "parent_index", "started_at"
                )
            ),
        )  # fmt: skip
        for t in Trace.objects.filter(workspace=workspace)
    }


def test_a_dataset_saved_as_parquet_imports_as_its_json_lines_do(tenant, tmp_path, other_tenant):
    """Hugging Face ships trajectory datasets as Parquet, whose rows carry every
    column of the table (null where a row has none): read as chat-jsonl, they give
    the same runs as the same rows saved as JSON lines, a row with a null
    `resolved` still reading its `target`. A folder import finds the files."""
    rows = _swe_dataset_rows()
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    folder = tmp_path / "data"
    folder.mkdir()
    _parquet(folder / "train-00000-of-00001.parquet", rows)
    from_lines = traces_import_file(workspace=other_tenant.workspace, fmt="chat-jsonl", path=jsonl)
    assert from_lines.ok and from_lines.created == 3, from_lines.error
    call_command("import_traces", str(folder), workspace=tenant.workspace.slug, fmt="chat-jsonl")
    assert _stored_runs(tenant.workspace) == _stored_runs(other_tenant.workspace)
    nebius = next(t for t in Trace.objects.filter(workspace=tenant.workspace)
                  if t.agent == "swe-llama")  # fmt: skip
    assert nebius.status == "failed"  # its `target`, under a null `resolved` column
    # The same table exported by pandas as JSON lines (every column in every row).
    from hivemind_client.formats import parse

    columns = list(dict.fromkeys(key for row in rows for key in row))
    fields = list(
        dict.fromkeys(
            key
            for row in rows
            for m in row.get("conversations", []) + row.get("trajectory", [])
            for key in m
        )
    )  # every message field too, as a table's struct has

    def full(row: dict) -> dict:
        return {k: [{f: m.get(f) for f in fields} for m in row[k]] if k in ("trajectory",
                "conversations") and k in row else row.get(k) for k in columns}  # fmt: skip

    jsonl.write_text("".join(json.dumps(full(row)) + "\n" for row in rows))
    read = [(t["status"], t["agent"], t["task_key"], [(s["kind"], s.get("name", "")) for s in
             t["steps"]]) for t in parse("chat-jsonl", jsonl).traces]  # fmt: skip
    stored = sorted(Trace.objects.filter(workspace=tenant.workspace),
                    key=lambda t: t.task_key or "~")  # fmt: skip
    assert read == [(t.status, t.agent, t.task_key, list(t.steps.order_by("index").values_list(
        "kind", "name"))) for t in stored]  # fmt: skip


def test_rows_with_no_id_and_the_same_messages_are_separate_runs(tenant, tmp_path):
    """A dataset row with no id is named by its messages; two rows of one file
    with the same messages (a run repeated word for word, two models' identical
    attempts) are two runs, not a duplicate refused, and the file imported again
    changes nothing."""
    nebius = _swe_dataset_rows()[1]
    rows = [nebius, {**nebius, "model_name": "swe-llama-2"}, nebius]
    path = _parquet(tmp_path / "train-00000-of-00001.parquet", rows)
    first = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path)
    assert first.ok and first.created == 3, first.error
    ids = sorted(Trace.objects.filter(workspace=tenant.workspace).values_list("external_id",
                                                                             flat=True))  # fmt: skip
    assert ids == [ids[0], f"{ids[0]}-2", f"{ids[0]}-3"]
    again = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_messages_a_dataset_stores_as_json_text_are_read(tenant, tmp_path):
    """Some datasets keep each conversation as a JSON string column (CoderForge's
    `messages`, with `trajectory_id`): read as the list it encodes; text that is
    not a JSON list is a per-file error saying which column."""
    messages = _swe_dataset_rows()[0]["trajectory"]
    row = {"trajectory_id": "cf-1", "messages": json.dumps(messages), "tools": "[]",
           "resolved": 1}  # fmt: skip
    path = _parquet(tmp_path / "SWE_Smith-00026-of-00224.parquet", [row])
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.status, trace.task) == ("cf-1", "succeeded",
                                                             "Fix the bug in open_dataset")  # fmt: skip
    assert trace.steps.filter(kind="tool_call", name="execute_bash").exists()
    broken = _file(tmp_path, "chat-jsonl", {**row, "trajectory_id": "cf-2", "messages": "[{"})
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=broken)
    assert not result.ok and '"messages" is text that is not a JSON list' in result.error


def test_a_phoenix_span_table_saved_as_parquet_keeps_its_times(tenant, tmp_path):
    """Phoenix's spans dataframe saved with pandas' `to_parquet`: times are
    nanosecond timestamps (read as such, to the microsecond), a missing number is
    NaN, and pandas' index is a column of its own; it imports as its JSON lines do.
    An event's time with no zone is UTC."""
    import pyarrow

    rows = []
    for n, row in enumerate(_phoenix_rows()):
        tokens = row.get("attributes.llm.token_count.total")
        rows.append({**row, "__index_level_0__": n,
                     "start_time": row["start_time"] * 1_000_000 + 789,
                     "end_time": row["end_time"] * 1_000_000 + 789,
                     "attributes.llm.token_count.total": float("nan") if tokens is None
                     else float(tokens)})  # fmt: skip
    rows[2]["events"][0]["timestamp"] *= 1_000_000  # a nested time
    when = pyarrow.timestamp("ns", tz="UTC")
    event = pyarrow.struct([("name", pyarrow.string()), ("timestamp", pyarrow.timestamp("ns")),
                            ("attributes", pyarrow.struct([("exception.type", pyarrow.string()),
                                                           ("exception.message", pyarrow.string())]))])  # fmt: skip
    path = _parquet(tmp_path / "spans.parquet", rows, start_time=when, end_time=when,
                    events=pyarrow.list_(event))  # fmt: skip
    result = traces_import_file(workspace=tenant.workspace, fmt="openinference-json", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert trace.started_at.isoformat() == "2025-11-24T16:00:00+00:00"
    steps = [(*row[:4], round(row[4])) for row in trace.steps.order_by("index").values_list(
        "name", "parent_index", "error", "tokens", "duration_ms")]  # fmt: skip
    assert steps == [
        ("AgentExecutor", None, "", None, 3000),
        ("gpt-4o", 0, "", 150, 400),
        ("refund", 0, "RuntimeError: 429 Too Many Requests", None, 1000),
    ]  # fmt: skip


def test_a_parquet_file_that_cannot_be_read_is_a_per_file_error_saying_why(
    tenant, tmp_path, monkeypatch
):
    import hivemind_client.formats as formats

    broken = tmp_path / "train-00000-of-00012.parquet"
    broken.write_bytes(b"PAR1\x15\x04\x15\x10" + bytes(64) + b"PAR1")
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=broken)
    assert not result.ok and "not a Parquet file this can read" in result.error
    good = _parquet(tmp_path / "rows.parquet", _swe_dataset_rows())
    # A format whose logs are JSON names the formats that read Parquet rows.
    result = traces_import_file(workspace=tenant.workspace, fmt="tau2-bench", path=good)
    assert not result.ok and "--format tau2-bench does not read" in result.error
    assert "chat-jsonl" in result.error
    # Rows that would unpack past the cap are refused, not read into memory.
    monkeypatch.setattr(formats, "_PARQUET_MAX_BYTES", 1000)
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=good)
    assert not result.ok and "split it into smaller files" in result.error
    # Without pyarrow (an agent's machine), the reason and the ways round it.
    monkeypatch.setattr(formats, "_PARQUET_MAX_BYTES", 2 << 30)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=good)
    assert not result.ok and "pip install pyarrow" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_a_headless_claude_code_stream_imports_its_end_cost_and_subagent(tenant, tmp_path):
    """`claude -p --output-format stream-json` writes the transcript's messages with
    `session_id`, an `init` line naming the model, a subagent's messages naming the
    call that started it (`parent_tool_use_id`) and a closing `result` line. The
    subagent's calls are inside that call; a run that hit its turn limit ends on an
    error step saying so; the cost is the run's; the session names the trace as
    Claude Code's hooks do."""
    session = "5f1e0c2a-1111-2222-3333-444455556666"

    def line(kind: str, content: list, parent: str | None = None) -> dict:
        return {
            "type": kind,
            "session_id": session,
            "parent_tool_use_id": parent,
            "message": {"role": kind, "model": "claude-sonnet-4-5", "content": content},
        }

    lines = [
        {"type": "system", "subtype": "init", "session_id": session, "model": "claude-sonnet-4-5"},
        line("user", [{"type": "text", "text": "Fix the failing test"}]),
        line("assistant", [{"type": "tool_use", "id": "toolu_task", "name": "Task",
                            "input": {"prompt": "find the test"}}]),
        line("assistant", [{"type": "tool_use", "id": "toolu_grep", "name": "Grep",
                            "input": {"pattern": "def test_"}}], parent="toolu_task"),
        line("user", [{"type": "tool_result", "tool_use_id": "toolu_grep", "content": "tests/a.py"}],
             parent="toolu_task"),
        line("user", [{"type": "tool_result", "tool_use_id": "toolu_task", "content": "tests/a.py"}]),
        {"type": "result", "subtype": "error_max_turns", "is_error": True, "session_id": session,
         "num_turns": 12, "total_cost_usd": 0.0123},
    ]  # fmt: skip
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in lines))
    assert traces_import_file(workspace=tenant.workspace, fmt="claude-transcript", path=path).ok
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.model, trace.cost_usd, trace.task) == (
        f"claude-code-{session}", "claude-sonnet-4-5", 0.0123, "Fix the failing test")  # fmt: skip
    steps = _steps(trace, "kind", "name", "parent_index", "error")
    assert steps == [
        ("user_prompt", "", None, ""),
        ("tool_call", "Task", None, ""),
        ("tool_call", "Grep", 1, ""),
        ("error", "", None, "The run ended: it reached its turn limit (--max-turns)."),
    ]  # fmt: skip


def _codex_exec_stream() -> list[dict]:
    """What `codex exec --json` prints: thread and turn events around completed
    items (the exec protocol's snake_case ThreadItems)."""
    return [
        {"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"},
        {"type": "turn.started"},
        {"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "look first"}},
        {"type": "item.started", "item": {"id": "item_1", "type": "command_execution",
                                          "command": "bash -lc 'pytest -q'", "aggregated_output": "",
                                          "exit_code": None, "status": "in_progress"}},
        {"type": "item.completed", "item": {"id": "item_1", "type": "command_execution",
                                            "command": "bash -lc 'pytest -q'",
                                            "aggregated_output": "1 failed\n", "exit_code": 1,
                                            "status": "failed"}},
        {"type": "item.completed", "item": {"id": "item_2", "type": "file_change", "status": "completed",
                                            "changes": [{"path": "src/dates.py", "kind": "update"}]}},
        {"type": "item.completed", "item": {"id": "item_3", "type": "mcp_tool_call", "server": "github",
                                            "tool": "get_issue", "arguments": {"n": 12}, "result": None,
                                            "error": {"message": "403 Forbidden"}, "status": "failed"}},
        {"type": "item.completed", "item": {"id": "item_4", "type": "agent_message",
                                            "text": "I could not fix the leap-year test."}},
        {"type": "turn.completed", "usage": {"input_tokens": 24763, "cached_input_tokens": 24448,
                                             "output_tokens": 122}},
        {"type": "turn.failed", "error": {"message": "stream disconnected before completion"}},
    ]  # fmt: skip


def test_codex_exec_json_output_imports_as_one_run(tenant, tmp_path):
    """`codex exec --json` output (read with `--format codex-rollout`): its completed
    items are the steps (in-progress copies and reasoning are not), a command that
    failed or exited non-zero, an MCP call's error and a failed turn are errors;
    the run is named by its thread, apart from the session's rollout and hooks."""
    path = tmp_path / "exec.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in _codex_exec_stream()))
    result = traces_import_file(workspace=tenant.workspace, fmt="codex-rollout", path=path)
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.external_id, trace.agent, trace.status) == (
        "codex-exec-0199a213-81c0-7800-8aa1-bbab2a035a53", "codex", "unknown")  # fmt: skip
    steps = _steps(trace, "kind", "name", "error")
    assert steps == [
        ("tool_call", "exec_command", "1 failed\n"),
        ("tool_call", "apply_patch", ""),
        ("tool_call", "github.get_issue", "403 Forbidden"),
        ("assistant_message", "", ""),
        ("error", "", "stream disconnected before completion"),
    ]  # fmt: skip


def test_a_conversation_saved_as_a_json_array_of_messages_is_one_run(tenant, tmp_path):
    """A file holding one conversation as a JSON array of its messages (Cline's
    api_conversation_history.json: Anthropic messages with tool_use and
    tool_result blocks) is one run, not a run per message."""
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "<task>Fix the build</task>"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Building."},
            {"type": "tool_use", "id": "toolu_1", "name": "execute_command",
             "input": {"command": "npm run build"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "error TS2304: Cannot find name 'x'", "is_error": True}]},
    ]  # fmt: skip
    path = tmp_path / "api_conversation_history.json"
    path.write_text(json.dumps(messages))
    result = traces_import_file(workspace=tenant.workspace, fmt="chat-jsonl", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    steps = _steps(trace, "kind", "name", "error")
    assert steps == [("user_prompt", "", ""), ("assistant_message", "", ""),
                     ("tool_call", "execute_command", "error TS2304: Cannot find name 'x'")]  # fmt: skip


def _opencode_export(messages: list[dict]) -> dict:
    return {"info": {"id": "ses_1", "title": "t", "time": {"created": 1796620681305},
                     "model": {"id": "claude-sonnet-4-5", "providerID": "anthropic"}, "cost": 0.02},
            "messages": messages}  # fmt: skip


def test_an_opencode_export_keeps_its_errors_and_leaves_out_what_opencode_added(tenant, tmp_path):
    """A model call that ended on an error (OpenCode's `info.error`) is an error step; a
    call not finished when the session was exported failed, saying so; text OpenCode
    added itself (`synthetic`) is not the user's; the model call's tokens, when it
    recorded no step-finish, are its message's. A file that is no export says so."""
    user = {"info": {"role": "user"}, "parts": [
        {"type": "text", "text": "Fix the build."},
        {"type": "text", "text": "<file>contents</file>", "synthetic": True}]}  # fmt: skip
    called = {"info": {"role": "assistant", "tokens": {"input": 1000, "output": 50,
                                                         "cache": {"read": 200}}},
              "parts": [{"type": "reasoning", "text": "Run the build first."},
                        {"type": "tool", "tool": "bash", "state": {
                            "status": "running", "input": {"command": "make"}}}]}  # fmt: skip
    broke = {"info": {"role": "assistant", "error": {
        "name": "APIError", "data": {"message": "Overloaded"}}}, "parts": []}  # fmt: skip
    path = tmp_path / "session.json"
    path.write_text(json.dumps(_opencode_export([user, called, broke])))
    result = traces_import_file(workspace=tenant.workspace, fmt="opencode", path=path)
    assert result.ok and result.created == 1, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    assert (trace.task, trace.model, trace.cost_usd) == (
        "Fix the build.", "anthropic/claude-sonnet-4-5", 0.02)  # fmt: skip
    assert [(s.kind, s.output, s.error, s.tokens) for s in trace.steps.order_by("index")] == [
        ("user_prompt", None, "", None),
        ("assistant_message", "Run the build first.", "", 1250),
        ("tool_call", None, "the call had not finished when the session was exported", None),
        ("error", None, "Overloaded", None),
    ]
    path.write_text(json.dumps({"messages": []}))
    refused = traces_import_file(workspace=tenant.workspace, fmt="opencode", path=path)
    assert not refused.ok and "info" in refused.error


def test_a_saved_openhands_conversations_times_are_the_machines_local_times(tenant, new_york_time):
    """The OpenHands SDK writes its events' times in the machine's zone without saying
    which; its saved conversation is imported on the machine that ran it (the capture
    hook imports it there), so they are read in that zone: 04:42 in New York is 09:42
    UTC. OpenHands' evaluation output, written in UTC containers, stays read as UTC."""
    folder = Path(__file__).parent / "real_logs" / "openhands-sdk-1.58.2" / "conversations"
    state = folder / "7d0c5a52000040008000000000000001" / "base_state.json"
    first = json.loads(sorted((state.parent / "events").glob("event-00000-*.json"))[0].read_text())
    result = traces_import_file(workspace=tenant.workspace, fmt="openhands", path=state)
    assert result.ok, result.error
    trace = Trace.objects.get(workspace=tenant.workspace)
    naive = datetime.fromisoformat(first["timestamp"])
    assert trace.started_at.replace(tzinfo=None) == naive + timedelta(hours=5)
    assert trace.steps.order_by("index").first().started_at > trace.started_at


@pytest.mark.parametrize(
    "content", [[1, {"external_id": "a"}], {"traces": [{"external_id": "a"}, 5]}]
)
def test_a_native_file_holding_something_other_than_traces_is_refused_naming_it(tenant, tmp_path,
                                                                                 content):  # fmt: skip
    """An element of a native file (or of its "traces") that is no object is a per-file
    error naming where it is. Before, the client's importer failed with a traceback
    (`'int' object has no attribute 'get'`)."""
    from hivemind_client.formats import FormatError, parse
    from hivemind_client.importer import import_file

    path = tmp_path / "traces.json"
    path.write_text(json.dumps(content))
    where = "element \\[0\\]" if isinstance(content, list) else "traces\\[1\\]"
    with pytest.raises(FormatError, match=f"{where}: expected a trace object, found int"):
        parse("native", path)
    with pytest.raises(FormatError, match=where):
        import_file("http://127.0.0.1:9", "hm_unused", "native", path)
    result = traces_import_file(workspace=tenant.workspace, fmt="native", path=path)
    assert not result.ok and "expected a trace object" in result.error
    assert not Trace.objects.filter(workspace=tenant.workspace).exists()


def test_an_outcome_given_at_import_leaves_metadata_that_is_no_object_for_the_server_to_refuse():
    """`--status` records where the outcome came from in each run's metadata; a run
    whose metadata is no object keeps it, so the server refuses it by name. Before,
    it was replaced by `{"outcome_from": …}` and the run stored without a word."""
    from hivemind_client.formats import give_outcome

    traces = [{"external_id": "a", "metadata": [1]}, {"external_id": "b"}]
    assert give_outcome(traces, "failed") == 2
    assert traces[0] == {"external_id": "a", "metadata": [1], "status": "failed"}
    assert traces[1]["metadata"] == {"outcome_from": "given at import (--status)"}
