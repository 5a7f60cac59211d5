"""The MCP server at /mcp: agents ask Hivemind from inside a session.

Streamable HTTP (stateless, JSON responses) from the official `mcp` SDK. The app
runs under a WSGI server, so `mcp_endpoint` hands each request to the SDK's
session manager as an ASGI request (one manager per request: stateless mode
keeps nothing between requests). The API key is checked first, in the view,
and the key's workspace is the only one any tool reads (`_key`). Each tool
needs the scope its REST twin needs:

- `search_failures` / `show_failure_mode`: failures:read;
- `list_skills` / `read_skill`: skills:read (skills on trial follow the
  session's arm, as in the skills API);
- `report_outcome`: ingest;
- `label_run`: failures:write (a reviewer's label, as `POST /api/v1/traces/{id}/labels`).
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import anyio
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from failures.models import FailureMode, Incident, IncidentKind, ModeStatus, standing
from failures.search import incident_search
from skills.api import rank
from skills.publication import published_set_get, session_id_stored, session_set
from skills.selectors import published_skill_list, skill_md
from traces.models import Trace
from traces.schemas import OutcomeIn
from traces.services import outcome_record
from workspaces.auth import presented_key
from workspaces.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from workspaces.models import ApiKey, Scope
from workspaces.services import api_key_authenticate

_key: ContextVar[ApiKey] = ContextVar("hivemind_mcp_key")
# The request's X-Hivemind-Session, as the REST API reads it: the session a tool
# call is for when its own session_id argument is empty.
_session: ContextVar[str] = ContextVar("hivemind_mcp_session", default="")

server = MCPServer(
    name="hivemind",
    version="1",
    instructions=(
        "Hivemind holds this team's agent failures, grouped into failure modes, and the "
        "skills reviewed to avoid them. Search failures in plain words before a risky step; "
        "read the skills relevant to your task; report how your session went."
    ),
)


def _require(scope: str) -> ApiKey:
    key = _key.get()
    if scope not in key.scopes:
        raise PermissionDenied(
            f"This API key lacks the '{scope}' scope (it has: {', '.join(key.scopes) or 'none'})."
        )
    return key


def _public(path: str) -> str:
    return settings.HIVEMIND_PUBLIC_URL.rstrip("/") + path


def _mode_brief(mode: FailureMode) -> dict[str, Any]:
    return {
        "id": mode.pk, "label": mode.label, "status": mode.status,
        "incidents": mode.incident_count, "traces": mode.trace_count,
        "last_seen": mode.last_seen.isoformat() if mode.last_seen else None,
        "url": _public(f"/w/{mode.workspace.slug}/failure-modes/{mode.pk}/"),
    }  # fmt: skip


def _search(query: str, limit: int) -> dict[str, Any]:
    key = _require(Scope.FAILURES_READ)
    if not query.strip():
        raise InvalidInput("Say what to look for, e.g. 'checkout timeouts this week'.")
    result = incident_search(workspace=key.workspace, query=query[:2000], k=max(1, min(limit, 50)))
    return {
        "query": query, "understood": result.understood,
        "modes": [{**_mode_brief(m["mode"]), "matches": m["hits"]}
                  for m in result.modes if m["mode"] is not None],
        "incidents": [{
            "agent": h.incident.trace.agent, "task": h.incident.trace.task[:300],
            "tool": h.incident.tool, "what_went_wrong": h.incident.description[:500],
            "error": h.incident.error_text[:500], "recovered": h.incident.kind == IncidentKind.RECOVERED,
            "standing": standing(h.incident.kind), "run_status": h.incident.trace.status,
            "failure_mode_id": h.incident.failure_mode_id,
            "occurred_at": h.incident.occurred_at.isoformat(),
        } for h in result.hits],
    }  # fmt: skip


def _mode(mode_id: int, examples: int) -> dict[str, Any]:
    key = _require(Scope.FAILURES_READ)
    mode = (
        FailureMode.objects.filter(workspace=key.workspace, pk=mode_id)
        .exclude(status=ModeStatus.MERGED)
        .select_related("workspace")
        .first()
    )
    if mode is None:
        raise NotFound(f"No failure mode {mode_id} in this workspace.")
    rows = (
        Incident.objects.filter(failure_mode=mode)
        .select_related("trace")
        .order_by("-occurred_at")[: max(1, min(examples, 20))]
    )
    return {
        **_mode_brief(mode), "keywords": mode.keywords,
        "examples": [{"agent": i.trace.agent, "task": i.trace.task[:300], "tool": i.tool,
                      "what_went_wrong": i.description[:500], "error": i.error_text[:500],
                      "occurred_at": i.occurred_at.isoformat()} for i in rows],
    }  # fmt: skip


def _withheld(key: ApiKey, session_id: str) -> frozenset[str]:
    published = published_set_get(workspace_id=key.workspace_id)
    if not published.trials:
        return frozenset()
    # Stored (trial assignments) as the REST API stores it: redacted by the policy.
    stored = session_id_stored(api_key=key, raw=session_id)
    return session_set(
        workspace_id=key.workspace_id, session_id=stored, trials=published.trials
    ).withheld


def _skills(task: str, session_id: str, limit: int) -> dict[str, Any]:
    key = _require(Scope.SKILLS_READ)
    session_id = session_id or _session.get()
    withheld = _withheld(key, session_id)
    published = [
        p
        for p in published_skill_list(workspace_id=key.workspace_id, with_body=False)
        if p.skill.name not in withheld
    ]
    scored: list[tuple[Any, float | None]] = (
        list(rank(published, task)) if task.strip() and published
        else [(p, None) for p in published]
    )  # fmt: skip
    return {
        "skills": [{"name": p.skill.name, "version": p.version.number,
                    "description": p.version.description,
                    "relevance": round(score, 3) if score is not None else None}
                   for p, score in scored[: max(1, min(limit, 100))]],
        "withheld_on_trial": len(withheld),
    }  # fmt: skip


def _read(name: str, session_id: str) -> str:
    key = _require(Scope.SKILLS_READ)
    session_id = session_id or _session.get()
    found = published_skill_list(workspace_id=key.workspace_id, name=name)
    if not found or name in _withheld(key, session_id):
        raise NotFound(f"No published skill {name!r} is served to this session.")
    return skill_md(found[0].version)


def _report(session_id: str, status: str, reward: float | None, comment: str) -> dict[str, Any]:
    key = _require(Scope.INGEST)
    session_id = session_id or _session.get()
    # Traces store session ids redacted (a pseudonym where the policy removes a part).
    stored = session_id_stored(api_key=key, raw=session_id)
    trace = (
        Trace.objects.filter(workspace=key.workspace, session_id=stored)
        .order_by("-started_at", "-id")
        .first()
    )
    if trace is None:
        raise NotFound(
            f"No trace of session {session_id!r} yet: capture sends it as the session runs."
        )
    try:
        data = OutcomeIn(status=status, reward=reward, comment=comment)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidInput(f"Bad outcome: {exc}") from None
    outcome_record(workspace=key.workspace, external_id=trace.external_id, data=data)
    return {"trace": trace.external_id, "status": status, "recorded": True}


def _label(run: str, step: int, category: str, sentence: str, fix: str) -> dict[str, Any]:
    from failures import labels

    key = _require(Scope.FAILURES_WRITE)
    trace = Trace.objects.filter(workspace=key.workspace, external_id=run).first()
    if trace is None:
        raise NotFound(f"No run {run!r} in this workspace (give the trace's external id).")
    label = labels.label_save(workspace=key.workspace, trace=trace, step_index=step,
                              category=category, sentence=sentence, fix=fix,
                              author=labels.Author(key_name=key.name))  # fmt: skip
    return {"label": label.pk, "run": run, "step": step, "category": category,
            "failure_mode": _mode_brief(label.failure_mode) if label.failure_mode else None,
            "recorded": True}  # fmt: skip


async def _call(fn: Any, *args: Any) -> Any:
    try:
        return await sync_to_async(fn)(*args)
    except DomainError as exc:
        raise ToolError(exc.detail) from None  # sent back as the tool's error text


@server.tool()
async def search_failures(query: str, limit: int = 10) -> dict[str, Any]:
    """Search this workspace's agent failures in plain words ("checkout timeouts this
    week", "gh auth errors of support-agent"). Returns the failure modes that match
    and the closest incidents, with their error text."""
    return await _call(_search, query, limit)


@server.tool()
async def show_failure_mode(mode_id: int, examples: int = 5) -> dict[str, Any]:
    """One failure mode: what it is, how often it happened, and recent examples."""
    return await _call(_mode, mode_id, examples)


@server.tool()
async def list_skills(task: str = "", session_id: str = "", limit: int = 10) -> dict[str, Any]:
    """Published skills, most relevant to `task` first. Pass your session id (or
    send the X-Hivemind-Session header) so skills on trial are served to the right
    sessions."""
    return await _call(_skills, task, session_id, limit)


@server.tool()
async def read_skill(name: str, session_id: str = "") -> str:
    """The SKILL.md of one published skill."""
    return await _call(_read, name, session_id)


@server.tool()
async def report_outcome(
    session_id: str, status: str, reward: float | None = None, comment: str = ""
) -> dict[str, Any]:
    """Report how the current session went: status 'succeeded' or 'failed' (and an
    optional reward and comment). It applies to the session's latest trace."""
    return await _call(_report, session_id, status, reward, comment)


@server.tool()
async def label_run(
    run: str, step: int, category: str, sentence: str, fix: str = ""
) -> dict[str, Any]:
    """Say what went wrong in a failed run, as a reviewer would: `run` is the trace's
    external id, `step` the index of the step that went wrong (-1: the run as a
    whole), `category` a key of the workspace's failure taxonomy (e.g.
    'process.policy_violation'), `sentence` one sentence of what went wrong,
    `fix` optionally one sentence of what would have avoided it."""
    return await _call(_label, run, step, category, sentence, fix)


def _scope(request: HttpRequest) -> dict[str, Any]:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()
    ]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": request.method, "scheme": request.scheme, "path": "/mcp",
        "raw_path": b"/mcp", "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers, "server": (request.get_host().split(":")[0], 0),
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
    }  # fmt: skip


async def _serve(scope: dict[str, Any], body: bytes, key: ApiKey) -> tuple[int, list, bytes]:
    _key.set(key)
    sent = dict(scope.get("headers") or [])
    _session.set(sent.get(b"x-hivemind-session", b"").decode("latin-1")[:200])
    sent = {"body": False}

    async def receive() -> dict[str, Any]:
        if not sent["body"]:
            sent["body"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        return {"type": "http.disconnect"}  # pragma: no cover

    status, headers, chunks = 500, [], []

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    manager = StreamableHTTPSessionManager(
        app=server._lowlevel_server,  # the SDK's own way to serve an MCPServer
        json_response=True, stateless=True,
        # Requests are authenticated by API key before they get here.
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )  # fmt: skip
    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return status, headers, b"".join(chunks)


def _auth_error(status: int, detail: str) -> JsonResponse:
    response = JsonResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": detail}, "detail": detail},
        status=status,
    )  # fmt: skip
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="hivemind"'
    return response


# No MCP request needs more than this; one that does is answered with an error
# instead of holding its web thread.
MCP_DEADLINE_SECONDS = 30.0


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    """POST only. Stateless streamable HTTP with JSON responses offers no event
    stream, so GET (the stream a client may open for server messages) and DELETE
    (ending a session, of which there are none) answer 405 at once, as the spec
    allows: a held-open GET would keep a web thread for as long as the client
    liked, and a few of them would stop the server."""
    if request.method != "POST":
        response = _auth_error(
            405,
            "This MCP server answers POST only (streamable HTTP, JSON responses, "
            "stateless); it offers no event stream.",
        )
        response["Allow"] = "POST"
        return response
    try:
        key = api_key_authenticate(raw_key=presented_key(request), scope=None)
    except DomainError as exc:
        return _auth_error(exc.status_code, exc.detail)
    content_type = request.content_type or ""
    if content_type != "application/json":
        return _rpc_error(
            415, -32700, "Send the JSON-RPC message as Content-Type: application/json."
        )
    try:
        body = request.body
    except RequestDataTooBig:
        return _rpc_error(413, -32600, "The request body is too large for an MCP message.")
    try:
        status, headers, payload = async_to_sync(_serve_within)(_scope(request), body, key)
    except TimeoutError:
        return _rpc_error(503, -32603, "The tool did not finish in time; try a narrower request.")
    answer = HttpResponse(payload, status=status)
    for name, value in headers:
        name_text = name.decode("latin-1")
        if name_text.lower() not in ("content-length", "transfer-encoding", "connection"):
            answer[name_text] = value.decode("latin-1")
    return answer


async def _serve_within(scope: dict[str, Any], body: bytes, key: ApiKey) -> tuple[int, list, bytes]:
    with anyio.fail_after(MCP_DEADLINE_SECONDS):
        return await _serve(scope, body, key)


def _rpc_error(status: int, code: int, detail: str) -> JsonResponse:
    return JsonResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": detail}, "detail": detail},
        status=status,
    )  # fmt: skip


def tool_names() -> list[str]:
    return [t.name for t in server._tool_manager.list_tools()]


__all__ = ["mcp_endpoint", "server", "tool_names", "json"]
