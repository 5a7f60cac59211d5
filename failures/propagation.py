"""From one label to the failed runs that went wrong the same way.

When a person labels a step of a failed run (failures/labels.py), the other
failed runs of the workspace are searched for a step like it: the same kind of
step (and, for a tool call, the same tool), compared by the text of what was
called with what, what came back, and the agent's words just before it,
embedded with the model incidents use. Each run offers its closest such step;
runs of the same task, runs that failed the same named check, and runs of the
same agent rank higher. The best `MAX_CANDIDATES` at or above `MIN_SIMILARITY`
are stored as "same failure?" candidates for a lead to confirm or reject.

Never offered: the labelled run itself, runs already labelled or skipped, runs
already offered for this label, runs a lead rejected for any label of the
same failure mode, and (for a label on a step) runs whose own diagnosis names a
cause at an earlier step than their step like the labelled one: they went wrong
before it, another way (chosen on the tune halves of bench/propagation.py: k=3
precision@10 0.611 -> 0.714, recall@50 0.733 -> 0.667); and, when the labelled
step is its run's first state-changing call, runs that changed something before
their step like it (tune halves: 0.714 -> 0.769, recall@50 unchanged).

A label on the run as a whole compares runs by the tools they called and the
checks they failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from traces.models import Step, StepKind, Trace

from .models import (
    NOT_CAUSES,
    TRACE_LEVEL_INDEX,
    CandidateState,
    Incident,
    LabelCandidate,
    RunLabel,
    TraceAnalysis,
)

MAX_CANDIDATES = 50
# The labels each newly diagnosed batch of runs is compared with (the newest).
RECENT_LABELS = 50
# Chosen by bench/propagation.py on the tune halves of the labelled dev sets (k=3:
# the highest precision@10 that keeps recall@50 ≥ 0.5); bench/RESULTS.md.
MIN_SIMILARITY = 0.5
MAX_STEPS = 8000
SAME_TASK = 0.15
SAME_CHECK = 0.10
SAME_AGENT = 0.05
_TEXT = 300


@dataclass
class Found:
    trace_id: int
    step_index: int
    similarity: float
    score: float
    reasons: list[str] = field(default_factory=list)


def _short(value: Any) -> str:
    if value is None or value == "" or value == {}:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:_TEXT]


def step_text(kind: str, name: str, input_: Any, output: Any, error: str, said: str) -> str:
    """What a step is, for comparing: call, arguments, answer, the words before."""
    parts = [f"{kind} {name}".strip(), _short(input_), _short(error) or _short(output)]
    if said:
        parts.append(f"said before: {said[:200]}")
    return " | ".join(p for p in parts if p)


def failed_checks(trace: Trace | dict[str, Any]) -> set[str]:
    checks = trace.checks if isinstance(trace, Trace) else trace.get("checks") or []
    return {str(c.get("name")) for c in checks or [] if isinstance(c, dict) and not c.get("passed")}


def _said_before(trace_id: int, index: int) -> str:
    words = (
        Step.objects.filter(
            trace_id=trace_id,
            index__lt=index,
            kind__in=[StepKind.ASSISTANT_MESSAGE, StepKind.LLM_CALL],
        )
        .order_by("-index")
        .values_list("output", flat=True)
        .first()
    )
    return _short(words)


def _pool(label: RunLabel, among: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """Failed runs that may be offered (of `among` if given): trace id -> agent, task
    key, failed checks."""
    excluded = set(RunLabel.objects.filter(workspace=label.workspace).values_list("trace_id",
                                                                                  flat=True))  # fmt: skip
    excluded |= set(LabelCandidate.objects.filter(label=label).values_list("trace_id", flat=True))
    if label.failure_mode_id:
        excluded |= set(
            LabelCandidate.objects.filter(
                label__failure_mode_id=label.failure_mode_id, state=CandidateState.REJECTED
            ).values_list("trace_id", flat=True)
        )
    excluded.add(label.trace_id)
    runs = TraceAnalysis.objects.filter(workspace=label.workspace, verdict="failed")
    if among is not None:
        runs = runs.filter(trace_id__in=among)
    rows = runs.exclude(trace_id__in=excluded).values_list(
        "trace_id", "agent", "task_key", "trace__checks"
    )
    return {
        t: {"agent": agent, "task_key": key, "checks": failed_checks({"checks": checks})}
        for t, agent, key, checks in rows
    }


def _candidate_steps(
    pool: dict[int, dict[str, Any]], kind: str, name: str, same_task: list[int]
) -> list[tuple[int, int, str]]:
    """(trace id, step index, text) of the steps like the seed, with the words before
    each (one statement; the nearest earlier assistant words by a lateral join)."""
    table = Step._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT s.trace_id, s.index, s.kind, s.name, left(s.input::text, 400),
                   left(s.output::text, 400), left(s.error, 400), left(p.output::text, 300)
            FROM {table} s
            LEFT JOIN LATERAL (
                SELECT q.output FROM {table} q
                WHERE q.trace_id = s.trace_id AND q.index < s.index
                  AND q.kind IN ('assistant_message', 'llm_call')
                ORDER BY q.index DESC LIMIT 1
            ) p ON true
            WHERE s.trace_id = ANY(%s) AND s.kind = %s
              AND (s.name = %s OR s.trace_id = ANY(%s))
            ORDER BY s.trace_id DESC, s.index
            LIMIT %s
            """,
            [list(pool), kind, name, same_task, MAX_STEPS],
        )
        rows = cursor.fetchall()
    return [
        (t, i, step_text(k, n, _json(inp), _json(out), err or "", _short(_json(said))))
        for t, i, k, n, inp, out, err, said in rows
    ]


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # cut mid-value by left(): compare the text as it is


def _run_text(trace_id: int) -> str:
    calls = list(
        Step.objects.filter(trace_id=trace_id, kind=StepKind.TOOL_CALL)
        .order_by("index")
        .values_list("name", "error")[:60]
    )
    errors = [e.splitlines()[0][:120] for _, e in calls if e]
    return "calls: " + ", ".join(n for n, _ in calls) + (" | errors: " + "; ".join(errors[:5]))


def rank(
    label: RunLabel, among: list[int] | None = None, limit: int | None = MAX_CANDIDATES
) -> list[Found]:
    """The runs most like the labelled one (of `among` if given), best first, at most
    `limit` of them (None: all). Not stored."""
    from .embedding import texts_embed

    pool = _pool(label, among)
    if not pool:
        return []
    seed_trace = label.trace
    seed_analysis = TraceAnalysis.objects.filter(trace=seed_trace).first()
    seed_key = seed_analysis.task_key if seed_analysis else ""
    seed_agent = seed_analysis.agent if seed_analysis else seed_trace.agent
    seed_checks = failed_checks(seed_trace)
    # Labels on the same tool compare the same steps: their texts are embedded once
    # while the process keeps them.
    embed = texts_embed
    if label.step_index == TRACE_LEVEL_INDEX:
        ids = list(pool)[:MAX_STEPS]
        texts = [_run_text(t) for t in ids]
        seed_vector = embed([_run_text(seed_trace.pk)])[0]
        steps = [(t, TRACE_LEVEL_INDEX, text) for t, text in zip(ids, texts, strict=True)]
    else:
        seed = Step.objects.get(trace=seed_trace, index=label.step_index)
        said = _said_before(seed_trace.pk, seed.index)
        seed_vector = embed(
            [step_text(seed.kind, seed.name, seed.input, seed.output, seed.error, said)]
        )[0]
        same_task = [t for t, p in pool.items() if seed_key and p["task_key"] == seed_key]
        steps = _candidate_steps(pool, seed.kind, seed.name, same_task)
    if not steps:
        return []
    vectors = embed([text for _, _, text in steps])
    similarities = vectors @ seed_vector
    best: dict[int, Found] = {}
    for (trace_id, index, _), similarity in zip(steps, similarities.tolist(), strict=True):
        info, reasons = pool[trace_id], [f"similar step ({similarity:.2f})"]
        score = similarity
        if seed_key and info["task_key"] == seed_key:
            score += SAME_TASK
            reasons.append("same task")
        if seed_checks and seed_checks & info["checks"]:
            score += SAME_CHECK
            reasons.append(
                "failed the same check: " + ", ".join(sorted(seed_checks & info["checks"]))[:150]
            )
        if seed_agent and info["agent"] == seed_agent:
            score += SAME_AGENT
            reasons.append("same agent")
        if trace_id not in best or score > best[trace_id].score:
            best[trace_id] = Found(trace_id, index, float(similarity), float(score), reasons)
    found = [f for f in best.values() if f.similarity >= MIN_SIMILARITY]
    if label.step_index != TRACE_LEVEL_INDEX:
        earlier = _caused_before(found)
        found = [f for f in found if f.trace_id not in earlier]
        if _first_change(seed_trace.pk, label.step_index, label.workspace_id):
            changed = _changed_before(found, label.workspace_id)
            found = [f for f in found if f.trace_id not in changed]
    found.sort(key=lambda f: (-f.score, f.trace_id))
    return found if limit is None else found[:limit]


def _writes(trace_ids: list[int], workspace_id: int) -> list[tuple[int, int]]:
    """(trace id, step index) of the state-changing calls of these runs."""
    from .diagnosis.same_task import changes_state
    from .mining import tool_kinds

    kinds = tool_kinds(workspace_id)
    rows = Step.objects.filter(trace_id__in=trace_ids, kind=StepKind.TOOL_CALL).values_list(
        "trace_id", "index", "name"
    )
    return [(t, i) for t, i, name in rows if changes_state(name, kinds)]


def _first_change(trace_id: int, index: int, workspace_id: int) -> bool:
    """Whether the labelled step is its run's first state-changing call."""
    writes = sorted(i for _, i in _writes([trace_id], workspace_id))
    return bool(writes) and writes[0] == index


def _changed_before(found: list[Found], workspace_id: int) -> set[int]:
    """Runs that made a state-changing call before their step like the labelled one."""
    at = {f.trace_id: f.step_index for f in found}
    return {t for t, i in _writes(list(at), workspace_id) if i < at[t]}


def _caused_before(found: list[Found]) -> set[int]:
    """Runs whose own diagnosis names a cause at an earlier step than the one that is
    like the labelled step: they went wrong before it, another way."""
    if not found:
        return set()
    at = {f.trace_id: f.step_index for f in found}
    rows = (
        Incident.objects.filter(trace_id__in=list(at))
        .exclude(kind__in=NOT_CAUSES)
        .exclude(step_index__lt=0)
        .values_list("trace_id", "step_index")
    )
    return {t for t, step in rows if step < at[t]}


def propagate(*, label_id: int) -> int:
    """Store the label's candidates; returns how many were added."""
    label = RunLabel.objects.select_related("trace", "workspace").filter(pk=label_id).first()
    if label is None or label.skip_reason or not label.sentence:
        return 0
    return _store(label, rank(label))


def propagate_to_runs(*, workspace_id: int, trace_ids: list[int]) -> int:
    """Offer these newly diagnosed runs to the workspace's `RECENT_LABELS` newest
    labels: a failed run like a labelled one joins that label's candidates, as it
    would have had it been there when the label was saved. A label holds at most
    `MAX_CANDIDATES` offered at once (the best of these runs fill its free places).
    Returns how many were added."""
    failed = list(
        TraceAnalysis.objects.filter(
            workspace_id=workspace_id, trace_id__in=trace_ids, verdict="failed"
        ).values_list("trace_id", flat=True)
    )
    if not failed:
        return 0
    labels = (
        RunLabel.objects.filter(workspace_id=workspace_id, skip_reason="")
        .exclude(sentence="")
        .select_related("trace", "workspace")
        .order_by("-created_at", "-pk")[:RECENT_LABELS]
    )
    added = 0
    for label in labels:
        room = MAX_CANDIDATES - label.candidates.filter(state=CandidateState.OFFERED).count()
        if room <= 0:
            continue
        try:
            found = rank(label, among=failed)
        except Step.DoesNotExist:  # its run was sent again without the labelled step
            continue
        added += _store(label, found[:room])
    return added


def runs_like_modes(*, workspace_id: int, mode_ids: list[int], trace_ids: list[int]) -> set[int]:
    """Of these runs, the failed ones that went wrong like a labelled run of these
    modes: a "same failure?" candidate of one of the modes' labels that no lead
    rejected, or a run `rank` finds like one of those labels (the same rules and
    threshold as the candidates offered to a lead). A skill trial measures a mode
    that holds only labelled runs with them: new runs join such a mode only once
    someone labels them. Runs people labelled are left out (their own label says
    what went wrong)."""
    if not mode_ids or not trace_ids:
        return set()
    labels = list(
        RunLabel.objects.filter(
            workspace_id=workspace_id, failure_mode_id__in=mode_ids, skip_reason=""
        )
        .exclude(sentence="")
        .select_related("trace", "workspace")
    )
    if not labels:
        return set()
    offered = LabelCandidate.objects.filter(label__in=labels, trace_id__in=trace_ids)
    rejected = set(offered.filter(state=CandidateState.REJECTED).values_list("trace_id", flat=True))
    like = set(offered.values_list("trace_id", flat=True)) - rejected
    for label in labels:
        try:
            found = rank(label, among=list(trace_ids), limit=None)
        except Step.DoesNotExist:  # its run was sent again without the labelled step
            continue
        like.update(f.trace_id for f in found)
    return like


def _store(label: RunLabel, found: list[Found]) -> int:
    LabelCandidate.objects.bulk_create(
        [
            LabelCandidate(
                workspace=label.workspace,
                label=label,
                trace_id=f.trace_id,
                step_index=f.step_index,
                score=round(f.score, 4),
                similarity=round(f.similarity, 4),
                reasons=f.reasons,
            )  # fmt: skip
            for f in found
        ],
        ignore_conflicts=True,
    )
    return len(found)
