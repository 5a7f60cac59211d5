"""Claude Code hook payloads → Hivemind traces (one trace per session_id).

Hook payloads carry no timestamps or step numbers, so each event's step index
is derived from what identifies it: the `tool_use_id` (PreToolUse and
PostToolUse of one call share a step), else the event id the capture client
adds, else the payload itself. A retried payload therefore updates the same
step. A PreToolUse never followed by PostToolUse is a failed call (Claude Code
sends no PostToolUse when a tool fails); it is marked when the session ends.
Unknown events become steps; unknown fields are kept in the trace's metadata.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.utils import timezone

from workspaces.errors import InvalidInput
from workspaces.models import Workspace

from .models import Step, Trace
from .services import BatchResult, stored_external_id, trace_ingest_batch

KNOWN_FIELDS = {
    "session_id", "transcript_path", "cwd", "hook_event_name", "permission_mode", "source",
    "model", "prompt", "tool_name", "tool_input", "tool_use_id", "agent_id", "agent_type",
    "tool_response", "duration_ms", "message", "notification_type", "stop_hook_active",
    "last_assistant_message", "agent_transcript_path", "reason", "hivemind_event_id",
}  # fmt: skip
UNFINISHED = "No PostToolUse before the session ended: the tool call failed."


def external_id(session_id: str) -> str:
    return f"claude-code-{session_id}"[:200]


def _index(*parts: Any) -> int:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return int(digest[:7], 16)


def _tool_error(response: Any) -> str:
    if isinstance(response, dict):
        if response.get("is_error") or response.get("isError"):
            return str(
                response.get("content") or response.get("error") or "tool reported an error"
            )[:10_000]
        if response.get("error"):
            return str(response["error"])[:10_000]
        if response.get("success") is False:
            return str(response.get("message") or "tool reported success=false")[:10_000]
    return ""


def hook_ingest(*, workspace: Workspace, payload: Any, event_id: str = "") -> BatchResult:
    """Turn one hook payload into a trace update through the normal ingest path."""
    if not isinstance(payload, dict):
        raise InvalidInput("A Claude Code hook payload must be a JSON object.")
    session = payload.get("session_id")
    event = payload.get("hook_event_name")
    if not isinstance(session, str) or not session or not isinstance(event, str) or not event:
        raise InvalidInput("Hook payloads need string fields 'session_id' and 'hook_event_name'.")
    # Looked up below as ingest will store it (pseudonymised if it holds PII).
    trace_id = stored_external_id(workspace=workspace, external_id=external_id(session))
    trace: dict[str, Any] = {
        "external_id": trace_id,
        "session_id": session[:200],
        "agent": "claude-code",
    }
    extra = {k: v for k, v in payload.items() if k not in KNOWN_FIELDS}
    trace["metadata"] = {"cwd": str(payload.get("cwd", ""))[:500]}
    if extra:
        trace["metadata"][f"extra:{event}"] = extra
    now = timezone.now().isoformat()
    event_key = event_id or payload.get("hivemind_event_id") or payload
    steps = _steps(workspace, trace_id, event, payload, event_key, now, trace)
    trace["steps"] = steps
    return trace_ingest_batch(workspace=workspace, items=[trace])


def _steps(workspace, trace_id, event, payload, event_key, now, trace) -> list[dict]:  # type: ignore[no-untyped-def]
    tool = str(payload.get("tool_name") or "")
    name = f"{payload['agent_type']}/{tool}" if payload.get("agent_type") and tool else tool
    call_key = payload.get("tool_use_id") or [tool, payload.get("tool_input")]
    if event == "SessionStart":
        trace["model"] = str(payload.get("model") or "")[:200]
        trace["status"] = "running"
        return []
    if event == "UserPromptSubmit":
        prompt = str(payload.get("prompt") or "")
        if (
            not Trace.objects.filter(workspace=workspace, external_id=trace_id)
            .exclude(task="")
            .exists()
        ):
            trace["task"] = prompt
        return [
            {
                "index": _index(event, event_key),
                "kind": "user_prompt",
                "input": prompt,
                "started_at": now,
            }
        ]
    if event == "PreToolUse":
        return [{"index": _index("tool", call_key), "kind": "tool_call", "name": name[:200],
                 "input": payload.get("tool_input"), "started_at": now}]  # fmt: skip
    if event == "PostToolUse":
        response = payload.get("tool_response")
        return [{"index": _index("tool", call_key), "kind": "tool_call", "name": name[:200],
                 "input": payload.get("tool_input"), "output": response if response is not None else "",
                 "error": _tool_error(response), "duration_ms": payload.get("duration_ms"),
                 "started_at": _started(workspace, trace_id, _index("tool", call_key)) or now}]  # fmt: skip
    if event in ("Stop", "SubagentStop"):
        label = (
            "assistant" if event == "Stop" else f"subagent:{payload.get('agent_type') or 'agent'}"
        )
        return [{"index": _index(event, event_key), "kind": "assistant_message", "name": label[:200],
                 "output": payload.get("last_assistant_message") or "", "started_at": now}]  # fmt: skip
    if event == "SessionEnd":
        trace["ended_at"] = now
        return _unfinished_calls(workspace, trace_id) + [
            {"index": _index(event, event_key), "kind": "assistant_message", "name": "session end",
             "output": str(payload.get("reason") or ""), "started_at": now}]  # fmt: skip
    # Notification and events this version does not know: kept, never rejected.
    return [{"index": _index(event, event_key), "kind": "assistant_message", "name": event[:200],
             "output": {k: v for k, v in payload.items() if k not in ("session_id", "transcript_path", "cwd")},
             "started_at": now}]  # fmt: skip


def _started(workspace: Workspace, trace_id: str, index: int) -> str | None:
    started = (
        Step.objects.filter(trace__workspace=workspace, trace__external_id=trace_id, index=index)
        .values_list("started_at", flat=True)
        .first()
    )
    return started.isoformat() if started else None


def _unfinished_calls(workspace: Workspace, trace_id: str) -> list[dict]:
    rows = Step.objects.filter(
        trace__workspace=workspace, trace__external_id=trace_id, kind="tool_call",
        output__isnull=True, error="",
    ).values("index", "name", "input", "started_at")  # fmt: skip
    return [
        {"index": r["index"], "kind": "tool_call", "name": r["name"], "input": r["input"],
         "error": UNFINISHED, "started_at": r["started_at"].isoformat() if r["started_at"] else None}
        for r in rows
    ]  # fmt: skip
