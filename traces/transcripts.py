"""A session's transcript and its hook events: one trace (5/8, item 5).

A Claude Code session can reach Hivemind twice: as hook events (live, or a
replayed hook log) and as its transcript (`import --format claude-transcript`,
or the `chat.json` a hook logger keeps beside its event files). Both carry the
session id, so they name the same trace; stored one after the other, the last
would overwrite the first. `trace_ingest_merging` is the ingest service for
batches that may hold transcripts: a transcript of a session whose hooks built
its trace is merged into it (`transcript_merge`), and the session's steps are
rewritten in one transaction. In the other order, hook events arriving after a
transcript are numbered after its steps (`claude_code._Numbering`).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from workspaces.models import Workspace
from workspaces.redaction import redactor_for_policy
from workspaces.selectors import pii_policy_get

from .claude_code import inferred_status, key_hash, session_lock, session_status
from .errors import unanswered
from .ingest import refresh_aggregates
from .models import Step, StepKey, Trace
from .services import BatchResult, ItemResult, stored_external_id, trace_ingest_batch


def trace_ingest_merging(*, workspace: Workspace, items: list[Any]) -> BatchResult:
    """`trace_ingest_batch`, with each session transcript merged into the trace its
    hooks built, and each complete record of a hook-built session (an OpenHands
    conversation) replacing its steps; a live capture's session that says no outcome
    has its status read from it. All or nothing for the merged and replaced
    sessions: if the database refuses one, nothing of the batch is stored."""
    items = [_status_from_session(item) for item in items]
    transcripts = [
        (position, item) for position, item in enumerate(items)
        if isinstance(item, dict) and _obj(item.get("metadata")).get("transcript")
    ]  # fmt: skip
    if not transcripts:
        replaced = _hooked_runs_replaced(workspace, items)
        if replaced:
            return _replace_and_write(workspace, items, replaced)
        return trace_ingest_batch(workspace=workspace, items=items)
    with transaction.atomic():
        # The sessions' locks, held from reading their hook steps to writing the
        # merge: a hook event arriving meanwhile (the capture hook imports a Codex
        # rollout at each turn's end, while the next turn begins) waits, and is
        # numbered after it, rather than being lost in the rewrite.
        for external in sorted({stored_external_id(workspace=workspace, external_id=str(item.get("external_id")))
                                for _, item in transcripts if item.get("external_id")}):  # fmt: skip
            session_lock(workspace.pk, external)
        return _merge_and_write(workspace, items, transcripts)


def _status_from_session(item: Any) -> Any:
    """A session an agent's live capture sent whole, saying no outcome
    (`metadata.status_from_session`: OpenCode's plugin at a turn's end): its status is
    read from the session by the rule hook sessions are read by
    (`claude_code.session_status`), and says so (`inferred_status`), as a hook-built
    run's; an outcome posted later decides instead."""
    if not isinstance(item, dict) or not _obj(item.get("metadata")).get("status_from_session"):
        return item
    if item.get("status", "unknown") not in ("", "unknown"):
        return item
    return _read_from_session(item, turn_failed=False)


def _read_from_session(item: dict[str, Any], *, turn_failed: bool) -> dict[str, Any]:
    """The item with the status its steps give by the hook sessions' rule, and why."""
    steps = [{**step, "index": step.get("index", position)}
             for position, step in enumerate(item.get("steps") or []) if isinstance(step, dict)]  # fmt: skip
    status, reason = session_status(None, steps, turn_failed=turn_failed)
    metadata = {**_obj(item.get("metadata"))}
    inferred_status(metadata, status, reason)
    return {**item, "status": status, "metadata": metadata}


def _hooked_runs_replaced(workspace: Workspace, items: list[Any]) -> dict[int, Trace]:
    """The runs hooks built that items of this batch replace: an agent's complete
    record of the same session (`metadata.replaces_hook_steps`: an OpenHands
    conversation the SDK saved, its every call, thought and token). Position in the
    batch → the stored run."""
    wanted = {
        position: stored_external_id(workspace=workspace, external_id=str(item.get("external_id")))
        for position, item in enumerate(items)
        if isinstance(item, dict) and item.get("external_id")
        and _obj(item.get("metadata")).get("replaces_hook_steps")
    }  # fmt: skip
    if not wanted:
        return {}
    hooked = {t.external_id: t for t in Trace.objects.filter(
        workspace=workspace, external_id__in=set(wanted.values()), metadata__hook_session=True,
    ).only("pk", "external_id", "status", "metadata")}  # fmt: skip
    return {p: hooked[e] for p, e in wanted.items() if e in hooked}


def _with_session_status(item: dict[str, Any], stored: Trace) -> dict[str, Any]:
    """A record that says no outcome, replacing a hook-built run: the status is read
    from the session as a transcript merge reads it (`transcript_merge`), from the
    record's steps, where the hooks had read one; else the run keeps its own."""
    if item.get("status", "unknown") not in ("", "unknown"):
        return item
    if stored.status not in ("succeeded", "failed"):
        return {**item, "status": stored.status}
    return _read_from_session(item, turn_failed=bool(stored.metadata.get("turn_failed")))


def _replace_and_write(
    workspace: Workspace, items: list[Any], replaced: dict[int, Trace]
) -> BatchResult:
    """Write the batch, the steps of the hook-built runs it replaces deleted first, in
    one transaction and under each session's lock (a hook event waits, then is
    numbered after the record's steps). A replacing item refused leaves the run as
    the hooks built it: nothing of the batch is stored."""
    items = [_with_session_status(item, replaced[p]) if p in replaced else item
             for p, item in enumerate(items)]  # fmt: skip
    with transaction.atomic():
        for external in sorted({t.external_id for t in replaced.values()}):
            session_lock(workspace.pk, external)
        pks = [t.pk for t in replaced.values()]
        Step.objects.filter(trace_id__in=pks).delete()
        StepKey.objects.filter(trace_id__in=pks).delete()
        # The replacing items are written whatever their digest (their steps were just
        # removed); the rest of the batch as any batch, an unchanged trace not again.
        batch = _in_parts(workspace, items, set(replaced))
        refresh_aggregates(pks)
        refused = _refused(batch, set(replaced), "could not replace the run its hooks built")
        if refused is not None:
            transaction.set_rollback(True)
            return refused
    return batch


def _in_parts(workspace: Workspace, items: list[Any], rewritten: set[int]) -> BatchResult:
    """`trace_ingest_batch` over the items at `rewritten` positions without its skip
    of unchanged traces, and over the others with it; one result, in batch order."""
    results: list[ItemResult] = []
    trace_ids: list[int] = []
    for positions, skip in ((sorted(rewritten), False),
                            ([p for p in range(len(items)) if p not in rewritten], True)):  # fmt: skip
        if not positions:
            continue
        part = trace_ingest_batch(workspace=workspace, items=[items[p] for p in positions],
                                  skip_unchanged=skip)  # fmt: skip
        results += [replace(r, index=positions[r.index]) for r in part.results]
        trace_ids += part.trace_ids
    return BatchResult(results=sorted(results, key=lambda r: r.index), trace_ids=trace_ids)


def _refused(batch: BatchResult, positions: set[int], what: str) -> BatchResult | None:
    """When an item at one of these positions was refused: every item refused, saying
    which and why (the caller rolls the batch back); else None."""
    refused = [r for r in batch.results if r.status == "rejected" and r.index in positions]
    if not refused:
        return None
    detail = f"traces[{refused[0].index}] {what} ({refused[0].detail}); nothing of this batch was stored."
    return BatchResult(
        results=[ItemResult(r.index, r.external_id, "rejected", detail) for r in batch.results]
    )


# A merge that leaves fewer than this share of a session's stored steps at their
# index deletes its steps and writes them anew (the session's first merge, where
# the transcript's messages come in between the hooks' calls); otherwise it writes
# over them by index, and a step left as it was is not written again
# (bench/transcript_merge.py: the first merge of a 1,296-step session 0.57-0.84 s
# rewritten, 0.79-1.27 s written over; a turn's end 0.23-0.31 s written over).
REWRITE_BELOW = 0.5


def _merge_and_write(
    workspace: Workspace, items: list[Any], transcripts: list[tuple[int, Any]]
) -> BatchResult:
    replaces: dict[int, int] = {}
    rewritten: list[int] = []  # stored trace ids whose steps are deleted and written anew
    keys: dict[int, dict[str, int]] = {}  # stored trace id → its hook keys, renumbered
    merged_items = list(items)
    for position, item in transcripts:
        merged_items[position], replaces[position] = transcript_merge(
            workspace=workspace, trace=item
        )
        if replaces[position]:
            keys[replaces[position]] = merged_items[position].pop("_step_keys", {})
        if merged_items[position].pop("_rewrite", False) and replaces[position]:
            rewritten.append(replaces[position])
    if not any(replaces.values()):
        return trace_ingest_batch(workspace=workspace, items=merged_items)
    # What each merged session's steps are to be, by index: the write goes over the
    # stored steps by index (a step the merge left as it was is not written again).
    settled = {
        pk: [(step["index"], step.get("parent_index")) for step in merged_items[position]["steps"]]
        for position, pk in replaces.items() if pk and pk not in rewritten
    }  # fmt: skip
    with transaction.atomic():
        # A merge that moved most of a session's steps (its first, where the
        # transcript's messages come in between the hooks' calls) deletes them and
        # writes them anew: writing over each by index would update nearly every row.
        Step.objects.filter(trace_id__in=rewritten).delete()
        # A merged transcript renumbers its session's steps, and the keys of its hook
        # events with them.
        StepKey.objects.filter(trace_id__in=list(keys)).delete()
        StepKey.objects.bulk_create(
            StepKey(trace_id=pk, key=key, index=index)
            for pk, renumbered in keys.items() for key, index in renumbered.items()
        )  # fmt: skip
        # Their steps were just removed: every merged trace is written again, and its
        # counts taken from the steps it now has (the write adds to the stored ones).
        batch = trace_ingest_batch(workspace=workspace, items=merged_items, skip_unchanged=False)
        _settle_steps(settled)
        refresh_aggregates([pk for pk in replaces.values() if pk])
        merged = {position for position, pk in replaces.items() if pk}
        refused = _refused(batch, merged, "could not be merged with the trace its hooks built")
        if refused is not None:
            transaction.set_rollback(True)
            return refused
    return batch


def _settle_steps(settled: dict[int, list[tuple[int, int | None]]]) -> None:
    """After a merge's write over the stored steps by index: the steps past the
    merged ones go, and each step's parent is the merge's (the write keeps a stored
    parent where none is sent, and a renumbered step may have none)."""
    with connection.cursor() as cursor:
        for trace_id, steps in settled.items():
            cursor.execute(
                "DELETE FROM traces_step WHERE trace_id = %s AND NOT (index = ANY(%s))",
                [trace_id, [index for index, _ in steps]],
            )
            cursor.execute(
                """
                UPDATE traces_step s SET parent_index = m.parent
                FROM unnest(%s::int[], %s::int[]) AS m(index, parent)
                WHERE s.trace_id = %s AND s.index = m.index
                  AND s.parent_index IS DISTINCT FROM m.parent
                """,
                [[index for index, _ in steps], [parent for _, parent in steps], trace_id],
            )


def transcript_merge(*, workspace: Workspace, trace: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A session transcript arriving for a session its hooks already built: one trace
    with the steps of both (the hooks' trace is not overwritten).

    Calls are matched by tool-use id, else by tool and input in order; prompts by
    their text. The transcript's order, times, outputs and errors win; a step only
    the hooks saw (a call after the transcript was saved, a turn's end, a
    notification, a subagent) keeps its place after the step it followed. The
    hooks' step keys are renumbered (`_step_keys` of the trace returned, which
    `trace_ingest_merging` writes), so later events still land on their steps.
    Returns the trace to store and the id of the stored trace whose steps it
    replaces (0: nothing to merge, store it as it is)."""
    metadata: dict[str, Any] = _obj(trace.get("metadata"))
    external = trace.get("external_id")
    if not metadata.get("transcript") or not isinstance(external, str) or not external:
        return trace, 0
    if metadata.get("subagent"):
        return _nest_subagent(workspace, trace, external, str(metadata["subagent"])), 0
    stored = (
        Trace.objects.filter(
            workspace=workspace,
            external_id=stored_external_id(workspace=workspace, external_id=external),
        )
        .only("pk", "metadata", "status")
        .first()
    )
    hook_keys = (
        dict(StepKey.objects.filter(trace_id=stored.pk).values_list("key", "index"))
        if stored is not None else {}
    )  # fmt: skip
    if stored is None or not hook_keys:
        return trace, 0
    old: list[dict[str, Any]] = [
        dict(row)
        for row in Step.objects.filter(trace=stored).order_by("index").values(
            "index", "kind", "name", "input", "output", "error", "started_at", "duration_ms",
            "tokens", "parent_index",
        )
    ]  # fmt: skip
    key_of = {index: key for key, index in hook_keys.items()}
    position_of = {row["index"]: n for n, row in enumerate(old)}
    ids = _obj(metadata.get("tool_use_ids"))
    new_steps = [s for s in trace.get("steps") or [] if isinstance(s, dict)]
    matched: dict[int, int] = {}  # transcript position → hook position
    taken: set[int] = set()
    prompts = [n for n, row in enumerate(old) if row["kind"] == "user_prompt"]
    replies = [n for n, row in enumerate(old) if row["kind"] == "assistant_message"]
    # The hooks' steps are stored redacted: a transcript's prompt or reply is compared
    # as it will be stored (the workspace's redaction is deterministic).
    redactor = redactor_for_policy(pii_policy_get(workspace=workspace))

    def as_stored(value: Any) -> Any:
        return redactor.value(value, Counter())

    for n, step in enumerate(new_steps):
        candidates: list[int] = []
        if step.get("kind") == "tool_call":
            for key in (key_hash(ids.get(str(n))) if ids.get(str(n)) else None,
                        key_hash([step.get("name"), step.get("input")])):  # fmt: skip
                if key and f"tool:{key}" in hook_keys:
                    candidates.append(position_of.get(hook_keys[f"tool:{key}"], -1))
        elif step.get("kind") == "user_prompt":
            text = as_stored(step.get("input"))
            candidates = [p for p in prompts if old[p]["input"] == text]
        elif step.get("kind") == "assistant_message" and step.get("output"):
            # The turn's last reply, which the Stop hook reports, is the transcript's.
            text = as_stored(step.get("output"))
            candidates = [p for p in replies if old[p]["output"] == text]
        found = next((c for c in candidates if c >= 0 and c not in taken), None)
        if found is not None:
            matched[n] = found
            taken.add(found)
    merged: list[tuple[dict[str, Any], int | None]] = []  # (step, its hook position)
    cursor = 0
    for n, step in enumerate(new_steps):
        hook = matched.get(n)
        if hook is not None and hook >= cursor:
            merged += [(_as_step(old[p]), p) for p in range(cursor, hook) if p not in taken]
            cursor = hook + 1
        if hook is None:
            merged.append((dict(step), None))
            continue
        row = old[hook]
        both = dict(step)
        answered = "output" in step or bool(step.get("error"))
        if not both.get("error") and row["error"] and not (answered and unanswered(row["error"])):
            both["error"] = row["error"]
        if "output" not in both and row["output"] is not None:
            both["output"] = row["output"]
        if row["duration_ms"] is not None and both.get("duration_ms") is None:
            both["duration_ms"] = row["duration_ms"]
        merged.append((both, hook))
    merged += [(_as_step(old[p]), p) for p in range(cursor, len(old)) if p not in taken]
    # Both records are dated (the hooks by the importer's merge): the session's order.
    merged = _by_time(merged)
    new_index = {old[p]["index"]: i for i, (_, p) in enumerate(merged) if p is not None}
    steps = []
    for i, (step, hook) in enumerate(merged):
        step["index"] = i
        parent = old[hook]["parent_index"] if hook is not None else step.get("parent_index")
        step["parent_index"] = (
            new_index.get(parent) if hook is not None and parent is not None else parent
        )
        if step["parent_index"] is None:
            step.pop("parent_index")
        steps.append(step)
    merged_trace = {**trace, "steps": steps}
    merged_trace["metadata"] = {**metadata, "hook_session": True}
    # The hook events' keys, renumbered: written by the caller with the steps.
    merged_trace["_step_keys"] = {
        key: new_index[index] for index, key in key_of.items() if index in new_index
    }
    # Whether most stored steps move (`_merge_and_write` then rewrites them all).
    in_place = sum(1 for index, moved in new_index.items() if index == moved)
    merged_trace["_rewrite"] = in_place < REWRITE_BELOW * len(old)
    # A status read from the hook session is read again from the merged steps; so is
    # one the session could not give (Codex's hooks send no exit codes, which a
    # rollout has).
    could_not = stored.status == "unknown" and (
        _obj(stored.metadata.get("inferred_status")).get("status") == "unknown"
    )
    if trace.get("status", "unknown") in ("", "unknown") and (
        stored.status in ("succeeded", "failed") or could_not
    ):
        merged_trace["status"], reason = session_status(
            None, steps, turn_failed=bool(stored.metadata.get("turn_failed"))
        )
        inferred_status(merged_trace["metadata"], merged_trace["status"], reason)
    elif trace.get("status", "unknown") in ("", "unknown"):
        merged_trace["status"] = stored.status
    return merged_trace, stored.pk


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_step(row: dict[str, Any]) -> dict[str, Any]:
    step = {k: v for k, v in row.items() if v is not None and k not in ("index", "parent_index")}
    if isinstance(step.get("started_at"), datetime):
        step["started_at"] = step["started_at"].isoformat()
    return step


def _by_time(
    merged: list[tuple[dict[str, Any], int | None]],
) -> list[tuple[dict[str, Any], int | None]]:
    """Stable by start time; an undated step keeps the time of the step before it."""
    keyed, current = [], ""
    for position, (step, hook) in enumerate(merged):
        stamp = step.get("started_at")
        if isinstance(stamp, str) and stamp:
            with contextlib.suppress(ValueError):
                parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                current = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
        keyed.append(((current, position), (step, hook)))
    return [pair for _, pair in sorted(keyed, key=lambda k: k[0])]


def _nest_subagent(
    workspace: Workspace, trace: dict[str, Any], external: str, agent: str
) -> dict[str, Any]:
    """A subagent's transcript whose parent session is stored: its steps go under the
    call that started it (after the parent's steps; in place on a re-import). With
    no parent stored yet, it is a trace of its own (`…-agent-<id>`), never the
    parent's."""
    from hivemind_client.formats import spawning_call

    stored = (
        Trace.objects.filter(
            workspace=workspace,
            external_id=stored_external_id(workspace=workspace, external_id=external),
        )
        .only("pk", "metadata", "step_count")
        .first()
    )
    if stored is None:
        own = dict(trace)
        own["external_id"] = f"{external}-agent-{agent}"[:200]
        return own
    rows = list(
        Step.objects.filter(trace=stored).order_by("index").values(
            "index", "kind", "name", "output", "started_at")
    )  # fmt: skip
    calls = [{**row, "started_at": row["started_at"].isoformat() if row["started_at"] else ""}
             for row in rows]  # fmt: skip
    placed: dict[str, list[int]] = dict(_obj(stored.metadata.get("subagent_steps")))
    start = placed[agent][0] if agent in placed else stored.step_count
    spawn = spawning_call(calls, agent, trace.get("started_at"))
    at = rows[spawn]["index"] if spawn is not None else None
    steps = []
    for n, step in enumerate(s for s in trace.get("steps") or [] if isinstance(s, dict)):
        nested = {**step, "index": start + n}
        if at is not None:
            nested["parent_index"] = at
        steps.append(nested)
    placed[agent] = [start, len(steps)]
    return {
        "external_id": external,
        "steps": steps,
        "metadata": {"subagent_steps": placed, f"import_digest:{agent}": metadata_digest(trace)},
    }


def metadata_digest(trace: dict[str, Any]) -> str:
    return str(_obj(trace.get("metadata")).get("import_digest") or "")
