"""Claude Code hook payloads → Hivemind traces (one trace per session_id).

Steps are numbered 0, 1, 2… in the order events arrive (under a per-session
lock): the PreToolUse and PostToolUse / PostToolUseFailure of one call share
the step of its `tool_use_id`; any other event is keyed by the event id the
capture client adds (else the payload itself), so a retried payload updates its
step instead of adding one. The key → index map lives in the trace's metadata.

What happened is recorded from the events Claude Code sends:
- `PostToolUseFailure` is a failed step with the tool's own error text;
- `StopFailure` is a failed turn (the trace is failed at once);
- a PreToolUse never answered by the time the session ends is a failed call;
- `SessionEnd` closes the trace with a status (`session_status`): failed if a
  turn failed or the session's last tool call failed (nothing ran after it to
  recover), else failed if the user's last prompt was a correction ("that's
  wrong", "undo that", "it still fails"…), else succeeded.
Subagent events name their steps `<agent_type>/<tool>`. Unknown events become
steps; unknown fields are kept in the trace's metadata; older payloads without
session events still make a trace.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from django.db import connection, transaction
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
    "error", "error_details", "is_interrupt",
}  # fmt: skip
UNFINISHED = "No PostToolUse before the session ended: the tool call failed."


def external_id(session_id: str) -> str:
    return f"claude-code-{session_id}"[:200]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# A last prompt that says the work was wrong: the session did not succeed.
CORRECTION = re.compile(
    r"^\s*(no\b|nope\b|wrong\b|that'?s (not|wrong|incorrect)|this is (wrong|not)|"
    r"(it|that|this|tests?) (still|is still|are still) (fail|broken|not|wrong|doesn'?t|don'?t)|"
    r"(it|that|this) (doesn'?t|didn'?t|does not|did not) work|undo|revert|roll ?back|stop\b)",
    re.IGNORECASE,
)


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
    with transaction.atomic():
        # One session's events are numbered one at a time, in arrival order.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)",
                           [int(_key(workspace.pk, trace_id)[:15], 16)])  # fmt: skip
        stored = Trace.objects.filter(workspace=workspace, external_id=trace_id).first()
        numbering = _Numbering(stored.metadata.get("hook_steps", {}) if stored else {})
        steps = _steps(workspace, trace_id, event, payload, event_key, now, trace, numbering)
        trace["steps"] = steps
        trace["metadata"]["hook_steps"] = numbering.keys
        if event == "SessionEnd":
            trace["status"] = session_status(
                stored, steps, turn_failed=bool(stored and stored.metadata.get("turn_failed"))
            )
        return trace_ingest_batch(workspace=workspace, items=[trace])


class _Numbering:
    """Event key → step index, 0, 1, 2… in first-arrival order."""

    def __init__(self, keys: dict[str, int]) -> None:
        self.keys = dict(keys)

    def __call__(self, key: str) -> int:
        if key not in self.keys:
            self.keys[key] = len(self.keys)
        return self.keys[key]


def session_status(stored: Trace | None, new_steps: list[dict], *, turn_failed: bool) -> str:
    """The closing status of a session (the rule in the module docstring)."""
    if turn_failed:
        return "failed"
    steps: dict[int, dict[str, Any]] = {}
    if stored is not None:
        for row in Step.objects.filter(trace=stored).values("index", "kind", "input", "error"):
            steps[row["index"]] = dict(row)
    for step in new_steps:
        steps[step["index"]] = {**steps.get(step["index"], {}), **step}
    ordered = [steps[i] for i in sorted(steps)]
    tools = [s for s in ordered if s.get("kind") == "tool_call"]
    if tools and tools[-1].get("error"):
        return "failed"
    prompts = [s for s in ordered if s.get("kind") == "user_prompt"]
    if len(prompts) > 1 and CORRECTION.search(str(prompts[-1].get("input") or "")):
        return "failed"
    return "succeeded"


def _steps(workspace, trace_id, event, payload, event_key, now, trace, number) -> list[dict]:  # type: ignore[no-untyped-def]
    tool = str(payload.get("tool_name") or "")
    name = f"{payload['agent_type']}/{tool}" if payload.get("agent_type") and tool else tool
    if event in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
        call_key = payload.get("tool_use_id") or [tool, payload.get("tool_input")]
        call = this = number("tool:" + _key(call_key))
    elif event != "SessionStart":
        this = number("event:" + _key(event, event_key))
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
        return [{"index": this, "kind": "user_prompt", "input": prompt, "started_at": now}]
    if event == "PreToolUse":
        return [{"index": call, "kind": "tool_call", "name": name[:200],
                 "input": payload.get("tool_input"), "started_at": now}]  # fmt: skip
    if event in ("PostToolUse", "PostToolUseFailure"):
        response = payload.get("tool_response")
        if event == "PostToolUseFailure":
            error = str(payload.get("error") or "").strip()
            if payload.get("is_interrupt"):
                error = error or "Interrupted by the user."
            error = error or "The tool call failed (Claude Code sent no error text)."
        else:
            error = _tool_error(response)
        return [{"index": call, "kind": "tool_call", "name": name[:200],
                 "input": payload.get("tool_input"), "output": response if response is not None else "",
                 "error": error[:10_000], "duration_ms": payload.get("duration_ms"),
                 "started_at": _started(workspace, trace_id, call) or now}]  # fmt: skip
    if event in ("Stop", "SubagentStop"):
        label = (
            "assistant" if event == "Stop" else f"subagent:{payload.get('agent_type') or 'agent'}"
        )
        return [{"index": this, "kind": "assistant_message", "name": label[:200],
                 "output": payload.get("last_assistant_message") or "", "started_at": now}]  # fmt: skip
    if event == "StopFailure":
        # The turn ended on an error (API error, limit…): the session failed.
        trace["status"] = "failed"
        trace["metadata"]["turn_failed"] = True
        details = payload.get("error_details")
        error = str(payload.get("error") or "The turn ended on an error.")
        if details:
            error += (
                f": {details if isinstance(details, str) else json.dumps(details, default=str)}"
            )
        return [{"index": this, "kind": "assistant_message", "name": "turn failed",
                 "output": payload.get("last_assistant_message") or "", "error": error[:10_000],
                 "started_at": now}]  # fmt: skip
    if event == "SessionEnd":
        trace["ended_at"] = now
        return _unfinished_calls(workspace, trace_id) + [
            {"index": this, "kind": "assistant_message", "name": "session end",
             "output": str(payload.get("reason") or ""), "started_at": now}]  # fmt: skip
    # Notification and events this version does not know: kept, never rejected.
    return [{"index": this, "kind": "assistant_message", "name": event[:200],
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
