"""The one NinjaAPI. Each app adds its Router; domain errors map to HTTP here."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from workspaces.errors import DomainError, RateLimited

api = NinjaAPI(
    title="Hivemind Web API",
    version="1",
    description=(
        "Agents send traces and fetch reviewed skills. Authenticate with "
        "`Authorization: Bearer <API key>`; the key names the workspace. "
        'Every error is JSON `{"detail": ...}`.'
    ),
    urls_namespace="api",
)


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.detail}, status=exc.status_code)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"detail": "Missing or invalid API key."}, status=401)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.errors}, status=422)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


def _add_routers() -> None:
    from workspaces.api import router as workspaces_router

    api.add_router("/v1", workspaces_router)


_add_routers()
