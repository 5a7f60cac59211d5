"""Can the product tell a helpful, a useless and a harmful skill apart?

    python bench/trials.py --quick     # 3 seeds, 4 rounds
    python bench/trials.py             # 8 seeds, 6 rounds

Runs `manage.py simulate_loop`'s simulation (metrics/simulation.py) once per
seed: 10 agents, each on one task type; three skills go out as trials (half the
sessions held out): one helps (its failure mode's error rate ×0.15), one does
nothing (×1), one hurts (×2.4); one agent's success improves over the run for a
reason unrelated to any skill; two control modes get no skill. Printed per seed:
each skill's true effect beside the trial's estimate, interval and verdict, and
`RESULT skills_judged_right=K/3 helps=… hurts=… no_effect=…`.

Baseline, in the same runs: what a before/after reading says about the same
skills, the way the product's only figure did before trials (success of the
skill's agents in round 1, before any skill, against the last round, 95% Wilson
intervals: overlapping reads "no measurable change"). Last line: the totals.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")


def before_after(sim, truth: str) -> str:  # type: ignore[no-untyped-def]
    from metrics.simulation import MODES
    from metrics.stats import Rate

    mode = next(m for m in MODES if m.truth == truth)
    first: Rate = sim.history[0].by_mode[mode.key]
    last: Rate = sim.history[-1].by_mode[mode.key]
    a, b = first.interval, last.interval
    if a is None or b is None or (a[1] >= b[0] and b[1] >= a[0]):
        return "no_measurable_change"
    return "helps" if (last.value or 0) > (first.value or 0) else "hurts"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=0)
    args = parser.parse_args()
    import django

    django.setup()
    from django.db import connection

    from metrics.simulation import Simulation, format_judgements, result_line

    seeds = args.seeds or (3 if args.quick else 8)
    rounds = 4 if args.quick else 6
    right = baseline_right = 0
    wanted = {"helps": "helps", "hurts": "hurts", "no_effect": "no_measurable_change"}
    started = time.perf_counter()
    for seed in range(1, seeds + 1):
        sim = Simulation(rounds=rounds, agents=10, traces_per_agent=20, seed=seed,
                         name=f"Bench trials seed {seed}")  # fmt: skip
        sim.run(report=lambda line: None)
        for line in format_judgements(sim.judgements):
            print(f"seed {seed}: {line}")
        line = result_line(sim.judgements)
        baseline = {truth: before_after(sim, truth) for truth in wanted}
        right += sum(j.right for j in sim.judgements)
        baseline_right += sum(baseline[t] == w for t, w in wanted.items())
        print(f"{line} seed={seed} rounds={rounds} baseline_helps={baseline['helps']} "
              f"baseline_hurts={baseline['hurts']} baseline_no_effect={baseline['no_effect']}")  # fmt: skip
        sim.workspace.delete()
        connection.close()
    print(f"RESULT trials_skills_judged_right={right}/{3 * seeds} "
          f"baseline_before_after_judged_right={baseline_right}/{3 * seeds} seeds={seeds} "
          f"rounds={rounds} seconds={time.perf_counter() - started:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
