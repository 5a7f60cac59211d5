"""JSON text PostgreSQL can store: NUL removed, lone surrogates replaced, the rest
left exactly as sent."""

from __future__ import annotations

import json

from workspaces.textsafety import clean_json_bytes, clean_text


def test_clean_text_keeps_ordinary_text_and_fixes_only_what_postgres_refuses():
    assert clean_text("why? because.") == "why? because."
    assert clean_text("a\x00b") == "ab"
    assert clean_text("ok? \ud800 done?") == "ok? \ufffd done?"


def test_clean_json_bytes_passes_clean_bodies_through_untouched():
    body = b'{"task": "Refund? \\u00e9"}'
    assert clean_json_bytes(body) is body
    dirty = b'{"task": "a\\u0000b?", "x": ["\\ud83d"], "ok": "\\ud83d\\ude00"}'
    assert json.loads(clean_json_bytes(dirty)) == {"task": "ab?", "x": ["\ufffd"], "ok": "😀"}
