"""Every answer on a path whose clients are programs is JSON.

The API, OTLP (`/v1/`), MCP (`/mcp`) and the discovery index (`/.well-known/`)
are read by agents, exporters and scripts. Django answers some errors itself
before or around a view (405 from a method decorator, 413 when a body is larger
than `DATA_UPLOAD_MAX_MEMORY_SIZE`, 400 for a host it refuses): this turns each
such non-JSON error on those paths into `{"detail": ...}` with the same status
and headers. An OTLP protobuf error (`application/x-protobuf`, the Status
message the OTLP spec requires) and a 304 pass unchanged. Errors raised before
Django (gunicorn's 400, 414, 431) are answered as JSON by
`hivemind_web/gunicorn_conf.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse

from .views import API_PREFIXES

_KEEP_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")
_PASS_THROUGH = ("application/json", "application/problem+json", "application/x-protobuf")


def client_error_detail(status: int) -> str:
    """A sentence for a bare status, for clients that read `detail`."""
    if status == 405:
        return "This path does not answer that method; the Allow header lists the ones it does."
    if status == 413:
        return "The request body is too large; send smaller batches."
    try:
        return HTTPStatus(status).phrase + "."
    except ValueError:
        return f"HTTP {status}."


class JsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not request.path.startswith(API_PREFIXES):
            return response
        content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type in _PASS_THROUGH:
            return response
        replaced = JsonResponse(
            {"detail": client_error_detail(response.status_code)}, status=response.status_code
        )
        for name in _KEEP_HEADERS:
            if name in response:
                replaced[name] = response[name]
        return replaced
