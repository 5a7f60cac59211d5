"""Training snapshots, the flywheel's third loop: reviewed traces become data.

`snapshot_create` selects traces by a filter (minimum reward, agent, date range,
failure mode, skill in scope), drops duplicates (same task and same steps),
splits train / held-out deterministically by a hash of each example's task (so
the held-out examples' tasks are not trained on), and writes:

- SFT: one chat per succeeded trace, OpenAI-style messages in the run's order
  (user turns, assistant tool calls with their arguments, tool results, assistant
  replies); a simulated user's own tool calls are no part of it;
- DPO: preference pairs, a failed and a succeeded attempt at the same task (the
  task key, else the task's text: the diagnosis's "same task",
  `failures.mining.analysis_task_key`), the succeeded one "chosen".

A run whose status is only this product's reading of its hook session (no
outcome posted) is left out and counted (`inferred_left_out`), as is a run whose
record holds no request or no turn of the agent's (`incomplete`: a framework's
spans without the messages, which it records only when told to).

A snapshot is immutable once made: there is no update path, and its version
number, filter and counts are stored with the files.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Prefetch, QuerySet
from django.http import HttpResponse

from failures.mining import analysis_task_key
from failures.models import FailureMode, TraceAnalysis
from traces.models import Outcome, Step, StepKind, Trace
from traces.openai_chat import openai_messages, tool_result_text
from workspaces.errors import InvalidInput, NotFound
from workspaces.filtering import filter_given
from workspaces.models import Workspace
from workspaces.services import audit_record

from .models import Snapshot

MAX_TRACES = 50_000


@dataclass(frozen=True)
class SnapshotFilter:
    min_reward: float | None = None  # reward strictly above this; traces without one need status
    agent: str = ""
    since: date | None = None
    until: date | None = None
    failure_mode: int | None = None
    skill: str = ""  # a name (any version) or name@version in skills_in_scope
    heldout_percent: int = 10

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until"):
            data[key] = data[key].isoformat() if data[key] else None
        return {k: v for k, v in data.items() if v not in (None, "")}


def _selected(workspace: Workspace, f: SnapshotFilter) -> QuerySet[Trace]:
    qs = _in_range(Trace.objects.filter(workspace=workspace, status__in=["succeeded", "failed"]), f)
    if f.failure_mode is not None:
        if not FailureMode.objects.filter(workspace=workspace, pk=f.failure_mode).exists():
            raise NotFound(f"No failure mode {f.failure_mode} in this workspace.")
        qs = qs.filter(incidents__failure_mode_id=f.failure_mode).distinct()
    if f.skill:
        # A name matches every version of it (name or name@N); name@N only that one.
        escaped = f.skill.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = escaped if "@" in f.skill else f"{escaped}@%"
        qs = qs.extra(
            where=["EXISTS (SELECT 1 FROM unnest(traces_trace.skills_in_scope) s "
                   "WHERE s = %s OR s LIKE %s)"],
            params=[f.skill, like],
        )  # fmt: skip
    return _loaded(qs)


def _in_range(qs: QuerySet[Trace], f: SnapshotFilter) -> QuerySet[Trace]:
    return filter_given(
        qs, agent=f.agent, started_at__date__gte=f.since, started_at__date__lte=f.until
    )


def _loaded(qs: QuerySet[Trace]) -> QuerySet[Trace]:
    # An outcome posted for a run decides it; else a hook session's status may be the
    # product's own reading of the session (`traces.claude_code.inferred_status`).
    qs = qs.annotate(outcome_posted=Exists(Outcome.objects.filter(trace_id=OuterRef("pk"))))
    return qs.order_by("started_at", "id").prefetch_related(
        Prefetch("steps", queryset=Step.objects.order_by("index"))
    )


def _same_task_successes(
    workspace: Workspace, f: SnapshotFilter, traces: list[Trace]
) -> list[Trace]:
    """A failure mode's runs are its failures: the answers to prefer are the
    successful runs of the same tasks (as the diagnosis pairs them, by
    `TraceAnalysis.task_key`), within the snapshot's agent and dates."""
    keys = {analysis_task_key(t.task_key, t.task) for t in traces} - {""}
    if not keys:
        return []
    succeeded = TraceAnalysis.objects.filter(
        workspace=workspace, verdict="succeeded", task_key__in=keys
    ).values("trace_id")
    qs = Trace.objects.filter(workspace=workspace, status="succeeded", pk__in=succeeded)
    return list(_loaded(_in_range(qs, f).exclude(pk__in=[t.pk for t in traces])))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )


def chat_messages(trace: Trace) -> list[dict[str, Any]]:
    """The trace as the agent's conversation in OpenAI's chat format, in the run's
    order: the system prompt its first model call was sent, the task unless a user
    turn of the run carries it (a harness's greeting may come before it, as in
    tau2), then what the agent said, called and was answered; a run that recorded
    no user step has its user's later turns read from what its model calls were
    sent. A model call's answer is read from the shape its framework
    recorded (`traces.openai_chat`); a tool step the answer asked for gives only its
    result. A simulated user's own tool calls (tau2's phone, `user.*`) are left out:
    the agent neither made nor saw them, and a model trained on them would call
    tools it does not have."""
    steps = list(trace.steps.all())
    # A hook session with no prompt seen is named by its folder: the product's words,
    # not the user's (`traces.claude_code`, `task_from_folder`).
    named = trace.task.strip() and not (trace.metadata or {}).get("task_from_folder")
    # No user step (an application traced at its model client): the user's turns,
    # its request among them, are read from what the model calls were sent, in
    # their place; the task is written first only when no call was sent any.
    from_inputs = not any(s.kind == StepKind.USER_PROMPT for s in steps) and any(
        m["role"] == "user" and m["content"]
        for s in steps
        if s.kind == StepKind.LLM_CALL
        for m in openai_messages(s.input, role="user") or []
    )
    task_added = (
        bool(named)
        and not from_inputs
        and not any(s.kind == StepKind.USER_PROMPT and _text(s.input) == trace.task for s in steps)
    )
    chat = _Conversation(users_from_inputs=from_inputs, named=_several_speakers(steps))
    for message in _system_prompt(steps):
        chat.add(message)
    if task_added:
        chat.add({"role": "user", "content": trace.task})
    for step in steps:
        if step.kind == StepKind.USER_PROMPT and _text(step.input):
            chat.add({"role": "user", "content": _text(step.input)})
        elif step.kind == StepKind.TOOL_CALL and not step.by_simulated_user:
            chat.tool_step(step)
        elif step.kind in (StepKind.LLM_CALL, StepKind.ASSISTANT_MESSAGE):
            chat.model_step(step)
        elif step.kind == StepKind.TOOL_RESULT and _text(step.output):
            chat.answer(None, tool_result_text(step.output))
    return chat.messages()


def _system_prompt(steps: list[Step]) -> list[dict[str, Any]]:
    """The system messages the agent's first recorded model call was sent: what the
    model was told before the request, which a fine-tuned model needs as well."""
    first = next((s for s in steps if s.kind == StepKind.LLM_CALL and s.input), None)
    sent = openai_messages(first.input, role="user") if first is not None else None
    leading = []
    for message in sent or []:
        if message["role"] not in ("system", "developer"):
            break
        leading.append({"role": "system", "content": message["content"] or ""})
    return leading


# What a message's `name` may hold in OpenAI's chat format; what an agent's step
# name says of no speaker (Claude Code's turn end, a subagent's label).
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_NOT_SPEAKERS = {"assistant", "agent", "model", "turn failed"}


def _speaker(step: Step) -> str:
    """Which agent said a message: the step's name, in the characters OpenAI's `name`
    allows; "" for a model call (its name is the model's) or a label of the
    product's (a hook session's turn end, a subagent's start)."""
    if step.kind != StepKind.ASSISTANT_MESSAGE or not step.name:
        return ""
    if step.name.lower() in _NOT_SPEAKERS or step.name.startswith("subagent:"):
        return ""
    return _NAME_UNSAFE.sub("_", step.name).strip("_")[:64]


def _several_speakers(steps: list[Step]) -> bool:
    """Whether more than one agent speaks in the run (a group chat: AG2,
    Magentic-One), so each message says who said it."""
    return len({name for name in map(_speaker, steps) if name}) > 1


class _Conversation:
    """Messages as they are added, with the calls a model answer asked for that
    await their results (`pending`, oldest first)."""

    def __init__(self, *, users_from_inputs: bool = False, named: bool = False) -> None:
        self._messages: list[dict[str, Any]] = []
        # Several agents speak: each of their messages names its speaker (`name`).
        self._named = named
        self._pending: list[dict[str, Any]] = []
        # A run that recorded no user step has the user's turns only in what its
        # model calls were sent: the n-th user message there is the n-th turn.
        self._users_from_inputs = users_from_inputs
        self._users_said = 0

    def add(self, message: dict[str, Any]) -> None:
        self._messages.append(message)
        self._pending += message.get("tool_calls") or []

    def answer(self, name: str | None, result: str, call_id: str = "") -> bool:
        """The result of the oldest pending call of that name (any name: None), or of
        the call `call_id`; False when no call awaits it."""
        for call in self._pending:
            if (call_id and call["id"] == call_id) or (
                not call_id and name in (None, call["function"]["name"])
            ):
                self._pending.remove(call)
                self._messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": result}
                )
                return True
        return False

    def tool_step(self, step: Step) -> None:
        result = step.error or tool_result_text(step.output)
        name = step.name or "tool"
        if not result and any(c["function"]["name"] == name for c in self._pending):
            return  # the step recorded no result: the next model call's input may say it
        if self.answer(name, result):
            return
        function = {"name": name, "arguments": _text(step.input) or "{}"}
        call: dict[str, Any] = {
            "id": f"call_{step.index}",
            "type": "function",
            "function": function,
        }
        self.add({"role": "assistant", "content": None, "tool_calls": [call]})
        self.answer(None, result, call["id"])

    def model_step(self, step: Step) -> None:
        # Results the calls got that no tool step recorded: in this call's input.
        sent = openai_messages(step.input, role="user") or []
        for message in sent:
            if message["role"] == "tool" and self._pending:
                called = message["tool_call_id"]
                if not (called and self.answer(None, message["content"], called)):
                    self.answer(None, message["content"])
        if self._users_from_inputs:
            turns = [m for m in sent if m["role"] == "user" and m["content"]]
            for message in turns[self._users_said :]:
                self.add({"role": "user", "content": message["content"]})
            self._users_said = max(self._users_said, len(turns))
        said = openai_messages(step.output)
        if said is None:
            said = [{"role": "assistant", "content": _text(step.output)}]
        speaker = _speaker(step) if self._named else ""
        for message in said:
            if message["role"] == "assistant" and (message["content"] or message.get("tool_calls")):
                for number, call in enumerate(message.get("tool_calls") or []):
                    call["id"] = call["id"] or f"call_{step.index}_{number}"
                self.add({**message, "name": speaker} if speaker else message)

    def messages(self) -> list[dict[str, Any]]:
        """The conversation, each call answered: a call whose result no step recorded
        is left out rather than given a made-up one."""
        unanswered = {id(call) for call in self._pending}
        out = []
        for message in self._messages:
            calls = message.get("tool_calls")
            if calls:
                kept = [c for c in calls if id(c) not in unanswered]
                if not kept and not message["content"]:
                    continue
                message = {**message, "tool_calls": kept}
                if not kept:
                    del message["tool_calls"]
            out.append(message)
        return out


def _prompt_length(messages: list[dict[str, Any]]) -> int:
    """How many messages make a DPO pair's prompt: up to the first user turn."""
    return next((i + 1 for i, m in enumerate(messages) if m["role"] == "user"), 1)


def _digest(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


def _outcome_inferred(trace: Trace) -> bool:
    """Whether the run's status is only this product's reading of its hook session
    (no failed turn, no failed last call, no correction: the agent reported none).
    Such a guess is shown as one on the pages; it is not made training data, where a
    wrong "succeeded" would teach the mistake."""
    inferred = (trace.metadata or {}).get("inferred_status") or {}
    return not getattr(trace, "outcome_posted", False) and inferred.get("status") == trace.status


def _is_good(trace: Trace, f: SnapshotFilter) -> bool:
    if f.min_reward is not None and trace.reward is not None:
        return trace.reward > f.min_reward
    return trace.status == "succeeded"


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def snapshot_create(
    *, workspace: Workspace, filters: SnapshotFilter, name: str = "",
    actor: User | None, actor_label: str = "",
) -> Snapshot:  # fmt: skip
    if not 0 <= filters.heldout_percent <= 50:
        raise InvalidInput("heldout_percent must be between 0 and 50.")
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidInput("'since' is after 'until'.")
    traces = list(_selected(workspace, filters)[: MAX_TRACES + 1])
    if len(traces) > MAX_TRACES:
        raise InvalidInput(f"The filter matches more than {MAX_TRACES:,} traces; narrow it.")
    partners = []
    if filters.failure_mode is not None:
        partners = _same_task_successes(workspace, filters, traces)
    seen: set[tuple[str, bool]] = set()
    good: list[tuple[Trace, list[dict[str, Any]], str]] = []
    bad: list[tuple[Trace, list[dict[str, Any]], str]] = []
    duplicates = inferred = incomplete = 0
    for trace in traces + partners:
        if _outcome_inferred(trace):
            inferred += 1
            continue
        messages = chat_messages(trace)
        if not {"user", "assistant"} <= {m["role"] for m in messages}:
            incomplete += 1  # no request, or no answer or call of the agent's, recorded
            continue
        digest = _digest(messages)
        is_good = _is_good(trace, filters)
        # The same trajectory once good and once bad is kept on both sides (it can pair).
        if (digest, is_good) in seen:
            duplicates += 1
            continue
        seen.add((digest, is_good))
        (good if is_good else bad).append((trace, messages, digest))
    train: list[dict[str, Any]] = []
    heldout: list[dict[str, Any]] = []
    for trace, messages, digest in good:
        row = {"messages": messages, "metadata": {"trace": trace.external_id, "agent": trace.agent,
               "reward": trace.reward, "skills_in_scope": trace.skills_in_scope}}  # fmt: skip
        # By task, so no task of the held-out examples is trained on (a run's own
        # digest where it names no task).
        bucket = analysis_task_key(trace.task_key, trace.task) or digest
        (heldout if int(bucket[:8], 16) % 100 < filters.heldout_percent else train).append(row)
    pairs = []
    chosen_by_task: dict[str, tuple[Trace, list[dict[str, Any]]]] = {}
    for trace, messages, _ in good:
        chosen_by_task.setdefault(analysis_task_key(trace.task_key, trace.task), (trace, messages))
    for trace, messages, _ in bad:
        match = chosen_by_task.get(analysis_task_key(trace.task_key, trace.task) or "-")
        if match is None:
            continue
        chosen_trace, chosen = match
        prompt = _prompt_length(messages)
        pairs.append({
            "prompt": messages[:prompt], "chosen": chosen[_prompt_length(chosen):],
            "rejected": messages[prompt:],
            "metadata": {"chosen_trace": chosen_trace.external_id, "rejected_trace": trace.external_id},
        })  # fmt: skip
    counts = {"matched": len(traces), "same_task_successes": len(partners),
              "inferred_left_out": inferred, "incomplete": incomplete,
              "duplicates_removed": duplicates, "sft_train": len(train),
              "sft_heldout": len(heldout), "dpo_pairs": len(pairs), "failed_unpaired": len(bad) - len(pairs)}  # fmt: skip
    for _ in range(3):  # two snapshots made at once race for the next version number
        try:
            with transaction.atomic():
                latest = Snapshot.objects.filter(workspace=workspace).aggregate(v=Max("version"))[
                    "v"
                ]
                snapshot = Snapshot.objects.create(
                    workspace=workspace, version=(latest or 0) + 1, name=name.strip()[:100],
                    filters=filters.as_json(), counts=counts,
                    sft_train=_jsonl(train), sft_heldout=_jsonl(heldout), dpo_pairs=_jsonl(pairs),
                    created_by_label=actor_label or (actor.get_username() if actor else "system"),
                )  # fmt: skip
                audit_record(workspace=workspace, actor=actor, action="snapshot.create",
                             obj=snapshot, after={"filters": snapshot.filters, "counts": counts},
                             actor_label=actor_label)  # fmt: skip
                return snapshot
        except IntegrityError:
            continue
    raise InvalidInput("Another snapshot was being made at the same time; try again.")


def snapshot_file_response(*, workspace: Workspace, version: int, filename: str) -> HttpResponse:
    """One file of a snapshot as a download (JSONL)."""
    field = Snapshot.FILES.get(filename)
    if field is None:
        raise NotFound(f"No file {filename!r}; a snapshot has {', '.join(Snapshot.FILES)}.")
    snapshot = Snapshot.objects.filter(workspace=workspace, version=version).only(field).first()
    if snapshot is None:
        raise NotFound(f"No snapshot version {version} in this workspace.")
    response = HttpResponse(getattr(snapshot, field), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="snapshot-v{version}-{filename}"'
    return response
