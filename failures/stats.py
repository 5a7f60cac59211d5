"""Per-mode figures a lead decides on: how much a mode separates failed from
successful runs (lift, with a 95% interval), how often it also shows in runs that
succeeded, and what its failed runs cost.

A run "shows" a mode when it shows one of the marks the diagnosis found the
mode's incidents by (`Incident.stats`):

- a signal (`error:bash:not_found`, `repeat:search`, `user_negative`…), read
  from the run's stored facts (`TraceAnalysis.signals`);
- a tool-order pattern from a divergence (`never` called X, called Y
  `without-first` X, `called` X), evaluated on the run's tool sequence
  (`TraceAnalysis.tools`);
- and in any case the runs that hold one of the mode's incidents.

Runs compared are the labelled runs (verdict failed or succeeded) of the agents
the mode occurs in. Lift = P(failed | shows the mode) / P(failed | does not),
compared within each agent and pooled over the agents (Mantel–Haenszel, with
Greenland and Robins' log interval; 0.5 added to every cell of an agent's table
when one is zero). One agent's lift is the plain ratio with Katz's interval.
Pooling runs across agents would let an agent whose runs all fail (a benchmark
of failed runs only) make the runs without the mode look worse and lift every
mode that agent has; an agent with no success, or no run with (or without) the
mode, says nothing of what goes with failure and is left out.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

Z95 = 1.959964


@dataclass(frozen=True)
class Mark:
    kind: str  # signal / never / called / without-first
    args: tuple[str, ...]

    def holds(self, signals: set[str], tools: list[str]) -> bool:
        if self.kind == "signal":
            return self.args[0] in signals
        if self.kind == "never":
            return self.args[0] not in tools
        if self.kind == "called":
            return self.args[0] in tools
        if self.kind == "without-first":
            first, then = self.args
            return then in tools and first not in tools[: tools.index(then)]
        return False


def mark_of(stats: dict[str, Any]) -> Mark | None:
    """The mark an incident was found by, if it can be checked on other runs."""
    pattern = stats.get("pattern")
    if isinstance(pattern, list) and pattern and pattern[0] in ("never", "called", "without-first"):
        return Mark(str(pattern[0]), tuple(str(p) for p in pattern[1:]))
    signal = stats.get("signal")
    if isinstance(signal, str) and signal and signal not in ("long_run", "short_run"):
        return Mark("signal", (signal,))
    return None


def risk_ratio(a: int, b: int, c: int, d: int) -> tuple[float, float, float]:
    """Failure rate a/b against c/d, with Katz's 95% log interval."""
    if min(a, c, b - a, d - c) == 0:
        a, b, c, d = a + 0.5, b + 1, c + 0.5, d + 1  # type: ignore[assignment]
    ratio = (a / b) / (c / d)
    se = math.sqrt(max(1 / a - 1 / b + 1 / c - 1 / d, 0.0))
    return ratio, ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)


@dataclass
class Run:
    trace_id: int
    agent: str
    failed: bool
    signals: set[str]
    tools: list[str]
    task_key: str = ""


def lift_figures(marks: set[Mark], incident_traces: set[int], runs: list[Run]) -> dict[str, Any]:
    """Counts and lift for one mode over `runs` (the labelled runs of its agents)."""
    with_runs = with_failed = without_runs = without_failed = 0
    successes_with = 0
    for run in runs:
        shows = run.trace_id in incident_traces or any(
            m.holds(run.signals, run.tools) for m in marks
        )
        if shows:
            with_runs += 1
            with_failed += run.failed
            successes_with += not run.failed
        else:
            without_runs += 1
            without_failed += run.failed
    successes = sum(1 for r in runs if not r.failed)
    figures: dict[str, Any] = {
        "runs_with": with_runs, "failed_with": with_failed,
        "runs_without": without_runs, "failed_without": without_failed,
        "successes": successes, "successes_with": successes_with,
        "also_in_successes": round(successes_with / successes, 3) if successes else None,
        "checkable": bool(marks),
    }  # fmt: skip
    lift = lift_within_agents(
        runs,
        lambda run: (
            run.trace_id in incident_traces or any(m.holds(run.signals, run.tools) for m in marks)
        ),
    )
    if lift is not None:
        figures.update(lift=round(lift[0], 3), lift_low=round(lift[1], 3),
                       lift_high=round(lift[2], 3))  # fmt: skip
    return figures


def lift_within_agents(runs: list[Run], holds: Any) -> tuple[float, float, float] | None:
    """How many times more often runs where `holds(run)` failed than runs of the
    same agent where it does not, pooled over agents, with its 95% interval; None
    when no agent has runs with and without it, failures and successes. Where
    every run of an agent failed (a set of failed runs only), both rates are 1
    whatever the mark, and a lift of 1 would say "no effect" of what was never
    measured; pooled with other agents' runs it would inflate every lift."""
    tables: dict[str, list[int]] = {}
    for run in runs:
        cell = tables.setdefault(run.agent, [0, 0, 0, 0])  # failed/runs with, without
        shows = bool(holds(run))
        cell[0 if shows else 2] += run.failed
        cell[1 if shows else 3] += 1
    informative = [
        (a, b, c, d) for a, b, c, d in tables.values()
        if b and d and (a + c) and (a + c) < (b + d)
    ]  # fmt: skip
    return pooled_risk_ratio(informative) if informative else None


def pooled_risk_ratio(tables: list[tuple[int, int, int, int]]) -> tuple[float, float, float]:
    """Mantel–Haenszel risk ratio over tables (failed with, runs with, failed
    without, runs without), with Greenland and Robins' 95% log interval; a table
    with a zero cell gets 0.5 added to each (so one table gives `risk_ratio`)."""
    numerator = denominator = variance = 0.0
    for a, b, c, d in tables:
        if min(a, c, b - a, d - c) == 0:
            a, b, c, d = a + 0.5, b + 1, c + 0.5, d + 1  # type: ignore[assignment]
        n = b + d
        numerator += a * d / n
        denominator += c * b / n
        variance += (b * d * (a + c) - a * c * n) / (n * n)
    ratio = numerator / denominator
    se = math.sqrt(max(variance / (numerator * denominator), 0.0))
    return ratio, ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)


def mode_lift(*, workspace_id: int, incident_ids: list[int]) -> dict[str, Any]:
    """`lift_figures` for a set of incidents (a mode, or a cluster being judged)."""
    from .models import Incident

    rows = list(
        Incident.objects.filter(workspace_id=workspace_id, pk__in=incident_ids).values_list(
            "trace_id", "trace__agent", "stats"
        )
    )
    marks = {m for _, _, s in rows if (m := mark_of(s or {})) is not None}
    agents = {agent for _, agent, _ in rows}
    return lift_figures(marks, {t for t, _, _ in rows}, labelled_runs(workspace_id, agents))


def labelled_runs(workspace_id: int, agents: set[str]) -> list[Run]:
    from .models import TraceAnalysis

    rows = (
        TraceAnalysis.objects.filter(
            workspace_id=workspace_id, agent__in=agents, verdict__in=["failed", "succeeded"]
        )
        .order_by("trace_id")
        .values_list("trace_id", "agent", "verdict", "signals", "tools", "task_key")
    )
    return [
        Run(t, a, v == "failed", set(s), list(tools), key or "") for t, a, v, s, tools, key in rows
    ]


def modes_figures(*, workspace_id: int, mode_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Everything the modes table shows beside counts, for these modes: lift and
    its interval, also-in-successes, failed traces and their share of all failed
    traces, the tokens and cost of those traces, and the last two weeks' trend."""
    from datetime import timedelta

    from django.db.models import Count, Sum
    from django.utils import timezone

    from traces.models import Trace

    from .models import Incident, TraceAnalysis

    if not mode_ids:
        return {}
    rows = list(
        Incident.objects.filter(
            workspace_id=workspace_id, failure_mode_id__in=mode_ids
        ).values_list("failure_mode_id", "trace_id", "trace__agent", "stats", "occurred_at")
    )
    categories: dict[int, Counter[str]] = {}
    for mode_id, category in Incident.objects.filter(
        workspace_id=workspace_id, failure_mode_id__in=mode_ids
    ).values_list("failure_mode_id", "category"):
        categories.setdefault(mode_id, Counter())[category] += 1
    by_mode: dict[int, list[tuple]] = {}
    for mode_id, *rest in rows:
        by_mode.setdefault(mode_id, []).append(tuple(rest))
    agents = {agent for _, _, agent, _, _ in rows}
    runs = labelled_runs(workspace_id, agents)
    failed = set(
        TraceAnalysis.objects.filter(workspace_id=workspace_id, verdict="failed").values_list(
            "trace_id", flat=True
        )
    )
    all_failed = len(failed)
    now = timezone.now()
    week, fortnight = now - timedelta(days=7), now - timedelta(days=14)
    result: dict[int, dict[str, Any]] = {}
    for mode_id, items in by_mode.items():
        traces = {t for t, _, _, _ in items}
        mode_agents = {a for _, a, _, _ in items}
        marks = {m for _, _, s, _ in items if (m := mark_of(s or {})) is not None}
        figures = lift_figures(marks, traces, [r for r in runs if r.agent in mode_agents])
        if all((s or {}).get("evidence") == "check" for _, _, s, _ in items):
            # A failed check of the outcome is the failure itself: only failed runs
            # have one, so a lift would measure the definition, not the mode.
            for key in ("lift", "lift_low", "lift_high"):
                figures.pop(key, None)
            figures["outcome_check"] = True
        failed_traces = traces & failed
        cost = Trace.objects.filter(pk__in=failed_traces).aggregate(
            tokens=Sum("total_tokens"), cost=Sum("cost_usd"), priced=Count("cost_usd")
        )
        figures.update(
            failed_traces=len(failed_traces),
            share_of_failed=round(len(failed_traces) / all_failed, 3) if all_failed else None,
            tokens=int(cost["tokens"] or 0),
            cost_usd=round(cost["cost"], 4) if cost["priced"] else None,
            last_7_days=len({t for t, _, _, at in items if at >= week}),
            previous_7_days=len({t for t, _, _, at in items if fortnight <= at < week}),
            category=categories.get(mode_id, Counter({"": 1})).most_common(1)[0][0],
        )
        result[mode_id] = figures
    return result
