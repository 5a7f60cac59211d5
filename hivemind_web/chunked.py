"""Request bodies sent without a length (`Transfer-Encoding: chunked`), read.

OpenTelemetry's JavaScript OTLP exporters (seen on 0.221, Mastra's among them)
stream their exports in chunks, with no Content-Length. Gunicorn decodes the chunks,
but Django reads a body only as far as CONTENT_LENGTH says, so such an export
arrived empty: answered 200, nothing stored. This WSGI middleware reads the decoded
body (at most one byte past the ingest limit, so a longer one is still refused with
a 413 by `traces.body.read_body`) and gives Django its length."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ChunkedBodies:
    def __init__(self, app: WSGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if (
            not environ.get("CONTENT_LENGTH")
            and "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
        ):
            body = environ["wsgi.input"].read(self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)
