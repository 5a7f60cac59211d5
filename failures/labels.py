"""A person's labels on failed runs, and the queue they are made from.

A lead works the annotation queue (`Failures → Review runs`): failed runs ordered
by what a label is worth (undiagnosed first, then runs whose incidents are weak
or unsure, then runs like many others). A label names the step that went wrong
(or the run as a whole), a category from the workspace's taxonomy and one
sentence, optionally the fix. It becomes an incident with source `human`:

- it sits in the failure mode its sentence names (the same sentence, the same
  mode), placed by hand, so re-clustering never moves it;
- a re-diagnosis never overwrites or removes it (failures/mining.py), and a
  machine incident at the same step gives way to it (what it said is kept in
  the incident's stats);
- saving it looks for failed runs with a similar step (failures/propagation.py)
  and offers them as "same failure?" candidates; a confirmed one gets its own
  human incident in the same mode, a rejected one is never offered again for
  that mode.

A skip ("not a failure", "environment", "can't tell") takes the run off the
queue without an incident. Every write is audited; only leads (and API keys
with `failures:write`) write, viewers read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from traces.models import Step, Trace
from workspaces.errors import InvalidInput, NotFound
from workspaces.models import Role, Workspace
from workspaces.selectors import membership_require
from workspaces.services import audit_record

from . import taxonomy
from .models import (
    NOT_CAUSES,
    TRACE_LEVEL_INDEX,
    Assignment,
    CandidateState,
    DiagnosisSettings,
    DiagnosisState,
    FailureMode,
    Incident,
    IncidentKind,
    IncidentSource,
    LabelCandidate,
    RunLabel,
    SkipReason,
    TraceAnalysis,
)
from .signatures import normalise

MAX_SENTENCE = 300
# An incident below this confidence (or a weak lead) leaves its run high in the queue.
UNSURE_BELOW = 0.7
PERIODS = {"7": 7, "30": 30, "90": 90, "365": 365}


@dataclass(frozen=True)
class Author:
    """Who writes a label: a member (role checked) or an API key (scope checked)."""

    user: User | None = None
    key_name: str = ""

    @property
    def label(self) -> str:
        return f"API key {self.key_name}" if self.user is None else self.user.get_username()


# --- selectors ------------------------------------------------------------------


def categories_of(workspace: Workspace) -> list[taxonomy.Category]:
    current = DiagnosisSettings.objects.filter(workspace=workspace).first()
    if current is not None and current.categories:
        return taxonomy.as_categories(current.categories)
    return list(taxonomy.DEFAULT)


def review_queue(
    *, workspace: Workspace, agent: str = "", period: str = ""
) -> QuerySet[TraceAnalysis]:
    """Failed runs no one has labelled or skipped, most worth a label first:
    those with no step named (undiagnosed, diagnosis failed, or only a failed check
    of the outcome, which says what failed and not where), then those whose best
    incident is a weak lead or unsure, then those in the largest modes; newest first
    within each."""
    causes = Incident.objects.filter(trace_id=OuterRef("trace_id")).exclude(kind__in=NOT_CAUSES)
    named = causes.exclude(stats__contains={"evidence": "check"})
    rows = (
        TraceAnalysis.objects.filter(workspace=workspace, verdict="failed")
        .exclude(Exists(RunLabel.objects.filter(trace_id=OuterRef("trace_id"))))
        .annotate(
            best=Subquery(named.order_by("-confidence").values("confidence")[:1]),
            mode_size=Subquery(
                causes.exclude(failure_mode=None)
                .order_by("-failure_mode__incident_count")
                .values("failure_mode__incident_count")[:1]
            ),
        )
    )
    if agent:
        rows = rows.filter(agent=agent)
    if period in PERIODS:
        since = timezone.now() - timedelta(days=PERIODS[period])
        rows = rows.filter(trace__started_at__gte=since)
    return rows.select_related("trace").order_by(
        F("best").asc(nulls_first=True),
        F("mode_size").desc(nulls_last=True),
        "-trace__started_at",
        "-trace_id",
    )


def queue_group(analysis: TraceAnalysis) -> str:
    """Why a run is where it is in the queue, in words."""
    best = getattr(analysis, "best", None)
    if best is None or analysis.state in (DiagnosisState.UNDIAGNOSED, DiagnosisState.ERROR):
        return "undiagnosed"
    if best < UNSURE_BELOW:
        return "unsure"
    return "diagnosed"


def queue_neighbours(
    *, workspace: Workspace, trace_id: int, agent: str = "", period: str = ""
) -> tuple[int | None, int | None, int, int]:
    """(previous, next, position, total) of a run in the queue; position 0 when
    the run is not in it (labelled meanwhile)."""
    ids = list(review_queue(workspace=workspace, agent=agent, period=period)
               .values_list("trace_id", flat=True)[:5000])  # fmt: skip
    if trace_id not in ids:
        return None, (ids[0] if ids else None), 0, len(ids)
    at = ids.index(trace_id)
    previous = ids[at - 1] if at > 0 else None
    following = ids[at + 1] if at + 1 < len(ids) else None
    return previous, following, at + 1, len(ids)


def labels_of_trace(*, workspace: Workspace, trace: Trace) -> QuerySet[RunLabel]:
    return RunLabel.objects.filter(workspace=workspace, trace=trace).select_related(
        "failure_mode", "author"
    )


def label_list(*, workspace: Workspace, limit: int = 200) -> QuerySet[RunLabel]:
    return (
        RunLabel.objects.filter(workspace=workspace, skip_reason="")
        .select_related("trace", "failure_mode")
        .order_by("-created_at")[:limit]
    )


def label_get(*, workspace: Workspace, pk: int) -> RunLabel:
    label = (
        RunLabel.objects.filter(workspace=workspace, pk=pk)
        .select_related("trace", "failure_mode", "incident")
        .first()
    )
    if label is None:
        raise NotFound("No such label in this workspace.")
    return label


def label_candidates(*, workspace: Workspace, label: RunLabel) -> QuerySet[LabelCandidate]:
    return LabelCandidate.objects.filter(workspace=workspace, label=label).select_related("trace")


def successful_same_task(*, workspace: Workspace, trace: Trace) -> Trace | None:
    """A run of the same task that succeeded, to read beside a failed one."""
    analysis = TraceAnalysis.objects.filter(trace=trace).first()
    if analysis is None or not analysis.task_key:
        return None
    twin = (
        TraceAnalysis.objects.filter(
            workspace=workspace, task_key=analysis.task_key, verdict="succeeded"
        )
        .exclude(trace=trace)
        .select_related("trace")
        .order_by("-trace__started_at")
        .first()
    )
    return twin.trace if twin else None


# --- services --------------------------------------------------------------------


def _require_writer(workspace: Workspace, author: Author) -> None:
    if author.user is not None:
        membership_require(workspace=workspace, user=author.user, role=Role.LEAD,
                           action="label runs")  # fmt: skip


def _step_of(trace: Trace, step_index: int) -> Step | None:
    if step_index == TRACE_LEVEL_INDEX:
        return None
    if step_index < TRACE_LEVEL_INDEX:
        raise InvalidInput("Choose the step that went wrong, or the run as a whole (-1).")
    step = Step.objects.filter(trace=trace, index=step_index).first()
    if step is None:
        raise InvalidInput(
            f"Run {trace.external_id} has no step {step_index} "
            f"(its steps are 0–{max(trace.step_count - 1, 0)}; -1 labels the run as a whole)."
        )
    return step


def _clean(workspace: Workspace, category: str, sentence: str, fix: str) -> tuple[str, str, str]:
    keys = {c.key for c in categories_of(workspace)}
    category, sentence, fix = category.strip(), " ".join(sentence.split()), " ".join(fix.split())
    errors = []
    if category not in keys:
        errors.append(f"category must be one of the workspace's categories, not {category!r}")
    if not sentence:
        errors.append("say in one sentence what went wrong")
    if len(sentence) > MAX_SENTENCE or len(fix) > MAX_SENTENCE:
        errors.append(f"the sentence and the fix are at most {MAX_SENTENCE} characters each")
    if errors:
        text = "; ".join(errors)
        raise InvalidInput(text[0].upper() + text[1:] + ".")
    return category, sentence, fix


def _mode_for(workspace: Workspace, sentence: str) -> FailureMode:
    """The mode a sentence names: labels with the same sentence share it."""
    label = sentence.rstrip(".")[:200]
    mode = FailureMode.objects.filter(
        workspace=workspace, label_source=IncidentSource.HUMAN, label__iexact=label
    ).first()
    if mode is None:
        now = timezone.now()
        mode = FailureMode.objects.create(
            workspace=workspace, label=label, label_locked=True,
            label_source=IncidentSource.HUMAN, first_seen=now, last_seen=now,
        )  # fmt: skip
    return mode


def _human_incident(
    label: RunLabel, step: Step | None, mode: FailureMode, author: Author
) -> tuple[Incident, int | None]:
    """The label as an incident in `mode`; a machine incident at the same step gives
    way (what it said is kept). Returns it and the mode it left, if any."""
    trace = label.trace
    tool = (step.name if step else "")[:200]
    stats = {"method": "human", "label": label.pk, "by": author.label, "fix": label.fix}
    fields: dict[str, Any] = {
        "workspace": label.workspace, "kind": IncidentKind.DIAGNOSIS, "tool": tool,
        "error_text": (step.error if step else "")[:10_000], "description": label.sentence,
        "category": label.category, "evidence_steps": [label.step_index] if step else [],
        "source": IncidentSource.HUMAN, "confidence": 1.0, "failure_mode": mode,
        "assigned_by": Assignment.MANUAL, "occurred_at": trace.started_at,
        "signature": f"tool: {tool or 'none'} | error: {normalise(label.sentence)} | "
                     f"category: {label.category}",
        "embedding": None, "embedded_at": None, "embedding_key": "",
    }  # fmt: skip
    existing = Incident.objects.filter(trace=trace, step_index=label.step_index).first()
    left = None
    if existing is not None:
        if existing.source != IncidentSource.HUMAN:
            stats["machine"] = {"description": existing.description[:500],
                                "category": existing.category, "source": existing.source}  # fmt: skip
        elif existing.stats.get("machine"):
            stats["machine"] = existing.stats["machine"]
        left = existing.failure_mode_id if existing.failure_mode_id != mode.pk else None
        for key, value in fields.items():
            setattr(existing, key, value)
        existing.stats = stats
        existing.save()
        return existing, left
    incident = Incident.objects.create(trace=trace, step_index=label.step_index, stats=stats,
                                       **fields)  # fmt: skip
    return incident, left


def _settle(trace: Trace, author: Author) -> None:
    """A labelled failed run is diagnosed: by a person."""
    # Stamped now, so the rollups' sweep recounts the run's causes found.
    TraceAnalysis.objects.filter(trace=trace, verdict="failed").update(
        state=DiagnosisState.DIAGNOSED,
        diagnoser="human",
        detail=f"Labelled by {author.label}.",
        analysed_at=timezone.now(),
    )


@transaction.atomic
def label_save(
    *,
    workspace: Workspace,
    trace: Trace,
    step_index: int,
    category: str,
    sentence: str,
    fix: str = "",
    author: Author,
    confirmed_from: RunLabel | None = None,
) -> RunLabel:
    """Save (or replace) the label of a run's step; propagation runs after commit."""
    from .services import failure_modes_refresh, modes_lock

    _require_writer(workspace, author)
    if trace.workspace_id != workspace.pk:
        raise NotFound("No such trace in this workspace.")
    category, sentence, fix = _clean(workspace, category, sentence, fix)
    modes_lock(workspace.pk)
    step = _step_of(trace, step_index)
    existing = RunLabel.objects.filter(trace=trace, step_index=step_index).first()
    before = None
    if existing is not None:
        before = {"category": existing.category, "sentence": existing.sentence,
                  "fix": existing.fix, "skip_reason": existing.skip_reason}  # fmt: skip
    # A run skipped before and labelled now: the skip gives way.
    RunLabel.objects.filter(trace=trace).exclude(skip_reason="").delete()
    label = existing or RunLabel(workspace=workspace, trace=trace, step_index=step_index)
    old_mode = label.failure_mode_id
    mode = _mode_for(workspace, sentence)
    label.category, label.sentence, label.fix, label.skip_reason = category, sentence, fix, ""
    label.failure_mode, label.author, label.author_label = mode, author.user, author.label
    label.confirmed_from = confirmed_from or label.confirmed_from
    label.save()
    incident, left = _human_incident(label, step, mode, author)
    if label.incident_id != incident.pk:
        label.incident = incident
        label.save(update_fields=["incident", "updated_at"])
    _settle(trace, author)
    failure_modes_refresh(
        mode_ids=sorted({m for m in (mode.pk, old_mode, left) if m is not None}), relabel=False
    )
    audit_record(
        workspace=workspace, actor=author.user, action="label.edit" if before else "label.create",
        obj=label, before=before,
        after={"trace": trace.pk, "step": step_index, "category": category, "sentence": sentence,
               "fix": fix, "mode": mode.pk, "confirmed_from": label.confirmed_from_id},
        actor_label=author.label if author.user is None else "",
    )  # fmt: skip
    from hivemind_web.celery import enqueue

    # Its incident gets a vector (search, similar incidents) like any other.
    transaction.on_commit(lambda: enqueue("failures.tasks.embed_incidents", workspace.pk))
    if confirmed_from is None:
        transaction.on_commit(lambda: enqueue("failures.tasks.propagate_label", label.pk))
    return label


@transaction.atomic
def run_skip(*, workspace: Workspace, trace: Trace, reason: str, author: Author) -> RunLabel:
    """Take a run off the queue without a label, saying why."""
    _require_writer(workspace, author)
    if reason not in SkipReason.values:
        raise InvalidInput(
            f"Skip reason must be one of {', '.join(SkipReason.values)}, not {reason!r}."
        )
    if RunLabel.objects.filter(trace=trace, skip_reason="").exists():
        raise InvalidInput("This run is labelled; remove its label before skipping it.")
    label, _ = RunLabel.objects.update_or_create(
        trace=trace, step_index=TRACE_LEVEL_INDEX,
        defaults={"workspace": workspace, "skip_reason": reason, "category": "", "sentence": "",
                  "fix": "", "author": author.user, "author_label": author.label},
    )  # fmt: skip
    audit_record(workspace=workspace, actor=author.user, action="label.skip", obj=label,
                 after={"trace": trace.pk, "reason": reason},
                 actor_label=author.label if author.user is None else "")  # fmt: skip
    return label


@transaction.atomic
def label_remove(*, workspace: Workspace, label: RunLabel, author: Author) -> None:
    """Remove a label (or a skip) and its incident; the run goes back to the queue
    and the next diagnosis judges it again."""
    from .services import failure_modes_refresh, modes_lock

    _require_writer(workspace, author)
    modes_lock(workspace.pk)
    mode_id = label.failure_mode_id
    before = {"trace": label.trace_id, "step": label.step_index, "sentence": label.sentence,
              "category": label.category, "skip_reason": label.skip_reason}  # fmt: skip
    if label.incident_id:
        Incident.objects.filter(pk=label.incident_id).delete()
    if label.confirmed_from_id:  # a confirmed candidate: offered again
        LabelCandidate.objects.filter(
            workspace=workspace, label_id=label.confirmed_from_id, trace=label.trace,
            state=CandidateState.CONFIRMED,
        ).update(state=CandidateState.OFFERED, decided_by=None, decided_at=None)  # fmt: skip
    trace = label.trace
    label.delete()
    # Diagnosed again on the next sweep (the analysis no longer matches).
    TraceAnalysis.objects.filter(trace=trace).update(content_hash="")
    Trace.objects.filter(pk=trace.pk).update(updated_at=timezone.now())
    if mode_id:
        failure_modes_refresh(mode_ids=[mode_id], relabel=False)
    audit_record(workspace=workspace, actor=author.user, action="label.remove", obj=trace,
                 before=before, actor_label=author.label if author.user is None else "")  # fmt: skip


def candidates_decide(
    *, workspace: Workspace, label: RunLabel, candidate_ids: list[int], confirm: bool,
    author: Author,
) -> int:  # fmt: skip
    """Confirm (each gets a human incident in the label's mode) or reject candidates."""
    _require_writer(workspace, author)
    chosen = list(
        LabelCandidate.objects.filter(
            workspace=workspace, label=label, pk__in=candidate_ids, state=CandidateState.OFFERED
        ).select_related("trace")
    )
    if not chosen:
        raise InvalidInput("Choose at least one candidate that is still waiting for a decision.")
    now = timezone.now()
    for candidate in chosen:
        with transaction.atomic():
            if confirm:
                label_save(
                    workspace=workspace, trace=candidate.trace, step_index=candidate.step_index,
                    category=label.category, sentence=label.sentence, fix=label.fix,
                    author=author, confirmed_from=label,
                )  # fmt: skip
            LabelCandidate.objects.filter(pk=candidate.pk).update(
                state=CandidateState.CONFIRMED if confirm else CandidateState.REJECTED,
                decided_by=author.user, decided_at=now,
            )  # fmt: skip
    audit_record(
        workspace=workspace, actor=author.user,
        action="label.candidates_confirm" if confirm else "label.candidates_reject",
        obj=label, after={"traces": [c.trace_id for c in chosen]},
        actor_label=author.label if author.user is None else "",
    )  # fmt: skip
    return len(chosen)


def label_counts(*, workspace: Workspace) -> dict[str, int]:
    """For the queue's header: labelled, skipped, candidates waiting."""
    labels = RunLabel.objects.filter(workspace=workspace)
    return {
        "labelled": labels.filter(skip_reason="").count(),
        "skipped": labels.exclude(skip_reason="").count(),
        "waiting": LabelCandidate.objects.filter(workspace=workspace, state=CandidateState.OFFERED)
        .exclude(Exists(RunLabel.objects.filter(trace_id=OuterRef("trace_id"))))
        .values("trace_id")
        .distinct()
        .count(),
        "latest": labels.filter(skip_reason="").aggregate(m=Max("pk"))["m"] or 0,
    }


def queue_agents(*, workspace: Workspace) -> list[str]:
    return sorted(
        set(
            TraceAnalysis.objects.filter(workspace=workspace, verdict="failed")
            .exclude(agent="")
            .values_list("agent", flat=True)
            .distinct()
        )
    )


def still_failed(label: RunLabel) -> bool:
    """False once the run turned out to have succeeded (the label is kept, marked)."""
    return not TraceAnalysis.objects.filter(Q(trace=label.trace_id) & ~Q(verdict="failed")).exists()
