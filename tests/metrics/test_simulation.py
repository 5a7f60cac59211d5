"""The closed loop, small: simulated agents through the real API, clustering,
offline distillation, a simulated lead's review, skills pulled next round."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from metrics.simulation import MODES, Simulation, result_line
from skills.models import Skill
from skills.trials import HELPS, HURTS
from workspaces.models import AuditEvent


@pytest.mark.django_db
def test_simulated_trials_tell_a_helpful_a_useless_and_a_harmful_skill_apart():
    # A session's arm is a hash of (skill id, session id): skill ids come from a
    # sequence that other tests advance in whatever order they run, so they are
    # fixed here, or the split (and the verdicts) would change from run to run.
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('skills_skill', 'id'), 1000, false)")
    sim = Simulation(rounds=6, agents=10, traces_per_agent=30, seed=7)
    history = sim.run(report=lambda line: None)
    first, last = history[0], history[-1]
    verdicts = {j.mode.truth: j.verdict for j in sim.judgements}
    assert verdicts["helps"] == HELPS
    assert verdicts["hurts"] == HURTS
    assert verdicts["no_effect"] != HELPS
    assert result_line(sim.judgements).startswith("RESULT skills_judged_right=")
    # Estimates differ as the true effects do (on the failure mode's recurrence).
    estimated = {j.mode.truth: j.result.recurrence.difference for j in sim.judgements}
    assert estimated["helps"] < estimated["no_effect"] < estimated["hurts"]
    # Every skill went out as a trial; the control group, audited, never got one.
    published = Skill.objects.filter(workspace=sim.workspace, status="published")
    assert published.count() == sum(not m.control for m in MODES)
    assert set(published.values_list("rollout", flat=True)) == {"trial"}
    # Control modes never get a skill: a draft that reaches the queue is rejected
    # (audited); one that cannot pass its backtest (a precondition) never gets there.
    rejected = AuditEvent.objects.filter(workspace=sim.workspace, action="skill.reject")
    assert 1 <= rejected.values("object_id").distinct().count() <= sum(m.control for m in MODES)
    # A mode needs HIVEMIND_MIN_MODE_SIZE incidents of one text and an error that
    # makes failure more likely at 95%; some true modes are found after round 2.
    assert first.modes_found >= len(MODES) - 2 and first.nmi > 0.9
    assert last.modes_found == len(MODES) and last.nmi > 0.9
    assert "published after" in sim.cycle_report()


@pytest.mark.django_db
def test_simulate_loop_command_prints_rounds(capsys):
    call_command("simulate_loop", "--rounds", "1", "--agents", "5", "--traces", "4")
    out = capsys.readouterr().out
    assert "round 1: success" in out and "skill trials" in out
    assert out.strip().splitlines()[-1].startswith("RESULT skills_judged_right=")
