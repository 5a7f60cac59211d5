"""Incident mining: the diagnosis of stored traces (a service).

Runs after ingest commits (`failures.tasks.analyse_traces`). For each trace:

1. its verdict: failed when the status says so, when its reward is below the
   workspace's threshold for that agent, or when an outcome gave it a negative
   score; succeeded; or unknown;
2. a content hash over what a diagnosis reads (steps, verdict, reward, task,
   scores): an unchanged trace (a re-sent batch, an outcome that changed
   nothing) is not diagnosed again;
3. its facts (`diagnosis/facts.py`), kept on TraceAnalysis:
   the agent's baseline is built from these rows, never by re-reading steps;
4. the diagnosis: Claude when a key is set (`diagnosis/claude.py`), else (and
   when Claude fails) the offline diagnoser (`diagnosis/offline.py`). Failed
   traces get zero or more incidents; a failed trace where nothing is found is
   *undiagnosed*; traces of unknown outcome get incidents for their errors only
   (weighed against the agent's successes when it has a baseline), each a weak
   lead, never a cause (`as_leads`); a trace
   that succeeded gets a *recovered* incident for each kind of error a tool
   flagged in it (the error text, never grouped into a failure mode).

Incidents are upserted on trace × step index, so re-mining changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, TextField
from django.db.models.functions import Cast, Left
from django.utils import timezone

from traces.models import Outcome, Step, Trace, TraceStatus
from workspaces.llm import ModelConfig, ModelError, model_for, over_budget

from .boilerplate import error_gist
from .boilerplate import for_workspace as boilerplate_for
from .diagnosis import evidence, offline
from .diagnosis.claude import diagnose_with_model
from .diagnosis.facts import StepView, TraceFacts, trace_facts
from .diagnosis.model_calls import with_model_calls, with_user_turns
from .diagnosis.same_task import ToolKinds
from .diagnosis.same_task import diverge as same_task_diverge
from .diagnosis.same_task import task_key as same_task_key
from .models import (
    NOT_CAUSES,
    AgentPolicy,
    DiagnosisSettings,
    DiagnosisState,
    Incident,
    IncidentKind,
    IncidentSource,
    PendingAnalysis,
    TraceAnalysis,
)
from .policy import Rule, approved_rules, policy_check
from .selectors import run_calls
from .signatures import MAX_TASK_CHARS, normalise

logger = logging.getLogger(__name__)

TABLE = Incident._meta.db_table
# Bumped when the offline diagnoser changes what it concludes: every trace is
# then diagnosed again by the sweep.
DIAGNOSER_VERSION = (
    # 2: divergence patterns recorded; 3: generated names masked; 4: same-task contrast;
    # 5: user.* calls and tool_result steps are not the agent's calls; telling error lines
    # 6: neighbours by task words without ids (templated tasks of large agents)
    # 7: a signal met along the way needs most runs with it to fail; test-runner verdicts
    # 8: "assumed" is read from the agent's prose, not the code it wrote; an error ended a
    #    run only if at most one message followed it; a kind of evidence must reach the
    #    minimum precision (not merely not be below it beyond sampling error)
    # 9: a same-task divergence or failed check is signed by its tool or check, not values
    # 10: arguments compare numbers by value (2 and 2.0 are one amount)
    # 11: an error is named and classified by its decisive line (a traceback's
    #     exception, not "Code output: Traceback ..."), and a long one keeps its end
    # 12: a quoted assumption ends at a line break of the JSON text it is read from
    # 13: MySQL's "doesn't exist" and "error in your SQL syntax" are wrong arguments
    # 14: a compiler's "file.go:6:2: ..." diagnostic names a failed build, not its header
    # 15: an error the run went on from stays an unhandled tool error (it was called a
    #     misread output with nothing to show it)
    # 16: an error step of its own (a refused turn, an API error) is the agent's, not
    #     the last tool's; one the run went on from is a symptom
    # 17: such an error gets no tool category, and an error a run recovered from is
    #     not "not handled"
    # 18: "fictional" and "made up" are an assumption only of data; "assume a" a word
    # 19: an assumption after a line break of a message's JSON text is read ("\nAssuming")
    # 20: of an agent's assumptions, the first whose sentence says what it could not get
    # 21: arguments the task's successful runs gave different values are not compared
    # 22: an undiagnosed run of an agent without successes says it had none to weigh
    #     against (it said nothing stood out against its runs)
    # 23: a call of a tool named "browse" (an imported browsing agent's page) is a read
    # 24: an undiagnosed run that was compared with successful runs of its task says so
    #     (it said there was none to compare with)
    # 25: a shell call's command is its command argument (Claude Code's Bash, Terminus'
    #     keystrokes), not the JSON of all its arguments; coding agents' shell tools by
    #     their own names are generic (no instruction about calling or avoiding them)
    # 26: an output headed by a bare "ERROR:" is named by the line under it
    # 27: a framework's own span (agent, chain, graph node) is a framework step, not a
    #     call: not counted, compared or repeated; its own error still counts
    # 28: the errors of a run with no known outcome are leads, never causes or modes;
    #     a call the user refused "was refused" (it did not fail), with no
    #     category (it was "tool error not handled", or Codex's "auth"); a hook call with
    #     no answer by its turn's end "did not complete"
    # 29: "placeholder" is an assumption only of data ("placeholder values", "as a
    #     placeholder"), not a command's placeholder for a hostname
    # 30: a run that recorded its tool calls only in its model calls (no tool step)
    #     has them as calls, at the model call that asked for each
    # 31: a tool step that recorded no arguments has those the model asked it with
    # 32: a run with no user step has the user's turns its model calls were first sent
    # 33: an error a run recovered from says the run's next call
    "offline-33"
)
# A failed trace is diagnosed again when its agent's baseline has grown this much.
BASELINE_GROWTH = 2
# Claude requests one analysis task makes (each is one request of up to a minute);
# more failed traces than this in one batch are diagnosed offline and say so.
CLAUDE_PER_CALL = 50
# How much of each step output the diagnosis reads (as JSON text).
OUTPUT_CHARS = 20_000


@dataclass
class TraceRow:
    id: int
    agent: str
    status: str
    reward: float | None
    task: str
    occurred: Any
    scores: list[Any] = field(default_factory=list)
    steps: list[StepView] = field(default_factory=list)
    verdict: str = ""
    content_hash: str = ""
    facts: TraceFacts | None = None
    task_key: str = ""  # as sent; empty: the normalised task text stands in
    checks: list[Any] = field(default_factory=list)  # named checks of the outcome
    seen_at: Any = None  # the trace's updated_at when its facts were stored

    @property
    def key(self) -> str:
        """The run's task, hashed (TraceAnalysis.task_key): runs of one task share it."""
        return analysis_task_key(self.task_key, self.task)

    @cached_property
    def views(self) -> list[StepView]:
        """The steps the diagnosis weighs: as stored, with the tool calls and user
        turns of a run that recorded them only in its model calls
        (`diagnosis.model_calls`)."""
        return with_model_calls(with_user_turns(self.steps))


@dataclass
class MineResult:
    diagnosed: int = 0
    unchanged: int = 0
    undiagnosed: int = 0
    incidents: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


def incidents_mine(*, workspace_id: int, trace_ids: list[int], force: bool = False) -> int:
    """Diagnose these traces (those that changed); return how many incidents they have now."""
    traces_diagnose(workspace_id=workspace_id, trace_ids=trace_ids, force=force)
    return Incident.objects.filter(workspace_id=workspace_id, trace_id__in=trace_ids).count()


# The advisory-lock namespace of a workspace's diagnosis (traces_analyse_queued).
ANALYSE_LOCK = 0x414E41
# A chunk of the queue diagnosed at once: at most this many traces, and this many
# steps (a chunk of long runs is smaller: every step of a chunk is in memory).
ANALYSE_CHUNK = 500
ANALYSE_STEPS = 50_000
# Chunks one call diagnoses at most before it returns (the task's time limit):
# what is left waits for the next call, or the periodic sweep.
ANALYSE_CHUNKS = 40


def traces_analyse_queued(
    *,
    workspace_id: int,
    trace_ids: list[int],
    after_chunk: Callable[[list[int]], None] | None = None,
) -> int:
    """Queue these traces of the workspace for diagnosis, then diagnose the queue
    unless another process already does: single-flight per workspace (a session
    advisory lock). The holder takes the queue a chunk at a time, oldest first,
    so traces that arrived while it worked (one analysis task per ingest request)
    are diagnosed together: an agent's baseline and neighbour pool are read once
    per chunk, not once per request, and two processes never diagnose one
    workspace's runs against each other at once. After it lets go, it looks once
    more (a caller that found the lock taken may have queued after its last
    look). `after_chunk` runs after each chunk with its trace ids (the task starts
    the embedding and the labels' propagation to them).
    Returns how many traces this call diagnosed; 0 when another process holds
    the lock (it diagnoses these)."""
    _queue(workspace_id, trace_ids)
    done = chunks = 0
    while chunks < ANALYSE_CHUNKS:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ANALYSE_LOCK, workspace_id])
            if not cursor.fetchone()[0]:
                return done  # the holder looks again after it lets go
        try:
            while chunks < ANALYSE_CHUNKS and (chunk := _next_chunk(workspace_id)):
                ids = [c[1] for c in chunk]
                traces_diagnose(workspace_id=workspace_id, trace_ids=ids)
                _dequeue(chunk)
                _queue_outgrown(workspace_id, ids)
                done += len(chunk)
                chunks += 1
                if after_chunk is not None:
                    after_chunk(ids)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ANALYSE_LOCK, workspace_id])
        if not PendingAnalysis.objects.filter(workspace_id=workspace_id).exists():
            break
    return done


def _queue_outgrown(workspace_id: int, trace_ids: list[int]) -> int:
    """The agents of these (just diagnosed) runs have grown: their failed runs
    diagnosed offline against a baseline they have since outgrown (BASELINE_GROWTH
    times as many labelled runs, up to PROFILE_RUNS, and at least twice the floor
    of 10) are queued to be diagnosed again now, in the next chunks, rather than
    at the next periodic sweep minutes later (which also catches any left over).
    Returns how many were queued."""
    agents = set(
        TraceAnalysis.objects.filter(trace_id__in=trace_ids, verdict__in=["failed", "succeeded"])
        .values_list("agent", flat=True)
        .distinct()
    )
    due: list[int] = []
    for agent in sorted(agents):
        size = (
            TraceAnalysis.objects.filter(
                workspace_id=workspace_id, agent=agent, verdict__in=["failed", "succeeded"]
            )
            .values("pk")[:PROFILE_RUNS]
            .count()
        )
        if size < BASELINE_GROWTH * 10:
            continue
        due += TraceAnalysis.objects.filter(
            workspace_id=workspace_id,
            agent=agent,
            verdict="failed",
            diagnoser="offline",
            baseline_runs__lte=size // BASELINE_GROWTH,
        ).values_list("trace_id", flat=True)[:ANALYSE_CHUNK]
    if due:
        # Forced: the content is the same, the baseline is not.
        TraceAnalysis.objects.filter(trace_id__in=due).update(content_hash="")
        _queue(workspace_id, due)
    return len(due)


def _queue(workspace_id: int, trace_ids: list[int]) -> None:
    """Queue the workspace's traces among these (others are ignored); a trace
    already queued is queued again (its version grows)."""
    if not trace_ids:
        return
    table = PendingAnalysis._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (trace_id, workspace_id, version)
            SELECT t.id, t.workspace_id, 1 FROM {Trace._meta.db_table} t
            WHERE t.id = ANY(%s::bigint[]) AND t.workspace_id = %s
            ORDER BY t.id
            ON CONFLICT (trace_id) DO UPDATE SET version = {table}.version + 1
            """,
            [sorted(set(trace_ids)), workspace_id],
        )


def _next_chunk(workspace_id: int) -> list[tuple[int, int, int]]:
    """The oldest queued traces (queue id, trace id, version), within the chunk's
    trace and step bounds (always at least one trace)."""
    rows = (
        PendingAnalysis.objects.filter(workspace_id=workspace_id)
        .order_by("id")
        .values_list("id", "trace_id", "version", "trace__step_count")[:ANALYSE_CHUNK]
    )
    chunk: list[tuple[int, int, int]] = []
    steps = 0
    for queued, trace_id, version, step_count in rows:
        if chunk and steps + step_count > ANALYSE_STEPS:
            break
        chunk.append((queued, trace_id, version))
        steps += step_count
    return chunk


def _dequeue(chunk: list[tuple[int, int, int]]) -> None:
    """Take the diagnosed traces off the queue, except those queued again since
    they were read (their version grew: they wait for the next chunk)."""
    table = PendingAnalysis._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {table} p USING unnest(%s::bigint[], %s::bigint[]) AS d(id, version)
            WHERE p.id = d.id AND p.version = d.version
            """,
            [[c[0] for c in chunk], [c[2] for c in chunk]],
        )


def traces_diagnose(
    *,
    workspace_id: int,
    trace_ids: list[int],
    force: bool = False,
    use_batches: bool = False,
    poll_seconds: float = 30.0,
    cascade: bool = True,
    concurrency: int | None = None,
    burst_limit: bool = True,
) -> MineResult:
    """Diagnose the traces that changed (all of them with `force`). With a model
    (workspaces/llm.py), failed traces go to it one request each (and, for an agent
    with approved policy rules, one more to check them), or, on Anthropic, all in
    one Message Batch (`use_batches`, half price, for backfills: blocks until the
    batch ends). `concurrency` requests at once (HIVEMIND_LLM_CONCURRENCY by default:
    one), for a server of the team's own that can take more. Beyond CLAUDE_PER_CALL
    failed runs in one call (a burst from ingest), the rest are diagnosed offline;
    a backfill (`manage.py diagnose_traces`) lifts it, and the budget still stops it."""
    result = MineResult()
    rows = _load(workspace_id, trace_ids)
    if not rows:
        return result
    known = dict(
        TraceAnalysis.objects.filter(trace_id__in=[r.id for r in rows]).values_list(
            "trace_id", "content_hash"
        )
    )
    changed = [r for r in rows if force or known.get(r.id) != r.content_hash]
    result.unchanged = len(rows) - len(changed)
    with transaction.atomic():
        changed_ids = {r.id for r in changed}
        _mark_seen([r.id for r in rows if r.id not in changed_ids])
        if not changed:
            return result
        for row in changed:
            row.facts = trace_facts(row.views)
        _store_facts(workspace_id, changed)
    # A successful run is not weighed against the agent's baseline: the agents of
    # the other runs are the ones whose baseline (and tool vocabulary) is read.
    profiles, known_tools = {}, {}
    for agent in {r.agent for r in changed if r.verdict != "succeeded"}:
        judged = {r.id for r in changed if r.agent == agent}
        profiles[agent], known_tools[agent] = _profile_and_tools(workspace_id, agent, judged)
    failed_rows = [r for r in changed if r.verdict == "failed"]
    same_task = _same_task_successes(workspace_id, failed_rows)
    kinds = tool_kinds(workspace_id) if same_task else None
    vocabulary = (
        tool_vocabularies(
            workspace_id,
            {r.agent for r in failed_rows} | {a for runs in same_task.values() for a in runs},
            known=known_tools,
        )
        if same_task
        else {}
    )
    # A divergence from successful runs of the same task, call by call, is the
    # most specific evidence there is: when there is one, it is the diagnosis.
    divergences: dict[int, offline.Finding] = {}
    for row in failed_rows:
        if row.id in same_task:
            diverged = same_task_diverge(
                row.views, same_task[row.id], kinds, agent=row.agent, vocabulary=vocabulary
            )
            if diverged is not None:
                divergences[row.id] = diverged
    # Neighbours come from the same agent's successful runs only: another agent's
    # runs arriving must not change this agent's diagnosis (same-task contrast,
    # above, is the one place other agents' runs of the very same task count).
    # Only the runs without a same-task divergence are compared with them.
    nearest: dict[int, list[offline.Neighbour]] = {}
    compared = [r for r in failed_rows if r.id not in divergences]
    for agent in sorted({r.agent for r in compared}):
        index = offline.TaskIndex(success_pool(workspace_id, agent))
        nearest.update(index.nearest_many(
            [(r.task, set(r.facts.tools) if r.facts else set(), r.id)
             for r in compared if r.agent == agent]
        ))  # fmt: skip
    min_precision = _min_precision(workspace_id) if failed_rows else evidence.DEFAULT_MIN_PRECISION
    findings: dict[int, list[offline.Finding]] = {}
    notes: dict[int, tuple[str, str, tuple[int, int, float | None]]] = {}
    # The workspace's model (workspaces/llm.py), or none: offline, or over budget.
    model = model_for(workspace_id)[0] if failed_rows else None
    over = over_budget(workspace_id) if failed_rows and model is None else ""
    # Approved policy rules are checked by the model, run by run (policy.py).
    rules = approved_rules(workspace_id, {r.agent for r in failed_rows}) if model else {}
    policy_kinds = tool_kinds(workspace_id) if rules else None
    sent = 0
    to_model: list[TraceRow] = []
    for row in changed:
        assert row.facts is not None
        if row.verdict == "succeeded":
            findings[row.id] = offline.recovered(row.facts)
            notes[row.id] = ("", "", (0, 0, 0.0))
            continue
        profile = profiles[row.agent]
        failed = row.verdict == "failed"
        own = (
            (failed, profile.signals_of(row.facts))
            if row.verdict in {"failed", "succeeded"}
            else None
        )
        neighbours = nearest.get(row.id, []) if failed else []
        divergence = divergences.get(row.id)
        found = (
            [divergence]
            if divergence is not None
            else offline.diagnose(row.facts, profile, failed=failed, neighbours=neighbours, own=own)
        )
        if failed:
            found = with_failed_checks(weigh_evidence(found, min_precision), row.checks)
        else:
            found = as_leads(weigh_evidence(found, min_precision))
        diagnoser, detail = "offline", ""
        usage: tuple[int, int, float | None] = (0, 0, 0.0)
        if failed and model is None and over:
            detail = over
        elif (failed and model is not None and not use_batches and burst_limit
              and sent >= CLAUDE_PER_CALL):  # fmt: skip
            detail = (
                f"Offline: more than {CLAUDE_PER_CALL} failed traces arrived at once. "
                "`manage.py diagnose_traces --all` sends them to the model"
                + (" (`--batch`: at half price)." if model.provider == "anthropic" else ".")
            )
        elif failed and model is not None and not use_batches:
            sent += 1
            to_model.append(row)
        findings[row.id] = found
        notes[row.id] = (diagnoser, detail, usage)
    if to_model and model is not None:
        _ask_model(workspace_id, to_model, model, rules, policy_kinds, findings, notes,
                   concurrency or settings.HIVEMIND_LLM_CONCURRENCY)  # fmt: skip
    if use_batches and model is not None and failed_rows:
        _apply_batch(workspace_id, failed_rows, findings, notes, poll_seconds, model)
    # How many successful runs of its task each failed run was compared with.
    compared_with = {
        row_id: sum(len(runs) for runs in by_agent.values())
        for row_id, by_agent in same_task.items()
    }
    with transaction.atomic():
        _write(workspace_id, changed, findings, notes, profiles, result, compared_with)
    if cascade:
        _rediagnose_same_task(workspace_id, changed, result)
    return result


def with_failed_checks(found: list[offline.Finding], checks: list[Any]) -> list[offline.Finding]:
    """A failed run's failed checks (the harness's own verdicts) are the first
    evidence there is: named on the finding that explains them; where nothing more
    specific than a symptom was found, the failed check is the incident itself,
    for the whole run (it groups failures into a mode until something better is
    known)."""
    failed = [
        c for c in checks if isinstance(c, dict) and c.get("passed") is False and c.get("name")
    ]
    if not failed:
        return found
    names = [str(c["name"]) for c in failed]
    causes = [f for f in found if is_cause(f)]
    for finding in causes:
        finding.stats = {**finding.stats, "checks_failed": names[:20]}
    if causes:
        return found
    first = failed[0]
    detail = str(first.get("detail") or "").strip()
    more = (
        f" ({len(failed) - 1} more check{'s' if len(failed) > 2 else ''} failed)"
        if len(failed) > 1
        else ""
    )
    check = offline.Finding(
        offline.TRACE_LEVEL, f"`{first['name']}` failed{': ' + detail[:200] if detail else ''}{more}",
        "outcome.check_failed", [], 1.0, "",
        stats={"evidence": "check", "checks_failed": names[:20]},
    )  # fmt: skip
    return [check, *[f for f in found if f.step != offline.TRACE_LEVEL]]


def weigh_evidence(found: list[offline.Finding], min_precision: float) -> list[offline.Finding]:
    """Each offline finding with what labelled runs say of its kind of evidence; a
    kind they show did not reach the workspace's
    minimum precision) becomes a weak lead: shown, never a cause."""
    for finding in found:
        note = evidence.precision_note(finding.stats)
        finding.stats = {**finding.stats, **note}
        if not is_symptom(finding) and evidence.too_weak(finding.stats, min_precision):
            finding.stats["weak"] = True
    return found


def as_leads(found: list[offline.Finding]) -> list[offline.Finding]:
    """A run with no known outcome (many OpenTelemetry runs: a root span left UNSET)
    may have recovered from its errors, and nothing says it failed: each finding is
    a lead, shown on the run and kept out of failure modes and skills, until an
    outcome says the run failed (it is then diagnosed again, in full)."""
    for finding in found:
        if not is_symptom(finding):
            finding.stats = {**finding.stats, "weak": True, "outcome_unknown": True}
    return found


def is_cause(finding: offline.Finding) -> bool:
    """Neither a symptom nor a weak lead: what a mode and a skill may rest on."""
    return not is_symptom(finding) and not finding.stats.get("weak")


SYMPTOM_SIGNALS = ("long_run", "repeat:", "handoff:")


def is_symptom(finding: offline.Finding) -> bool:
    """Running far longer than usual, repeating a call, handing off to a person, a
    turn of the agent's own that failed and that the run went on from (a harness
    refused its message and it sent another): what a failed run showed, not what
    failed it."""
    signal = str(finding.stats.get("signal", ""))
    if signal.startswith("error::") and not finding.stats.get("ended"):
        return True
    return signal.startswith(SYMPTOM_SIGNALS)


def undiagnosed_reason(
    row: TraceRow,
    found: list[offline.Finding],
    baseline: int,
    succeeded: int,
    same_task_runs: int = 0,
) -> str:
    """Why a failed run has no cause, in words a lead can act on. `baseline` is the
    agent's runs with a known outcome it was weighed against, `succeeded` how many
    of them succeeded: its errors and habits are weighed against its successes, so
    with fewer than MIN_SUCCESSES of them nothing could stand out.
    `same_task_runs`: the successful runs of its task it was compared with, call
    by call, without a call that sets it apart."""
    symptoms = "; ".join(f.description for f in found if is_symptom(f))
    weak = [f for f in found if f.stats.get("weak")]
    compared = (
        f"Compared call by call with {same_task_runs} successful "
        f"run{'s' if same_task_runs != 1 else ''} of this task: no call sets this run apart"
        if same_task_runs
        else "No successful run of this task to compare with, call by call"
    )
    if weak:
        why = f"{compared}."
    elif baseline < offline.MIN_SUCCESSES * 2:
        why = (
            f"{compared}, and too few runs of this agent with a known outcome ({baseline}) "
            "to weigh its errors and habits against."
        )
    elif succeeded < offline.MIN_SUCCESSES:
        of = "none" if not succeeded else f"only {succeeded}"
        why = (
            f"{compared}, and no successes of this agent to weigh its errors and habits "
            f"against: {of} of its {'latest ' if baseline >= PROFILE_RUNS else ''}{baseline} "
            f"runs with a known outcome succeeded ({offline.MIN_SUCCESSES} are needed)."
        )
    else:
        why = (
            f"{compared}, and nothing in it stands out against this agent's "
            f"{'latest ' if baseline >= PROFILE_RUNS else ''}{baseline} runs with a known outcome."
        )
    if weak:
        first = weak[0].stats
        why += (
            f" A weak lead only ({evidence.describe(str(first.get('evidence_kind')))}): "
            f"evidence of that kind was {evidence.precision_words(first)}, below the minimum "
            "precision this workspace asks of a cause (Diagnosis settings)."
        )
    return why + (f" Symptoms only: {symptoms}." if symptoms else "")


def _rediagnose_same_task(workspace_id: int, changed: list[TraceRow], result: MineResult) -> None:
    """A successful run of a task is new evidence for the failed runs of that task
    diagnosed before it arrived: they are diagnosed again now (offline ones; once,
    not in a chain), so the same runs end with the same incidents whatever order
    and batches they came in."""
    keys = {r.key for r in changed if r.verdict == "succeeded" and r.key}
    if not keys:
        return
    waiting = list(
        TraceAnalysis.objects.filter(
            workspace_id=workspace_id, verdict="failed", diagnoser="offline", task_key__in=keys
        )
        .exclude(trace_id__in=[r.id for r in changed])
        .values_list("trace_id", flat=True)
    )
    if not waiting:
        return
    again = traces_diagnose(workspace_id=workspace_id, trace_ids=waiting, force=True, cascade=False)
    result.diagnosed += again.diagnosed
    result.incidents += again.incidents
    for source, n in again.by_source.items():
        result.by_source[source] = result.by_source.get(source, 0) + n


def _apply_batch(
    workspace_id: int,
    rows: list[TraceRow],
    findings: dict[int, list[offline.Finding]],
    notes: dict[int, tuple[str, str, tuple[int, int, float | None]]],
    poll_seconds: float,
    model: ModelConfig,
) -> None:
    """Claude's answers from one Message Batch replace the offline findings; a
    trace whose request failed keeps them, with the reason."""
    from .diagnosis.claude import Answer, backfill_with_batches

    try:
        answers = backfill_with_batches(workspace_id, rows, model, poll_seconds=poll_seconds)
    except Exception as exc:  # the whole batch failed: every trace keeps its offline result
        for row in rows:
            notes[row.id] = ("offline", f"Claude batch failed, offline result kept: {exc}"[:2000],
                             (0, 0, 0.0))  # fmt: skip
        return
    for row in rows:
        answer = answers.get(row.id, "no answer in the batch")
        if isinstance(answer, Answer):
            findings[row.id] = answer.findings
            notes[row.id] = (model.diagnoser, "", answer.usage)
        else:
            notes[row.id] = ("offline", f"Claude batch: {answer}; offline result kept"[:2000],
                             (0, 0, 0.0))  # fmt: skip


# --- reading ------------------------------------------------------------------


def _load(workspace_id: int, trace_ids: list[int]) -> list[TraceRow]:
    rows = {
        t["id"]: TraceRow(
            id=t["id"],
            agent=t["agent"],
            status=t["status"],
            reward=t["reward"],
            task=t["task"],
            occurred=t["ended_at"] or t["started_at"],
            task_key=t["task_key"],
            checks=t["checks"] if isinstance(t["checks"], list) else [],
        )  # fmt: skip
        for t in Trace.objects.filter(workspace_id=workspace_id, pk__in=trace_ids).values(
            "id",
            "agent",
            "status",
            "reward",
            "task",
            "task_key",
            "checks",
            "ended_at",
            "started_at",
        )
    }
    if not rows:
        return []
    for trace_id, scores in (
        Outcome.objects.filter(trace_id__in=list(rows))
        .order_by("received_at", "id")
        .values_list("trace_id", "scores")
    ):
        rows[trace_id].scores = scores or []  # the latest outcome's scores win
    # Outputs come as text, cut to what the diagnosis reads: decoding whole JSON
    # documents was a third of the time on large traces.
    steps = (
        Step.objects.filter(trace_id__in=list(rows))
        .order_by("trace_id", "index")
        .annotate(output_text=Left(Cast("output", TextField()), OUTPUT_CHARS))
    )
    for trace_id, index, kind, name, step_input, output, error in steps.values_list(
        "trace_id", "index", "kind", "name", "input", "output_text", "error"
    ):
        rows[trace_id].steps.append(StepView(index, kind, name, step_input, output, error))
    thresholds = _thresholds(workspace_id)
    for row in rows.values():
        row.verdict = _verdict(row, thresholds)
        row.content_hash = _content_hash(row)
    return list(rows.values())


def _thresholds(workspace_id: int) -> tuple[float | None, dict[str, float]]:
    found = DiagnosisSettings.objects.filter(workspace_id=workspace_id).first()
    if found is None:
        return None, {}
    return found.default_reward_threshold, dict(found.reward_thresholds or {})


def _verdict(row: TraceRow, thresholds: tuple[float | None, dict[str, float]]) -> str:
    if row.status == TraceStatus.FAILED:
        return "failed"
    if any(
        isinstance(s, dict) and isinstance(s.get("value"), int | float) and s["value"] < 0
        for s in row.scores
    ):
        return "failed"
    default, per_agent = thresholds
    threshold = per_agent.get(row.agent, default)
    if row.reward is not None and threshold is not None and row.reward < threshold:
        return "failed"
    if row.status == TraceStatus.SUCCEEDED:
        return "succeeded"
    return "unknown"


def _content_hash(row: TraceRow) -> str:
    digest = hashlib.sha256(DIAGNOSER_VERSION.encode())
    head = [row.verdict, row.reward, row.task, row.scores, row.agent, row.task_key, row.checks]
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    steps = [[s.index, s.kind, s.name, s.input, s.output, s.error] for s in row.steps]
    digest.update(json.dumps(steps, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# An agent's baseline (and the tools it uses) is its latest PROFILE_RUNS labelled
# runs, and the successful runs a failed run's task is compared with (when none
# of its own task succeeded) its latest POOL_RUNS: what one batch reads and
# weighs stays bounded however long the agent's history grows (reading all of
# it made each batch slower than the last: bench/growth.py), and recent runs
# are the agent as it is now.
PROFILE_RUNS = 2000
POOL_RUNS = 1000


def _profile(workspace_id: int, agent: str, judged: set[int]) -> offline.Profile:
    """The agent's latest PROFILE_RUNS labelled runs, and the `judged` ones (the
    profile takes a judged run out of its counts, so it must be in them)."""
    return _profile_and_tools(workspace_id, agent, judged)[0]


def _profile_and_tools(
    workspace_id: int, agent: str, judged: set[int]
) -> tuple[offline.Profile, frozenset[str] | None]:
    """The profile, and from the same read the agent's tool vocabulary (what
    `tool_vocabularies` gives: the tools of its latest PROFILE_RUNS labelled runs,
    None with fewer than PROTOCOL_RUNS of them)."""
    labelled = TraceAnalysis.objects.filter(
        workspace_id=workspace_id, agent=agent, verdict__in=["failed", "succeeded"]
    )
    fields = ("trace_id", "verdict", "signals", "tools")
    rows = {r[0]: r for r in labelled.order_by("-trace_id").values_list(*fields)[:PROFILE_RUNS]}
    tools = (
        frozenset(tool for row in rows.values() for tool in row[3])
        if len(rows) >= PROTOCOL_RUNS
        else None
    )
    if missing := judged - rows.keys():
        rows.update({r[0]: r for r in labelled.filter(trace_id__in=missing).values_list(*fields)})
    profile = offline.Profile([
        offline.RunRecord(verdict == "failed", frozenset(signals), len(tools), tuple(tools))
        for _, verdict, signals, tools in rows.values()
    ])  # fmt: skip
    return profile, tools


def success_pool(workspace_id: int, agent: str) -> list[offline.Neighbour]:
    """The agent's latest POOL_RUNS successful runs, for neighbours by task similarity."""
    return [
        offline.Neighbour(trace_id, list(tools), task)
        for trace_id, tools, task in TraceAnalysis.objects.filter(
            workspace_id=workspace_id, agent=agent, verdict="succeeded"
        )
        .exclude(trace__task="")
        .order_by("-trace_id")
        .values_list("trace_id", "tools", "trace__task")[:POOL_RUNS]
    ]


# An agent's tool vocabulary (the tools it ever calls) says what is outside its
# protocol only once it has this many labelled runs: one that never submitted in
# 200 runs does not end with `submit`; one that has not cancelled in 3 may yet.
PROTOCOL_RUNS = 10


def tool_vocabularies(
    workspace_id: int,
    agents: set[str],
    known: dict[str, frozenset[str] | None] | None = None,
) -> dict[str, frozenset[str]]:
    """Every tool each agent has called in its latest PROFILE_RUNS labelled runs,
    for the agents with at least PROTOCOL_RUNS of them (the others are left out:
    unknown). `known`: what `_profile_and_tools` already read for some agents."""
    found: dict[str, frozenset[str]] = {}
    for agent in agents:
        if known is not None and agent in known:
            if (tools := known[agent]) is not None:
                found[agent] = tools
            continue
        runs = list(
            TraceAnalysis.objects.filter(
                workspace_id=workspace_id, agent=agent, verdict__in=["failed", "succeeded"]
            )
            .order_by("-trace_id")
            .values_list("tools", flat=True)[:PROFILE_RUNS]
        )
        if len(runs) >= PROTOCOL_RUNS:
            found[agent] = frozenset(tool for tools in runs for tool in tools)
    return found


# How many successful runs of a task a failed run is compared with.
SAME_TASK_RUNS = 10


def _min_precision(workspace_id: int) -> float:
    found = DiagnosisSettings.objects.filter(workspace_id=workspace_id).first()
    return found.min_precision if found is not None else evidence.DEFAULT_MIN_PRECISION


def _ask_model(
    workspace_id: int, rows: list[TraceRow], model: ModelConfig, rules: dict[str, list[Rule]],
    kinds: ToolKinds | None, findings: dict[int, list[offline.Finding]],
    notes: dict[int, tuple[str, str, tuple[int, int, float | None]]], concurrency: int,
) -> None:  # fmt: skip
    """The model's diagnosis (and policy check) of each failed run, replacing its offline
    findings; a run whose request fails keeps them, with the reason. At most
    `concurrency` requests at once; the budget is checked before each wave, so a long
    backfill stops at it, not after it."""
    wave = max(1, concurrency) * 2 if concurrency > 1 else 10
    for start in range(0, len(rows), wave):
        current, over = model_for(workspace_id) if start else (model, "")
        if current is None:
            for row in rows[start:]:
                notes[row.id] = ("offline", over, (0, 0, 0.0))
            return
        batch = rows[start : start + wave]
        if concurrency <= 1:
            answers = [_one(workspace_id, row, model, rules, kinds, findings[row.id])
                       for row in batch]  # fmt: skip
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="diagnose") as pool:
                answers = list(pool.map(
                    lambda row: _threaded(workspace_id, row, model, rules, kinds, findings[row.id]),
                    batch,
                ))  # fmt: skip
        for row, (found, note) in zip(batch, answers, strict=True):
            findings[row.id], notes[row.id] = found, note


def _threaded(
    *args: Any,
) -> tuple[list[offline.Finding], tuple[str, str, tuple[int, int, float | None]]]:
    """_one on a pool thread, which closes its own database connection when done."""
    from django.db import connections

    try:
        return _one(*args)
    finally:
        connections.close_all()


def _one(
    workspace_id: int, row: TraceRow, model: ModelConfig, rules: dict[str, list[Rule]],
    kinds: ToolKinds | None, found: list[offline.Finding],
) -> tuple[list[offline.Finding], tuple[str, str, tuple[int, int, float | None]]]:  # fmt: skip
    diagnoser, detail = "offline", ""
    usage: tuple[int, int, float | None] = (0, 0, 0.0)
    try:
        answer = diagnose_with_model(workspace_id, row, model)
        found, usage, diagnoser = answer.findings, answer.usage, model.diagnoser
        detail = f"Model: {model.label}."
    except Exception as exc:  # DiagnosisError and anything the SDK raises
        detail = f"{model.label}: diagnosis failed, offline result kept: {exc}"[:2000]
        logger.warning("diagnosis of trace %s: %s", row.id, detail)
    if rules.get(row.agent):
        found, usage, detail = _check_policy(
            workspace_id, row, rules[row.agent], model, kinds, found, usage, detail
        )
        if any(f.stats.get("method") == "policy" for f in found):
            diagnoser = model.diagnoser
    return found, (diagnoser, detail, usage)


def _check_policy(
    workspace_id: int, row: TraceRow, rules: list[Rule], model: ModelConfig,
    kinds: ToolKinds | None, found: list[offline.Finding],
    usage: tuple[int, int, float | None], detail: str,
) -> tuple[list[offline.Finding], tuple[int, int, float | None], str]:  # fmt: skip
    """The run against its agent's approved rules: a broken rule comes first, and
    replaces another finding at the same step."""
    try:
        broke, spent = policy_check(workspace_id=workspace_id, task=row.task, steps=row.views,
                                    rules=rules, config=model, kinds=kinds)  # fmt: skip
    except ModelError as exc:
        return found, usage, f"{detail} Policy check failed: {exc}".strip()[:2000]
    cost = None if usage[2] is None or spent[2] is None else usage[2] + spent[2]
    total = (usage[0] + spent[0], usage[1] + spent[1], cost)
    steps = {f.step for f in broke}
    return broke + [f for f in found if f.step not in steps], total, detail


def tool_kinds(workspace_id: int) -> ToolKinds:
    """The workspace's corrections to which tools change state (Diagnosis settings)."""
    found = DiagnosisSettings.objects.filter(workspace_id=workspace_id).first()
    if found is None:
        return ToolKinds()
    return ToolKinds(frozenset(found.write_tools or []), frozenset(found.read_tools or []))


def analysis_task_key(task_key: str, task: str) -> str:
    """sha1 of the task key, or of the normalised task text when there is none."""
    key = task_key.strip() or same_task_key(task)
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest() if key else ""


def _same_task_successes(
    workspace_id: int, failed_rows: list[TraceRow]
) -> dict[int, dict[str, list[list[StepView]]]]:
    """For each failed run whose task also has successful runs in the workspace (of
    any agent), those runs' steps by agent (up to SAME_TASK_RUNS, newest first)."""
    if not failed_rows:
        return {}
    keys = {row.id: row.key for row in failed_rows if row.key}
    by_key: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for trace_id, key, agent in (
        TraceAnalysis.objects.filter(
            workspace_id=workspace_id, verdict="succeeded", task_key__in=set(keys.values())
        )
        .order_by("-trace__started_at", "-trace_id")
        .values_list("trace_id", "task_key", "agent")
    ):
        if len(by_key[key]) < SAME_TASK_RUNS:
            by_key[key].append((trace_id, agent))
    chosen = {trace_id for runs in by_key.values() for trace_id, _ in runs}
    if not chosen:
        return {}
    steps = run_calls(workspace_id=workspace_id, trace_ids=chosen)
    out: dict[int, dict[str, list[list[StepView]]]] = {}
    for row_id, key in keys.items():
        runs = [(t, a) for t, a in by_key.get(key, []) if t != row_id]
        if runs:
            grouped: dict[str, list[list[StepView]]] = defaultdict(list)
            for trace_id, agent in runs:
                grouped[agent].append(steps[trace_id])
            out[row_id] = dict(grouped)
    return out


# --- writing ------------------------------------------------------------------


def _mark_seen(trace_ids: list[int]) -> None:
    """Unchanged runs: their content hash, which includes DIAGNOSER_VERSION, is the
    one this version computes, so their analysis is this version's (an analysis
    stored before versions were recorded has none: without this, the sweep would
    take it again and again)."""
    if not trace_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TraceAnalysis._meta.db_table} a SET trace_updated_at = t.updated_at,
                diagnoser_version = %s
            FROM {Trace._meta.db_table} t WHERE t.id = a.trace_id AND a.trace_id = ANY(%s)
            """,
            [DIAGNOSER_VERSION, trace_ids],
        )


# Facts stored, diagnosis not written yet: a trace marked so is still due
# (traces_due_for_analysis) and still "changed" (its content hash is blank), so a
# worker that dies between storing the facts and writing the incidents leaves
# the trace for the next one instead of looking finished.
UNFINISHED = datetime(1970, 1, 1, tzinfo=UTC)


def _store_facts(workspace_id: int, rows: list[TraceRow]) -> None:
    now = timezone.now()
    updated = dict(
        Trace.objects.filter(pk__in=[r.id for r in rows]).values_list("pk", "updated_at")
    )
    objects = []
    for row in rows:
        assert row.facts is not None
        row.seen_at = updated[row.id]
        objects.append(TraceAnalysis(
            trace_id=row.id, workspace_id=workspace_id, trace_updated_at=UNFINISHED,
            analysed_at=now, content_hash="", agent=row.agent, verdict=row.verdict,
            signals=sorted(row.facts.signals), tools=[t[:200] for t in row.facts.tools[:2000]],
            task_key=row.key,
        ))  # fmt: skip
    TraceAnalysis.objects.bulk_create(
        objects,
        update_conflicts=True,
        unique_fields=["trace"],
        update_fields=[
            "trace_updated_at", "analysed_at", "content_hash", "agent", "verdict", "signals",
            "tools", "task_key",
        ],
    )  # fmt: skip


def signature_of(
    finding: offline.Finding, task: str, boilerplate: frozenset[str] = frozenset()
) -> str:
    parts = [
        f"tool: {finding.tool or 'none'}",
        f"error: {normalise(finding_text(finding, boilerplate).replace('|', '/'))[:600]}",
        f"category: {finding.category}",
    ]
    if task:
        parts.append(f"task: {normalise(task)[:MAX_TASK_CHARS]}")
    return " | ".join(parts)


_TIMES = re.compile(r"\b\d+ times\b")
_COUNTED = re.compile(r"\bthe \d+ (?=most similar|similar)")
_MORE_CHECKS = re.compile(r" \(\d+ more checks? failed\)$")
# A check's counts in parentheses at the end ("(best score 0.40 at action 3 of 10)").
_COUNTS_ASIDE = re.compile(r"\s*\([^()]*\d[^()]*\)$")


def finding_text(finding: offline.Finding, boilerplate: frozenset[str] = frozenset()) -> str:
    """What makes two findings the same failure, without what varies between runs
    of it: an error's own first line; a divergence's pattern without its counts; a
    signal's statement without its numbers."""
    stats = finding.stats
    if stats.get("facet"):  # a model's summary of the run, in fixed facets
        return str(stats["facet"])
    if stats.get("method") == "policy" and stats.get("rule_text"):
        return f"broke the policy rule: {stats['rule_text']}"
    if stats.get("method") == "error" and finding.error_text.strip():
        return error_gist(finding.error_text, boilerplate)
    if stats.get("method") == "divergence":
        # "…which none of the 3 most similar successful runs called": the count varies.
        return _COUNTED.sub("the ", finding.description.split(";", 1)[0])
    evidence = stats.get("evidence")
    if evidence == "check":
        # The same check failing is one failure, however many others failed with it
        # and whatever its scores.
        return _COUNTS_ASIDE.sub("", _MORE_CHECKS.sub("", finding.description))
    if evidence == "same_task":
        # The values and the runs compared with are the incident's, not the mode's.
        if finding.category == "tool_use.wrong_arguments":
            return f"called `{finding.tool}` with other arguments than successful runs of the same task"
        return f"called `{finding.tool}`, which successful runs of the same task did not"
    if evidence == "same_task_missing":
        return f"never called `{finding.tool}`, which successful runs of the same task did"
    if stats.get("method") == "assumed":
        # The words differ from run to run; the failure is going on with invented data.
        return "went on with assumed or made-up data instead of what it could not get"
    signal = stats.get("signal", "")
    if signal == "long_run":
        return "kept going far longer than successful runs of this agent"
    if signal == "short_run":
        return "stopped far sooner than successful runs of this agent"
    if signal.startswith("repeat:"):
        # The command repeated varies from run to run; the mode is the repeating.
        return f"made the same `{signal.split(':', 1)[1]}` call again and again"
    return _TIMES.sub("repeatedly", finding.description)


def _write(
    workspace_id: int,
    rows: list[TraceRow],
    findings: dict[int, list[offline.Finding]],
    notes: dict[int, tuple[str, str, tuple[int, int, float | None]]],
    profiles: dict[str, offline.Profile],
    result: MineResult,
    compared_with: dict[int, int] | None = None,
) -> None:
    from .services import modes_lock

    now = timezone.now()
    incident_rows: list[tuple] = []
    live: set[tuple[int, int]] = set()
    boilerplate = boilerplate_for(
        workspace_id, [f.error_text for fs in findings.values() for f in fs if f.error_text]
    )
    for row in rows:
        for f in findings[row.id]:
            kind = (
                IncidentKind.RECOVERED if row.verdict == "succeeded"
                else IncidentKind.SYMPTOM if is_symptom(f)
                else IncidentKind.WEAK if f.stats.get("weak")
                else IncidentKind.STEP_ERROR if f.source == "error" else IncidentKind.DIAGNOSIS
            )  # fmt: skip
            incident_rows.append((
                workspace_id, row.id, f.step, kind, f.tool[:200], f.error_text[:10_000],
                f.description[:2000], f.category[:80], f.evidence[:50], f.source,
                float(f.confidence), json.dumps(f.stats, default=str),
                signature_of(f, row.task, boilerplate), row.occurred or now,
            ))  # fmt: skip
            live.add((row.id, f.step))
            result.by_source[f.source] = result.by_source.get(f.source, 0) + 1
    # Incidents are rewritten, deleted and leave modes below: not while a re-cluster
    # re-places them. Taken here, not earlier: the findings' signatures above are
    # CPU work of this batch alone.
    modes_lock(workspace_id, shared=True)
    # The incidents of these runs that are in a mode, before they are rewritten.
    placed = {
        (t, s): (signature, mode, by)
        for t, s, signature, mode, by in Incident.objects.filter(
            trace_id__in=[r.id for r in rows], failure_mode__isnull=False
        ).exclude(source=IncidentSource.HUMAN).values_list(
            "trace_id", "step_index", "signature", "failure_mode_id", "assigned_by"
        )
    }  # fmt: skip
    with connection.cursor() as cursor:
        _upsert(cursor, incident_rows)
    # A person's label is never overwritten (the upsert skips it) nor removed here.
    stale = Incident.objects.filter(trace_id__in=[r.id for r in rows]).exclude(
        source=IncidentSource.HUMAN
    )
    labelled = set(
        Incident.objects.filter(
            trace_id__in=[r.id for r in rows], source=IncidentSource.HUMAN
        ).values_list("trace_id", flat=True)
    )
    _delete(
        [i for i, t, s in stale.values_list("pk", "trace_id", "step_index") if (t, s) not in live]
    )
    # What each incident now is: its signature, or None when it is no longer a cause
    # (the run recovered, or it is a symptom or weak lead now), which no mode holds.
    _leave_modes(placed, {(r[1], r[2]): None if r[3] in NOT_CAUSES else r[12]
                          for r in incident_rows})  # fmt: skip
    analyses = []
    for row in rows:
        found = findings[row.id]
        causes = [f for f in found if is_cause(f)]
        diagnoser, detail, (tokens_in, tokens_out, cost) = notes[row.id]
        if row.verdict != "failed":  # a run with no known outcome is not judged failed
            state = DiagnosisState.NOT_FAILED
        elif causes or row.id in labelled:
            state = DiagnosisState.DIAGNOSED
            if row.id in labelled:  # a person's label is the diagnosis that stands
                diagnoser, detail = "human", ""
        else:
            state = DiagnosisState.UNDIAGNOSED
        # A successful run is not weighed against a baseline (0), nor profiled.
        profile = profiles[row.agent] if row.verdict != "succeeded" else None
        baseline = len(profile.runs) if profile is not None else 0
        if state == DiagnosisState.UNDIAGNOSED:
            succeeded = profile.succeeded if profile is not None else 0
            detail = detail or undiagnosed_reason(
                row, found, baseline, succeeded, (compared_with or {}).get(row.id, 0)
            )
        analyses.append((row.id, str(state), diagnoser, detail, tokens_in, tokens_out, cost,
                         baseline, row.content_hash, row.seen_at))  # fmt: skip
        result.diagnosed += 1
        result.undiagnosed += state == DiagnosisState.UNDIAGNOSED
    with connection.cursor() as cursor:  # one statement, not a CASE per row
        cursor.execute(
            f"""
            UPDATE {TraceAnalysis._meta.db_table} a SET state = v.state,
                diagnoser = v.diagnoser, detail = v.detail, input_tokens = v.tokens_in,
                output_tokens = v.tokens_out, cost_usd = v.cost, baseline_runs = v.baseline,
                content_hash = v.content_hash, trace_updated_at = v.seen_at,
                diagnoser_version = %s
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::int[], %s::int[],
                        %s::float8[], %s::int[], %s::text[], %s::timestamptz[])
                AS v(trace_id, state, diagnoser, detail, tokens_in, tokens_out, cost, baseline,
                     content_hash, seen_at)
            WHERE a.trace_id = v.trace_id
            """,
            [
                DIAGNOSER_VERSION,
                *(
                    [list(column) for column in zip(*analyses, strict=True)]
                    if analyses
                    else [[]] * 10
                ),
            ],
        )
    result.incidents = len(incident_rows)


def _upsert(cursor: Any, rows: list[tuple]) -> None:
    """Insert or refresh incidents; a changed signature drops the stale embedding."""
    if not rows:
        return
    cursor.executemany(
        f"""
        INSERT INTO {TABLE} (workspace_id, trace_id, step_index, kind, tool, error_text,
                             description, category, evidence_steps, source, confidence, stats,
                             signature, occurred_at, created_at, assigned_by, embedding_key)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, now(), '', '')
        ON CONFLICT (trace_id, step_index) DO UPDATE SET
            kind = EXCLUDED.kind, tool = EXCLUDED.tool, error_text = EXCLUDED.error_text,
            description = EXCLUDED.description, category = EXCLUDED.category,
            evidence_steps = EXCLUDED.evidence_steps, source = EXCLUDED.source,
            confidence = EXCLUDED.confidence, stats = EXCLUDED.stats,
            occurred_at = EXCLUDED.occurred_at,
            embedding = CASE WHEN {TABLE}.signature = EXCLUDED.signature
                             THEN {TABLE}.embedding END,
            embedded_at = CASE WHEN {TABLE}.signature = EXCLUDED.signature
                               THEN {TABLE}.embedded_at END,
            embedding_key = CASE WHEN {TABLE}.signature = EXCLUDED.signature
                                 THEN {TABLE}.embedding_key ELSE '' END,
            signature = EXCLUDED.signature
        WHERE {TABLE}.source <> 'human'
        """,
        rows,
    )


def _leave_modes(
    placed: dict[tuple[int, int], tuple[str, int, str]],
    signatures: dict[tuple[int, int], str | None],
) -> None:
    """After a re-diagnosis: an incident whose finding changed (its signature: another
    check failed, another error) leaves the mode it was clustered into, unless a lead
    put it there, and is placed again once embedded (the nearest mode, or the next
    re-cluster), as does one that is no longer a cause; the modes that lost
    incidents, changed or gone, are recounted and renamed. Before, a mode named "`db_match` failed" kept runs re-diagnosed as
    failing other checks, and counted incidents that were gone."""
    from .models import Assignment
    from .services import failure_modes_refresh

    moved = [
        key for key, (signature, _, by) in placed.items()
        if key in signatures and signatures[key] != signature and by != Assignment.MANUAL
    ]  # fmt: skip
    left = {
        mode for key, (signature, mode, _) in placed.items()
        if key not in signatures or signatures[key] != signature
    }  # fmt: skip
    if moved:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {TABLE} i SET failure_mode_id = NULL, assigned_by = ''
                FROM unnest(%s::bigint[], %s::int[]) AS m(trace_id, step_index)
                WHERE i.trace_id = m.trace_id AND i.step_index = m.step_index
                """,
                [[t for t, _ in moved], [s for _, s in moved]],
            )
    failure_modes_refresh(mode_ids=sorted(left), relabel=True)


def _delete(incident_ids: list[int]) -> None:
    # Through the ORM: skill versions cite incidents as evidence, and those links go too.
    if incident_ids:
        Incident.objects.filter(pk__in=incident_ids).delete()


# --- the sweep ----------------------------------------------------------------


def traces_due_for_analysis(*, limit: int = 2000) -> dict[int, list[int]]:
    """Traces never analysed, changed since, failed traces whose diagnosis was made
    against a baseline the agent has since outgrown, or judged by an older offline
    diagnoser: workspace id -> trace ids."""
    rows = list(
        Trace.objects.filter(
            Q(analysis__isnull=True) | Q(updated_at__gt=F("analysis__trace_updated_at"))
        )
        .order_by("updated_at")
        .values_list("workspace_id", "pk")[:limit]
    )
    rows += _outgrown_baselines(limit - len(rows))
    rows += _older_diagnoser(limit - len(rows))
    due: dict[int, list[int]] = {}
    for workspace_id, trace_id in dict.fromkeys(rows):  # a run may be due twice
        due.setdefault(workspace_id, []).append(trace_id)
    return due


def _older_diagnoser(limit: int) -> list[tuple[int, int]]:
    """Runs an older offline diagnoser judged (DIAGNOSER_VERSION was bumped because
    its conclusions changed), newest first: after an upgrade, stored incidents
    change to what this version concludes, `limit` runs a sweep. Runs a model or a
    person diagnosed are left as they are (a model's diagnosis costs money)."""
    if limit <= 0:
        return []
    stale = Q(diagnoser_version__lt=DIAGNOSER_VERSION) | Q(diagnoser_version__gt=DIAGNOSER_VERSION)
    return list(
        TraceAnalysis.objects.filter(stale, diagnoser__in=["offline", ""])
        .order_by("diagnoser_version", "-trace_id")
        .values_list("workspace_id", "trace_id")[:limit]
    )


def _outgrown_baselines(limit: int) -> list[tuple[int, int]]:
    if limit <= 0:
        return []
    table = TraceAnalysis._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH sizes AS (
                SELECT workspace_id, agent, count(*) AS runs FROM {table}
                WHERE verdict IN ('failed', 'succeeded') GROUP BY workspace_id, agent)
            SELECT a.workspace_id, a.trace_id FROM {table} a
            JOIN sizes s ON s.workspace_id = a.workspace_id AND s.agent = a.agent
            WHERE a.verdict = 'failed' AND a.diagnoser = 'offline'
              AND LEAST(s.runs, %s) >= %s * GREATEST(a.baseline_runs, 10)
            ORDER BY a.analysed_at LIMIT %s
            """,
            [PROFILE_RUNS, BASELINE_GROWTH, limit],
        )
        found = cursor.fetchall()
    # Force a new diagnosis: the content is the same, the baseline is not.
    TraceAnalysis.objects.filter(trace_id__in=[t for _, t in found]).update(content_hash="")
    return found


RECHECK_RUNS = 500
RECHECK_CHUNK = 50


def policy_recheck(*, policy_id: int) -> int:
    """After a rule is approved or an approved rule edited: the agent's failed runs
    (the newest RECHECK_RUNS) are diagnosed again, so they are checked against the
    rules as they now stand. Model calls count on the budget, which stops them."""
    found = AgentPolicy.objects.filter(pk=policy_id).first()
    if found is None or model_for(found.workspace_id)[0] is None:
        return 0
    ids = list(
        TraceAnalysis.objects.filter(workspace_id=found.workspace_id, agent=found.agent,
                                     verdict="failed")
        .order_by("-trace_id").values_list("trace_id", flat=True)[:RECHECK_RUNS]
    )  # fmt: skip
    for start in range(0, len(ids), RECHECK_CHUNK):
        if model_for(found.workspace_id)[0] is None:
            break  # the budget ran out
        traces_diagnose(workspace_id=found.workspace_id, trace_ids=ids[start : start + RECHECK_CHUNK],
                        force=True, cascade=False)  # fmt: skip
    return len(ids)
