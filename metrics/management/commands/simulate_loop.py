"""`manage.py simulate_loop`: the whole loop, closed, with simulated agents."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from metrics.simulation import Simulation, result_line


class Command(BaseCommand):
    help = (
        "Simulated agents with latent failure modes post traces through the API; the app "
        "clusters, distils, a simulated lead approves each skill as a trial (control modes "
        "rejected), agents pull skills; prints success with 95% intervals per round, then each "
        "skill's true and estimated effect and verdict, and a RESULT line."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rounds", type=int, default=6)
        parser.add_argument("--agents", type=int, default=10,
                            help="agents; agent i works on true mode i mod 5")  # fmt: skip
        parser.add_argument("--traces", type=int, default=20, help="traces per agent per round")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        simulation = Simulation(rounds=options["rounds"], agents=options["agents"],
                                traces_per_agent=options["traces"], seed=options["seed"])  # fmt: skip
        simulation.run(report=lambda line: self.stdout.write(line))
        self.stdout.write(result_line(simulation.judgements))
