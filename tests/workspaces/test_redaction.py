from __future__ import annotations

from collections import Counter

import pytest

from workspaces.redaction import build_redactor, luhn_valid

# One raw value per kind, as an agent might log it.
SAMPLES = {
    "EMAIL": "jane.doe+orders@example.co.uk",
    "PHONE": "+1 415-555-0142",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IP_ADDRESS": "203.0.113.77",
    "API_KEY": "sk-ant-api03-Zq8XfP2kLmN4vB7cR1tY9wE3",
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlX2J5dGVzX2hlcmU",
    "AUTH_HEADER": "Q9x7Lm2Kp4Rt",
    "PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    "SECRET": "Zx9Qw3Er7Ty1Ui8Op2As6Df4Gh0Jk5LzMn",
}


def redact(text: str, **enabled: bool) -> tuple[str, Counter]:
    counts: Counter = Counter()
    return build_redactor(enabled=enabled).text(text, counts), counts


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_each_kind_is_replaced_by_its_placeholder(kind):
    raw = SAMPLES[kind]
    text = f"Bearer {raw}" if kind == "AUTH_HEADER" else f"value: {raw} (end)"
    out, counts = redact(text)
    assert raw not in out
    assert f"[{kind}]" in out
    assert counts[kind] == 1


def test_ipv6_addresses_are_redacted():
    out, counts = redact("from 2001:db8:85a3::8a2e:370:7334 and fe80:0:0:0:200:f8ff:fe21:67cf")
    assert out == "from [IP_ADDRESS] and [IP_ADDRESS]" and counts["IP_ADDRESS"] == 2


def test_card_numbers_failing_luhn_are_kept():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    out, counts = redact("order 4111 1111 1111 1112 shipped")
    assert "4111 1111 1111 1112" in out and not counts


def test_ordinary_text_is_left_alone():
    text = (
        "Timeout after 30000 ms at 2026-11-21T10:00:00Z reading "
        "/usr/lib/python3.11/site-packages/some_module_name_that_is_long.py "
        "uuid 550e8400-e29b-41d4-a716-446655440000 sha 9f86d081884c7d659a2feaa0c55ad015"
    )
    out, counts = redact(text)
    assert out == text and not counts


def test_kinds_can_be_switched_off_by_policy():
    out, counts = redact("mail jane@example.com from 203.0.113.77", redact_emails=False)
    assert "jane@example.com" in out and "[IP_ADDRESS]" in out


def test_custom_policy_patterns_use_their_own_placeholder():
    redactor = build_redactor(
        enabled={}, custom_patterns=[{"name": "order id", "pattern": r"ORD-\d+"}]
    )
    counts: Counter = Counter()
    assert redactor.text("refund ORD-12345 now", counts) == "refund [ORDER_ID] now"
    assert counts["ORDER_ID"] == 1


def test_json_values_are_redacted_recursively_and_keys_kept():
    counts: Counter = Counter()
    value = {"to": ["a@b.io"], "meta": {"ip": "10.1.2.3", "n": 5}}
    out = build_redactor(enabled={}).value(value, counts)
    assert out == {"to": ["[EMAIL]"], "meta": {"ip": "[IP_ADDRESS]", "n": 5}}


def test_nul_characters_are_dropped():
    out, _ = redact("a\x00b")
    assert out == "ab"
