"""A failed run beside a successful run of the same task, call by call (6/8 item 2).

The successful run is chosen as the diagnosis chooses it (`diagnosis/same_task.py`):
among the workspace's successful runs of the same task (the same `task_key`, else
the same task text), the one that shares the most calls, tool and arguments
alike. When the task has no successful run, the nearest similar task's are used
instead (the diagnosis's neighbours: the same agent's successful runs whose task
text is most alike, `offline.TaskIndex`), and the page says so, with how alike
the two tasks are. The agent's tool calls of both runs (a simulated user's `user.*` calls
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

from .diagnosis import offline
from .diagnosis.facts import StepView
from .diagnosis.same_task import diverge
from .mining import analysis_task_key, success_pool, tool_kinds, tool_vocabularies
from .models import TraceAnalysis
from .selectors import run_calls

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
    # "same" (folded), "similar" (the same tool, another task's values), "pair",
    # "failed_only", "success_only"
    kind: str
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
    same_task: bool = True  # False: the nearest similar task's run (no run of this task worked)
    similarity: float | None = None  # how alike the two tasks' texts are, when not the same task
    candidate_ids: list[int] = field(default_factory=list)  # the runs one may choose instead
    # Which runs recorded no tool step, their calls read from their model calls
    # ("failed", "successful"): numbered by the model call that asked for each.
    from_model_calls: list[str] = field(default_factory=list)


@dataclass
class Candidates:
    """Successful runs to compare a failed run with: of its own task, else of the
    nearest similar tasks (with each task's similarity)."""

    ids: list[int]
    same_task: bool
    similarity: dict[int, float] = field(default_factory=dict)


def _calls(trace: Trace) -> list[StepView]:
    """The agent's tool calls, as the diagnosis reads them (`selectors.run_calls`)."""
    found = run_calls(workspace_id=trace.workspace_id, trace_ids=[trace.pk])[trace.pk]
    return [s for s in found if not s.name.startswith("user.")]


def _key(step: StepView) -> str:
    return step.name + " " + json.dumps(step.input, sort_keys=True, default=str)


def _side(step: StepView) -> Side:
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


def similar_task_runs(*, workspace: Workspace, trace: Trace) -> dict[int, float]:
    """The same agent's successful runs of the tasks most like this one's (task words
    alike, at least one tool in common), each with its similarity, most alike first."""
    if not trace.task.strip() or not trace.agent:
        return {}
    tools = {s.name for s in _calls(trace) if s.name}
    index = offline.TaskIndex(success_pool(workspace.pk, trace.agent))
    return {n.trace_id: n.score for n in index.nearest(trace.task, tools, exclude=trace.pk)}


def comparison_candidates(*, workspace: Workspace, trace: Trace) -> Candidates:
    """Successful runs of this run's task, else of the nearest similar tasks."""
    same = successful_runs_of_task(workspace=workspace, trace=trace)
    if same:
        return Candidates(same, True)
    similar = similar_task_runs(workspace=workspace, trace=trace)
    return Candidates(list(similar), False, similar)


def comparison_offer(*, workspace: Workspace, trace: Trace) -> str:
    """What a failed run can be compared with, for its link: "this task" (a run of
    its task succeeded), "a similar task" (none did, but a run of its agent did; the
    page finds the nearest, or says none is alike enough), or "" (nothing)."""
    if trace.status != "failed":
        return ""
    if successful_runs_of_task(workspace=workspace, trace=trace):
        return "this task"
    others = TraceAnalysis.objects.filter(
        workspace=workspace, agent=trace.agent, verdict="succeeded"
    )
    return "a similar task" if trace.task.strip() and others.exists() else ""


def run_comparison(
    *, workspace: Workspace, trace: Trace, success_pk: int | None = None
) -> Comparison | None:
    """The failed run beside its closest successful run of the same task, else of the
    nearest similar task (or the one asked for, if it is one of them); None when
    neither exists."""
    found = comparison_candidates(workspace=workspace, trace=trace)
    candidates = found.ids
    if not candidates:
        return None
    mine = views = _calls(trace)
    traces = Trace.objects.filter(workspace=workspace).in_bulk(candidates)
    runs = {
        pk: [s for s in found_calls if not s.name.startswith("user.")]
        for pk, found_calls in run_calls(workspace_id=workspace.pk, trace_ids=candidates).items()
        if pk in traces
    }
    mine_keys = {_key(s) for s in mine if not s.error}

    def shared(pk: int) -> int:
        return len(mine_keys & {_key(s) for s in runs[pk]})

    if success_pk in runs:
        chosen = success_pk
        why = "the successful run you chose"
    elif found.same_task:
        chosen = max(candidates, key=shared)
        why = "the one sharing the most calls with this run, tool and arguments alike"
    else:
        # The most alike task first; among equally alike ones, the most calls in common.
        chosen = max(candidates, key=lambda pk: (round(found.similarity[pk], 2), shared(pk)))
        why = "the one whose task is most alike"
    success = traces[chosen]
    theirs = runs[chosen]
    # The diagnosis's own contrast: all the successful runs of the task (it picks the
    # same closest one), or only the one compared with.
    contrast: dict[str, list[list[StepView]]] = {}
    for pk in candidates if found.same_task and success_pk not in runs else [chosen]:
        contrast.setdefault(traces[pk].agent, []).append(runs[pk])
    # Another task's argument values differ because the task does: only the same
    # task's runs are compared value by value (and by the diagnosis's divergence).
    finding = (
        diverge(
            views,
            contrast,
            tool_kinds(workspace.pk),
            agent=trace.agent,
            vocabulary=tool_vocabularies(workspace.pk, {trace.agent} | set(contrast)),
        )
        if found.same_task
        else None
    )
    n = len(candidates)
    if found.same_task:
        why = (
            f"{n} successful run{'s' if n != 1 else ''} of the same task in this workspace; "
            f"compared with {why} ({shared(chosen)} in common)."
        )
    else:
        common = shared(chosen)
        why = (
            f"No run of this task has succeeded. Compared with a successful run of the "
            f"nearest similar task instead: {n} successful run{'s' if n != 1 else ''} of "
            f"{trace.agent} with a similar task; {why} (task text "
            f"{found.similarity[chosen]:.0%} alike, {common} call{'s' if common != 1 else ''} "
            "in common). "
            "Its values can differ because its task does."
        )
    rows = _align(mine, theirs, by_arguments=found.same_task)
    _mark_first(rows, finding.step if finding else None, finding.tool if finding else "")
    recorded = set(
        Step.objects.filter(trace_id__in=[trace.pk, chosen], kind="tool_call")
        .exclude(name__startswith="user.").values_list("trace_id", flat=True).distinct()
    )  # fmt: skip
    return Comparison(
        success, n, why, rows, finding.description if finding else "",
        same_task=found.same_task,
        similarity=None if found.same_task else found.similarity[chosen],
        candidate_ids=candidates,
        from_model_calls=[side for side, pk, calls in (("failed", trace.pk, mine),
                                                       ("successful", chosen, theirs))
                          if calls and pk not in recorded],
    )  # fmt: skip


def _align(mine: list[StepView], theirs: list[StepView], *, by_arguments: bool = True) -> list[Row]:
    """Calls matched by tool and arguments (runs of one task), or by tool alone (a
    similar task's run, whose values differ with its task)."""
    key = _key if by_arguments else (lambda step: step.name)
    matcher = difflib.SequenceMatcher(
        a=[key(s) for s in mine], b=[key(s) for s in theirs], autojunk=False
    )
    rows: list[Row] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" and by_arguments:
            rows.append(Row("same", _side(mine[i1]), _side(theirs[j1]), folded=i2 - i1))
            continue
        if op == "equal":  # the same tools in a stretch: shown, their values compared
            for ours, other in zip(mine[i1:i2], theirs[j1:j2], strict=True):
                ours_side, other_side = _side(ours), _side(other)
                _differs(ours_side, other_side)
                rows.append(Row("similar", ours_side, other_side))
            continue
        rows += _pair_stretch(mine[i1:i2], theirs[j1:j2])
    return rows


def _pair_stretch(left: list[StepView], right: list[StepView]) -> list[Row]:
    """A stretch where the runs differ: calls to the same tool side by side (their
    values compared), in order; the rest of each side by position. A failed run's
    extra call to another tool is not put beside the successful run's call to the
    tool it then called too ("no such call" next to a call the other run made)."""
    rows: list[Row] = []
    matcher = difflib.SequenceMatcher(
        a=[s.name for s in left], b=[s.name for s in right], autojunk=False
    )
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        ours, others = left[i1:i2], right[j1:j2]
        for n in range(max(len(ours), len(others))):
            a = _side(ours[n]) if n < len(ours) else None
            b = _side(others[n]) if n < len(others) else None
            if a and b:
                _differs(a, b)
            rows.append(Row("pair" if a and b else "failed_only" if a else "success_only", a, b))
    return rows


def _mark_first(rows: list[Row], step: int | None, tool: str) -> None:
    """The divergence the diagnosis names, else the first row that differs."""
    for row in rows:
        if row.kind in ("same", "similar"):
            continue
        if step is not None and step >= 0 and row.failed and row.failed.index == step:
            row.first = True
            return
        if step == -1 and row.success and row.success.name == tool and not row.failed:
            row.first = True
            return
    for row in rows:
        if row.kind not in ("same", "similar"):
            row.first = True
            return
