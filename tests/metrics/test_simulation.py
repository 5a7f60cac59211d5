"""The closed loop, small: simulated agents through the real API, clustering,
offline distillation, a simulated lead's review, skills pulled next round."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from metrics.simulation import MODES, Simulation
from skills.models import Skill
from workspaces.models import AuditEvent


@pytest.mark.django_db
def test_simulated_loop_publishes_skills_and_only_treated_modes_improve():
    sim = Simulation(rounds=3, agents=3, traces_per_agent=40, seed=7)
    history = sim.run(report=lambda line: None)
    first, last = history[0], history[-1]
    assert last.treated.value > first.treated.value + 0.2  # skills helped
    assert last.treated.interval[0] > first.treated.interval[1]  # intervals separate
    assert abs(last.control.value - first.control.value) < 0.2  # no skill, no rise
    published = Skill.objects.filter(workspace=sim.workspace, status="published")
    assert published.count() == sum(not m.control for m in MODES)
    rejected = AuditEvent.objects.filter(workspace=sim.workspace, action="skill.reject")
    # The control group, audited: re-proposed as new incidents arrive, rejected each time.
    assert rejected.values("object_id").distinct().count() == sum(m.control for m in MODES)
    # An error that 30% of runs recover from is not yet conclusive evidence after
    # one round (40 runs an agent; the diagnosis keeps only errors that make
    # failure more likely at 95%); once the baseline grows, every mode is found.
    # A mode needs HIVEMIND_MIN_MODE_SIZE incidents of one text; after round 1 two of
    # the five true modes have fewer, and stay unclustered rather than joining
    # another (they used to be absorbed by the largest cluster).
    assert first.modes_found >= len(MODES) - 2 and first.nmi > 0.9
    assert last.modes_found == len(MODES) and last.nmi > 0.9
    assert "published after" in sim.cycle_report()


@pytest.mark.django_db
def test_simulate_loop_command_prints_rounds(capsys):
    call_command("simulate_loop", "--rounds", "1", "--agents", "1", "--traces", "10")
    out = capsys.readouterr().out
    assert "round 1: success" in out and "modes with skills" in out
