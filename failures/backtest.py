"""Does an instruction hold on runs it was not drafted from?

The labelled runs of a mode's agents are split by a hash of their task key (a
run with no key, or whose key names a kind of task shared by more than
`TEMPLATE_RUNS` runs, by its trace id): the *drafting* half is what the contrast
(failures/contrast.py) learns instructions from; the *backtest* half is where each
instruction is checked. Keeping a task's runs in one half keeps its repeats
together, so the within-task comparison below is possible.

For each instruction that can be checked on a run (call `O` before `T`, call `T`,
do not call `T`), over the backtest half:

- runs that followed it and runs that did not (among those it applies to), the
  success rate of each, and the difference with a 95% Newcombe interval;
- **within-task pairs**: for every task with runs on both sides, each pair of a
  following and a not-following run whose outcomes differ counts as *won* (only
  the following run succeeded) or *lost* (only the other one did).

Verdicts: `passed` (the interval is above zero and, where there are pairs, won
exceed lost), `hard_tasks` (followers succeed more overall, but not within the
same task: the instruction marks easy tasks, it does not fix anything), `failed`
(no measurable gain), `untestable` (too few runs on one side: `MIN_SIDE`).
A recovery ("when `T` answers E, do F next") is checked the same way over the
runs that hit E (failures/contrast.py: `recovery_backtest`): those whose next
call was F against those whose next call was not. Instructions about an error
alone (a precondition, a transient answer) only restate the failure on a run
and are `untestable` by this test.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from typing import Any

MIN_SIDE = 5
Z95 = 1.96


def held_out(task_key: str, trace_id: int) -> bool:
    """True for runs of the backtest half (stable across runs and machines)."""
    key = task_key or f"trace:{trace_id}"
    return hashlib.sha256(key.encode()).digest()[0] % 2 == 1


# A task key shared by more runs than this names a kind of task (a template:
# "Refund order N" with the numbers taken out), not one task run again: its runs
# are split one by one, or every run of the kind would land in the same half.
TEMPLATE_RUNS = 20


def split(runs: list[Any]) -> tuple[list[Any], list[Any]]:
    """(drafting half, backtest half): by task key, so a task's repeats stay
    together (the within-task comparison needs them), except a key so common that
    it names a kind of task, whose runs are split by trace id."""
    sizes = Counter(run.task_key for run in runs if run.task_key)
    drafting: list[Any] = []
    tested: list[Any] = []
    for run in runs:
        key = run.task_key if sizes[run.task_key] <= TEMPLATE_RUNS else ""
        (tested if held_out(key, run.trace_id) else drafting).append(run)
    return drafting, tested


def applies_and_follows(kind: str, tool: str, other: str, tools: list[str]) -> bool | None:
    """Whether a run with these calls followed the instruction; None where the
    instruction does not apply to it or cannot be read from calls."""
    if kind == "order":  # before calling `tool`, call `other`
        if tool not in tools:
            return None
        return other in tools[: tools.index(tool)]
    if kind == "missing":  # call `tool` before finishing
        return tool in tools
    if kind == "unexpected":  # do not call `tool`
        return tool not in tools
    return None


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = p + Z95 * Z95 / (2 * n)
    spread = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n))
    denominator = 1 + Z95 * Z95 / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def difference_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """p1 − p2 with Newcombe's hybrid score interval (method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = _wilson(k1, n1)
    l2, u2 = _wilson(k2, n2)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def backtest(kind: str, tool: str, other: str, runs: list[Any]) -> dict[str, Any]:
    """The instruction checked on `runs` (each with `.tools`, `.failed`, `.task_key`)."""
    if kind not in {"order", "missing", "unexpected"}:
        return {"verdict": "untestable", "reason": "an instruction about an error restates "
                "the failure on a run: it cannot be checked from calls alone", "runs": len(runs)}  # fmt: skip
    sides: list[tuple[Any, bool]] = []
    for run in runs:
        follows = applies_and_follows(kind, tool, other, list(run.tools))
        if follows is not None:
            sides.append((run, follows))
    return compare_sides(sides)


def compare_sides(sides: list[tuple[Any, bool]]) -> dict[str, Any]:
    """Runs an instruction applies to, each with whether it followed it: success of
    each side, the difference with its interval, within-task pairs, the verdict."""
    by_task: dict[str, dict[bool, list[bool]]] = defaultdict(lambda: {True: [], False: []})
    n = {True: 0, False: 0}
    k = {True: 0, False: 0}
    for run, follows in sides:
        n[follows] += 1
        k[follows] += not run.failed
        if run.task_key:
            by_task[run.task_key][follows].append(not run.failed)
    n1, n2, k1, k2 = n[True], n[False], k[True], k[False]
    won = lost = 0
    for outcome in by_task.values():
        for a in outcome[True]:
            for b in outcome[False]:
                won += a and not b
                lost += b and not a
    result: dict[str, Any] = {
        "followed": n1, "followed_succeeded": k1, "other": n2, "other_succeeded": k2,
        "pairs_won": won, "pairs_lost": lost,
    }  # fmt: skip
    if min(n1, n2) < MIN_SIDE:
        return {**result, "verdict": "untestable",
                "reason": f"not testable yet: {n1} run{'s' if n1 != 1 else ''} followed it "
                          f"and {n2} did not on the "
                          f"backtest half (at least {MIN_SIDE} of each needed)"}  # fmt: skip
    d, low, high = difference_interval(k1, n1, k2, n2)
    result |= {"difference": round(d, 3), "low": round(low, 3), "high": round(high, 3)}
    if low > 0 and (won + lost == 0 or won > lost):
        return {**result, "verdict": "passed", "reason": _said(result)}
    if d > 0 and won + lost and won <= lost:
        return {**result, "verdict": "hard_tasks",
                "reason": f"marks hard tasks, not a fix: {_said(result)}; within the same task, "
                          f"following it won {won} pairs and lost {lost}"}  # fmt: skip
    return {**result, "verdict": "failed", "reason": f"no measurable gain: {_said(result)}"}


def _said(r: dict[str, Any]) -> str:
    return (
        f"{r['followed_succeeded']} of {r['followed']} runs that followed it succeeded, "
        f"{r['other_succeeded']} of {r['other']} that did not "
        f"(difference {r['difference']:+.2f}, 95% interval {r['low']:+.2f} to {r['high']:+.2f})"
    )
