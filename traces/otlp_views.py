"""POST /v1/traces: the OTLP/HTTP endpoint OpenTelemetry exporters send to."""

from __future__ import annotations

import threading

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from workspaces.auth import presented_key
from workspaces.errors import DomainError, RateLimited
from workspaces.models import Scope
from workspaces.ratelimit import ingest_check
from workspaces.services import api_key_authenticate

from . import otlp
from .body import read_body
from .otlp_store import otlp_ingest

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


@csrf_exempt
@require_POST
def otlp_traces(request: HttpRequest) -> HttpResponse:
    content_type = request.headers.get("Content-Type", otlp.PROTOBUF).split(";")[0].strip()
    if content_type not in (otlp.PROTOBUF, otlp.JSON):
        return _reply(415, otlp.encode_status(INVALID_ARGUMENT,
                      "Content-Type must be application/x-protobuf or application/json.", otlp.JSON), otlp.JSON)  # fmt: skip
    if not _slots.acquire(blocking=False):
        return _reply(
            503, otlp.encode_status(UNAVAILABLE, "Busy; retry shortly.", content_type), content_type
        )
    try:
        return _export(request, content_type)
    finally:
        _slots.release()


def _export(request: HttpRequest, content_type: str) -> HttpResponse:
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
        decoded = otlp.decode(body, content_type)
    except otlp.UndecodableOTLP as exc:
        return status(400, INVALID_ARGUMENT, str(exc))
    traces, span_counts = otlp.to_traces(decoded)
    try:
        batch = otlp_ingest(workspace=api_key.workspace, traces=traces) if traces else None
    except DomainError as exc:
        rpc = PERMISSION_DENIED if exc.status_code == 403 else INVALID_ARGUMENT
        return status(exc.status_code, rpc, exc.detail)
    rejected = [r for r in batch.results if r.status == "rejected"] if batch else []
    rejected_spans = sum(span_counts.get(r.external_id or "", 0) for r in rejected)
    message = "; ".join(r.detail for r in rejected[:5])
    return _reply(200, otlp.encode_response(rejected_spans, message, content_type), content_type)
