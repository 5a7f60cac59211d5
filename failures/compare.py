"""A failed run beside a successful run of the same task, call by call (6/8 item 2).

The successful run is chosen as the diagnosis chooses it (`diagnosis/same_task.py`):
among the workspace's successful runs of the same task (the same `task_key`, else
the same task text), the one that shares the most calls, tool and arguments
alike. The agent's tool calls of both runs (a simulated user's `user.*` calls
left out) are aligned by tool and arguments (difflib's longest matching blocks);
identical stretches are folded, and the first divergence is the one the
diagnosis names (a state-changing call the successful run did not make, or one
it made that this run never did), else the first call that differs.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from traces.models import Step, Trace
from workspaces.models import Workspace

from .diagnosis.facts import StepView
from .diagnosis.same_task import diverge
from .mining import analysis_task_key, tool_kinds
from .models import TraceAnalysis

CANDIDATES = 20


@dataclass
class Side:
    index: int
    name: str
    args: dict[str, Any] | Any
    error: str
    differs: list[str] = field(default_factory=list)  # argument names whose values differ


@dataclass
class Row:
    kind: str  # "same" (folded), "pair", "failed_only", "success_only"
    failed: Side | None = None
    success: Side | None = None
    folded: int = 0  # calls in a folded stretch
    first: bool = False  # the first divergence


@dataclass
class Comparison:
    success: Trace
    candidates: int  # successful runs of the task considered
    why: str
    rows: list[Row]
    finding: str = ""


def _calls(trace: Trace) -> list[Step]:
    return [
        step
        for step in trace.steps.filter(kind="tool_call").order_by("index")
        if not step.name.startswith("user.")
    ]


def _key(step: Step) -> str:
    return step.name + " " + json.dumps(step.input, sort_keys=True, default=str)


def _side(step: Step) -> Side:
    return Side(step.index, step.name, step.input, step.error)


def _differs(left: Side, right: Side) -> None:
    if (
        left.name != right.name
        or not isinstance(left.args, dict)
        or not isinstance(right.args, dict)
    ):
        return
    names = sorted(set(left.args) | set(right.args))
    diff = [n for n in names if left.args.get(n) != right.args.get(n)]
    left.differs = right.differs = diff


def successful_runs_of_task(*, workspace: Workspace, trace: Trace) -> list[int]:
    """Ids of the workspace's successful runs of this trace's task, newest first."""
    key = analysis_task_key(trace.task_key, trace.task)
    if not key:
        return []
    return list(
        TraceAnalysis.objects.filter(workspace=workspace, verdict="succeeded", task_key=key)
        .exclude(trace=trace)
        .order_by("-trace__started_at", "-trace_id")
        .values_list("trace_id", flat=True)[:CANDIDATES]
    )


def run_comparison(
    *, workspace: Workspace, trace: Trace, success_pk: int | None = None
) -> Comparison | None:
    """The failed run beside its closest successful run of the same task (or the one
    asked for, if it is one of them); None when its task has no successful run."""
    candidates = successful_runs_of_task(workspace=workspace, trace=trace)
    if not candidates:
        return None
    mine = _calls(trace)
    views = [StepView(s.index, s.kind, s.name, s.input, None, s.error) for s in mine]
    traces = Trace.objects.filter(workspace=workspace).in_bulk(candidates)
    runs = {pk: _calls(traces[pk]) for pk in candidates}
    mine_keys = {_key(s) for s in mine if not s.error}
    if success_pk in runs:
        chosen = success_pk
        why = "the successful run you chose"
    else:
        chosen = max(candidates, key=lambda pk: len(mine_keys & {_key(s) for s in runs[pk]}))
        why = "the one sharing the most calls with this run, tool and arguments alike"
    success = Trace.objects.get(workspace=workspace, pk=chosen)
    theirs = runs[chosen]
    # The diagnosis's own contrast: all the successful runs (it picks the same closest
    # one), or only the one the person chose.
    contrast: dict[str, list[list[StepView]]] = {}
    for pk in [chosen] if success_pk in runs else candidates:
        contrast.setdefault(traces[pk].agent, []).append(
            [StepView(s.index, s.kind, s.name, s.input, None, s.error) for s in runs[pk]]
        )
    finding = diverge(views, contrast, tool_kinds(workspace.pk))
    shared = len(mine_keys & {_key(s) for s in theirs})
    why = (
        f"{len(candidates)} successful run{'s' if len(candidates) != 1 else ''} of the same task "
        f"in this workspace; compared with {why} ({shared} in common)."
    )
    rows = _align(mine, theirs)
    _mark_first(rows, finding.step if finding else None, finding.tool if finding else "")
    return Comparison(success, len(candidates), why, rows, finding.description if finding else "")


def _align(mine: list[Step], theirs: list[Step]) -> list[Row]:
    matcher = difflib.SequenceMatcher(
        a=[_key(s) for s in mine], b=[_key(s) for s in theirs], autojunk=False
    )
    rows: list[Row] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows.append(Row("same", _side(mine[i1]), _side(theirs[j1]), folded=i2 - i1))
            continue
        left, right = mine[i1:i2], theirs[j1:j2]
        for n in range(max(len(left), len(right))):
            a = _side(left[n]) if n < len(left) else None
            b = _side(right[n]) if n < len(right) else None
            if a and b:
                _differs(a, b)
            rows.append(Row("pair" if a and b else "failed_only" if a else "success_only", a, b))
    return rows


def _mark_first(rows: list[Row], step: int | None, tool: str) -> None:
    """The divergence the diagnosis names, else the first row that differs."""
    for row in rows:
        if row.kind == "same":
            continue
        if step is not None and step >= 0 and row.failed and row.failed.index == step:
            row.first = True
            return
        if step == -1 and row.success and row.success.name == tool and not row.failed:
            row.first = True
            return
    for row in rows:
        if row.kind != "same":
            row.first = True
            return
