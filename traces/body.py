"""Reading request bodies for the ingest endpoints (native, OTLP, hooks)."""

from __future__ import annotations

import zlib

from django.conf import settings
from django.http import HttpRequest

from workspaces.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from workspaces.textsafety import clean_json_bytes


def read_body(request: HttpRequest) -> bytes:
    """The raw body, refused above HIVEMIND_MAX_BODY_BYTES (declared or actual), gunzipped
    when Content-Encoding says gzip. Raises PayloadTooLarge (413) or BadRequest (400)."""
    limit = settings.HIVEMIND_MAX_BODY_BYTES
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"Body is {declared} bytes; the limit is {limit}. Send smaller batches."
        )
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        raise UnsupportedMediaType(
            "Send the body as JSON (Content-Type: application/json), or protobuf for "
            "OTLP; form and multipart bodies are not accepted."
        )
    raw = request.body
    if len(raw) > limit:
        raise PayloadTooLarge(
            f"Body is {len(raw)} bytes; the limit is {limit}. Send smaller batches."
        )
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = clean_json_bytes(_gunzip(raw, limit))
    return raw


def _gunzip(raw: bytes, limit: int) -> bytes:
    # Decompress in bounded steps: a small gzip bomb must not exhaust memory.
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"Body says gzip but does not decompress: {exc}.") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"Decompressed body exceeds the limit of {limit} bytes.")
    return data
