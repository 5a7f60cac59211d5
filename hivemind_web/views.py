from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from .celery import broker_state


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: does the database answer, and has it pgvector?"""
    status: dict[str, object] = {"database": False, "pgvector": None}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            status["database"] = True
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
            status["pgvector"] = row[0] if row else None
    except Exception as exc:  # any failure to talk to the database is "unhealthy"
        status["error"] = type(exc).__name__
    healthy = status["database"] and status["pgvector"] is not None
    # The broker is reported, not required: ingest stores traces while it is away
    # (the sweeps enqueue their analysis later). Never waits more than 0.25 s.
    status["broker"] = broker_state()
    return JsonResponse({"ok": healthy, **status}, status=200 if healthy else 503)


# Retry-After for "the database is not answering": long enough for a restart or
# a failover, short enough that exporters and agents do not give up.
DB_RETRY_AFTER = 30
# Paths whose clients are programs: every answer there is JSON, errors included.
API_PREFIXES = ("/api/", "/v1/", "/mcp", "/.well-known/", "/healthz")


def database_unavailable(exc: BaseException | None) -> bool:
    """Is this the database (or the connection to it) being down, not a bug?"""
    return isinstance(exc, OperationalError | InterfaceError)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: JSON for API clients (a path no route matches), a page for people."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse(
            {"detail": "No such API route; see /api/docs for the routes."}, status=404
        )
    return HttpResponse(render_to_string("404.html", request=request), status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: JSON for API clients, the branded page for people (a CSRF
    failure has its own view: django's, as configured)."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": str(exception) or "Not allowed."}, status=403)
    message = str(exception) if exception and str(exception) else ""
    return HttpResponse(render_to_string("403.html", {"exception": message}, request=request),
                        status=403)  # fmt: skip


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: whatever failed, an API client gets JSON, never an HTML page; a
    database that does not answer is a 503 with Retry-After, not a 500."""
    exc = sys.exc_info()[1]
    is_api = request.path.startswith(API_PREFIXES)
    if database_unavailable(exc):
        detail = (
            "The database is not answering; retry shortly. Nothing from this request was stored."
        )
        response: HttpResponse = (
            JsonResponse({"detail": detail}, status=503)
            if is_api
            else HttpResponse(render_to_string("503.html", {"detail": detail}), status=503)
        )
        response["Retry-After"] = str(DB_RETRY_AFTER)
        return response
    if is_api:
        return JsonResponse({"detail": "Internal error; it was logged."}, status=500)
    return HttpResponse(render_to_string("500.html"), status=500)


@require_GET
def client_index(request: HttpRequest) -> JsonResponse:
    """How to install the client from this server: the wheel's URL and the command.
    Public like the client's code (it holds no setting and no secret)."""
    from hivemind_client import __version__
    from hivemind_client.wheel import wheel_name

    url = request.build_absolute_uri(f"/client/{wheel_name()}")
    return JsonResponse({"version": __version__, "wheel": url, "install": f"pip install {url}",
                         "command": "hivemind --help"})  # fmt: skip


@require_GET
def client_wheel(request: HttpRequest, filename: str) -> HttpResponse:
    """The client wheel, built from the package this server runs (hivemind_client/wheel.py)."""
    from django.http import Http404

    from hivemind_client.wheel import build_wheel, wheel_name

    if filename != wheel_name():
        raise Http404(f"No such file; this server offers {wheel_name()}.")
    response = HttpResponse(build_wheel(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
