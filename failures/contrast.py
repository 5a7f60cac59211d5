"""What separates a mode's failed runs from the runs that succeeded: the material
a skill is drafted from (skills/distill.py), each item with its counts.

For each mark the mode's incidents were found by (failures/stats.py), counted over
the labelled runs of the mode's agents:

- a tool-order pattern: how many successful runs did the right thing (called `X`
  before `Y`, called `X` at all), and how many runs that did not failed;
- an error: how often runs that hit it failed, against runs that did not; and
  what runs that hit it *and still succeeded* did next (the command they ran, for
  a shell-like tool), when enough of them agree;
- repeating a call, or running far longer than successful runs: how many runs
  that did failed, against those that did not.

An item is "discriminating" when the failure rate of runs showing it is above
that of runs of the same agent not showing it by a 95% interval (risk ratio,
within each agent and pooled: failures.stats.lift_within_agents). Only
discriminating items are offered as evidence for an instruction.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .backtest import backtest, compare_sides, split
from .diagnosis.facts import command_head, is_generic
from .diagnosis.offline import telling_line
from .models import FailureMode, Incident
from .stats import Mark, Run, labelled_runs, lift_within_agents, mark_of

MIN_RECOVERED = 2
RECOVERY_AGREEMENT = 0.4


@dataclass
class Evidence:
    kind: str  # order / missing / unexpected / error / repeat / long_run / recovery / next_call
    tool: str
    other: str = ""  # the tool to call first / next, the command head
    error: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    lift: tuple[float, float, float] | None = None
    incidents: int = 0
    # The instruction this evidence suggests, checked on the backtest half
    # (skills/backtest.py); empty when the contrast ran on every run.
    backtest: dict[str, Any] = field(default_factory=dict)
    signal: str = ""  # an error's signal ("error:<tool>:<kind>"), to find it again in a run

    @property
    def discriminating(self) -> bool:
        return self.lift is not None and self.lift[1] > 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "tool": self.tool, "other": self.other, "error": self.error,
            "counts": self.counts, "incidents": self.incidents,
            "lift": [round(x, 2) for x in self.lift] if self.lift else None,
            "backtest": self.backtest,
        }  # fmt: skip


def mode_contrast(*, mode: FailureMode, limit: int = 4, hold_out: bool = False) -> list[Evidence]:
    """The mode's evidence items, most incidents first, discriminating ones only.

    With `hold_out`, the evidence is learned from the drafting half of the runs
    only, and each item carries its backtest on the other half (skills/backtest.py)."""
    rows = list(
        Incident.objects.filter(failure_mode=mode)
        .order_by("pk")
        .values_list("trace_id", "trace__agent", "stats", "tool", "error_text")
    )
    if not rows:
        return []
    runs = labelled_runs(mode.workspace_id, {agent for _, agent, *_ in rows})
    tested: list[Run] = []
    if hold_out:
        runs, tested = split(runs)
    marks: Counter[Mark] = Counter()
    errors: dict[Mark, str] = {}
    for _, _, stats, _, error_text in rows:
        mark = mark_of(stats or {})
        if mark is not None:
            marks[mark] += 1
            if mark.kind == "signal" and mark.args[0].startswith("error:") and error_text:
                errors.setdefault(mark, telling_line(error_text, 160))
    found: list[Evidence] = []
    for mark, n in marks.most_common():
        item = _evidence(mark, runs, errors.get(mark, ""))
        if item is None:
            continue
        item.incidents = n
        if item.discriminating:
            found.append(item)
            if item.kind == "error":
                recovery = _recovery(mode.workspace_id, mark, runs, item)
                if recovery is not None:
                    if hold_out:
                        recovery.backtest = recovery_backtest(
                            mode.workspace_id, mark.args[0], recovery.other, tested,
                            by_tool=recovery.kind == "next_call",
                        )  # fmt: skip
                    found.append(recovery)
        if len(found) >= limit:
            break
    if any(s and (s.get("signal") == "long_run") for _, _, s, _, _ in rows):
        item = _long_runs(runs)
        if item is not None and item.discriminating:
            found.append(item)
    if hold_out:
        for item in found:
            if item.backtest:
                continue
            if item.kind == "error" and is_transient(item.error) and item.signal:
                item.backtest = retry_backtest(mode.workspace_id, item.signal, tested)
            else:
                item.backtest = backtest(item.kind, item.tool, item.other, tested)
    return found


def _mode_runs(mode: FailureMode) -> list[Run]:
    agents = set(Incident.objects.filter(failure_mode=mode).values_list("trace__agent", flat=True))
    return labelled_runs(mode.workspace_id, agents) if agents else []


def mode_backtest(*, mode: FailureMode, kind: str, tool: str, other: str = "") -> dict[str, Any]:
    """An instruction (one a lead wrote or edited, say) backtested on the backtest
    half of the labelled runs of the mode's agents, as drafted ones are."""
    tested = split(_mode_runs(mode))[1]
    return backtest(kind, tool, other, tested)


def success_share(*, mode: FailureMode, tool: str) -> tuple[int, int]:
    """How many of the successful labelled runs of the mode's agents call `tool`,
    of how many: what an instruction forbidding `tool` would take away."""
    successes = [r for r in _mode_runs(mode) if not r.failed]
    return sum(tool in r.tools for r in successes), len(successes)


def _split(runs: list[Run], holds: Any) -> tuple[int, int, int, int]:
    a = b = c = d = 0
    for run in runs:
        if holds(run):
            a, b = a + run.failed, b + 1
        else:
            c, d = c + run.failed, d + 1
    return a, b, c, d


def _evidence(mark: Mark, runs: list[Run], error: str) -> Evidence | None:
    def holds(r: Run) -> bool:
        return mark.holds(r.signals, r.tools)

    a, b, c, d = _split(runs, holds)
    counts = {"failed_with": a, "runs_with": b, "failed_without": c, "runs_without": d}
    lift = lift_within_agents(runs, holds)
    successes = [r for r in runs if not r.failed]
    if mark.kind == "without-first":
        first, then = mark.args
        users = [r for r in successes if then in r.tools]
        did = sum(1 for r in users if first in r.tools[: r.tools.index(then)])
        counts |= {"successes_did": did, "successes_relevant": len(users)}
        return Evidence("order", then, other=first, counts=counts, lift=lift)
    if mark.kind == "never":
        did = sum(1 for r in successes if mark.args[0] in r.tools)
        counts |= {"successes_did": did, "successes_relevant": len(successes)}
        return Evidence("missing", mark.args[0], counts=counts, lift=lift)
    if mark.kind == "called":
        did = sum(1 for r in successes if mark.args[0] in r.tools)
        counts |= {"successes_did": did, "successes_relevant": len(successes)}
        return Evidence("unexpected", mark.args[0], counts=counts, lift=lift)
    signal = mark.args[0]
    if signal.startswith("error:"):
        tool = signal.split(":", 2)[1]
        return Evidence("error", tool, error=error, counts=counts, lift=lift, signal=signal)
    if signal.startswith("repeat:"):
        return Evidence("repeat", signal.split(":", 1)[1], counts=counts, lift=lift)
    return None


def _long_runs(runs: list[Run]) -> Evidence | None:
    lengths = sorted(len(r.tools) for r in runs if not r.failed)
    if len(lengths) < 5:
        return None
    median = lengths[len(lengths) // 2]
    p90 = lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]
    limit = max(p90, median + 2)

    def long(r: Run) -> bool:
        return len(r.tools) > limit

    a, b, c, d = _split(runs, long)
    counts = {"failed_with": a, "runs_with": b, "failed_without": c, "runs_without": d,
              "median": median, "limit": limit}  # fmt: skip
    return Evidence("long_run", "", counts=counts, lift=lift_within_agents(runs, long))


def _recovery(workspace_id: int, mark: Mark, runs: list[Run], item: Evidence) -> Evidence | None:
    """What runs that hit this error and still succeeded did next, when enough of
    them agree: for a generic tool (a shell), the command they ran (its first words,
    not the failing command's); for any other tool, the other tool they called
    ("next_call"; calling the same tool again is the retry, not a recovery)."""
    generic = is_generic(item.tool)
    from .diagnosis.facts import trace_facts
    from .mining import _load

    signal = mark.args[0]
    _, tool, kind = signal.split(":", 2)
    recovered = [r.trace_id for r in runs if not r.failed and signal in r.signals][:100]
    if len(recovered) < MIN_RECOVERED:
        return None
    heads: Counter[str] = Counter()
    failing: Counter[str] = Counter()
    for row in _load(workspace_id, recovered):
        facts = trace_facts(row.steps)
        event = next((e for e in facts.errors if e.tool == tool and e.kind == kind), None)
        if event is None:
            continue
        call = next((c for c in facts.calls if c.step == event.step), None)
        after = next((c for c in facts.calls if c.step > event.step), None)
        if after is None:
            continue
        if not generic:
            if after.name != tool and not after.name.startswith("user."):
                heads[after.name] += 1
            continue
        head = command_head(after.command)
        if head and (call is None or command_head(call.command) != head):
            heads[head] += 1
        if call is not None:
            failing[command_head(call.command)] += 1
    if not heads:
        return None
    head, n = heads.most_common(1)[0]
    if n < MIN_RECOVERED or n / len(recovered) < RECOVERY_AGREEMENT:
        return None
    return Evidence(
        "recovery" if generic else "next_call", tool, other=head, error=item.error,
        lift=item.lift, incidents=item.incidents,
        counts={"recovered_did": n, "recovered": len(recovered)},
    )  # fmt: skip


# An answer that says the service was busy or slow, not that the call was wrong.
TRANSIENT = re.compile(
    r"\b(?:429|502|503|504|rate.?limit\w*|too many requests|"
    r"(?:read|connect|request|gateway)?timed? ?outs?|(?:service|temporarily) unavailable|"
    r"try again later)\b",
    re.I,
)


def is_transient(error: str) -> bool:
    return bool(TRANSIENT.search(error))


def retry_backtest(workspace_id: int, signal: str, tested: list[Run]) -> dict[str, Any]:
    """The retry checked on the backtest half ("when `T` gives a busy or slow answer,
    the action did not happen: not done until a `T` call succeeds"): of the runs
    that hit that answer, those with a later `T` call that succeeded against those
    without."""
    from .diagnosis.facts import trace_facts
    from .mining import _load

    _, tool, kind = signal.split(":", 2)
    hit = {r.trace_id: r for r in tested if signal in r.signals}
    sides: list[tuple[Run, bool]] = []
    ids = sorted(hit)[:RECOVERY_BACKTEST_RUNS]
    for start in range(0, len(ids), 500):
        for row in _load(workspace_id, ids[start : start + 500]):
            facts = trace_facts(row.steps)
            event = next((e for e in facts.errors if e.tool == tool and e.kind == kind), None)
            if event is None:
                continue
            failed_at = {e.step for e in facts.errors if e.tool == tool}
            steps = [c.step for c in facts.calls]
            later = [c.step for c in facts.calls if c.name == tool and c.step > event.step]
            sides.append((hit[row.id], any(_answered(s, steps, failed_at) for s in later)))
    return compare_sides(sides)


def _answered(step: int, steps: list[int], failed_at: set[int]) -> bool:
    """Whether the call at `step` succeeded: no error of its tool before the next call."""
    following = [s for s in steps if s > step]
    end = following[0] if following else step + 10**9
    return not any(step <= e < end for e in failed_at)


# Runs read step by step for a recovery's backtest, at most (the newest are not
# preferred: the first by trace id, as the split is).
RECOVERY_BACKTEST_RUNS = 2000


def recovery_backtest(
    workspace_id: int, signal: str, head: str, tested: list[Run], *, by_tool: bool = False
) -> dict[str, Any]:
    """A recovery checked on the backtest half ("when `T` answers E, run F next", or,
    `by_tool`, "call `F` next"): of the runs that hit E, those whose next call ran F
    against those whose next call did not (or that made none), by success and
    within the same task."""
    from .diagnosis.facts import trace_facts
    from .mining import _load

    _, tool, kind = signal.split(":", 2)
    hit = {r.trace_id: r for r in tested if signal in r.signals}
    sides: list[tuple[Run, bool]] = []
    ids = sorted(hit)[:RECOVERY_BACKTEST_RUNS]
    rows = (
        row
        for start in range(0, len(ids), 500)
        for row in _load(workspace_id, ids[start : start + 500])
    )
    for row in rows:
        facts = trace_facts(row.steps)
        event = next((e for e in facts.errors if e.tool == tool and e.kind == kind), None)
        if event is None:
            continue
        after = next((c for c in facts.calls if c.step > event.step), None)
        did = after is not None and (
            after.name == head if by_tool else command_head(after.command) == head
        )
        sides.append((hit[row.id], did))
    return compare_sides(sides)
