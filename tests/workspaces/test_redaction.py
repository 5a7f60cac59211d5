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


def test_loopback_and_unspecified_addresses_name_no_one_and_are_kept():
    text = ("Listening at: http://127.0.0.1:8031 (7216); bound 0.0.0.0:8000 and [::1]:9000; "
            "client 203.0.113.9, host 10.0.3.7")  # fmt: skip
    out, counts = redact(text)
    assert out == (
        "Listening at: http://127.0.0.1:8031 (7216); bound 0.0.0.0:8000 and [::1]:9000; "
        "client [IP_ADDRESS], host [IP_ADDRESS]"
    )
    assert counts["IP_ADDRESS"] == 2


def test_ipv6_addresses_are_redacted():
    out, counts = redact("from 2001:db8:85a3::8a2e:370:7334 and fe80:0:0:0:200:f8ff:fe21:67cf")
    assert out == "from [IP_ADDRESS] and [IP_ADDRESS]" and counts["IP_ADDRESS"] == 2


def test_card_numbers_failing_luhn_are_kept():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    out, counts = redact("order 4111 1111 1111 1112 shipped")
    assert "4111 1111 1111 1112" in out and not counts


def test_a_numbers_decimals_are_no_card_number():
    # 9182514000003724 passes the Luhn check; here it is the decimals of a duration.
    assert luhn_valid("9182514000003724")
    text = "Task succeeded in 0.9182514000003724s; latency 12.9182514000003724 ms"
    out, counts = redact(text)
    assert out == text and not counts
    # A card after a full stop that ends a sentence is still a card.
    out, counts = redact("Paid. 4111111111111111 was charged")
    assert out == "Paid. [CREDIT_CARD] was charged" and counts["CREDIT_CARD"] == 1


def test_a_hex_identifiers_digits_are_no_card_number():
    """A random OpenTelemetry trace id holds a Luhn-valid run of 15 digits: it was
    redacted as a card, so the run's id changed (the OTLP exporter test failed on
    one in a fresh clone). A commit's SHA the same. A card next to text is a card,
    glued to letters too when the run is no identifier's length."""
    assert luhn_valid("231674786959265")
    for text in ("trace 55531e7a37589056d231674786959265 exported",
                 "commit a4111111111111111b2c3d4e5f60718293a4b5c6"):  # fmt: skip
        out, counts = redact(text)
        assert out == text and not counts, out
    for text in ("card 4111111111111111.", "card:4111111111111111", "4111111111111111abc "):
        out, counts = redact(text)
        assert counts["CREDIT_CARD"] == 1, text


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


# --- kinds added for issue 2/7, each with values that must and must not match ---

NEW_POSITIVE = {
    "IBAN": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606"],
    "AWS_SECRET": ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    "PHONE": ["+14155550142", "+442071838750"],
    "EMAIL": ["li.wei@163.com", "v1.ops@example.org", "ops@v1.example.org"],
    "CREDIT_CARD": ["4111  1111  1111  1111", "4111-1111 1111-1111", "378282246310005",
                    "122000000000003", "6212345678901265", "9792000000000003",
                    # GPN (1946), Mir (2200), Napas (9704): 19 digits
                    "1946000000000000003", "2200000000000000004", "9704000000000000008"],
    "PASSWORD": ["postgres://app:hunter2@localhost:5432/db", "https://u:p4ss@10.0.0.1/x",
                 "GET /login?user=jo&password=hunter2", "login pwd=hunter2"],
    "SSN": ["123-45-6789"],
    "PRIVATE_KEY": ["-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----",
                    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0 cut off here"],
}  # fmt: skip
NEW_NEGATIVE = {
    "IBAN": ["DE89 3704 0044 0532 0130 01"],  # checksum off by one
    # Luhn-valid ids of no card's length or issuer: a Discord / X snowflake, numbers of
    # a CTF challenge (InterCode's dev data), a number with a leading zero.
    "CREDIT_CARD": [
        "M100 200 L300 400 500 600 700",
        "4111 1111 1111 1112",
        "1085086090799284516",
        "9000000000000000001",
        "0411111111111116",
        # an X id once they pass 2e18; a 17-digit number with GPN's prefix
        "2000000000000000008",
        "19460000000000003",
    ],
    "SSN": ["000-12-3456", "666-12-3456", "900-12-3456", "2026-11-22"],
    "IP_ADDRESS": ["version 1.2.3.4", "v10.0.19041.1"],
    "AWS_SECRET": ["src/components/forms/inputs/TextInput.tsx"],
    # The shell's working directory in `env` output (InterCode's bash runs).
    "PASSWORD": ["HOSTNAME=4d01390b86bf\nPWD=/\nHOME=/root", "pwd=~/src/app"],
    # Go's module cache in an error's path (a Claude Code session of the dev data).
    "EMAIL": [
        "/go/pkg/mod/golang.org/toolchain@v0.0.1-go1.24.4.linux-amd64/src/x",
        "example.com/mod@1.2.3-rc.1.linux/x",
    ],
    # A UUID glued to a name (CrewAI names a crew's span "Crew_<uuid>.kickoff").
    "SECRET": [
        # A bundler's chunk name (Vite's build output in a Claude Code session).
        "dist/chunks/styles.css_vue_type_style_index_0_src_true_lang-pW5mq51o.js",
        "Crew_95bde77b-cbcc-4f0d-b0af-8224da4d55aa.kickoff",
        "run-3F2504E0-4F89-11D3-9A0C-0305E82C3301",
    ],
}


@pytest.mark.parametrize("kind,raw", [(k, v) for k, vs in NEW_POSITIVE.items() for v in vs])
def test_new_kinds_are_redacted(kind, raw):
    out, counts = redact(f"value: {raw} (end)")
    secret = {"PASSWORD": ["hunter2", "p4ss"]}.get(
        kind, [raw.split("\n")[1] if "\n" in raw else raw]
    )
    assert not any(s in out for s in secret), out
    assert counts[kind] == 1, (out, counts)


@pytest.mark.parametrize("kind,raw", [(k, v) for k, vs in NEW_NEGATIVE.items() for v in vs])
def test_lookalikes_are_kept(kind, raw):
    out, counts = redact(f"value: {raw} (end)")
    assert raw in out and counts[kind] == 0, (out, counts)


def test_a_random_token_glued_to_a_uuid_is_still_a_secret():
    token = "Zq8Xv2Lm9Kp4Wr7Ty1Bn6Hc3Df5Gs0JaQeRuIoPl"
    out, counts = redact(f"key 95bde77b-cbcc-4f0d-b0af-8224da4d55aa_{token} end")
    assert token not in out and "95bde77b-cbcc-4f0d-b0af-8224da4d55aa" in out, out
    assert counts["SECRET"] == 1


def test_url_password_keeps_the_rest_of_the_url():
    out, _ = redact("db: postgres://app:hunter2@localhost:5432/db")
    assert out == "db: postgres://app:[PASSWORD]@localhost:5432/db"


def test_a_catastrophic_custom_pattern_cannot_stall():
    from workspaces.redaction import validate_custom_pattern

    # RE2 runs it in linear time (no backtracking): it finishes, and finds nothing.
    # Linear work is counted in test_redaction_contexts.py; seconds are in bench/redaction.py.
    redactor = build_redactor(enabled={}, custom_patterns=[{"name": "EVIL", "pattern": "(a+)+$"}])
    assert redactor.text("a" * 100_000 + "!", Counter()) == "a" * 100_000 + "!"
    assert "linear time" in validate_custom_pattern(r"(\w+)\1")
    assert "linear time" in validate_custom_pattern(r"(?<!x)y")
    assert validate_custom_pattern(r"ORD-\d+") is None


def test_fields_longer_than_the_cap_are_cut_before_matching():
    from workspaces.redaction import MAX_FIELD_CHARS

    out, _ = redact("x" * (MAX_FIELD_CHARS + 10))
    assert len(out) < MAX_FIELD_CHARS + 40 and out.endswith("[10 characters cut]")


def test_random_url_safe_tokens_are_never_read_as_names_of_words():
    """A chunk name of lower-case words is kept (NEW_NEGATIVE); random base64url
    tokens, "-" and "_" in them, are still secrets: 0 of 200,000 were read as words
    when the rule was chosen, 2,000 here."""
    import random
    import string

    from workspaces.redaction import _looks_random

    rng = random.Random(20261206)
    alphabet = string.ascii_letters + string.digits + "-_"
    redactor = build_redactor(enabled={})
    secrets = 0
    for _ in range(2000):
        token = "".join(rng.choice(alphabet) for _ in range(rng.randint(32, 64)))
        if not _looks_random(token):  # too regular to be told from a name at all
            continue
        counts: Counter = Counter()
        assert token not in redactor.text(f"token {token} end", counts), token
        secrets += counts["SECRET"] + counts["AWS_SECRET"]
    assert secrets > 1900


def test_a_random_token_below_the_entropy_bar_is_still_a_secret_and_names_are_not():
    from workspaces.redaction import _looks_random

    assert _looks_random("UjpUuMHwkpu9mq9Ugk9QgmyjjYtUtBrmgO6g")  # 4.1 bits, seen leak once
    for name in ("SomeVeryLongCamelCaseIdentifierName1", "XMLHttpRequestEventTargetPrototype12",
                 "getUserAccountSettingsForOrganization2024"):  # fmt: skip
        assert not _looks_random(name), name


def test_a_batch_screened_at_once_redacts_every_string_as_one_by_one():
    """The pre-check run over a whole batch in one scan (`Redactor.screened`) gives
    each string the answer it gets alone, whatever the strings before it hold
    (multi-byte characters shift byte offsets; newlines sit inside strings)."""
    from workspaces.redaction import _screen, may_hold_pii

    strings = [
        "Zürich ☃☃☃☃ café", "plain words", *SAMPLES.values(), "line one\nline two",
        "über 12", "ok", "mail jane@example.com\nthen ☃ 203.0.113.77", "",
        "Bearer Q9x7Lm2Kp4Rt", "a" * 15, "a" * 16, "x\x00 jane@example.com",
    ]  # fmt: skip
    answers = _screen(strings)
    assert {s: may_hold_pii(s) for s in strings if "\x00" not in s} == answers
    assert answers["Zürich ☃☃☃☃ café"] is False and answers["über 12"] is False
    batch = {"traces": [{"task": s, "steps": [{"input": {s: [s]}}]} for s in strings]}
    alone, screened = build_redactor(enabled={}), build_redactor(enabled={}).screened(batch)
    # Every string and key once, but the one holding NUL (`_scan` strips it first).
    assert screened.screen is not None
    assert set(screened.screen) == {*strings, "traces", "task", "steps", "input"} - {strings[-1]}
    for s in strings:
        counts_alone: Counter = Counter()
        counts_screened: Counter = Counter()
        assert screened.text(s, counts_screened) == alone.text(s, counts_alone)
        assert counts_screened == counts_alone
    counts_alone, counts_screened = Counter(), Counter()
    assert screened.value(batch, counts_screened) == alone.value(batch, counts_alone)
    assert counts_screened == counts_alone
    # Numbers and the strings the pre-check cleared are kept without a call each;
    # a key that redacts to an unchanged key's name still gets its suffix.
    mixed = {"rows": [1, 2.5, True, None, "ok", "jane@example.com", {"n": 0}],
             "[EMAIL]": "kept", "jane@example.com": "moved", "x": {"y": [None, "203.0.113.7"]}}  # fmt: skip
    for enabled, custom in (({}, None), ({}, [{"name": "order", "pattern": "ok"}])):
        counts_alone, counts_screened = Counter(), Counter()
        one = build_redactor(enabled=enabled, custom_patterns=custom)
        both = build_redactor(enabled=enabled, custom_patterns=custom).screened(mixed)
        assert both.value(mixed, counts_screened) == one.value(mixed, counts_alone)
        assert counts_screened == counts_alone
    assert set(both.value(mixed, Counter())) == {"rows", "[EMAIL]", "[EMAIL]#2", "x"}


def test_a_batch_scans_each_distinct_string_once_and_counts_every_occurrence(monkeypatch):
    """A batch repeats its strings (a chat's history in each model call, a tool's
    output quoted again): a screened redactor scans each distinct long one once per
    mode (text, identifier) and still counts what it removed at every occurrence, so
    the stored text and the counts are those of scanning each occurrence."""
    from workspaces import redaction

    history = "user jane@example.com asked; card 4111 1111 1111 1111, call +1 415 555 0100"
    steps = [
        {"input": {"messages": [history, f"turn {i % 2}"]}, "output": history} for i in range(5)
    ]
    batch = {"traces": [{"task": history, "agent": "jane@example.com", "steps": steps}]}
    policy = {"custom_patterns": [{"name": "ticket", "pattern": "turn [0-9]"}]}
    for custom in ([], policy["custom_patterns"]):
        alone = build_redactor(enabled={}, custom_patterns=custom)
        screened = build_redactor(enabled={}, custom_patterns=custom).screened(batch)
        expected: Counter = Counter()
        want = [alone.value(steps, expected), alone.text(history, expected),
                alone.identifier("jane@example.com", expected)]  # fmt: skip
        scanned: list[str] = []
        real = redaction.Redactor._scan_once

        def counting(self, value, counts, pseudonymise, real=real, scanned=scanned):
            scanned.append(value)
            return real(self, value, counts, pseudonymise)

        monkeypatch.setattr(redaction.Redactor, "_scan_once", counting)
        got: Counter = Counter()
        assert [screened.value(steps, got), screened.text(history, got),
                screened.identifier("jane@example.com", got)] == want  # fmt: skip
        monkeypatch.undo()
        assert got == expected and expected["EMAIL"] == 12 and expected["CREDIT_CARD"] == 11
        # Short strings cost about as much to remember as to scan: scanned each time.
        long = [v for v in scanned if len(v) >= redaction._MEMO_CHARS]
        assert scanned.count(history) == 1 and len(long) == len(set(long))
        assert scanned.count("turn 0") == (3 if custom else 0)


def test_an_empty_string_is_not_scanned_unless_a_custom_pattern_could_match_it(monkeypatch):
    """Most steps have no error text: an empty string costs no regex call (the
    pre-check's was most of its cost per step). A workspace's own pattern still
    sees it, as it sees every string."""
    from workspaces import redaction

    class Refuses:
        def search(self, *args, **kwargs):
            raise AssertionError("the pre-check ran on an empty string")

    redactor = build_redactor(enabled={})
    screened = redactor.screened({"traces": [{"task": "refund", "steps": [{"name": "x"}]}]})
    monkeypatch.setattr(redaction, "_MAYBE_SENSITIVE", Refuses())
    counts: Counter = Counter()
    assert redactor.text("", counts) == "" and screened.text("", counts) == ""
    assert screened.identifier("", counts) == "" and not counts
    custom = build_redactor(enabled={}, custom_patterns=[{"name": "blank", "pattern": "^$"}])
    monkeypatch.undo()
    assert custom.text("", counts) == "[BLANK]" and counts["BLANK"] == 1


@pytest.mark.django_db
def test_policy_redactors_share_patterns_but_not_pseudonyms():
    """Workspaces with the same switches share one compiled redactor, yet each
    pseudonymises with its own key: the same address is a different pseudonym in
    another workspace, and the same one again in the first; a policy with other
    switches gets other patterns."""
    from tests.factories import make_workspace
    from workspaces.models import PiiPolicy
    from workspaces.redaction import redactor_for_policy

    one, two = make_workspace("one"), make_workspace("two")
    policies = [PiiPolicy.objects.get_or_create(workspace=w)[0] for w in (one, two)]
    seen = [redactor_for_policy(p).identifier("bot-ann@example.com", Counter()) for p in policies]
    assert all(s.startswith("[EMAIL:") for s in seen) and seen[0] != seen[1]
    assert redactor_for_policy(policies[0]).identifier("bot-ann@example.com", Counter()) == seen[0]
    policies[1].redact_emails = False
    assert redactor_for_policy(policies[1]).text("ann@example.com", Counter()) == "ann@example.com"
    assert redactor_for_policy(policies[0]).text("ann@example.com", Counter()) == "[EMAIL]"


def test_spans_then_kinds_redact_as_matching_with_groups():
    """ASCII text is matched span first and kind second (`_Compiled`); every match,
    its kind and its replacement are those of the alternation matched with groups,
    including kinds that read the text around the match (a word boundary before
    "bearer", an address's lead character) or keep a group ("Bearer ", "user:"), in
    ASCII text (matched as bytes) and in any other."""
    from dataclasses import replace

    from workspaces.redaction import _matches

    fast = build_redactor(enabled={})
    assert fast.compiled is not None and fast.compiled.plain is not None
    grouped = replace(
        fast,
        compiled=replace(fast.compiled, plain=None),
        per_kind=[replace(c, plain=None) for c in fast.per_kind],
    )
    strings = [
        *SAMPLES.values(), *(v for vs in NEW_POSITIVE.values() for v in vs),
        *(v for vs in NEW_NEGATIVE.values() for v in vs),
        "Authorization: Bearer Q9x7Lm2Kp4Rt", "xbearer Q9x7Lm2Kp4Rt", "mybearer " + "A1b2" * 10,
        "apassword=hunter2 password=hunter2&x=1", "jdbc:postgres://u:pw@h/x",
        "203.0.113.77", "v203.0.113.77", ":203.0.113.77", "a 2001:db8::8a2e:370:7334 b",
        "card_4111111111111111 and 4111111111111112", "took 0.9182514000003721s",
        "session_token_" + "Zx9Qw3Er7Ty1Ui8Op2As6Df4Gh0Jk5Lz", "/srv/uploads/" + "wJalrXUtnFEMI/K7MDENG",
        "mail jane@example.com, call +1 415-555-0142 from 10.0.0.7 with sk-ant-api03-Zq8XfP2kLmN4vB7cR1tY9wE3",
        # Not ASCII: offsets in characters.
        "Zürich ☃ jane@example.com → 203.0.113.77, é4111 1111 1111 1111",
        "Ä Authorization: Bearer Q9x7Lm2Kp4Rt ☃ postgres://app:hunter2@localhost/db",
    ]  # fmt: skip
    for s in strings:
        kinds = [(m.span(), c.kind_of_group[m.lastindex]) for m, c in _matches(fast.compiled, s)]
        assert kinds == [
            (m.span(), c.kind_of_group[m.lastindex])
            for m, c in _matches(fast.compiled, s, spans=False)
        ]
        for pseudonymise in (False, True):
            counts_fast: Counter = Counter()
            counts_grouped: Counter = Counter()
            assert fast._scan(s, counts_fast, pseudonymise=pseudonymise) == grouped._scan(
                s, counts_grouped, pseudonymise=pseudonymise
            ), s
            assert counts_fast == counts_grouped, s


def test_spans_read_from_re2_directly_are_the_wrappers():
    """`_byte_spans` walks RE2's matches itself (the wrapper's match objects cost
    more than the search); it must give every span the wrapper gives, empty
    matches and their step past them included."""
    import re2

    from workspaces.redaction import _OPTIONS, _byte_spans

    texts = [b"", b"a", b"abc 123 4567 x", b"   ", b"aa-bb--cc", b"9" * 40]
    for pattern in (r"[0-9]{3}", r"x*", r"\b", r"-*", r"[a-z]+|", r"(?:aa)?"):
        regex = re2.compile(pattern, _OPTIONS)
        for text in texts:
            assert _byte_spans(regex, text) == [m.span() for m in regex.finditer(text)], (
                pattern,
                text,
            )


def test_an_identifier_made_of_words_is_judged_by_its_words():
    """Run and session ids are random by design: Inspect's run ids (22 characters)
    and OpenAI's completion ids inside an id name the run. A random word of 32 or
    more is still a secret, in an id as in text, and text is judged as before."""
    redactor = build_redactor(enabled={})
    kept = ["inspect-2TkptWFLxtMXQm6wwEuSrm-s1-e1", "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"]
    for run_id in kept:
        counts: Counter[str] = Counter()
        assert redactor.identifier(run_id, counts) == run_id and not counts
    token = "Zq8Xw2Lr5Tk9Mv3Nb7Hc1Jd6Fg4Ps0QyWu"  # 34 random characters
    for value in (token, f"session_{token}", f"run-{token}-1"):
        counts = Counter()
        assert token not in redactor.identifier(value, counts) and counts["SECRET"] == 1
    counts = Counter()
    assert redactor.text(kept[0], counts) == "[SECRET]" and counts["SECRET"] == 1
