"""POST /v1/traces and /v1/logs: the OTLP/HTTP endpoints OpenTelemetry exporters
send to (logs: Claude Code's own events, `otlp_logs.py`, and GenAI events, a
model call's messages sent apart from its span, `otlp_genai.py`, and Codex's
events, `otlp_codex.py`). POST /v1/metrics is answered, and its data points
refused with the reason (`otlp_metrics.py`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from workspaces.auth import presented_key
from workspaces.errors import DomainError, RateLimited
from workspaces.models import Scope
from workspaces.ratelimit import ingest_check
from workspaces.services import api_key_authenticate

from . import otlp, otlp_codex, otlp_genai, otlp_logs, otlp_metrics
from .body import read_body
from .claude_code import hooked_sessions
from .otlp_store import otlp_ingest
from .services import BatchResult

# Exporters retry on 429/503 after Retry-After; refusing beyond this many
# concurrent exports per process keeps a burst from starving the dashboard.
_slots = threading.BoundedSemaphore(settings.HIVEMIND_OTLP_MAX_CONCURRENT)
RETRY_AFTER_SECONDS = 2

# google.rpc.Code values used in Status bodies.
INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE = (
    3,
    16,
    7,
    8,
    14,
)


def _reply(status: int, body: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=content_type)
    if status in (429, 503):
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _store_spans(workspace: Any, body: bytes, content_type: str) -> bytes:
    traces, span_counts = otlp.to_traces(otlp.decode(body, content_type))
    batch = otlp_ingest(workspace=workspace, traces=traces) if traces else None
    rejected, message = _rejected(batch, span_counts)
    return otlp.encode_response(rejected, message, content_type)


def _store_events(workspace: Any, body: bytes, content_type: str) -> bytes:
    request = otlp_logs.decode(body, content_type)
    sessions = otlp_logs.to_traces(request)
    calls, records = otlp_genai.to_traces(request)
    codex, codex_records = otlp_codex.to_traces(request)
    with transaction.atomic():
        hooked = hooked_sessions(workspace, [t["session_id"] for t in codex], "codex")
        codex = [t for t in codex if t["session_id"] not in hooked]
        batches = [
            (otlp_logs.logs_ingest(workspace=workspace, sessions=sessions), sessions.records)
            if sessions.traces else (None, {}),
            (otlp_ingest(workspace=workspace, traces=calls), records) if calls else (None, {}),
            (otlp_ingest(workspace=workspace, traces=codex), codex_records)
            if codex else (None, {}),
        ]  # fmt: skip
    counted = [_rejected(batch, counts) for batch, counts in batches]
    message = "; ".join(m for _, m in counted if m)
    return otlp_logs.encode_response(sum(n for n, _ in counted), message, content_type)


def _rejected(batch: BatchResult | None, counts: dict[str, int]) -> tuple[int, str]:
    """How many spans (records) the batch's rejected traces held, and why."""
    rejected = [r for r in batch.results if r.status == "rejected"] if batch else []
    return sum(counts.get(r.external_id or "", 0) for r in rejected), "; ".join(
        r.detail for r in rejected[:5]
    )


@csrf_exempt
@require_POST
def otlp_traces(request: HttpRequest) -> HttpResponse:
    return _receive(request, _store_spans)


@csrf_exempt
@require_POST
def otlp_logs_view(request: HttpRequest) -> HttpResponse:
    """OTLP logs: Claude Code's and Codex's events, and GenAI events (a model call's
    messages, joined to its span); other records are left out."""
    return _receive(request, _store_events)


@csrf_exempt
@require_POST
def otlp_metrics_view(request: HttpRequest) -> HttpResponse:
    """OTLP metrics: checked like any export (key, size, body), then refused by
    partial success, which tells the exporter why; nothing is stored."""
    return _receive(request, _refuse_metrics)


def _refuse_metrics(workspace: Any, body: bytes, content_type: str) -> bytes:
    return otlp_metrics.refused(body, content_type)


def _receive(request: HttpRequest, store: Callable[[Any, bytes, str], bytes]) -> HttpResponse:
    content_type = request.headers.get("Content-Type", otlp.PROTOBUF).split(";")[0].strip()
    if content_type not in (otlp.PROTOBUF, otlp.JSON):
        return _reply(415, otlp.encode_status(INVALID_ARGUMENT,
                      "Content-Type must be application/x-protobuf or application/json.", otlp.JSON), otlp.JSON)  # fmt: skip
    if not _slots.acquire(blocking=False):
        return _reply(
            503, otlp.encode_status(UNAVAILABLE, "Busy; retry shortly.", content_type), content_type
        )
    try:
        return _export(request, content_type, store)
    finally:
        _slots.release()


def _export(
    request: HttpRequest, content_type: str, store: Callable[[Any, bytes, str], bytes]
) -> HttpResponse:
    def status(code: int, rpc: int, message: str) -> HttpResponse:
        return _reply(code, otlp.encode_status(rpc, message, content_type), content_type)

    try:
        key = presented_key(request)
        api_key = api_key_authenticate(raw_key=key, scope=Scope.INGEST)
    except DomainError as exc:
        rpc = UNAUTHENTICATED if exc.status_code == 401 else PERMISSION_DENIED
        return status(exc.status_code, rpc, exc.detail)
    try:
        ingest_check(api_key, limit=settings.HIVEMIND_INGEST_RATE_LIMIT)
    except RateLimited as exc:
        response = status(429, RESOURCE_EXHAUSTED, exc.detail)
        response["Retry-After"] = str(exc.retry_after)
        return response
    try:
        body = read_body(request)
    except DomainError as exc:
        rpc = RESOURCE_EXHAUSTED if exc.status_code == 413 else INVALID_ARGUMENT
        return status(exc.status_code, rpc, exc.detail)
    try:
        answer = store(api_key.workspace, body, content_type)
    except otlp.UndecodableOTLP as exc:
        return status(400, INVALID_ARGUMENT, str(exc))
    except DomainError as exc:
        rpc = PERMISSION_DENIED if exc.status_code == 403 else INVALID_ARGUMENT
        return status(exc.status_code, rpc, exc.detail)
    return _reply(200, answer, content_type)
