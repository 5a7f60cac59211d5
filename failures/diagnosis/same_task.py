"""Same-task contrast at the level of arguments: a failed run against successful runs
of the *same task*, call by call.

Runs of one task share a key (`task_key`: the task text, normalised: case,
spacing and punctuation at the ends do not matter). A failed run whose task
also has successful runs (of any agent of the workspace that calls at least one
of the same tools) is compared with the closest of them (the one sharing the most calls, tool and arguments alike).
The finding points at the first divergence that matters:

1. the first call that changes state (not a read: get/find/list/search/…; never
   a simulated user's `user.*` call) that the closest successful run did not
   make with these arguments: "called `cancel_pending_order` with order_id
   #W1; the 3 successful runs of this task did not cancel; they called
   `modify_pending_order_items`";
2. else a state-changing call the closest successful run made and this run
   never did:
   "never called `exchange_delivered_order_items` (…), which the successful run
   made".

Arguments the successful runs themselves gave different values (an id each run
made up, an attempt counter) are left out of the comparison: the task does not
fix them (`free_arguments`).

Only calls that went through count (a call that failed with an error changed
nothing, and its error is evidence for the other methods); a tool the run tried
and failed is not "missing". No divergence among state-changing calls: no
finding (the failure lies elsewhere, and the other methods look).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .facts import StepView
from .offline import Finding

READ_LIKE = re.compile(
    r"^(?:[a-z0-9_]+\.)?(get|find|list|search|calculate|check|lookup|look_up|view|show|fetch|"
    r"describe|verify|query|read|think|browse\b)",
    re.I,
)
# Tools whose input is a program or a command (a shell, an interpreter, a query):
# two good runs of one task rarely write the same one, so they are not compared by
# their arguments (the other methods read their errors).
OPEN_ENDED = re.compile(
    r"^(?:[a-z0-9_]+\.)?(bash|sh|zsh|shell|terminal|computer_?terminal|cmd|exec|execute|"
    r"execute_code|run|run_command|run_code|python|python3|ipython|node|sql|code)$",
    re.I,
)
CONFIDENCE = 0.9
_SPACE = re.compile(r"\s+")


def task_key(task: str) -> str:
    """Runs whose task text is the same, up to case and spacing, share a key."""
    return _SPACE.sub(" ", task.casefold()).strip(" .!?\n\t")


@dataclass(frozen=True)
class ToolKinds:
    """A workspace's corrections to the guess from tool names (Diagnosis settings)."""

    writes: frozenset[str] = frozenset()
    reads: frozenset[str] = frozenset()


def changes_state(name: str, kinds: ToolKinds | None = None) -> bool:
    """Is a call to `name` one that changes something and is compared by its
    arguments (not a read, not the user's, not an open-ended command or program)?
    The workspace's settings first, then the name."""
    if not name or name.startswith("user."):
        return False
    if kinds is not None:
        if name in kinds.writes:
            return True
        if name in kinds.reads:
            return False
    return not READ_LIKE.match(name) and not OPEN_ENDED.match(name)


@dataclass(frozen=True)
class Call:
    index: int
    name: str
    args: str  # normalised JSON of the arguments
    shown: str  # the arguments as a person reads them
    raw: Any = field(default=None, compare=False)  # the arguments as sent


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, float) and value.is_integer():
        # 2 and 2.0 are one amount: agents (and JSON encoders) write either.
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _shown(value: Any, limit: int = 120) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in value.items())
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def calls_of(steps: Sequence[StepView]) -> list[Call]:
    """The agent's tool calls that went through, in order (a simulated user's `user.*`
    calls left out; a call that failed with an error changed nothing)."""
    return [
        Call(s.index, s.name, json.dumps(_normalise(s.input), sort_keys=True, default=str),
             _shown(s.input), s.input)
        for s in steps
        if s.kind == "tool_call" and s.name and not s.name.startswith("user.") and not s.error
    ]  # fmt: skip


_ABSENT = "(absent)"


def free_arguments(runs: Sequence[tuple[str, list[Call]]]) -> dict[str, frozenset[str]]:
    """Per tool, the arguments the task leaves free: the successful runs of the task
    called the tool with different values of them (an id each run made up, an
    attempt counter). A failed run's value of such an argument says nothing.
    Compared run against run (the set of values each run used), so a run that
    calls one tool for two items does not free the item."""
    used: dict[str, list[dict[str, frozenset[str]]]] = {}
    for _, calls in runs:
        per_run: dict[str, dict[str, set[str]]] = {}
        for c in calls:
            args = json.loads(c.args)
            if isinstance(args, dict):
                keys = per_run.setdefault(c.name, {})
                for key, value in args.items():
                    keys.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
        for name, keys in per_run.items():
            used.setdefault(name, []).append({k: frozenset(v) for k, v in keys.items()})
    free: dict[str, frozenset[str]] = {}
    for name, seen in used.items():
        named: set[str] = set().union(*seen)
        free[name] = frozenset(
            k for k in named if len({run.get(k, frozenset({_ABSENT})) for run in seen}) > 1
        )
    return free


def _fixed(call: Call, free: Mapping[str, frozenset[str]]) -> str:
    """The call's arguments without those the task leaves free."""
    loose = free.get(call.name)
    if not loose:
        return call.args
    args = json.loads(call.args)
    if not isinstance(args, dict):
        return call.args
    return json.dumps({k: v for k, v in args.items() if k not in loose}, sort_keys=True)


def _with(call: Call, free: Mapping[str, frozenset[str]]) -> str:
    """ " with <its arguments>" as a person reads them, leaving out those the task
    leaves free ("" when none is left)."""
    loose = free.get(call.name)
    if not loose:
        return f" with {call.shown}"
    if not isinstance(call.raw, dict):
        return f" with {call.shown}"
    kept = {k: v for k, v in call.raw.items() if str(k) not in loose}
    return f" with {_shown(kept)}" if kept else ""


def _overlap(a: list[Call], b: list[Call]) -> int:
    left = Counter((c.name, c.args) for c in a)
    right = Counter((c.name, c.args) for c in b)
    return sum((left & right).values())


def diverge(
    failed: Sequence[StepView],
    successes: dict[str, list[list[StepView]]],
    kinds: ToolKinds | None = None,
    *,
    agent: str = "",
    vocabulary: Mapping[str, frozenset[str]] | None = None,
) -> Finding | None:
    """The first state-changing divergence of a failed run from the successful runs
    of its task (`successes`: agent -> those runs' steps), or None.

    `vocabulary` (agent -> every tool it called in any run), when given, keeps
    differences of protocol out: a call the successful run's agent never makes
    in any run (one agent ends with `submit`, another never does) says nothing
    by its absence there, nor does a call this run's agent (`agent`) never
    makes by its absence here."""
    # Only runs that work with the same tools: the same task text handled by an
    # agent with other tools is another job, not a contrast.
    tools = {s.name for s in failed if s.kind == "tool_call" and s.name}
    runs = [(other, calls_of(steps)) for other, group in successes.items() for steps in group]
    runs = [(other, calls) for other, calls in runs if {c.name for c in calls} & tools]
    if not runs:
        return None
    mine = calls_of(failed)
    agent_best, best = max(runs, key=lambda run: _overlap(mine, run[1]))
    total = len(runs)
    who = _who(runs)
    free = free_arguments(runs)
    made = {(c.name, _fixed(c, free)) for c in best}
    # A call some successful run of the task made too (the same values where the
    # task fixes them) did not make this run fail.
    made_by_any = {(c.name, _fixed(c, free)) for _, calls in runs for c in calls}
    called_by_any = {c.name for _, calls in runs for c in calls}
    best_names = {c.name for c in best}
    best_writes = [c for c in best if changes_state(c.name, kinds)]
    theirs_known = vocabulary.get(agent_best) if vocabulary is not None else None
    mine_known = vocabulary.get(agent) if vocabulary is not None and agent else None
    for call in mine:
        fixed = (call.name, _fixed(call, free))
        if not changes_state(call.name, kinds) or fixed in made or fixed in made_by_any:
            continue
        if theirs_known is not None and call.name not in theirs_known:
            continue
        if call.name in best_names:
            theirs = next(c for c in best if c.name == call.name)
            description = (
                f"Called `{call.name}`{_with(call, free)}; the closest successful run of this "
                f"task ({who}) called it{_with(theirs, free)}."
            )
            category = "tool_use.wrong_arguments"
        else:
            instead = ", ".join(f"`{c.name}`" for c in best_writes[:3])
            if call.name in called_by_any:  # another successful run did call it
                whom = f"the closest successful run of this task ({who}) did not"
            elif total > 1:
                whom = f"none of the {total} successful runs of this task ({who}) did"
            else:
                whom = f"the successful run of this task ({who}) did not"
            closest = "the closest" if total > 1 else "it"
            description = f"Called `{call.name}`{_with(call, free)}; {whom}" + (
                f"; {closest} called {instead}." if instead else f"; {closest} changed nothing."
            )
            category = "tool_use.wrong_tool"
        return Finding(call.index, description, category, [call.index], CONFIDENCE, call.name,
                       stats={"evidence": "same_task", "successful_runs": total})  # fmt: skip
    done = {(c.name, _fixed(c, free)) for c in mine}
    # A tool this run tried and that failed is explained by its error (the other
    # methods), not by its absence.
    tried = {s.name for s in failed if s.kind == "tool_call" and s.error}
    for theirs in best_writes:
        if (theirs.name, _fixed(theirs, free)) in done or theirs.name in tried:
            continue
        if mine_known is not None and theirs.name not in mine_known:
            continue
        step = -1  # the run's end: what it never did happened nowhere in it
        description = (
            f"Never called `{theirs.name}`{_with(theirs, free)}, which the closest successful "
            f"run of this task ({who}) did."
        )
        return Finding(step, description, "process.gave_up", [], CONFIDENCE, theirs.name,
                       stats={"evidence": "same_task_missing", "successful_runs": total})  # fmt: skip
    return None


def _who(runs: list[tuple[str, list[Call]]]) -> str:
    counts = Counter(agent for agent, _ in runs)
    parts = [f"{agent} ×{n}" if n > 1 else agent for agent, n in counts.most_common(3)]
    return f"{len(runs)} run{'s' if len(runs) > 1 else ''}: " + ", ".join(parts)
