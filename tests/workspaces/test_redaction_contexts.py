"""Every kind of secret and personal value, in the contexts real traces put it in.

A generator makes fresh values of every kind (AWS secret keys with and without
"/" or "+", 64-character tokens, PEM blocks, cards, IBANs, …) and puts each in
realistic surroundings: glued to an identifier with "_", inside a file path or
a URL, as a JSON key, a header, key=value, at the end of a sentence. None may
survive, and the surroundings that are not personal stay readable. The work
redaction does is counted (Python lines executed, not seconds) to show it grows
linearly with the input, however many JSON keys redact to the same placeholder.
"""

from __future__ import annotations

import json
import random
import string
import sys
from collections import Counter
from collections.abc import Callable

import pytest

from workspaces.redaction import POLICY_SWITCHES, build_redactor, luhn_valid

_rng = random.Random(20261203)
B62 = string.ascii_letters + string.digits


def _mixed(length: int, alphabet: str = B62, need: str = "") -> str:
    while True:
        value = "".join(_rng.choice(alphabet) for _ in range(length))
        if (
            any(c.isdigit() for c in value)
            and any(c.isupper() for c in value)
            and any(c.islower() for c in value)
            and (not need or any(c in need for c in value))
        ):
            return value


def _card(i: int) -> str:
    prefix = f"4{_rng.randrange(10**13, 10**14):014d}"
    return next(prefix + str(d) for d in range(10) if luhn_valid(prefix + str(d)))


def _iban(i: int) -> str:
    bban = f"{_rng.randrange(10**7, 10**8)}{i:010d}"
    digits = "".join(str(int(c, 36)) for c in bban + "DE00")
    return f"DE{98 - int(digits) % 97:02d}{bban}"


def _pem(i: int) -> str:
    body = "\n".join(_mixed(64, B62 + "+/") for _ in range(3))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"


KINDS: dict[str, Callable[[int], str]] = {
    "EMAIL": lambda i: f"{_mixed(6).lower()}.{i}@example-mail.com",
    "PHONE": lambda i: f"+1415{_rng.randrange(2000000, 9999999)}",
    "CREDIT_CARD": _card,
    "IBAN": _iban,
    "SSN": lambda i: (
        f"{_rng.randrange(100, 665):03d}-{_rng.randrange(10, 99)}-{_rng.randrange(1000, 9999)}"
    ),
    "IP_ADDRESS": lambda i: (
        f"10.{_rng.randrange(1, 254)}.{_rng.randrange(1, 254)}.{_rng.randrange(1, 254)}"
    ),
    "AWS_SECRET": lambda i: _mixed(40, B62 + "/+", need="/+"),
    "AWS_SECRET_PLAIN": lambda i: _mixed(40),  # no / or +: ~28% of real keys
    "TOKEN_64": lambda i: _mixed(64),
    "API_KEY": lambda i: f"sk-ant-api03-{_mixed(40)}",
    "JWT": lambda i: f"eyJ{_mixed(16)}.eyJ{_mixed(24)}.{_mixed(32)}",
    "PRIVATE_KEY": _pem,
}

CONTEXTS: dict[str, str] = {
    "plain": "{v}",
    "sentence end": "request from {v}.",
    "glued with _": "customer_card_{v}",
    "glued both sides": "id_{v}_end",
    "glued to a long identifier": "the_customer_record_field_value_{v}",
    "file path": "/srv/app/uploads/{v}/receipt.pdf",
    "URL path": "https://api.example.com/v1/users/{v}/orders?expand=1",
    "URL query": "https://api.example.com/search?q={v}&page=2",
    "key=value": "aws_secret_access_key={v}",
    "header": "X-Api-Token: {v}",
    "quoted": 'value "{v}" rejected',
    "parenthesised": "(see {v})",
    "comma list": "{v},{v2}",
    "JSON key": '{{"{v}": "ok"}}',
    "log line": "2026-12-01T10:00:00Z WARN denied user={v} latency=12ms",
}
# Kinds whose shape cannot sit inside a file path or identifier unchanged (a JWT's
# dots, a PEM block's lines) are still tried there: the test is on what survives.

ALL_ON = dict.fromkeys(POLICY_SWITCHES, True)


def _cases(per_pair: int) -> list[tuple[str, str, str, list[str]]]:
    cases = []
    i = 0
    for kind, make in KINDS.items():
        for context, template in CONTEXTS.items():
            for _ in range(per_pair):
                i += 1
                v, v2 = make(i), make(i + 100_000)
                text = (json.dumps({v: "ok"}) if context == "JSON key"
                        else template.format(v=v, v2=v2))  # fmt: skip
                cases.append((kind, context, text, [v, v2]))
    return cases


def test_no_value_of_any_kind_survives_in_any_context():
    redactor = build_redactor(enabled=ALL_ON)
    cases = _cases(per_pair=12)
    seeded = sum(1 if "{v2}" not in CONTEXTS[c] else 2 for _, c, _, _ in cases)
    assert seeded >= 2_000
    survivors = []
    for kind, context, text, values in cases:
        counts: Counter[str] = Counter()
        out = redactor.text(text, counts)
        as_json = (
            json.dumps(redactor.value(json.loads(text), counts)) if context == "JSON key" else ""
        )
        for value in values:
            shown = as_json or out
            if value in text.replace("\\n", "\n") and value in shown.replace("\\n", "\n"):
                survivors.append((kind, context, out))
    assert survivors == [], f"{len(survivors)} of {seeded} survived: {survivors[:10]}"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("customer_card_4111111111111111", "customer_card_"),
        ("/srv/app/uploads/4111111111111111/receipt.pdf", "/srv/app/uploads/"),
        ("request from 10.1.2.3.", "request from "),
        ("host 10.1.2.3:8080 up", ":8080 up"),
        ("token: " + _mixed(64) + " expires", "token: [SECRET] expires"),
    ],
)
def test_what_is_not_personal_stays_readable(text, kept):
    out = build_redactor(enabled=ALL_ON).text(text, Counter())
    assert out != text and kept in out


def test_numbers_that_are_not_pii_are_kept():
    redactor = build_redactor(enabled=ALL_ON)
    for text in (
        "order 4111 1111 1111 1112 shipped",  # card-shaped, fails Luhn: not a phone either
        "version 1.2.3.4 released",
        "commit 3bacb7e0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
        "path /usr/lib/python3.11/site-packages/django/db/models/query.py",
        "snake_case_identifier_with_many_words_in_it_for_config",
        # UUIDs whose digit groups look like a phone number or an SSN
        "run 8f80e01c-1296-4371-9486-bb3d68651a60 done",
        "request 123e4567-e89b-12d3-a456-426614174000",
    ):
        assert redactor.text(text, Counter()) == text, text


def _lines_executed(fn: Callable[[], object]) -> int:
    """Python lines run inside workspaces/redaction.py while `fn` runs."""
    count = 0

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        nonlocal count
        if frame.f_code.co_filename.endswith("workspaces/redaction.py"):
            if event == "line":
                count += 1
            return tracer
        return None

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def test_json_keys_that_redact_alike_cost_linear_work():
    redactor = build_redactor(enabled=ALL_ON)

    def keys(n: int) -> dict[str, int]:
        return {f"user{i}@example.com": i for i in range(n)}

    small = _lines_executed(lambda: redactor.value(keys(2_000), Counter()))
    large = _lines_executed(lambda: redactor.value(keys(8_000), Counter()))
    # Four times the keys, about four times the work (the old loop did sixteen).
    assert large <= 4.5 * small, (small, large)
    out = redactor.value(keys(50), Counter())
    assert len(out) == 50 and "[EMAIL]#50" in out


@pytest.mark.parametrize("unit", ["1.", "a", "-", "a@", "4111 ", "1:", "card_4111111111111111 "])
def test_adversarial_text_costs_linear_work(unit):
    # Work counted, not timed: bench/redaction.py has the seconds.
    redactor = build_redactor(enabled=ALL_ON)
    small = _lines_executed(lambda: redactor.text(unit * (20_000 // len(unit)), Counter()))
    large = _lines_executed(lambda: redactor.text(unit * (80_000 // len(unit)), Counter()))
    assert large <= 4.5 * max(small, 50), (unit, small, large)
