"""API-key authentication for django-ninja. The key decides the workspace."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from .errors import AuthenticationFailed
from .models import ApiKey, Scope
from .ratelimit import ingest_check
from .requests import ApiRequest
from .services import api_key_authenticate

ALT_HEADER = "X-Hivemind-Api-Key"


def presented_key(request: HttpRequest) -> str:
    """The key a request carries, or raise saying what is wrong with how it was sent.

    The one rule for every way in (the API, the skills poll answered early, OTLP)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("Authorization header must be 'Bearer <API key>'.")
        return token.strip()
    alt = request.headers.get(ALT_HEADER, "")
    if alt:
        return alt.strip()
    raise AuthenticationFailed(
        "Missing API key: send 'Authorization: Bearer <API key>' (or 'X-Hivemind-Api-Key: "
        "<API key>'; OpenTelemetry exporters: OTEL_EXPORTER_OTLP_HEADERS="
        "'Authorization=Bearer <API key>'). Create a key under Settings → API keys."
    )


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer hm_…` (or `X-Hivemind-Api-Key: hm_…`) with a required scope.

    Sets `request.auth` to the ApiKey and `request.workspace` to its workspace.
    Failures raise with a reason (missing, malformed, unknown, revoked, or
    lacking the scope) instead of ninja's bare "Unauthorized".
    """

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> Any:
        return self.authenticate(request, presented_key(request))

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        api_key = api_key_authenticate(raw_key=token, scope=self.scope)
        if self.scope == Scope.INGEST:
            ingest_check(api_key, limit=settings.HIVEMIND_INGEST_RATE_LIMIT)
        cast(ApiRequest, request).workspace = api_key.workspace
        return api_key
