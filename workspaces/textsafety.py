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

import orjson
import re2
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict

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


# JSON nested deeper than this is refused (422) before anything walks it: no real
# trace needs it, and recursive code (validation, redaction) would overflow.
MAX_JSON_DEPTH = 64


_CONTAINERS = (dict, list)


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Is `value` nested deeper than `limit`? One level at a time, so it cannot
    overflow itself and allocates nothing per leaf. (The classes are one tuple made
    once: `dict | list` in the loop built a union object per value, and was half
    the walk's time.)"""
    containers = _CONTAINERS
    level = [value] if isinstance(value, containers) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below += [child for child in children if isinstance(child, containers)]
        level, depth = below, depth + 1
    return False


# An integer of 19 digits or more: it may not fit in 64 bits, and orjson would read
# it as a float (losing digits of an id). A run of digits that is a number's
# fraction or carries one, or an exponent, is a float to both parsers and does not
# count: a float printed with all its digits (a cost of 0.0072959999999999995) is
# common in real runs and sent every such body to the standard library's parser.
# (A run inside a string still counts; that only costs the slower parse.) RE2:
# linear, ~0.3 µs per kilobyte.
_LONG_NUMBER = re2.compile(rb"(?:^|[^0-9.])[0-9]{19,}(?:[^0-9.eE]|$)")


def json_loads(data: bytes) -> Any:
    """A JSON text parsed exactly as `json.loads` parses it, several times faster:
    orjson first, and the standard library for a text that may hold an integer
    beyond 64 bits, or that orjson refuses (NaN or Infinity, a lone surrogate
    escape, nesting past 1,024 levels, text that is no JSON at all), so what is
    accepted, every value and every error raised stay `json.loads`'s."""
    if _LONG_NUMBER.search(data):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def json_text(value: Any) -> str:
    """`value` as compact JSON text for a jsonb column (PostgreSQL normalises the
    layout). orjson, with the standard library for what orjson refuses (integers
    beyond 64 bits). NaN and infinities, which only a non-standard body can carry,
    are written as null, as JavaScript's JSON.stringify writes them: PostgreSQL
    refuses them in jsonb."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


def clean_json_bytes(data: bytes) -> bytes:
    """`data` unchanged unless it holds a NUL escape or a lone surrogate escape; then
    cleaned JSON."""
    if not _SUSPECT.search(data):
        return data
    if b"\\u0000" not in data and _surrogates_paired(data):
        return data
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return data  # not JSON (or absurdly deep): the reader reports that
    return json.dumps(_clean(parsed), ensure_ascii=False).encode("utf-8")


def _surrogates_paired(data: bytes) -> bool:
    """Is every surrogate escape in `data` half of a valid pair? A character beyond
    the Basic Multilingual Plane (an emoji) is written as a pair of them by every
    client that escapes non-ASCII text (Python's `json.dumps` by default, this
    project's own client included), and such a body needs no cleaning. orjson
    refuses a lone surrogate escape (after an escaped backslash too), so a body it
    reads has none. Its parse costs a fifth of the standard library's, which a
    cleaning would run, then write the body out again."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False  # a lone surrogate, or anything else orjson refuses: clean it
    return True


# Routes whose bodies are JSON for machines: the REST API, OTLP/HTTP and MCP (whose
# tools' arguments reach the database as the API's fields do).
_JSON_ROUTES = ("/api/", "/v1/", "/mcp")


class JsonTextMiddleware:
    """Before any view: cleans uncompressed JSON API and MCP bodies (clean_json_bytes), and
    removes NUL characters from query strings and form fields on every route, and
    refuses a path holding one: NUL can reach PostgreSQL by any of these."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return _refuse_nul(request)
        if "%00" in request.META.get("QUERY_STRING", ""):
            request.GET = _clean_querydict(request.GET)
        if request.path.startswith(("/api/", "/v1/")) and _is_form_post(request):
            try:
                # Read it first, so that parsing it as a form below cannot make it
                # unreadable for the API view (which refuses it with a 4xx).
                request.body  # noqa: B018
            except RequestDataTooBig:  # the view answers with the size limit
                return self.get_response(request)
        if _is_form_post(request) and any(
            "\x00" in v for _, values in request.POST.lists() for v in values
        ):
            request.POST = _clean_querydict(request.POST)
        if (
            request.method in ("POST", "PUT", "PATCH")
            and request.path.startswith(_JSON_ROUTES)
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


def _clean_querydict(data: QueryDict) -> Any:  # an immutable QueryDict, as Django's
    cleaned = QueryDict(mutable=True)
    for key, values in data.lists():
        cleaned.setlist(clean_text(key), [clean_text(v) for v in values])
    cleaned._mutable = False
    return cleaned


def _refuse_nul(request: HttpRequest) -> HttpResponse:
    detail = "The URL contains a NUL character; nothing here has such a name."
    if request.path.startswith(("/api/", "/v1/")):
        return JsonResponse({"detail": detail}, status=400)
    return HttpResponse(detail, status=400, content_type="text/plain; charset=utf-8")


def _is_form_post(request: HttpRequest) -> bool:
    return request.method == "POST" and request.headers.get("Content-Type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )
