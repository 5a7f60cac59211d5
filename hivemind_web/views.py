from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


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
    return JsonResponse({"ok": healthy, **status}, status=200 if healthy else 503)
