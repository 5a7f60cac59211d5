"""The agents' ingest API: batches of traces, and late outcomes."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from ninja import Path, Router, Status

from workspaces.auth import ApiKeyAuth
from workspaces.errors import BadRequest, InvalidInput
from workspaces.models import Scope
from workspaces.openapi import body_schema
from workspaces.requests import ApiRequest
from workspaces.schemas import ErrorOut
from workspaces.textsafety import MAX_JSON_DEPTH, json_loads, json_too_deep

from .body import read_body
from .claude_code import hook_ingest
from .schemas import OutcomeIn, OutcomeOut, TraceBatchIn, TraceBatchOut
from .services import capture_policy_get, outcome_record, trace_batch_check
from .transcripts import trace_ingest_merging

router = Router(tags=["traces"])

CAPTURE_HEADER = "X-Hivemind-Capture"


def read_json_body(request: ApiRequest) -> Any:
    """The request body as JSON, size-capped and gunzipped; clear errors otherwise."""
    try:
        body = json_loads(read_body(request))
        too_deep = json_too_deep(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"Body is not valid JSON: {exc}.") from None
    except RecursionError:  # deeper than the parser goes
        too_deep = True
    if too_deep:
        raise InvalidInput(
            f"Body is nested more than {MAX_JSON_DEPTH} levels deep; flatten step inputs "
            "and outputs (or send them as strings)."
        )
    return body


def _batch_items(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("traces"), list):
        return body["traces"]
    if isinstance(body, list):
        return body
    raise InvalidInput('Body must be {"traces": [ ... ]}: a JSON object with a list of traces.')


@router.post(
    "/traces",
    auth=ApiKeyAuth(scope=Scope.INGEST),
    response={
        200: TraceBatchOut,
        202: TraceBatchOut,
        207: TraceBatchOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        413: ErrorOut,
        422: TraceBatchOut | ErrorOut,
        429: ErrorOut,
    },
    summary="Send a batch of traces (create or update)",
    openapi_extra=body_schema(TraceBatchIn),
)
def traces_ingest(request: ApiRequest) -> Status:
    """Create or update traces by `external_id` (re-sending is safe: it never duplicates).

    Every trace is judged on its own: the response lists, in order, `created`,
    `updated`, `unchanged` (sent again exactly as stored: nothing is written or
    analysed again) or `rejected` with the reason and the offending fields (besides the
    schema: an external id sent twice in one batch, two steps of a trace sharing an
    index). 200 when all were stored, 207 when some were rejected, 422 when none could
    be stored.
    Header `X-Hivemind-Capture: off` asks that nothing from this request be stored
    (202, every trace `skipped`). `?dry_run=true` validates and stores nothing:
    each trace `valid` or `rejected` (200, or 422 if any is rejected). PII is
    redacted before anything is stored.
    """
    workspace = request.auth.workspace
    items = _batch_items(read_json_body(request))
    if request.GET.get("dry_run", "").lower() in {"1", "true", "yes"}:
        checked = trace_batch_check(items=items)
        rejected = checked.count("rejected")
        return Status(200 if not rejected else 422, {
            "created": 0, "updated": 0, "rejected": rejected, "dry_run": True,
            "results": [r.__dict__ for r in checked.results],
        })  # fmt: skip
    if request.headers.get(CAPTURE_HEADER, "").lower() in {"off", "0", "false", "no"}:
        capture_policy_get(workspace=workspace)
        return Status(202, _skipped(items))
    batch = trace_ingest_merging(workspace=workspace, items=items)
    rejected = batch.count("rejected")
    status = 200 if not rejected else (422 if rejected == len(batch.results) else 207)
    return Status(
        status,
        {
            "created": batch.count("created"),
            "updated": batch.count("updated"),
            "unchanged": batch.count("unchanged"),
            "rejected": rejected,
            "results": [r.__dict__ for r in batch.results],
        },
    )


def _skipped(items: list[Any]) -> dict[str, Any]:
    detail = f"{CAPTURE_HEADER}: off; nothing from this request was stored."
    results = [
        {
            "index": i,
            "external_id": item.get("external_id") if isinstance(item, dict) else None,
            "status": "skipped",
            "detail": detail,
        }
        for i, item in enumerate(items)
    ]
    return {"created": 0, "updated": 0, "rejected": 0, "results": results}


@router.post(
    "/traces/{external_id}/outcome",
    auth=ApiKeyAuth(scope=Scope.INGEST),
    response={
        200: OutcomeOut,
        202: OutcomeOut,
        401: ErrorOut,
        403: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
    },  # fmt: skip
    summary="Record a trace's outcome (status, reward, scores), now or before it arrives",
)
def trace_outcome(
    request: ApiRequest,
    data: OutcomeIn,
    external_id: str = Path(..., max_length=200),
) -> Status:
    """The latest outcome decides the trace's status and reward. An outcome for a
    trace not received yet is kept (202) and applied when the trace arrives."""
    workspace = request.auth.workspace
    outcome = outcome_record(workspace=workspace, external_id=external_id, data=data)
    if outcome.trace_id is None:
        return Status(
            202,
            OutcomeOut(
                external_id=external_id,
                applied=False,
                trace_status=None,
                detail="Trace not received yet; the outcome will be applied when it arrives.",
            ),
        )
    return Status(
        200,
        OutcomeOut(
            external_id=external_id,
            applied=True,
            trace_status=outcome.trace.status if outcome.trace else None,
            detail="Outcome applied.",
        ),
    )


_HOOK_RESPONSES = {200: TraceBatchOut, 202: TraceBatchOut, 400: ErrorOut, 401: ErrorOut,
                   403: ErrorOut, 413: ErrorOut, 422: TraceBatchOut | ErrorOut, 429: ErrorOut}  # fmt: skip


def _hook_body(session_field: str, event_field: str = "hook_event_name") -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": [session_field, event_field],
        "properties": {session_field: {"type": "string", "minLength": 1},
                       event_field: {"type": "string", "minLength": 1}},
        "additionalProperties": True}}}}}  # fmt: skip


def _hook(request: ApiRequest, source: str) -> Status | HttpResponse:
    payload = read_json_body(request)
    workspace = request.auth.workspace
    if request.headers.get(CAPTURE_HEADER, "").lower() in {"off", "0", "false", "no"}:
        capture_policy_get(workspace=workspace)
        return Status(202, _skipped([payload]))
    batch = hook_ingest(workspace=workspace, payload=payload, source=source,
                        event_id=request.headers.get("X-Hivemind-Event-Id", "")[:100])  # fmt: skip
    rejected = batch.count("rejected")
    if not rejected and request.GET.get("reply") == "empty":
        # Claude Code's http hooks read a JSON body as hook output; an empty 2xx
        # is "success, nothing to say" (the installer asks for it).
        return HttpResponse(status=204)
    return Status(
        422 if rejected else 200,
        {"created": batch.count("created"), "updated": batch.count("updated"), "rejected": rejected,
         "results": [r.__dict__ for r in batch.results]},
    )  # fmt: skip


@router.post(
    "/hooks/claude-code", auth=ApiKeyAuth(scope=Scope.INGEST),
    response={**_HOOK_RESPONSES, 204: None},
    summary="Receive one raw Claude Code hook payload", openapi_extra=_hook_body("session_id"),
)  # fmt: skip
def claude_code_hook(request: ApiRequest) -> Status | HttpResponse:
    """One trace per `session_id`. Send the hook's stdin as the body: the
    `hivemind_client capture` command does this, or Claude Code itself with an
    `http` hook (`install-claude-hooks`). Unknown events and fields are kept.
    The rules (steps, failures, the closing status) are in docs/HOOKS.md."""
    return _hook(request, "claude-code")


@router.post(
    "/hooks/codex", auth=ApiKeyAuth(scope=Scope.INGEST), response=_HOOK_RESPONSES,
    summary="Receive one raw Codex hook payload", openapi_extra=_hook_body("session_id"),
)  # fmt: skip
def codex_hook(request: ApiRequest) -> Status | HttpResponse:
    """One trace per Codex `session_id` (agent `codex`). Codex hook payloads have
    Claude Code's shape; `python -m hivemind_client capture --source codex` sends them."""
    return _hook(request, "codex")


@router.post(
    "/hooks/gemini-cli", auth=ApiKeyAuth(scope=Scope.INGEST), response=_HOOK_RESPONSES,
    summary="Receive one raw Gemini CLI hook payload", openapi_extra=_hook_body("session_id"),
)  # fmt: skip
def gemini_cli_hook(request: ApiRequest) -> Status | HttpResponse:
    """One trace per Gemini CLI `session_id` (agent `gemini-cli`, trace
    `gemini-cli-<session_id>`): the prompt, each call when it ends (a failed one, or
    a shell command's non-zero exit code, a failed step), the turn's reply, the
    session's end. `python -m hivemind_client capture --source gemini-cli` sends them."""
    return _hook(request, "gemini-cli")


@router.post(
    "/hooks/qwen-code", auth=ApiKeyAuth(scope=Scope.INGEST), response=_HOOK_RESPONSES,
    summary="Receive one raw Qwen Code hook payload", openapi_extra=_hook_body("session_id"),
)  # fmt: skip
def qwen_code_hook(request: ApiRequest) -> Status | HttpResponse:
    """One trace per Qwen Code `session_id` (agent `qwen-code`, trace
    `qwen-code-<session_id>`). Qwen Code's hook payloads have Claude Code's shape (its
    follow-up UserPromptSubmit, with no prompt, stores nothing); `python -m
    hivemind_client capture --source qwen-code` sends them, and at each turn's end
    imports the session's chat record, which replaces the steps the hooks built."""
    return _hook(request, "qwen-code")


@router.post(
    "/hooks/cursor", auth=ApiKeyAuth(scope=Scope.INGEST), response=_HOOK_RESPONSES,
    summary="Receive one raw Cursor hook payload", openapi_extra=_hook_body("conversation_id"),
)  # fmt: skip
def cursor_hook(request: ApiRequest) -> Status | HttpResponse:
    """One trace per Cursor `conversation_id` (agent `cursor`). Shell, file-edit and
    MCP calls become tool-call steps; a `stop` with status `error` or `aborted` fails
    the turn. `python -m hivemind_client capture --source cursor` sends them."""
    return _hook(request, "cursor")


@router.post(
    "/hooks/openhands", auth=ApiKeyAuth(scope=Scope.INGEST), response=_HOOK_RESPONSES,
    summary="Receive one raw OpenHands hook payload",
    openapi_extra=_hook_body("session_id", "event_type"),
)  # fmt: skip
def openhands_hook(request: ApiRequest) -> Status | HttpResponse:
    """One trace per OpenHands conversation (`session_id`; agent `openhands`, trace
    `openhands-<session_id>`): the prompt, each call when it ends (`PostToolUse`; a
    failed observation, or a command's non-zero exit code, a failed step), the turn's
    end (`Stop`) and the session's (`SessionEnd`). A `PreToolUse` stores nothing.
    `python -m hivemind_client capture --source openhands` sends them
    (`install-openhands-hooks`)."""
    return _hook(request, "openhands")
