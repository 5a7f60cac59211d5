from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workspaces.decorators import workspace_view
from workspaces.forms import ApiKeyForm

from .selectors import overview_get, recent_failed_traces


@require_GET
@workspace_view()
def overview(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    return render(
        request,
        "metrics/overview.html",
        {
            "overview": overview_get(workspace=workspace),
            "recent_failures": recent_failed_traces(workspace=workspace),
            "form": ApiKeyForm(),
        },
    )
