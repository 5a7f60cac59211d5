"""Claude Code hook payloads → Hivemind traces (one trace per session_id).

Steps are numbered 0, 1, 2… in the order events arrive (under a per-session
lock): the PreToolUse and PostToolUse / PostToolUseFailure of one call share
the step of its `tool_use_id`; any other event is keyed by the event id the
capture client adds (else the payload itself), so a retried payload updates its
step instead of adding one. The key → index map lives in the trace's metadata.

What happened is recorded from the events Claude Code sends:
- `PostToolUseFailure` is a failed step with the tool's own error text;
- `StopFailure` is a failed turn (the trace is failed at once);
- a PreToolUse never answered by the time its turn ends (`Stop`, the next
  `UserPromptSubmit`, or `SessionEnd`) is a failed call: denied, interrupted,
  or failed without a PostToolUseFailure (a session with no SessionEnd still
  gets its failed calls);
- `SessionEnd` closes the trace with a status (`session_status`): failed if a
  turn failed or the session's last tool call failed (nothing ran after it to
  recover), else failed if the user's last prompt was a correction ("that's
  wrong", "undo that", "it still fails"…), else succeeded.
- `Stop` ends a turn: the trace gets the status `session_status` gives so far
  (agents without a SessionEnd event, Codex and older Claude Code, still get
  one); the next prompt sets it running again.
Subagents: `SubagentStart` is a step; the tool calls that carry its `agent_id`
are nested under it (`parent_index`) and named `<agent_type>/<tool>`;
`SubagentStop` completes it. Unknown events become steps; unknown fields are
kept in the trace's metadata; older payloads (no `hook_event_name`, no session
events) are still accepted: the event is inferred from the fields present, and
until a prompt arrives the task says which folder the session ran in.

Codex sends the same shapes (its `turn_id` is kept), but a command's result as
its printed text with no exit code: a Codex session with such calls and no
failure seen ends `unknown`, not succeeded, until its rollout is merged in.
Cursor's events are mapped onto them first (`from_cursor`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from workspaces.errors import InvalidInput
from workspaces.models import Workspace

from .errors import refused, unanswered
from .models import Step, StepKey, Trace
from .services import BatchResult, capture_policy_get, stored_external_id, trace_ingest_batch

KNOWN_FIELDS = {
    "session_id", "transcript_path", "cwd", "hook_event_name", "permission_mode", "source",
    "model", "prompt", "tool_name", "tool_input", "tool_use_id", "agent_id", "agent_type",
    "tool_response", "duration_ms", "message", "notification_type", "stop_hook_active",
    "last_assistant_message", "agent_transcript_path", "reason", "hivemind_event_id",
    "error", "error_details", "is_interrupt", "turn_id", "hivemind_agent", "hivemind_time",
    "timestamp",  # the event's time (Gemini CLI's payloads, a logger's): the step's time
    # Claude Code 2.1's bookkeeping, which says nothing of what the agent did: the
    # prompt an event belongs to, the reasoning effort, scheduled and background tasks.
    "prompt_id", "effort", "background_tasks", "session_crons",
}  # fmt: skip
SOURCES = {"claude-code": "claude-code", "codex": "codex", "cursor": "cursor",
           "gemini-cli": "gemini-cli", "openhands": "openhands",
           "qwen-code": "qwen-code"}  # fmt: skip
# A call whose PreToolUse had no PostToolUse or PostToolUseFailure by its turn's end:
# Claude Code before PostToolUseFailure sent nothing for a failed call; 2.x sends
# nothing for a call a permission rule or the user refused, or that was stopped.
UNFINISHED = (
    "No PostToolUse before the turn ended: the call did not complete (it failed, or was "
    "refused or stopped)."
)


def external_id(session_id: str, source: str = "claude-code") -> str:
    return f"{source}-{session_id}"[:200]


def hooked_sessions(
    workspace: Workspace, session_ids: list[str], source: str = "claude-code"
) -> set[str]:
    """The sessions among these that the agent's hooks capture already (a run
    `<source>-<session>`, Claude Code's by default; Codex's rollouts make the same
    run): its own spans and events of them are left to the hooks, the fuller record,
    so a session is one run and counted once."""
    runs = {
        stored_external_id(workspace=workspace, external_id=external_id(session, source)): session
        for session in set(session_ids)
        if session
    }
    found = Trace.objects.filter(workspace=workspace, external_id__in=list(runs))
    return {runs[run] for run in found.values_list("external_id", flat=True)}


def key_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def session_lock(workspace_id: int, trace_external_id: str) -> None:
    """Hold a hook session's lock until the transaction ends: its events, and a
    transcript merged into it (`transcripts.py`), are written one at a time."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)",
                       [int(key_hash(workspace_id, trace_external_id)[:15], 16)])  # fmt: skip


# A last prompt that says the work was wrong: the session did not succeed.
CORRECTION = re.compile(
    r"^\s*(no\b|nope\b|wrong\b|that'?s (not|wrong|incorrect)|this is (wrong|not)|"
    r"(it|that|this|tests?) (still|is still|are still) (fail|broken|not|wrong|doesn'?t|don'?t)|"
    r"(it|that|this) (doesn'?t|didn'?t|does not|did not) work|undo|revert|roll ?back|stop\b)",
    re.IGNORECASE,
)


def infer_event(payload: dict[str, Any]) -> str:
    """The event of a payload from a version that did not name it."""
    if "tool_response" in payload:
        return "PostToolUse"
    if "tool_name" in payload:
        return "PreToolUse"
    if "prompt" in payload:
        return "UserPromptSubmit"
    if "stop_hook_active" in payload or "last_assistant_message" in payload:
        return "Stop"
    if "message" in payload:
        return "Notification"
    return ""


def _tool_error(response: Any) -> str:
    if isinstance(response, dict):
        code = response.get("exit_code", response.get("exitCode"))
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            text = str(response.get("stderr") or response.get("output")
                       or response.get("stdout") or "").strip()  # fmt: skip
            return f"exit code {code}: {text}"[:10_000] if text else f"exit code {code}"
        if response.get("is_error") or response.get("isError"):
            return str(
                response.get("content") or response.get("error") or "tool reported an error"
            )[:10_000]
        if response.get("error"):
            return str(response["error"])[:10_000]
        if response.get("success") is False:
            return str(response.get("message") or "tool reported success=false")[:10_000]
    return ""


# The event ids a replayed hook log's events carry: the client's `replay` and the
# server's own import (traces/importing.py); no live hook sends them.
REPLAYED_EVENTS = ("replay-", "import-")


def hook_ingest(
    *, workspace: Workspace, payload: Any, event_id: str = "", source: str = "claude-code"
) -> BatchResult:
    """Turn one hook payload into a trace update through the normal ingest path."""
    if not isinstance(payload, dict):
        raise InvalidInput(f"A {source} hook payload must be a JSON object.")
    if source == "cursor":
        payload = from_cursor(payload)
    elif source == "gemini-cli":
        payload = from_gemini(payload)
    elif source in ("openhands", "qwen-code"):
        # OpenHands' PreToolUse (its call is recorded by its PostToolUse); Qwen Code's
        # UserPromptSubmit before a follow-up model request, with no prompt: nothing.
        mapped = from_openhands(payload, event_id) if source == "openhands" else from_qwen(payload)
        if mapped is None:
            capture_policy_get(workspace=workspace)
            return BatchResult(results=[], trace_ids=[])
        payload = mapped
    session = payload.get("session_id")
    event = payload.get("hook_event_name") or infer_event(payload)
    if not isinstance(session, str) or not session or not isinstance(event, str) or not event:
        raise InvalidInput(
            "Hook payloads need a string 'session_id' (Cursor: 'conversation_id') and a "
            "'hook_event_name' (OpenHands: 'event_type'; or the fields of a tool call, a "
            "prompt or a stop)."
        )
    agent = payload.get("hivemind_agent")
    policy = capture_policy_get(workspace=workspace)  # read once for the event
    # Looked up below as ingest will store it (pseudonymised if it holds PII).
    trace_id = stored_external_id(
        workspace=workspace, external_id=external_id(session, source), policy=policy
    )
    trace: dict[str, Any] = {
        "external_id": trace_id,
        "session_id": session[:200],
        "agent": agent[:200] if isinstance(agent, str) and agent.strip() else source,
    }
    extra = {k: v for k, v in payload.items() if k not in KNOWN_FIELDS}
    trace["metadata"] = {"cwd": str(payload.get("cwd", ""))[:500]}
    if extra:
        trace["metadata"][f"extra:{event}"] = extra
    stamped = _payload_time(payload)
    now = stamped or timezone.now().isoformat()
    event_key = event_id or payload.get("hivemind_event_id") or payload
    with transaction.atomic():
        # One session's events are numbered one at a time, in arrival order.
        session_lock(workspace.pk, trace_id)
        stored = Trace.objects.filter(workspace=workspace, external_id=trace_id).first()
        replayed = str(event_id).startswith(REPLAYED_EVENTS)
        if stored is None and stamped:
            # A replayed log's session starts when its first event happened, not when
            # the replay reached the server (an undated one is dated by its arrival).
            trace["started_at"] = stamped
        elif stored is None and replayed:
            trace["metadata"]["dated_by_arrival"] = True  # said on the trace's page
        numbering = _Numbering(stored)
        subagents = dict(stored.metadata.get("subagents", {})) if stored else {}
        turn_failed = bool(stored and stored.metadata.get("turn_failed"))
        steps = _steps(workspace, trace_id, event, payload, event_key, now, trace, numbering,
                       subagents, stored)  # fmt: skip
        trace["steps"] = steps
        trace["metadata"]["hook_session"] = True
        if subagents:
            trace["metadata"]["subagents"] = subagents
        if event in ("SessionEnd", "Stop"):
            trace["status"], reason = session_status(
                stored, steps, turn_failed=turn_failed, source=source
            )
            inferred_status(trace["metadata"], trace["status"], reason)
        elif event == "UserPromptSubmit" and not turn_failed:
            trace["status"] = "running"  # a new turn
        if replayed and trace.get("status") == "running":
            # A replayed log sends nothing after its last event: a session it leaves
            # running ended where nothing says how it went (live hooks, should the
            # session go on, set it running again).
            trace["status"] = "unknown"
            inferred_status(trace["metadata"], "unknown", "its log ends inside a turn (no Stop "
                            "or SessionEnd after its last prompt), so nothing says how it went")  # fmt: skip
        if (stored is None or not stored.task) and "task" not in trace:
            folder = str(payload.get("cwd") or "").rstrip("/").rsplit("/", 1)[-1]
            trace["task"] = f"{source} session in {folder}" if folder else f"{source} session"
            trace["metadata"]["task_from_folder"] = True
        # A hook event is a piece of its session, made idempotent by its event id.
        batch = trace_ingest_batch(
            workspace=workspace, items=[trace], policy=policy, skip_unchanged=False
        )
        if batch.trace_ids and numbering.new:
            StepKey.objects.bulk_create(
                StepKey(trace_id=batch.trace_ids[0], key=key, index=index)
                for key, index in numbering.new.items()
            )
        return batch


CURSOR_EVENTS = {
    "sessionStart": "SessionStart", "sessionEnd": "SessionEnd",
    "beforeSubmitPrompt": "UserPromptSubmit", "preToolUse": "PreToolUse",
    "postToolUse": "PostToolUse", "postToolUseFailure": "PostToolUseFailure",
    "afterShellExecution": "PostToolUse", "afterFileEdit": "PostToolUse",
    "afterMCPExecution": "PostToolUse", "afterAgentResponse": "AgentResponse",
    "stop": "Stop", "subagentStart": "SubagentStart", "subagentStop": "SubagentStop",
    "preCompact": "PreCompact",
}  # fmt: skip


# Gemini CLI's hook events (the ones `install-gemini-hooks` installs) as Claude Code's.
GEMINI_EVENTS = {"SessionStart": "SessionStart", "SessionEnd": "SessionEnd",
                 "BeforeAgent": "UserPromptSubmit", "AfterAgent": "Stop",
                 "AfterTool": "PostToolUse"}  # fmt: skip


def from_gemini(payload: dict[str, Any]) -> dict[str, Any]:
    """A Gemini CLI hook payload in the shape of a Claude Code one (seen on Gemini
    CLI 0.61): `BeforeAgent` is the prompt, `AfterAgent` the turn's end with its
    reply, `AfterTool` a call, recorded when it ends (its payload names no call id,
    so each is a call of its own, keyed by its time, and `BeforeTool` is not used),
    failed when the CLI says it failed or a shell command's exit code is not 0
    (`formats.gemini_tool_result`)."""
    from hivemind_client.formats import gemini_tool_result

    event = str(payload.get("hook_event_name") or "")
    out: dict[str, Any] = {k: payload.get(k) for k in ("session_id", "cwd", "transcript_path",
                                                      "timestamp") if k in payload}  # fmt: skip
    out["hook_event_name"] = GEMINI_EVENTS.get(event, event)
    if event == "BeforeAgent":
        out["prompt"] = payload.get("prompt")
    elif event == "AfterAgent":
        out["last_assistant_message"] = payload.get("prompt_response")
    elif event == "AfterTool":
        tool = str(payload.get("tool_name") or "")
        output, error = gemini_tool_result(payload.get("tool_response"))
        out.update(tool_name=tool, tool_input=payload.get("tool_input"), tool_response=output,
                   tool_use_id=f"{payload.get('timestamp') or ''}:{tool}")  # fmt: skip
        if error:
            out.update(hook_event_name="PostToolUseFailure", error=error)
    elif event == "SessionEnd":
        out["reason"] = payload.get("reason")
    return out


def from_openhands(payload: dict[str, Any], event_id: str = "") -> dict[str, Any] | None:
    """An OpenHands hook payload (the software-agent SDK's, which the OpenHands CLI,
    GUI and Cloud run from a project's `.openhands/hooks.json`; seen on the SDK
    1.58) in the shape of a Claude Code one. Its `event_type` names Claude Code's
    events; `message` is the prompt; a call is recorded by its `PostToolUse`, which
    carries its input and its observation (failed when the observation says so, or
    a command's exit code is not 0: `formats.openhands_tool_result`). Its payloads
    name no call id, so each PostToolUse is a call of its own, keyed by the event id
    the capture client gives it (else by the payload), and a PreToolUse is not
    used: None. The session's end is `SessionEnd`; the turn's, `Stop`."""
    from hivemind_client.formats import obj, openhands_tool_result

    event = str(payload.get("event_type") or payload.get("hook_event_name") or "")
    if event == "PreToolUse":
        return None
    out: dict[str, Any] = {"session_id": payload.get("session_id"), "hook_event_name": event,
                           "cwd": payload.get("working_dir") or ""}  # fmt: skip
    # What Hivemind's own tools add (an agent's name, a replayed log's times).
    out.update({k: v for k, v in payload.items() if k.startswith("hivemind_")})
    if event == "UserPromptSubmit":
        out["prompt"] = payload.get("message")
    elif event == "PostToolUse":
        tool = str(payload.get("tool_name") or "")
        sent = payload.get("tool_input")
        arguments = (
            {k: v for k, v in sent.items() if k != "kind"} if isinstance(sent, dict) else sent
        )
        output, error = openhands_tool_result(payload.get("tool_response"))
        key = event_id or key_hash(payload)
        out.update(tool_name=tool, tool_input=arguments, tool_response=output,
                   tool_use_id=f"openhands:{key}")  # fmt: skip
        if error:
            out.update(hook_event_name="PostToolUseFailure", error=error)
    elif event in ("Stop", "SessionEnd"):
        reason = obj(payload.get("metadata")).get("reason")
        if reason:
            out["reason"] = reason
    return out


def from_qwen(payload: dict[str, Any]) -> dict[str, Any] | None:
    """A Qwen Code hook payload (seen on 0.24: Claude Code's events and fields, a
    call's `tool_use_id` on its PreToolUse and its PostToolUse or PostToolUseFailure)
    as it is, less its bookkeeping (`_QWEN_BOOKKEEPING`, not kept as the event's
    extra fields), except that Qwen Code fires UserPromptSubmit before every model
    request, a follow-up's (after tool results) with an empty prompt: only a prompt
    someone gave is a step; None for the others."""
    if (
        payload.get("hook_event_name") == "UserPromptSubmit"
        and not str(payload.get("prompt") or "").strip()
    ):
        return None
    return {k: v for k, v in payload.items() if k not in _QWEN_BOOKKEEPING}


# What Qwen Code's payloads add that says nothing of what the agent did: the
# provider's call id beside its own, the context window's use, scheduled and
# background tasks, the prompt as submitted again.
_QWEN_BOOKKEEPING = {"tool_call_id", "context_usage", "context_limit", "input_tokens", "crons",
                     "background_tasks", "submitted_prompt", "permission_mode"}  # fmt: skip


def from_cursor(payload: dict[str, Any]) -> dict[str, Any]:
    """A Cursor hook payload in the shape of a Claude Code one (same meaning)."""
    event = str(payload.get("hook_event_name") or "")
    out: dict[str, Any] = {
        "session_id": payload.get("conversation_id") or payload.get("session_id"),
        "hook_event_name": CURSOR_EVENTS.get(event, event),
        "cwd": (payload.get("workspace_roots") or [""])[0] if isinstance(
            payload.get("workspace_roots"), list) else payload.get("cwd", ""),
        "model": payload.get("model"),
    }  # fmt: skip
    extra = {k: v for k, v in payload.items() if k in ("cursor_version", "generation_id")}
    if event == "beforeSubmitPrompt":
        out["prompt"] = payload.get("prompt")
    elif event == "afterShellExecution":
        out.update(tool_name="Shell", tool_input={"command": payload.get("command")},
                   tool_response={"output": payload.get("output"),
                                  "exit_code": payload.get("exit_code", payload.get("exitCode"))},
                   duration_ms=payload.get("duration"))  # fmt: skip
    elif event == "afterFileEdit":
        out.update(tool_name="Edit", tool_input={"file_path": payload.get("file_path")},
                   tool_response={"edits": payload.get("edits")})  # fmt: skip
    elif event == "afterMCPExecution":
        result = payload.get("result_json")
        if isinstance(result, str):
            with contextlib.suppress(ValueError):
                result = json.loads(result)
        out.update(tool_name=f"mcp:{payload.get('tool_name') or 'tool'}",
                   tool_input=payload.get("tool_input"), tool_response=result,
                   duration_ms=payload.get("duration"))  # fmt: skip
    elif event in ("preToolUse", "postToolUse", "postToolUseFailure"):
        out.update(tool_name=payload.get("tool_name"), tool_input=payload.get("tool_input"),
                   tool_use_id=payload.get("tool_use_id"),
                   tool_response=payload.get("tool_output", payload.get("tool_response")),
                   duration_ms=payload.get("duration"))  # fmt: skip
        if event == "postToolUseFailure":
            out["error"] = payload.get("error_message") or payload.get("error")
        if event == "preToolUse":
            out.pop("tool_response")
    elif event == "afterAgentResponse":
        out["last_assistant_message"] = payload.get("text")
    elif event == "stop":
        status = str(payload.get("status") or "")
        if status == "error":
            out["hook_event_name"] = "StopFailure"
            out["error"] = "The agent loop ended on an error (Cursor stop status: error)."
        elif status == "aborted":
            out["hook_event_name"] = "StopFailure"
            out["error"] = "The user aborted the agent loop (Cursor stop status: aborted)."
    elif event == "sessionEnd":
        out["reason"] = payload.get("reason") or payload.get("final_status")
    elif event in ("subagentStart", "subagentStop"):
        out.update(agent_id=payload.get("subagent_id") or payload.get("agent_id"),
                   agent_type=payload.get("subagent_type") or payload.get("agent_type"))  # fmt: skip
    else:
        extra.update({k: v for k, v in payload.items()
                      if k not in ("conversation_id", "hook_event_name", "workspace_roots")})  # fmt: skip
    if extra:
        out["cursor"] = extra
    return {k: v for k, v in out.items() if v is not None}


class _Numbering:
    """Event key → step index, in first-arrival order, after every step the trace
    already has (a transcript imported first keeps its steps). Known keys are read
    one at a time (`StepKey`); the new ones are written after the event's steps."""

    def __init__(self, stored: Trace | None) -> None:
        self.trace_id = stored.pk if stored is not None else None
        self.new: dict[str, int] = {}
        last = None
        if self.trace_id is not None:
            last = (Step.objects.filter(trace_id=self.trace_id).order_by("-index")
                    .values_list("index", flat=True).first())  # fmt: skip
        self.next = max(stored.step_count if stored is not None else 0,
                        last + 1 if last is not None else 0)  # fmt: skip

    def __call__(self, key: str) -> int:
        key = key[:64]
        if key in self.new:
            return self.new[key]
        if self.trace_id is not None:
            known = (StepKey.objects.filter(trace_id=self.trace_id, key=key)
                     .values_list("index", flat=True).first())  # fmt: skip
            if known is not None:
                return known
        self.new[key] = self.next
        self.next += 1
        return self.new[key]


def _payload_time(payload: dict[str, Any]) -> str | None:
    """When the event happened, if the payload says (a replayed log: `hivemind_time`
    from the importer's merge, or the logger's own `timestamp`)."""
    for name in ("hivemind_time", "timestamp"):
        value = payload.get(name)
        if isinstance(value, str) and value.strip():
            with contextlib.suppress(ValueError):
                stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).isoformat()
    return None


def session_status(
    stored: Trace | None, new_steps: list[dict], *, turn_failed: bool, source: str = "claude-code"
) -> tuple[str, str]:
    """The closing status of a session (the rule in the module docstring), and why,
    in words a lead reads beside it: the agent reported no outcome, so the status
    is read from the session (`inferred_status`). Codex's hooks send a command's
    result as its printed text, with no exit code (Codex CLI 0.171): where a call's
    result is only text, its success is not known, and a session with no failure
    seen is `unknown`, not succeeded."""
    if turn_failed:
        return "failed", "a turn ended on an error (the agent's API or a limit)"
    steps: dict[int, dict[str, Any]] = {}
    if stored is not None:
        # Whether a call's result is bare text is read in the database: a long
        # session's outputs are not loaded to learn it.
        for row in (
            Step.objects.filter(trace=stored)
            .annotate(text_result=RawSQL("jsonb_typeof(output) = 'string'", []))
            .values("index", "kind", "name", "input", "error", "text_result")
        ):
            steps[row["index"]] = dict(row)
    for step in new_steps:
        merged = {**steps.get(step["index"], {}), **step}
        if "output" in step:
            merged["text_result"] = isinstance(step["output"], str)
        steps[step["index"]] = merged
    ordered = [steps[i] for i in sorted(steps)]
    tools = [s for s in ordered if s.get("kind") == "tool_call"]
    if tools and tools[-1].get("error"):
        last = tools[-1]
        tool = f" ({last['name']})" if last.get("name") else ""
        how = (
            "was refused" if refused(str(last["error"]))
            else "did not complete" if unanswered(str(last["error"])) else "failed"
        )  # fmt: skip
        return "failed", (
            f"its last tool call, step {last['index']}{tool}, {how}, and nothing ran after it"
        )
    prompts = [s for s in ordered if s.get("kind") == "user_prompt"]
    if len(prompts) > 1 and CORRECTION.search(text := str(prompts[-1].get("input") or "")):
        said = " ".join(text.split())
        said = said if len(said) <= 80 else said[:79] + "…"
        return "failed", f"the user's last prompt was a correction: “{said}”"
    if source == "codex" and any(s.get("text_result") for s in tools):
        return "unknown", (
            "Codex's hooks do not say whether a command failed (no exit code): import the "
            "session's rollout to know (python -m hivemind_client import --format "
            "codex-rollout ~/.codex/sessions/)"
        )
    return "succeeded", "it ended with no failed turn, no failed last call and no correction"


def inferred_status(metadata: dict[str, Any], status: str, reason: str) -> None:
    """Record in a trace's metadata the status read from its session and why; the
    trace page shows the reason while the trace's status is still that one (an
    outcome posted later decides instead)."""
    metadata["inferred_status"] = {"status": status, "reason": reason}


def _steps(  # type: ignore[no-untyped-def]
    workspace, trace_id, event, payload, event_key, now, trace, number, subagents, stored
) -> list[dict]:
    tool = str(payload.get("tool_name") or "")
    name = f"{payload['agent_type']}/{tool}" if payload.get("agent_type") and tool else tool
    agent_id = str(payload.get("agent_id") or "")
    if event in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
        call_key = payload.get("tool_use_id") or [tool, payload.get("tool_input")]
        call = this = number("tool:" + key_hash(call_key))
    elif event in ("SubagentStart", "SubagentStop") and agent_id:
        this = number("agent:" + key_hash(agent_id))
        subagents[agent_id] = this
    elif event != "SessionStart":
        this = number("event:" + key_hash(event, event_key))
    parent = subagents.get(agent_id) if agent_id and event not in (
        "SubagentStart", "SubagentStop") else None  # fmt: skip
    if event == "SessionStart":
        trace["model"] = str(payload.get("model") or "")[:200]
        trace["status"] = "running"
        return []
    if event == "UserPromptSubmit":
        prompt = str(payload.get("prompt") or "")
        if stored is None or not stored.task or stored.metadata.get("task_from_folder"):
            trace["task"] = prompt
            trace["metadata"]["task_from_folder"] = False
        # A new prompt: the previous turn is over, and so are its calls.
        return _unfinished_calls(workspace, trace_id) + [
            {"index": this, "kind": "user_prompt", "input": prompt, "started_at": now}]  # fmt: skip
    if event == "SubagentStart":
        label = f"subagent:{payload.get('agent_type') or 'agent'}"
        return [{"index": this, "kind": "assistant_message", "name": label[:200],
                 "input": {"agent_id": agent_id}, "started_at": now}]  # fmt: skip
    if event == "PreToolUse":
        return [{"index": call, "kind": "tool_call", "name": name[:200],
                 "input": payload.get("tool_input"), "started_at": now, "parent_index": parent}]  # fmt: skip
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
                 "error": error[:10_000], "duration_ms": _duration(payload.get("duration_ms")),
                 "started_at": _started(workspace, trace_id, call) or now,
                 "parent_index": parent}]  # fmt: skip
    if event in ("Stop", "SubagentStop", "AgentResponse"):
        label = (
            "assistant" if event != "SubagentStop"
            else f"subagent:{payload.get('agent_type') or 'agent'}"
        )  # fmt: skip
        started = _started(workspace, trace_id, this) if event == "SubagentStop" else None
        # The main agent's turn is over: a call it never answered failed.
        unfinished = _unfinished_calls(workspace, trace_id) if event == "Stop" else []
        said = payload.get("last_assistant_message")
        if event == "Stop" and not said:
            # No reply in the payload (Cursor's `stop` follows its `afterAgentResponse`;
            # OpenHands' and older Claude Code's carry none): the harness saw the turn
            # end, and the agent said nothing here. No empty "assistant" step.
            reason = payload.get("reason")
            return unfinished + [{"index": this, "kind": "span", "name": "turn end",
                                  "output": {"reason": reason} if reason else None,
                                  "started_at": now}]  # fmt: skip
        return unfinished + [{"index": this, "kind": "assistant_message", "name": label[:200],
                              "output": said or "", "started_at": started or now}]  # fmt: skip
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
        inferred_status(trace["metadata"], "failed", f"a turn ended on an error, step {this}")
        return [{"index": this, "kind": "assistant_message", "name": "turn failed",
                 "output": payload.get("last_assistant_message") or "", "error": error[:10_000],
                 "started_at": now}]  # fmt: skip
    if event == "SessionEnd":
        trace["ended_at"] = now
        # The harness's event, not the agent's words: a framework step saying why the
        # session ended (Claude Code's `reason`: "clear", "logout", "other"…).
        reason = payload.get("reason")
        return _unfinished_calls(workspace, trace_id) + [
            {"index": this, "kind": "span", "name": "session end",
             "output": {"reason": reason} if reason else None, "started_at": now}]  # fmt: skip
    # Notification ("Claude needs your permission to use Bash", "waiting for your
    # input") and events this version does not know: kept, never rejected; the
    # harness's, not the agent's words, so framework steps.
    return [{"index": this, "kind": "span", "name": event[:200],
             "output": {k: v for k, v in payload.items() if k not in ("session_id", "transcript_path", "cwd")},
             "started_at": now}]  # fmt: skip


def _duration(value: Any) -> float | None:
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        else None
    )


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
