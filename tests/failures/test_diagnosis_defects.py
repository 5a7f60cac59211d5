"""Defects of the offline diagnosis found on real runs (issue 2/8), one test each."""

from __future__ import annotations

import pytest

from failures.diagnosis.facts import StepView, assumed, error_category, trace_facts
from failures.diagnosis.offline import telling_line


def _user(i: int, text: str) -> StepView:
    return StepView(i, "user_prompt", "", text, None, "")


def _call(
    i: int, name: str, args: object = None, error: str = "", kind: str = "tool_call"
) -> StepView:
    return StepView(i, kind, name, args if args is not None else {}, "{}", error)


def test_a_harness_stop_token_and_ordered_by_mistake_are_no_objection():
    steps = [_user(0, "I need to return an item"), _call(1, "get_order_details", {"id": 1}),
             _user(2, "Great, thanks! ###STOP###"),
             _user(3, "I ordered it by mistake, so please return it")]  # fmt: skip
    assert trace_facts(steps).objections == []
    steps.append(_user(4, "No, that's not what I asked for"))
    assert len(trace_facts(steps).objections) == 1
    steps2 = [_user(0, "hi"), _call(1, "cancel", {"id": 2}), _user(2, "You made a mistake there")]
    assert len(trace_facts(steps2).objections) == 1


def test_separate_tool_results_are_not_calls_so_different_calls_are_not_repeats():
    steps = []
    for i, order in enumerate(["#1", "#2", "#3"]):
        steps.append(_call(2 * i, "get_order_details", {"order_id": order}))
        steps.append(_call(2 * i + 1, "get_order_details", None, kind="tool_result"))
    facts = trace_facts(steps)
    assert len(facts.calls) == 3 and facts.repeats == []
    # An error carried by a result step still counts, on the result's step.
    steps.append(_call(6, "get_order_details", {"order_id": "#4"}))
    steps.append(
        _call(7, "get_order_details", None, error="Error: order not found", kind="tool_result")
    )
    assert [e.step for e in trace_facts(steps).errors] == [7]


def test_a_simulated_users_tools_are_not_the_agents():
    steps = [_call(0, "user.toggle_airplane_mode", {}), _call(1, "user.toggle_airplane_mode", {}),
             _call(2, "user.reboot_device", {}, error="device busy"),
             _call(3, "get_line_details", {"line": "L1"})]  # fmt: skip
    facts = trace_facts(steps)
    assert [c.name for c in facts.calls] == ["get_line_details"]
    assert facts.repeats == [] and facts.errors == []
    assert not any(
        s.startswith(("tool:user.", "error:user.", "repeat:user.")) for s in facts.signals
    )


def test_errors_are_described_by_their_telling_line():
    assert telling_line("exit 1:\nls: cannot access 'x': No such file or directory") == (
        "ls: cannot access 'x': No such file or directory"
    )
    assert telling_line(
        "<returncode>1</returncode>\n<output>\nfatal: not a git repository\n</output>"
    ) == ("fatal: not a git repository")
    assert telling_line("exitcode: 1 (execution failed)\nCode output: \nTraceback (most recent call last):\n"
                        '  File "x.py", line 1\nKeyError: \'Street\'') == "KeyError: 'Street'"  # fmt: skip
    assert telling_line("HTTP 401: bad credentials") == "HTTP 401: bad credentials"


# As AG2's terminal reports a failed run of the agent's code (Who&When): the
# label and the traceback's header share a line, output printed after the
# exception, and page text printed before it.
_AG2 = "exitcode: 1 (execution failed)\nCode output: "
_FRAMES = (
    '  File "/home/Assist/groupchat/tmp_code_92.py", line 7, in <module>\n    for r in results:\n'
)


def test_an_error_said_after_a_sentence_about_something_else_starts_at_the_error():
    refused = ("Invalid message format. Original message: AssistantMessage\ncontent: hi\n"
               "cost: 0.008862. Error: You sent a message with both text content and tool calls.")  # fmt: skip
    assert telling_line(refused, 200) == (
        "Error: You sent a message with both text content and tool calls."
    )
    # What comes before says it failed too: the line stays whole.
    assert telling_line("Upload failed: disk full. Error: code 28", 200) == (
        "Upload failed: disk full. Error: code 28"
    )


def test_an_error_is_named_by_its_exception_not_by_its_first_line():
    traceback = f"{_AG2}Traceback (most recent call last):\n{_FRAMES}TypeError: 'NoneType' object is not iterable\n"
    assert telling_line(
        traceback + "Search Result 1:\nBallo Italian Restaurant (timeout 5 s)\n"
    ) == ("TypeError: 'NoneType' object is not iterable")
    # No header: Python's SyntaxError points at the code, then names itself.
    syntax = (f'{_AG2}  File "/tmp/x.py", line 1\n    population = 737,015\n        ^\n'
              "SyntaxError: leading zeros in decimal integer literals are not permitted")  # fmt: skip
    assert telling_line(syntax, 200).startswith("SyntaxError: leading zeros")
    assert error_category(syntax) == "tool_use.wrong_arguments"  # not a permission
    assert telling_line(f"{_AG2}Script started\nValue Error: unknown language unknown\n") == (
        "Value Error: unknown language unknown"
    )
    chained = (f"{_AG2}Traceback (most recent call last):\n{_FRAMES}TimeoutError: [Errno 110]\n\n"
               "The above exception was the direct cause of the following exception:\n\n"
               f"Traceback (most recent call last):\n{_FRAMES}"
               "geopy.exc.GeocoderInsufficientPrivileges: Non-successful status code 403")  # fmt: skip
    assert telling_line(chained, 200).startswith("geopy.exc.GeocoderInsufficientPrivileges")
    assert error_category(chained) == "environment.auth"  # its frames pass timeout=...


def test_an_error_the_run_went_on_from_is_an_unhandled_error_not_a_misread_output():
    from failures.diagnosis.offline import Profile, diagnose

    refusal = "API Error: Claude Code is unable to respond to this request (Usage Policy)"
    steps = [_user(0, "deploy the API"), _call(1, "Bash", {"command": "deploy"}, error=refusal),
             _call(2, "Bash", {"command": "ls"}), _call(3, "Bash", {"command": "pwd"})]  # fmt: skip
    (finding,) = diagnose(trace_facts(steps), Profile([]), failed=True, neighbours=[])
    assert finding.step == 1 and finding.category == "tool_use.error_not_handled"


def test_a_compilers_diagnostic_names_a_build_that_failed():
    go = ("# github.com/conneroisu/templar/examples/performance\n"
          "examples/performance/benchmark_test.go:6:2: package templar/examples/basic/components"
          " is not in std\n# github.com/conneroisu/templar/test-components\n")  # fmt: skip
    assert telling_line(go, 200) == (
        "examples/performance/benchmark_test.go:6:2: package templar/examples/basic/components"
        " is not in std"
    )
    assert telling_line("src/app.ts(3,1): error TS2304: Cannot find name 'x'.") == (
        "src/app.ts(3,1): error TS2304: Cannot find name 'x'."
    )


def test_an_errors_category_is_read_from_what_went_wrong_not_from_printed_text():
    page = "Menu: ['Wayback Machine', 'Service unavailable until noon', 'timeout 30']\n" * 3
    assert error_category(f"{_AG2}{page}Traceback (most recent call last):\n{_FRAMES}"
                          "KeyError: 'slots'") == "tool_use.wrong_arguments"  # fmt: skip
    assert error_category(
        f"{_AG2}Python 3.9.21\nPackage  Version\nyarl  1.18.3\nFile not found.\n"
    ) == ("environment.missing_dependency")
    # A number is a status only as a status.
    assert error_category("ValueError: invalid literal for int() with base 10: '500'") == (
        "tool_use.wrong_arguments"
    )
    assert error_category("HTTP/1.1 503 Service Unavailable") == "environment.service_error"
    assert error_category('{"error": {"code": 429, "message": "slow down"}}') == (
        "environment.service_error"
    )
    assert error_category("Error 404: no such page") == "tool_use.wrong_arguments"
    # MySQL's words, as InterCode's SQL runs show them.
    for mysql in ("Error executing query: Table 'car_1.cars' doesn't exist",
                  "Error executing query: You have an error in your SQL syntax; check the manual"):  # fmt: skip
        assert error_category(mysql) == "tool_use.wrong_arguments"


def test_a_long_error_keeps_the_exception_at_its_end():
    printed = "".join(f"package-{i}  1.0.{i}\n" for i in range(400))  # ~8 KB before the traceback
    error = (f"{_AG2}{printed}Traceback (most recent call last):\n{_FRAMES}"
             "requests.exceptions.ConnectionError: Max retries exceeded (Connection timed out)")  # fmt: skip
    steps = [_call(0, "Computer_terminal", {"code": "pip list"}, error=error)]
    (event,) = trace_facts(steps).errors
    assert len(event.text) < 1600 and event.text.startswith(_AG2)
    assert telling_line(event.text).startswith("requests.exceptions.ConnectionError")
    assert event.category == "environment.timeout"


def test_a_quoted_assumption_ends_at_a_line_break_of_the_json_text_it_was_read_from():
    """The diagnosis reads a message as its JSON text: the quote of a Who&When run
    read '...directly):\\n\\n \\n\\nLet me use the above layout as an example:\\n\\n- '."""
    import json

    said = ("Let's open the image. Here is a hypothetical scenario of a board (I can't view it "
            'directly):\n\n```\n8 r n\n```\n\nLet me use the above layout as an "example":\n\n- a')  # fmt: skip
    assert assumed(json.dumps(said)) == (
        "Here is a hypothetical scenario of a board (I can't view it directly):"
    )
    assert assumed(json.dumps('We will assume "x" is\nthe file')) == 'We will assume "x" is'
    assert assumed(said) == assumed(json.dumps(said))  # the same words, read either way
    # A sentence right after a line break is read too (Who&When run 99: "…directly.
    # \n\nAssuming we have the following pricing information…" was not: "nAssuming").
    said = ("These can be found on the museum's website.\n\nAssuming we have the following "
            "pricing information (this is just an example):\n\n- adult: $25")  # fmt: skip
    expected = "Assuming we have the following pricing information (this is just an example):"
    assert assumed(json.dumps(said)) == assumed(said) == expected


@pytest.mark.django_db
def test_another_agents_runs_do_not_change_an_agents_diagnosis(tenant):

    from failures.mining import traces_diagnose
    from failures.models import Incident
    from tests.factories import ingest, trace_payload
    from traces.models import Trace

    def run(i: int, agent: str, status: str, tools: list[str], task: str) -> dict:
        return trace_payload(f"{agent}-{status}-{i}", agent=agent, status=status, task=task,
                             steps=[{"kind": "user_prompt", "input": task},
                                    *({"kind": "tool_call", "name": t, "input": {"n": i},
                                       "output": {"ok": True}} for t in tools)])  # fmt: skip

    ok = [
        run(i, "a", "succeeded", ["lookup", "refund"], f"refund order {i} for alice")
        for i in range(6)
    ]
    bad = [run(i, "a", "failed", ["refund"], f"refund order {100 + i} for alice") for i in range(4)]
    ingest(tenant.workspace, ok + bad)
    before = set(
        Incident.objects.filter(trace__agent="a").values_list(
            "trace_id", "step_index", "description"
        )
    )
    # Another agent's successful runs of similar (not the same) tasks, other habits.
    other = [
        run(i, "b", "succeeded", ["refund"], f"refund order {200 + i} for alice") for i in range(20)
    ]
    ingest(tenant.workspace, other)
    ids = list(Trace.objects.filter(agent="a").values_list("pk", flat=True))
    traces_diagnose(workspace_id=tenant.workspace.pk, trace_ids=ids, force=True)
    after = set(
        Incident.objects.filter(trace__agent="a").values_list(
            "trace_id", "step_index", "description"
        )
    )
    assert before and after == before
    # The pool neighbours are drawn from is the agent's own.
    from failures.mining import success_pool

    pool = success_pool(tenant.workspace.pk, "a")
    agents = set(
        Trace.objects.filter(pk__in=[n.trace_id for n in pool]).values_list("agent", flat=True)
    )
    assert len(pool) == 6 and agents == {"a"}


def test_a_worker_that_dies_before_writing_incidents_leaves_the_traces_due(tenant, monkeypatch):
    """The facts are stored first (the agent's baseline reads them), the incidents
    after: a worker killed in between must not leave the traces looking analysed
    (a broker load test lost 5 traces' incidents that way)."""
    from failures import mining
    from failures.models import Incident
    from tests.factories import ingest, trace_payload
    from traces.models import Trace

    ingest(tenant.workspace, [trace_payload("crash-1", steps=[
        {"kind": "tool_call", "name": "deploy", "input": {}, "error": "HTTP 502 from gateway"},
    ])])  # fmt: skip
    trace = Trace.objects.get(workspace=tenant.workspace, external_id="crash-1")
    assert trace.pk not in mining.traces_due_for_analysis().get(tenant.workspace.pk, [])
    Trace.objects.filter(pk=trace.pk).update(status="succeeded")  # a late outcome arrives
    Incident.objects.filter(trace=trace).delete()

    def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SystemExit("SIGKILL")

    monkeypatch.setattr(mining, "_write", killed)
    with pytest.raises(SystemExit):
        mining.traces_diagnose(workspace_id=tenant.workspace.pk, trace_ids=[trace.pk])
    assert trace.pk in mining.traces_due_for_analysis().get(tenant.workspace.pk, [])
    monkeypatch.undo()
    # Not skipped as unchanged: the stored facts carry no content hash yet.
    result = mining.traces_diagnose(workspace_id=tenant.workspace.pk, trace_ids=[trace.pk])
    assert result.unchanged == 0 and result.diagnosed == 1
    assert trace.pk not in mining.traces_due_for_analysis().get(tenant.workspace.pk, [])


def test_an_agents_baseline_and_pool_are_its_latest_runs_and_the_sweep_settles(tenant, monkeypatch):
    """What one batch reads of an agent's history is bounded (its latest runs), the
    runs being judged are always in the baseline they are weighed against, and a
    failed run diagnosed against a full window is not swept again for ever."""
    from failures import mining
    from failures.models import TraceAnalysis
    from tests.factories import ingest, trace_payload
    from traces.models import Trace

    monkeypatch.setattr(mining, "PROFILE_RUNS", 4)
    monkeypatch.setattr(mining, "POOL_RUNS", 3)
    ok = [{"kind": "tool_call", "name": "refund", "input": {"order": 1}}]
    ingest(tenant.workspace, [
        trace_payload(f"run-{i}", agent="a", status="succeeded", task=f"refund order {i}",
                      steps=ok)
        for i in range(24)
    ])  # fmt: skip
    ids = list(Trace.objects.filter(agent="a").order_by("pk").values_list("pk", flat=True))
    pool = mining.success_pool(tenant.workspace.pk, "a")
    assert [n.trace_id for n in pool] == ids[::-1][:3]  # the latest 3
    profile = mining._profile(tenant.workspace.pk, "a", {ids[0]})
    assert len(profile.runs) == 5  # the latest 4, and the oldest, being judged
    assert len(mining._profile(tenant.workspace.pk, "a", {ids[-1]}).runs) == 4
    # Diagnosed against 4 runs; the agent has 24 now (over twice the floor of 10).
    TraceAnalysis.objects.filter(trace_id=ids[0]).update(
        verdict="failed", diagnoser="offline", baseline_runs=4
    )
    monkeypatch.setattr(mining, "PROFILE_RUNS", 100)  # its baseline has grown: due
    assert mining._outgrown_baselines(10) == [(tenant.workspace.pk, ids[0])]
    monkeypatch.setattr(mining, "PROFILE_RUNS", 4)  # it was the whole window: not due
    assert mining._outgrown_baselines(10) == []


@pytest.mark.django_db
def test_a_batch_reads_only_what_its_runs_need(tenant, monkeypatch):
    """A batch of successful runs reads no baseline (a success is not weighed
    against one); a failed run that a same-task divergence explains is not
    compared with similar tasks (no task index is built for it); the tool
    vocabulary comes from the baseline's own read."""
    from failures import mining
    from failures.diagnosis import offline
    from failures.models import Incident
    from tests.factories import ingest, trace_payload

    calls = {"profiles": 0, "indexes": 0, "vocabulary_reads": 0}
    profile_and_tools, task_index = mining._profile_and_tools, offline.TaskIndex
    vocabularies = mining.tool_vocabularies

    def counted_profile(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["profiles"] += 1
        return profile_and_tools(*args, **kwargs)

    def counted_index(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["indexes"] += 1
        return task_index(*args, **kwargs)

    def counted_vocabularies(workspace_id, agents, known=None):  # type: ignore[no-untyped-def]
        calls["vocabulary_reads"] += len(set(agents) - set(known or {}))
        return vocabularies(workspace_id, agents, known=known)

    monkeypatch.setattr(mining, "_profile_and_tools", counted_profile)
    monkeypatch.setattr(offline, "TaskIndex", counted_index)
    monkeypatch.setattr(mining, "tool_vocabularies", counted_vocabularies)
    read = {"kind": "tool_call", "name": "get_reservation", "input": {"id": "R1"}}
    ok = [read, {"kind": "tool_call", "name": "update_flights", "input": {"id": "R1"}}]
    ingest(tenant.workspace, [
        trace_payload(f"ok-{i}", agent="airline", status="succeeded", task_key="t1",
                      task="change my flight", steps=ok)
        for i in range(12)
    ])  # fmt: skip
    assert calls == {"profiles": 0, "indexes": 0, "vocabulary_reads": 0}
    bad = [read, {"kind": "tool_call", "name": "cancel_reservation", "input": {"id": "R1"}}]
    ingest(tenant.workspace, [
        trace_payload("bad-1", agent="airline", status="failed", task_key="t1",
                      task="change my flight", steps=bad)
    ])  # fmt: skip
    assert calls == {"profiles": 1, "indexes": 0, "vocabulary_reads": 0}
    incident = Incident.objects.get(trace__external_id="bad-1")
    assert incident.tool == "cancel_reservation"
    assert mining.TraceAnalysis.objects.get(trace__external_id="ok-0").baseline_runs == 0
    assert mining.TraceAnalysis.objects.get(trace__external_id="bad-1").baseline_runs == 13


def test_runs_an_older_diagnoser_judged_are_diagnosed_again_and_the_sweep_settles(tenant):
    """After an upgrade that changes what the offline diagnoser concludes, the
    stored incidents are the new version's, not the old wording for ever; a model's
    or a person's diagnosis is left alone."""
    from failures import mining
    from failures.models import Incident, TraceAnalysis
    from tests.factories import ingest, trace_payload
    from traces.models import Trace

    error = ("exitcode: 1 (execution failed)\nCode output: Traceback (most recent call last):\n"
             '  File "x.py", line 1, in <module>\nNameError: name \'web_search\' is not defined')  # fmt: skip
    ingest(tenant.workspace, [trace_payload(f"old-{i}", steps=[
        {"kind": "tool_call", "name": "Computer_terminal", "input": {"code": "web_search()"},
         "error": error},
    ]) for i in range(3)])  # fmt: skip
    traces = list(Trace.objects.filter(workspace=tenant.workspace).order_by("pk"))
    ids = [t.pk for t in traces]
    assert not any(i in mining.traces_due_for_analysis().get(tenant.workspace.pk, []) for i in ids)
    assert set(
        TraceAnalysis.objects.filter(trace_id__in=ids).values_list("diagnoser_version", flat=True)
    ) == {mining.DIAGNOSER_VERSION}
    # As an older version left them: its wording, its version; one run a model diagnosed.
    Incident.objects.filter(trace_id__in=ids).update(
        description="`Computer_terminal` failed: Code output:"
    )
    TraceAnalysis.objects.filter(trace_id__in=ids).update(
        diagnoser_version="offline-10", content_hash="an older version's hash"
    )
    TraceAnalysis.objects.filter(trace_id=ids[2]).update(diagnoser="claude")
    due = mining.traces_due_for_analysis().get(tenant.workspace.pk, [])
    assert due == [ids[1], ids[0]]  # newest first; not the model's
    mining.traces_diagnose(workspace_id=tenant.workspace.pk, trace_ids=due)
    assert set(
        Incident.objects.filter(trace_id__in=ids[:2]).values_list("description", flat=True)
    ) == {"`Computer_terminal` failed: NameError: name 'web_search' is not defined"}
    assert not any(i in mining.traces_due_for_analysis().get(tenant.workspace.pk, []) for i in ids)
    # Stored before versions were recorded, by this very version (same content hash):
    # found once, then settled without a diagnosis.
    TraceAnalysis.objects.filter(trace_id=ids[0]).update(diagnoser_version="")
    assert mining.traces_due_for_analysis().get(tenant.workspace.pk, []) == [ids[0]]
    result = mining.traces_diagnose(workspace_id=tenant.workspace.pk, trace_ids=[ids[0]])
    assert result.unchanged == 1
    assert not any(i in mining.traces_due_for_analysis().get(tenant.workspace.pk, []) for i in ids)


def test_an_error_a_run_recovered_from_is_not_called_not_handled():
    from failures.diagnosis.offline import recovered

    facts = trace_facts([
        _call(0, "deploy", error="deploy said no"),  # nothing more specific read from it
        _call(1, "read", error="cat: x: No such file or directory"),
        StepView(2, "error", "", None, None, "Error: You sent a message with both text and calls"),
        _call(3, "deploy"),
    ])  # fmt: skip
    found = {f.step: f for f in recovered(facts)}
    assert found[0].category == ""  # it was handled: the run went on and succeeded
    assert found[1].category == "environment.missing_dependency"
    assert found[2].category == "" and found[2].tool == ""
    assert found[2].description.startswith("The agent's turn failed, and the run recovered")
    # What the run did next, which an agent meeting the same error can read.
    assert found[0].description.endswith("; its next call: `read`")
    assert found[2].description.endswith("; its next call: `deploy`")
    assert found[0].stats["next_call"] == "read"
    shell = recovered(trace_facts([
        _call(0, "Bash", {"command": "npm test"}, error="sh: jest: command not found"),
        _call(1, "Bash", {"command": "npm install --save-dev jest"}),
    ]))  # fmt: skip
    assert shell[0].description.endswith("; its next call: `Bash` (npm install)")


def test_a_shell_calls_command_is_its_command_argument_not_all_its_arguments():
    """Claude Code's Bash carries a description beside its command, Terminus'
    `bash_command` a duration beside its keystrokes, Codex an argv list: a repeated
    call is described by the command, and what a recovering run ran next by its
    first words (before: `{"command": ...}`, whose first word is "command")."""
    from failures.diagnosis.facts import command_head, is_generic

    bash = {"command": "npm test -- --watch=false", "description": "Run the tests"}
    steps = [_call(i, "Bash", bash, error="exit 1: 3 failing") for i in range(3)]
    facts = trace_facts(steps)
    assert facts.repeats and facts.repeats[0][0].command == "npm test -- --watch=false"
    assert command_head(facts.calls[0].command) == "npm test"
    terminus = trace_facts([_call(0, "bash_command", {"keystrokes": "pip install -e .\n",
                                                      "duration": 5.0})])  # fmt: skip
    assert command_head(terminus.calls[0].command) == "pip install"
    codex = trace_facts([_call(0, "exec_command", {"command": ["git", "status"], "workdir": "/"})])
    assert codex.calls[0].command == "git status"
    # A call with no command argument is described by its arguments, as before.
    order = trace_facts([_call(0, "get_order_details", {"order_id": "#1", "verbose": True})])
    assert order.calls[0].command.startswith("{")
    # Their shells are generic: no instruction is about calling or avoiding them.
    assert all(is_generic(t) for t in ("bash_command", "execute_bash", "exec_command", "Bash"))
    assert is_generic("mark_task_complete")  # Terminus ending its run, like `submit`
    assert not is_generic("get_order_details")


def test_an_output_headed_by_a_bare_error_label_is_named_by_the_line_under_it():
    """OpenHands' and SWE-agent's file editor answer "ERROR:" on a line of its own,
    then what went wrong: the error is that line (before: "ERROR:", kind "error",
    the same for every such failure of every tool)."""
    from failures.diagnosis.facts import silent_error

    output = "ERROR:\nInvalid `path` parameter: /repo/x.py. The path /repo/x.py does not exist."
    kind, text = silent_error(output) or ("", "")
    assert kind.startswith("invalid path parameter") and text.startswith("Invalid `path`")
    # A label with the error on its own line still reads as before.
    assert silent_error("error: pathspec 'main' did not match")[1].startswith("error: pathspec")


def test_a_frameworks_own_spans_are_not_calls_but_their_own_errors_count():
    """LangGraph's nodes, smolagents' turns, an agent's run span: framework steps
    ("span"), which hold the calls. Before, each was a "tool call" named `agent`,
    `call_model` or `should_continue`, counted, compared and repeated as one."""
    steps = [
        _call(0, "LangGraph", {"messages": []}, kind="span"),
        _call(1, "call_model", {"messages": []}, kind="span"),
        _call(2, "lookup_order", {"order_id": "B2"}, error="ValueError: order not found"),
        _call(3, "should_continue", {"messages": []}, kind="span"),
        _call(4, "should_continue", {"messages": []}, kind="span"),
    ]
    facts = trace_facts(steps)
    assert [c.name for c in facts.calls] == ["lookup_order"]
    assert facts.repeats == [] and [e.step for e in facts.errors] == [2]
    # A span that raised an error of its own (none of its calls did) still counts.
    steps.append(_call(5, "parse_output", {}, error="OutputParserException: bad JSON", kind="span"))
    assert [e.tool for e in trace_facts(steps).errors] == ["lookup_order", "parse_output"]


REFUSALS = [
    # Claude Code 2.x: a call the user rejected or interrupted, one its rules deny.
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it "
    "was a file edit, the new_string was NOT written to the file). STOP what you are doing and "
    "wait for the user to tell you how to proceed.",
    "The user doesn't want to take this action right now. STOP what you are doing and wait for "
    "the user to tell you how to proceed.",
    # A deny rule, Bash(rm:*), as Claude Code 2.1.332 wrote it in its transcript and in
    # its headless output (run against a scripted Messages API).
    "Permission to use Bash with command rm orders/A1.json has been denied.",
    "Error: Permission to use Bash with command rm orders/A1.json has been denied.",
    # Codex's events: a call not approved (traces/otlp_codex.py).
    "The call was not permitted (denied, by user).",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_a_call_the_user_refused_is_no_tool_error_of_any_category(text):
    assert error_category(text) == ""  # was "tool error not handled", or Codex's "auth"
    facts = trace_facts([_user(0, "clean the build"), _call(1, "Bash", {"command": "rm"}, text)])
    assert [e.category for e in facts.errors] == [""]


def test_a_refused_call_is_said_to_be_refused_not_to_have_failed(tenant):
    from failures.models import Incident
    from tests.factories import ingest, trace_payload

    ingest(tenant.workspace, [trace_payload("refused-1", agent="claude-code", steps=[
        {"kind": "user_prompt", "input": "clean the build"},
        {"kind": "tool_call", "name": "Bash", "input": {"command": "rm -rf build"},
         "error": REFUSALS[0]},
    ])])  # fmt: skip
    incident = Incident.objects.get(trace__external_id="refused-1", step_index=1)
    assert incident.description.startswith("`Bash` was refused: The user doesn't")
    assert incident.category == ""
    # Anything else a tool says is still its failure.
    assert error_category("permission denied: /etc/shadow") == "environment.auth"
    assert error_category("rm: cannot remove 'build': Permission denied") == "environment.auth"


def test_a_hook_call_with_no_answer_did_not_complete_rather_than_failed(tenant):
    """Claude Code 2.x sends no PostToolUse or PostToolUseFailure for a call a
    permission rule or the user refused: the hooks' note says the call did not
    complete, and so does the diagnosis (in the note's words stored before too)."""
    from failures.models import Incident
    from tests.factories import ingest, trace_payload
    from traces.claude_code import UNFINISHED
    from traces.errors import unanswered

    old = "No PostToolUse before the turn ended: the tool call failed."
    assert unanswered(UNFINISHED) and unanswered(old) and not unanswered("exit 1")
    ingest(tenant.workspace, [trace_payload(f"hook-{n}", agent="claude-code", steps=[
        {"kind": "user_prompt", "input": "clean the build"},
        {"kind": "tool_call", "name": "Bash", "input": {"command": "rm -rf build"}, "error": text},
    ]) for n, text in enumerate((UNFINISHED, old))])  # fmt: skip
    for n in range(2):
        incident = Incident.objects.get(trace__external_id=f"hook-{n}", step_index=1)
        assert incident.description.startswith("`Bash` did not complete: No PostToolUse")
