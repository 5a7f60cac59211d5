"""Bodies sent in chunks, with no Content-Length (OpenTelemetry's JavaScript OTLP
exporters, seen on 0.221), reach the ingest endpoints whole through the WSGI
application gunicorn serves (`hivemind_web.wsgi`)."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

from traces.models import Trace

EXPORT = {"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "js-agent"}}]},
    "scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60d", "spanId": "eee19b7ec3c1b175",
        "name": "tool", "startTimeUnixNano": "1763719200000000000",
        "endTimeUnixNano": "1763719201000000000",
        "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": "crm.search"}}],
        "status": {"code": 2, "message": "ReadTimeout"}}]}]}]}  # fmt: skip


def _post_chunked(app, key: str, body: bytes) -> str:  # type: ignore[no-untyped-def]
    """A POST as gunicorn hands it on: the chunks decoded in wsgi.input, the header
    saying chunked, and no CONTENT_LENGTH."""
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update({"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/traces",
                    "CONTENT_TYPE": "application/json", "HTTP_HOST": "testserver",
                    "HTTP_AUTHORIZATION": f"Bearer {key}",
                    "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body)})  # fmt: skip
    environ.pop("CONTENT_LENGTH", None)
    status: list[str] = []
    b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    return status[0]


@pytest.mark.django_db(transaction=True)
def test_a_chunked_export_is_stored_and_a_long_one_refused(tenant, settings):
    from django.core.wsgi import get_wsgi_application

    from hivemind_web.wsgi import application

    body = json.dumps(EXPORT).encode()
    # Django alone reads no body without a length: a JSON export was refused as empty
    # (a protobuf one, empty, was answered 200), and nothing was stored.
    assert _post_chunked(get_wsgi_application(), tenant.key, body).startswith("400")
    assert not Trace.objects.exists()
    assert _post_chunked(application, tenant.key, body).startswith("200")
    step = Trace.objects.get(workspace=tenant.workspace).steps.get()
    assert (step.name, step.error) == ("crm.search", "ReadTimeout")
    application.limit = 100  # the ingest limit the middleware reads up to
    settings.HIVEMIND_MAX_BODY_BYTES = 100
    try:
        assert _post_chunked(application, tenant.key, body).startswith("413")
    finally:
        application.limit = 10_000_000
