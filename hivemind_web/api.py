"""The one NinjaAPI. Each app adds its Router; domain errors map to HTTP here."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from hivemind_web.views import DB_RETRY_AFTER
from workspaces.errors import DomainError, RateLimited
from workspaces.openapi import EXTRA_SCHEMAS


class HivemindAPI(NinjaAPI):
    """NinjaAPI that documents request bodies an operation parses itself
    (registered with `workspaces.openapi.body_schema`)."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in EXTRA_SCHEMAS:
            generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(generated.pop("$defs", {}))
            components[model.__name__] = generated
        # Any operation answers 422 when its path or query parameters do not parse.
        invalid = {"description": "Invalid parameters or body; `detail` says which.",
                   "content": {"application/json": {"schema": {
                       "type": "object", "required": ["detail"],
                       "properties": {"detail": {}}}}}}  # fmt: skip
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["responses"].setdefault(422, invalid)
                    if "requestBody" in operation:  # a body that is not JSON at all
                        operation["responses"].setdefault(400, {**invalid, "description":
                                                                "The body is not valid JSON."})  # fmt: skip
        return schema


api = HivemindAPI(
    title="Hivemind Web API",
    version="1",
    description=(
        "Agents send traces and fetch reviewed skills. Authenticate with "
        "`Authorization: Bearer <API key>`; the key names the workspace. "
        'Every error is JSON `{"detail": ...}`.\n\n'
        "**Also served, outside this API's routes:**\n\n"
        "- `POST /v1/traces`: OpenTelemetry OTLP/HTTP (protobuf or JSON, gzip; key with "
        "`ingest`). Set `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=<base>/v1/traces` and "
        "`OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <key>`. Each span is a step "
        "(GenAI `gen_ai.*` and OpenInference attributes), numbered by start time.\n"
        "- `POST /v1/logs`: OpenTelemetry events (OTLP/HTTP logs, protobuf or "
        "JSON, gzip; key with `ingest`): Claude Code's and Codex's, a run per session "
        "(Claude Code's steps by `event.sequence`, Codex's by time); and GenAI events (a model call's messages sent as log records, "
        "e.g. by `opentelemetry-instrumentation-openai-v2`), joined to the call's span by its "
        "span id; other log records are left out.\n"
        "- `POST /v1/metrics`: answered, every data point refused by OTLP's partial "
        "success with the reason (Hivemind's figures come from the runs); nothing is "
        "stored.\n"
        "- `POST /mcp`: the MCP server (streamable HTTP): tools to search failures, show a "
        "failure mode, list and read skills, report an outcome.\n"
        "- `GET /.well-known/agent-skills/index.json`: the Agent Skills discovery index "
        "(key with `skills:read`).\n\n"
        "Agent hooks (`/api/v1/hooks/claude-code`, `/codex`, `/cursor`, `/gemini-cli`, "
        "`/openhands`, `/qwen-code`) take each hook's JSON as it is; `python -m hivemind_client "
        "install-claude-hooks` (or `install-codex-hooks`, `install-cursor-hooks`, "
        "`install-gemini-hooks`, `install-openhands-hooks`, `install-qwen-hooks`) sets "
        "them up; "
        "`install-opencode-plugin` makes OpenCode send each session at its turn's end, "
        "and `install-cline-hooks` the Cline CLI each session when a task ends. "
        "docs/HOOKS.md in the repository has the rules."
    ),
    urls_namespace="api",
)


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.detail}, status=exc.status_code)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_down(request: HttpRequest, exc: Exception) -> HttpResponse:
    response = api.create_response(
        request,
        {"detail": "The database is not answering; retry shortly. Nothing from this request "
                   "was stored."},
        status=503,
    )  # fmt: skip
    response["Retry-After"] = str(DB_RETRY_AFTER)
    return response


@api.exception_handler(RecursionError)
def _too_deep(request: HttpRequest, exc: RecursionError) -> HttpResponse:
    return api.create_response(
        request, {"detail": "The body is nested too deeply to be read."}, status=422
    )


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
    from failures.api import router as failures_router
    from metrics.api import router as metrics_router
    from skills.api import router as skills_router
    from traces.api import router as traces_router
    from workspaces.api import router as workspaces_router

    api.add_router("/v1", workspaces_router)
    api.add_router("/v1", traces_router)
    api.add_router("/v1", failures_router)
    api.add_router("/v1", skills_router)
    api.add_router("/v1", metrics_router)


_add_routers()
