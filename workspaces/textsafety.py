"""JSON text PostgreSQL can store.

PostgreSQL text and jsonb cannot hold NUL characters, and UTF-8 cannot encode
lone surrogates; both are valid in JSON (`\\u0000`, `\\ud800`) and would
otherwise fail deep in a write. Bodies that carry such escapes are decoded,
cleaned (NUL removed, lone surrogates replaced by U+FFFD) and re-encoded; every
other body passes through untouched (a byte search, no parsing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

# A NUL escape, or any surrogate escape (valid pairs are rare enough to re-check).
_SUSPECT = re.compile(rb"\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` without NUL characters and with lone surrogates replaced by U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", value.replace("\x00", ""))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): _clean(v) for k, v in value.items()}
    return value


def clean_json_bytes(data: bytes) -> bytes:
    """`data` unchanged unless it holds NUL or surrogate escapes; then cleaned JSON."""
    if not _SUSPECT.search(data):
        return data
    try:
        parsed = json.loads(data)
    except ValueError:
        return data  # not JSON: the reader reports that
    return json.dumps(_clean(parsed), ensure_ascii=False).encode("utf-8")


class JsonTextMiddleware:
    """Applies clean_json_bytes to uncompressed JSON API bodies before any view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method in ("POST", "PUT", "PATCH")
            and request.path.startswith(("/api/", "/v1/"))
            and "json" in request.headers.get("Content-Type", "")
            and not request.headers.get("Content-Encoding")
        ):
            try:
                body = request.body
            except RequestDataTooBig:  # the view answers with the size limit
                return self.get_response(request)
            cleaned = clean_json_bytes(body)
            if cleaned is not body:
                request._body = cleaned
        return self.get_response(request)
