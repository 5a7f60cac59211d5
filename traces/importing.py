"""Importing agent log files into a workspace (a service; `manage.py import_traces`).

The parsers are `hivemind_client.formats` (standard library only, so an agent
machine runs the same code). A file is imported whole or not at all: every
trace goes through the normal ingest service (validation, redaction, upsert)
inside one transaction, and one rejected trace rolls the file back with a
message naming the file and the trace. Re-importing a file changes nothing:
each trace carries a digest of what the file said (`metadata.import_digest`),
and a trace already stored with the same digest is left alone (its
`updated_at` does not move, so it is not analysed again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from hivemind_client.formats import (
    SWE_RESULT_FORMATS,
    FormatError,
    apply_swe_results,
    give_outcome,
    parse,
)
from hivemind_client.formats import obj as _obj
from workspaces.errors import InvalidInput
from workspaces.models import Workspace

from .models import Trace
from .services import retention_preview, stored_external_id
from .transcripts import trace_ingest_merging

CHUNK = 500


@dataclass
class FileResult:
    path: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Traces of the workspace the next daily purge deletes (received before the
    # retention window); imported runs count from their import, whatever their age.
    purge_next: int = 0
    # Agent name -> runs of this file under it (the summary names them).
    agents: dict[str, int] = field(default_factory=dict)
    # Runs whose outcome the importer could not find (never guessed): named in the summary.
    no_outcome: list[str] = field(default_factory=list)
    # Runs nothing in the file dates (no start, end or step time): stored with the
    # time they arrived, the import's, which the summary says.
    undated: list[str] = field(default_factory=list)
    # Runs whose file's score is not the agent's (the harness stopped them, e.g. tau2's
    # infrastructure_error): imported with no outcome on purpose, their page says why.
    not_the_agent: list[str] = field(default_factory=list)
    # Runs whose file gave no outcome and that took the one given at import (--status).
    given_outcome: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class _Rejected(Exception):
    pass


def _digest(trace: dict[str, Any]) -> str:
    raw = json.dumps(trace, sort_keys=True, default=str, ensure_ascii=False).encode()
    return "d" + hashlib.sha256(raw).hexdigest()[:24]


def traces_import_file(
    *,
    workspace: Workspace,
    fmt: str,
    path: Path,
    agent: str = "",
    results: Path | None = None,
    status: str = "",
) -> FileResult:
    """Import one file; FileResult.error says what was wrong (and nothing was stored).
    `agent` names the agent of every run in it, over what the data says; `results`
    is a SWE-bench report giving the outcomes of swe-agent and openhands runs; `status` is the
    outcome a person gives the runs whose file says none."""
    result = FileResult(path=str(path))
    try:
        parsed = parse(fmt, path)
        if results is not None and fmt in SWE_RESULT_FORMATS:
            apply_swe_results(parsed.traces, results)
        result.given_outcome = give_outcome(parsed.traces, status)
    except FormatError as exc:
        result.error = str(exc)
        return result
    except OSError as exc:
        result.error = f"{path}: cannot read the file ({exc.strerror or exc})"
        return result
    if agent.strip():
        for trace in parsed.traces:
            if isinstance(trace, dict):
                trace["agent"] = agent.strip()[:200]
    try:
        with transaction.atomic():
            if parsed.hook_payloads:
                _replay_hooks(workspace, path, parsed.hook_payloads, result)
            else:
                _import_traces(workspace, path, fmt, parsed.traces, result)
    except _Rejected as exc:
        return FileResult(path=str(path), error=str(exc))
    except InvalidInput as exc:
        return FileResult(path=str(path), error=f"{path}: {exc}")
    return result


def _import_traces(
    workspace: Workspace, path: Path, fmt: str, traces: list[Any], result: FileResult
) -> None:
    for position, trace in enumerate(traces):
        if not isinstance(trace, dict):
            raise _Rejected(f"{path}: trace {position}: a trace must be a JSON object")
        result.agents[str(trace.get("agent") or "")] = (
            result.agents.get(str(trace.get("agent") or ""), 0) + 1
        )
        metadata = _obj(trace.get("metadata"))
        if trace.get("status", "unknown") == "unknown":
            name = str(trace.get("external_id") or f"trace {position}")
            set_aside = str(metadata.get("outcome_from") or "").startswith("none (")
            (result.not_the_agent if set_aside else result.no_outcome).append(name)
        trace["metadata"] = {**metadata, "import_format": fmt, "import_digest": _digest(trace)}
    keyed = [
        (stored_external_id(workspace=workspace, external_id=str(t.get("external_id") or "")), t)
        for t in traces
    ]
    existing = dict(
        Trace.objects.filter(
            workspace=workspace, external_id__in=[key for key, _ in keyed]
        ).values_list("external_id", "metadata")
    )
    todo = []
    for external_id, trace in keyed:
        # A subagent's transcript nests in its parent's trace, with a digest of its own.
        agent = trace["metadata"].get("subagent")
        field = f"import_digest:{agent}" if agent else "import_digest"
        if _obj(existing.get(external_id)).get(field) == trace["metadata"]["import_digest"]:
            result.unchanged += 1
        else:
            todo.append(trace)
    for start in range(0, len(todo), CHUNK):
        batch = trace_ingest_merging(workspace=workspace, items=todo[start : start + CHUNK])
        for item in batch.results:
            if item.status == "rejected":
                detail = item.detail or "; ".join(str(e) for e in item.errors)[:500]
                raise _Rejected(
                    f"{path}: trace {start + item.index} (external_id {item.external_id!r}): "
                    f"{detail} Nothing from this file was stored."
                )
            if item.status == "created":
                result.created += 1
            elif item.status == "updated":
                result.updated += 1
            elif item.status == "unchanged":
                result.unchanged += 1
    result.undated = _undated(workspace, [key for key, _ in keyed])
    # Retention counts from arrival: what the next purge takes is older arrivals.
    result.purge_next = retention_preview(workspace_id=workspace.pk)


def _undated(workspace: Workspace, external_ids: list[str]) -> list[str]:
    """The stored runs among these that no time of their own dated: ingest stores
    such a run with the time it arrived (its start is its arrival, to the
    microsecond of the same statement)."""
    return list(
        Trace.objects.filter(
            workspace=workspace, external_id__in=external_ids, started_at=F("received_at")
        )
        .order_by("external_id")
        .values_list("external_id", flat=True)
    )


def traces_import_hook_logs(
    *, workspace: Workspace, paths: list[Path], agent: str = ""
) -> FileResult:
    """Import a hook-log folder (or files) as the sessions happened: every event file
    merged per session by time (`hivemind_client.hooklog`), replayed through the
    hook service; a session transcript among the files (`chat.json`, a `.jsonl`
    transcript) is then imported into the trace its hooks built. All or nothing; a
    session whose events were imported before is left alone ("unchanged")."""
    from hivemind_client.hooklog import is_transcript, read_items, session_events

    label = str(paths[0].parent if len(paths) > 1 else paths[0])
    result = FileResult(path=label)
    hook_files: list[list[dict[str, Any]]] = []
    transcripts: list[Path] = []
    entries: list[Any] = []
    for path in paths:
        try:
            items = read_items(path)
        except UnicodeDecodeError:
            result.error = f"{path}: not UTF-8 text; nothing from {label} was stored."
            return result
        except (ValueError, OSError) as exc:
            result.error = f"{path}: {exc}; nothing from {label} was stored."
            return result
        if is_transcript(items):
            transcripts.append(path)
            entries += items
            continue
        for number, payload in enumerate(items):
            if (
                not isinstance(payload, dict)
                or not payload.get("session_id")
                or not (payload.get("hook_event_name"))
            ):
                result.error = (
                    f'{path}: element [{number}]: a hook payload needs "session_id" and '
                    f'"hook_event_name"; nothing from {label} was stored.'
                )
                return result
            if agent.strip():
                payload["hivemind_agent"] = agent.strip()[:200]
        hook_files.append(items)
    events = session_events(hook_files, entries)
    try:
        with transaction.atomic():
            _replay_sessions(workspace, label, events, result)
            hooked = {str(p["session_id"]) for p in events}
            for path in transcripts:
                parsed = parse("claude-transcript", path)
                for trace in parsed.traces:
                    if agent.strip():
                        trace["agent"] = agent.strip()[:200]
                counted = FileResult(path=str(path))
                _import_traces(workspace, path, "claude-transcript", parsed.traces, counted)
                if not any(str(t.get("session_id")) in hooked for t in parsed.traces):
                    # A session with hook events is counted once, by its replay.
                    result.created += counted.created
                    result.updated += counted.updated
                    result.unchanged += counted.unchanged
                    for name, runs in counted.agents.items():
                        result.agents[name] = result.agents.get(name, 0) + runs
            # Named in the summary: sessions that never ended (no Stop, no SessionEnd)
            # and transcripts with no hook events to give them a status.
            sessions = {str(p["session_id"]) for p in events} | {
                str(e.get("sessionId")) for e in entries if isinstance(e, dict) and e.get("sessionId")
            }  # fmt: skip
            ids = [stored_external_id(workspace=workspace, external_id=f"claude-code-{s}")
                   for s in sorted(sessions)]  # fmt: skip
            # A log that ends before its session did (no Stop, no SessionEnd) leaves
            # it "running": untrue of a session replayed from a log, which will send
            # nothing more. Its outcome is unknown; live hooks set it running again.
            Trace.objects.filter(workspace=workspace, external_id__in=ids,
                                 status="running").update(status="unknown",
                                                          updated_at=timezone.now())  # fmt: skip
            result.no_outcome = list(
                Trace.objects.filter(workspace=workspace, external_id__in=ids,
                                     status__in=["running", "unknown"])
                .order_by("external_id").values_list("external_id", flat=True)
            )  # fmt: skip
            result.undated = _undated(workspace, ids)
    except FormatError as exc:
        return FileResult(path=label, error=str(exc))
    except _Rejected as exc:
        return FileResult(path=label, error=str(exc))
    except InvalidInput as exc:
        return FileResult(path=label, error=f"{label}: {exc}")
    return result


def _replay_sessions(
    workspace: Workspace, label: str, events: list[dict[str, Any]], result: FileResult
) -> None:
    from .claude_code import external_id

    sessions: dict[str, list[dict[str, Any]]] = {}
    for payload in events:
        sessions.setdefault(str(payload["session_id"]), []).append(payload)
    for session, payloads in sessions.items():
        digest = _digest({"events": payloads})
        stored_id = stored_external_id(workspace=workspace, external_id=external_id(session))
        stored = Trace.objects.filter(workspace=workspace, external_id=stored_id).first()
        if stored is not None and stored.metadata.get("hook_import_digest") == digest:
            result.unchanged += 1
            continue
        before = stored is not None
        _replay_hooks(workspace, Path(label), payloads, FileResult(path=label))
        replayed = Trace.objects.get(workspace=workspace, external_id=stored_id)
        replayed.metadata = {**replayed.metadata, "hook_import_digest": digest}
        replayed.save(update_fields=["metadata"])
        result.agents[str(payloads[0].get("hivemind_agent") or "claude-code")] = (
            result.agents.get(str(payloads[0].get("hivemind_agent") or "claude-code"), 0) + 1
        )
        if before:
            result.updated += 1
        else:
            result.created += 1


def _replay_hooks(
    workspace: Workspace, path: Path, payloads: list[dict[str, Any]], result: FileResult
) -> None:
    from .claude_code import hook_ingest

    for position, payload in enumerate(payloads):
        event_id = (
            "import-"
            + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
                :24
            ]
        )
        batch = hook_ingest(workspace=workspace, payload=payload, event_id=event_id)
        for item in batch.results:
            if item.status == "rejected":
                raise _Rejected(f"{path}: payload {position}: {item.detail} Nothing was stored.")
        result.updated += 1
