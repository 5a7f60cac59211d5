"""Domain errors raised under a page view, turned into responses in one place.

Services and selectors raise `workspaces.errors` exceptions; the API maps them
in hivemind_web/api.py, and this maps them for pages, so views need no
try/except around what they call:

- NotFound → the 404 page;
- PermissionDenied → the 403 page saying what is needed;
- any other (invalid input, conflict) on a form post → the message shown on the
  page the form came from: its `next` field, else the Referer when it is ours,
  else the action URL's parent (`…/skills/5/approve/` → `…/skills/5/`; every
  action URL here is its object's URL plus a verb);
- otherwise a page with the message and the error's status.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from .errors import DomainError, NotFound, PermissionDenied


class DomainErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, DomainError) or request.path.startswith("/api/"):
            return None
        if isinstance(exc, NotFound):
            raise Http404(exc.detail) from exc
        if isinstance(exc, PermissionDenied):
            return render(request, "workspaces/forbidden.html", {"detail": exc.detail}, status=403)
        back = _back(request)
        if request.method == "POST" and back:
            messages.error(request, exc.detail)
            return redirect(back)
        return render(request, "error.html", {"detail": exc.detail}, status=exc.status_code)


def _back(request: HttpRequest) -> str:
    for candidate in (request.POST.get("next", ""), request.headers.get("Referer", "")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return request.path.rstrip("/").rsplit("/", 1)[0] + "/"
