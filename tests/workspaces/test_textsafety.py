"""JSON text PostgreSQL can store: NUL removed, lone surrogates replaced, the rest
left exactly as sent."""

from __future__ import annotations

import json
import math

import pytest

from workspaces.textsafety import clean_json_bytes, clean_text, json_loads, json_text, json_too_deep


def test_clean_text_keeps_ordinary_text_and_fixes_only_what_postgres_refuses():
    assert clean_text("why? because.") == "why? because."
    assert clean_text("a\x00b") == "ab"
    assert clean_text("ok? \ud800 done?") == "ok? \ufffd done?"


def test_clean_json_bytes_passes_clean_bodies_through_untouched():
    body = b'{"task": "Refund? \\u00e9"}'
    assert clean_json_bytes(body) is body
    dirty = b'{"task": "a\\u0000b?", "x": ["\\ud83d"], "ok": "\\ud83d\\ude00"}'
    assert json.loads(clean_json_bytes(dirty)) == {"task": "ab?", "x": ["\ufffd"], "ok": "😀"}


def test_surrogate_pairs_pass_through_and_only_lone_surrogates_are_cleaned():
    """An emoji escaped as a surrogate pair (Python's json.dumps writes every one so)
    is a valid character: the body passes untouched. A lone surrogate is cleaned
    wherever it hides, after an escaped backslash too."""
    paired = json.dumps({"reply": "Done 😊 — thanks!", "steps": [{"output": "🚀 ok"}]}).encode()
    assert b"\\ud83d\\ude0a" in paired and clean_json_bytes(paired) is paired
    for lone, cleaned in [
        (b'["\\ud83d"]', ["\ufffd"]),
        (b'["\\ude0a"]', ["\ufffd"]),
        (b'["x\\ud83dy \\ud83d\\ude0a"]', ["x\ufffdy 😊"]),
        # An escaped backslash, then "ud83d", then a lone low surrogate.
        (b'["\\\\ud83d\\udc00"]', ["\\ud83d\ufffd"]),
        (b'["\\ud83d\\\\udc00"]', ["\ufffd\\udc00"]),
        (b'["\\ud83d\\ude0a \\u0000"]', ["😊 "]),
    ]:
        assert json.loads(clean_json_bytes(lone)) == cleaned, lone


# Texts orjson refuses and the standard library accepts, or that neither accepts.
EDGE_TEXTS = [
    '{"reward": NaN, "x": [Infinity, -Infinity]}',
    '{"big": 123456789012345678901234567890}',
    '{"lone": "\\ud800"}',
    '{"huge": 1e999}',
    "[" * 500 + "]" * 500,
    '{"dup": 1, "dup": 2}',
    '{"ok": "caf\\u00e9 \\ud83d\\ude00", "n": -0.0, "f": 0.1}',
]
BAD_TEXTS = ["", "{", '{"a": }', "[1, 2", '{"a": 1} trailing', "\ufeff", "nul"]


def test_json_loads_accepts_what_the_standard_library_accepts_and_nothing_more():
    for text in EDGE_TEXTS:
        expected = json.loads(text.encode())
        got = json_loads(text.encode())
        assert json.dumps(got) == json.dumps(expected), text[:40]
    for text in BAD_TEXTS:
        with pytest.raises(ValueError) as expected:
            json.loads(text.encode())
        with pytest.raises(type(expected.value)):
            json_loads(text.encode())
    with pytest.raises(UnicodeDecodeError):
        json_loads(b'{"a": "\xff"}')
    with pytest.raises(RecursionError):  # as json.loads; the API answers 422 for it
        json_loads(b"[" * 5000 + b"]" * 5000)


def test_json_loads_reads_long_floats_with_orjson_and_long_integers_exactly(monkeypatch):
    """Only an integer of 19 digits or more (which orjson reads as a float) takes the
    standard library's parser; a float printed with all its digits, common in real
    runs, does not."""
    from workspaces import textsafety

    long_ints = [b'{"id": 12345678901234567890}', b"[-98765432109876543210]",
                 b'{"n": 1234567890123456789012,"x":1}', b"123456789012345678901"]  # fmt: skip
    floats = [b'{"cost": 0.0072959999999999995}', b"[1.12345678901234567890123]",
              b'{"x": 12345678901234567890.5}', b"[1234567890123456789012e-3]"]  # fmt: skip
    for text in long_ints + floats:
        assert json.dumps(json_loads(text)) == json.dumps(json.loads(text)), text
    assert json_loads(long_ints[0]) == {"id": 12345678901234567890}

    def refuse(data):  # the standard library's parser, which these must not need
        raise AssertionError(f"parsed with the standard library: {data!r}")

    monkeypatch.setattr(textsafety.json, "loads", refuse)
    for text in floats:
        json_loads(text)
    with pytest.raises(AssertionError):
        json_loads(long_ints[0])


def test_json_text_writes_what_jsonb_can_hold():
    assert json.loads(json_text({"big": 2**80, "s": "é"})) == {"big": 2**80, "s": "é"}
    # NaN and infinities (a non-standard body's) as null, as JSON.stringify writes them.
    assert json.loads(json_text({"x": [math.nan, math.inf, 1.5]})) == {"x": [None, None, 1.5]}


def test_json_too_deep_counts_levels_of_objects_and_lists():
    assert not json_too_deep({"a": [1, {"b": "x"}]}, limit=3)
    assert json_too_deep({"a": [1, {"b": []}]}, limit=3)
    assert not json_too_deep("plain", limit=1)
    assert not json_too_deep([[]], limit=2)
    assert json_too_deep([[[]]], limit=2)
