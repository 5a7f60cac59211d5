from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from workspaces.models import ApiKey, Workspace

pytestmark = pytest.mark.django_db


@pytest.mark.shipped_precision  # the demo as `make run` shows it
def test_seed_demo_is_idempotent_and_prints_working_credentials(client, settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert first == second
    assert Workspace.objects.filter(slug="demo").count() == 1
    assert ApiKey.objects.filter(workspace__slug="demo").count() == 1
    password = re.search(r"Password\s+(\S+)", first).group(1)
    key = re.search(r"API key\s+(\S+)", first).group(1)
    assert client.login(username="admin", password=password)
    assert client.get("/w/demo/").status_code == 200
    assert (
        client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    )

    # The loop's human step: a seeded lead labelled five failed runs of each failure
    # the demo agents were built with; modes rest on those labels, and their skills
    # are drafted from the labels' fixes and say so.
    from failures.models import RunLabel
    from skills.models import DistillationJob, Skill
    from skills.services import distillation_run

    labels = RunLabel.objects.filter(workspace__slug="demo", author__username="demo-lead")
    sentences = set(labels.values_list("sentence", flat=True))
    assert len(sentences) == 6 and labels.count() == 30, sentences
    assert "`payments.refund` failed (429 Too Many Requests) and the run stopped there" in sentences
    # The worker drafts what the seed queued (here, in this process).
    for job in DistillationJob.objects.filter(failure_mode__workspace__slug="demo"):
        distillation_run(job_id=job.pk)
    skills = Skill.objects.filter(workspace__slug="demo", source_mode__label__in=sentences)
    assert skills.count() >= 3, list(
        DistillationJob.objects.filter(failure_mode__workspace__slug="demo").values_list(
            "failure_mode__label", "verdict", "detail"
        )
    )
    page = client.get(f"/w/demo/skills/{skills.first().pk}/")
    assert page.status_code == 200 and "demo-lead" in page.content.decode()
    # The rate limit's skill waits before it retries: a retry at once is what the
    # limit refuses.
    refund = skills.filter(source_mode__label__contains="429").first()
    assert refund is not None
    assert "wait the seconds its error names" in refund.latest_version.body
    # and says what it rests on: one fix, on the five labelled runs it lists.
    assert "Drafted offline from 1 fix people wrote on 5 labelled runs" in (
        refund.latest_version.rationale
    )


def test_demo_rate_limits_ask_for_a_short_wait_which_the_runs_that_recovered_waited():
    """A demo rate limit names a wait of seconds, not hours, and the runs that got
    past it waited that long before calling again: the seeded lead's fix (and so the
    skill drafted from it) says to wait, which a reader of a rate limit expects."""
    from datetime import UTC, datetime

    from traces.demo import DEMO_FIXES, demo_traces

    now = datetime(2026, 1, 1, tzinfo=UTC)
    limited = recovered = 0
    for trace in demo_traces(count=720, now=now):
        steps = trace["steps"]
        for i, step in enumerate(steps):
            if not step.get("error", "").startswith("429 "):
                continue
            limited += 1
            wait = int(re.search(r"retry after (\d+)s", step["error"]).group(1))
            assert 2 <= wait <= 29
            after = steps[i + 1]
            if after.get("name") == "payments.refund":
                recovered += 1
                gap = datetime.fromisoformat(after["started_at"]) - datetime.fromisoformat(
                    step["started_at"]
                )
                assert gap.total_seconds() >= wait, (trace["external_id"], wait, gap)
                assert trace["ended_at"] >= after["started_at"]
    assert limited and recovered
    assert "wait the seconds its error names" in DEMO_FIXES["payments.refund"]


def test_an_offline_draft_says_what_its_instructions_rest_on():
    from skills.distill import drafted_from

    label = {"kind": "human_label", "counts": {"runs_with": 5, "labelled_runs": 5}}
    turned = {"kind": "unexpected", "counts": {"runs_with": 2, "labelled_runs": 2}}
    rule = {"kind": "policy_rule", "counts": {"runs_with": 3, "rule_runs": 3}}
    counted = {"kind": "missing", "counts": {"runs_with": 7}}
    assert drafted_from([label]) == "1 fix people wrote on 5 labelled runs"
    assert drafted_from([label, turned]) == "2 fixes people wrote on 7 labelled runs"
    assert drafted_from([rule, counted, counted]) == (
        "1 policy rule a lead approved and 2 pieces of evidence with counts"
    )
    assert drafted_from([counted]) == "1 piece of evidence with counts"


def test_demo_runs_of_one_task_follow_one_procedure_and_fail_only_at_its_end():
    """An agent follows the same procedure for the same kind of task, so a failed
    run differs from the successful runs of its task by the error it ended on alone:
    the failure the demo was built with, and nothing the diagnosis could mistake for
    a cause (with tools drawn at random, "never called `email.send`; 7 of 10 similar
    successful runs did" became the demo's largest failure mode)."""
    from datetime import UTC, datetime

    from traces.demo import DEMO_AGENTS, demo_traces

    procedures = {
        (agent, text.split(" ")[0]): tools
        for agent, spec in DEMO_AGENTS.items()
        for text, tools in spec["tasks"]
    }
    failed_tools: set[str] = set()
    for trace in demo_traces(count=720, now=datetime(2026, 1, 1, tzinfo=UTC)):
        procedure = procedures[(trace["agent"], trace["task"].split(" ")[0])]
        calls = [s for s in trace["steps"] if s["kind"] == "tool_call"]
        failing = [s for s in calls if s.get("error")]
        if not failing:
            assert [s["name"] for s in calls] == procedure, trace["external_id"]
            continue
        # The failing call is the procedure's last; a recovered run then calls the
        # mode's recovery tool.
        assert [s["name"] for s in calls[: len(procedure)]] == procedure
        assert calls[len(procedure) - 1] is failing[0] and len(failing) == 1
        assert len(calls) == len(procedure) + (trace["status"] == "succeeded")
        # Every call of a run is about the same subject (an order, an address, a day).
        assert len({str(s["input"]) for s in calls}) == 1
        failed_tools.add(failing[0]["name"])
    designed = {mode[0] for spec in DEMO_AGENTS.values() for mode in spec["modes"]}
    assert failed_tools == designed


def test_demo_errors_name_numbers_a_reader_would_believe():
    """A client's timeout of seconds, not 3 ms; a short query's line, not line 20913."""
    from datetime import UTC, datetime

    from traces.demo import demo_traces

    timeouts, lines = set(), set()
    for trace in demo_traces(count=720, now=datetime(2026, 1, 1, tzinfo=UTC)):
        for step in trace["steps"]:
            error = step.get("error", "")
            if found := re.search(r"within (\d+) ms", error):
                timeouts.add(int(found.group(1)))
            if found := re.search(r"line (\d+)$", error):
                lines.add(int(found.group(1)))
    assert timeouts and min(timeouts) >= 5000 and max(timeouts) <= 30000
    assert lines and max(lines) <= 12
