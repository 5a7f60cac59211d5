"""The PII redaction engine: removes personal data and secrets from text before
anything is stored.

Every pattern runs on RE2 (`google-re2`), whose matching time is linear in the
input whatever the pattern: no text an agent sends, and no custom pattern an
admin saves, can make a worker spend quadratic or exponential time. RE2 has no
look-around and no back-references, so the boundaries the patterns need ("not
preceded by a digit") are checked on the match afterwards (`_BOUNDARY`), and a
match that fails its check is left as it was.

One compiled alternation scans each string once; the first alternative that
matches at a position wins, so the order below goes from most to least specific
(a JWT is also a long high-entropy string; a card number also looks like a phone
number). Some kinds are confirmed after matching (Luhn for cards, mod-97 for
IBANs, entropy for opaque strings, the SSA's rules for SSNs).

Each match becomes a typed placeholder (`[EMAIL]`, `[CREDIT_CARD]`, …) and is
counted, so a trace records how much was removed and of which kind. Strings
longer than `MAX_FIELD_CHARS` are cut before any pattern runs.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import re2

# The longest string stored from one field; longer ones are cut (and say so)
# before any pattern runs. 1 MB of text is more than any real tool output needs.
MAX_FIELD_CHARS = 1_000_000

_OPTIONS = re2.Options()
_OPTIONS.max_mem = 64 << 20  # a bound on one pattern's automaton, custom ones included
_OPTIONS.log_errors = False

# kind -> (placeholder, policy field that switches it, RE2 pattern)
_SECRET = "redact_secrets"
_RULES: list[tuple[str, str, str, str]] = [
    (
        "PRIVATE_KEY",
        "[PRIVATE_KEY]",
        _SECRET,
        # PEM keys and PGP key blocks; a block cut off before its END line is
        # removed to the end of the text rather than left half there.
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*"
        r"PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)",
    ),
    (
        "AUTH_HEADER",
        "[AUTH_HEADER]",
        _SECRET,
        # The value after "Authorization:" / "Bearer"; the word itself is kept.
        r"\b(?P<AUTH_PREFIX>(?i:authorization[:=] ?(?:bearer )?|bearer ))[A-Za-z0-9._~+/=-]{8,1000}",
    ),
    (
        "PASSWORD",
        "[PASSWORD]",
        _SECRET,
        # user:password@ in a URL of any scheme and host, and password=… parameters.
        r"(?P<URL_PREFIX>\b[A-Za-z][A-Za-z0-9+.-]{0,30}://[^/\s:@]{1,128}:)[^@\s/]{1,128}@"
        r"|(?P<PARAM_PREFIX>(?i:\b(?:password|passwd|pwd|pass|secret)=))[^&\s#\"']{1,256}",
    ),
    ("JWT", "[JWT]", _SECRET, r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    (
        "API_KEY",
        "[API_KEY]",
        _SECRET,
        r"(?:sk-ant-[A-Za-z0-9_-]{16,}|sk-(?:proj-)?[A-Za-z0-9_-]{20,}|"
        r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|"
        r"xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|"
        r"glpat-[A-Za-z0-9_-]{20,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|"
        r"hm_[0-9a-f]{12}_[A-Za-z0-9_-]{20,})",
    ),
    # AWS secret access keys: 40 base64 characters (a third of them have no / or +).
    # The whole run of base64 characters is matched; _aws_keys finds the 40-character
    # keys in it (alone, or a segment of a path: "/uploads/<key>/receipt.pdf").
    ("AWS_SECRET", "[AWS_SECRET]", _SECRET, r"[A-Za-z0-9/+]{40,}"),
    # Local part and domain as runs RE2 matches in one pass (the old backtracking
    # form was quadratic on "1.1.1.1…").
    # Every part bounded (local part 64, labels 63, as in RFC 5321): an unbounded
    # run would let each search scan to the end of a long "1.1.1.1…" text, which
    # makes many matches quadratic even on RE2.
    (
        "EMAIL",
        "[EMAIL]",
        "redact_emails",
        r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}",
    ),
    (
        "IBAN",
        "[IBAN]",
        "redact_credit_cards",
        r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?",
    ),
    (
        "CREDIT_CARD",
        "[CREDIT_CARD]",
        "redact_credit_cards",
        # Card layouts with any mix of up to two spaces or dashes between groups
        # (4-4-4-4, Amex 4-6-5, Diners 4-6-4), or a bare 13-19 digit run. A first
        # group of four digits keeps SVG paths ("M100 200 300") out; no optional
        # trailing group, which would run on into the next number ("… 1111 203.0.…")
        # and, failing Luhn, hide both.
        r"[0-9]{4}(?:[ -]{1,2}[0-9]{4}){3}"
        r"|[0-9]{4}[ -]{1,2}[0-9]{6}[ -]{1,2}[0-9]{4,5}|[0-9]{13,19}",
    ),
    ("SSN", "[SSN]", "redact_national_ids", r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),
    (
        "IP_ADDRESS",
        "[IP_ADDRESS]",
        "redact_ip_addresses",
        # The character before the address is part of the match (IP_LEAD, put back
        # as it was): the boundary in the pattern keeps a run like "1.1.1.1.1…"
        # from matching at every dot.
        r"(?P<IP_LEAD>^|[^0-9.:A-Za-z])(?:"
        r"(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"
        r"|(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}"
        r"|(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?)",
    ),
    (
        "PHONE",
        "[PHONE]",
        "redact_phone_numbers",
        # E.164 written without separators, or a grouped national/international form.
        r"\+[1-9][0-9]{7,14}"
        r"|(?:\+[0-9]{1,3}[\s.-]?)?(?:\([0-9]{2,4}\)[\s.-]?|[0-9]{2,4}[\s.-])[0-9]{3,4}[\s.-][0-9]{3,4}",
    ),
    # No "/" in the class: file paths are common in traces and never secrets.
    ("SECRET", "[SECRET]", _SECRET, r"[A-Za-z0-9+_-]{32,}={0,2}"),
]

KINDS = [rule[0] for rule in _RULES]

# Characters that may not touch a match on either side, per kind (what the old
# look-arounds said). Checked after matching.
_DIGIT_OR_DASH = set("0123456789-")
_ALNUM = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
# An identifier's "_" may touch a value ("card_4111…", "iban_DE89…", "key_sk-…"):
# it separates words, it does not extend the value.
_BOUNDARY: dict[str, tuple[set[str], set[str]]] = {
    "API_KEY": (_ALNUM, set()),
    "JWT": (_ALNUM, set()),
    "IBAN": (_ALNUM, _ALNUM),
    "AWS_SECRET": (set(), set("=")),  # "=" after: the end of a longer base64 blob
    "CREDIT_CARD": (_DIGIT_OR_DASH, _DIGIT_OR_DASH),
    "SSN": (_DIGIT_OR_DASH, _DIGIT_OR_DASH),
    # After an address: see _ip_end_ok (a full stop ending a sentence is no part of it).
    "IP_ADDRESS": (set(), set()),
    "PHONE": (_ALNUM | set("+"), _ALNUM),
    "SECRET": (_ALNUM | set("+_-"), set()),
}

# Something every built-in kind needs somewhere in the text (an "@", a run of
# digits, a long token, a keyword…). Most strings in a trace have none of these,
# and this one cheap search spares them the full scan; tests check that every
# kind's samples pass it.
_MAYBE_SENSITIVE = re2.compile(
    r"@|[0-9]{3}|[0-9]\.[0-9]|eyJ|-----BEGIN|(?i:bearer|authorization|pass|pwd|secret)|://"
    r"|[A-Za-z0-9+_/-]{16}|[0-9a-fA-F]:[0-9a-fA-F:]|\+[0-9]",
    _OPTIONS,
)
# For searches run by RE2 itself, without the wrapper's match objects (_byte_spans).
_UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
# Policy field -> human label, for the policy editor.
POLICY_SWITCHES = {
    "redact_emails": "Email addresses",
    "redact_phone_numbers": "Phone numbers",
    "redact_credit_cards": "Credit-card numbers (Luhn-checked) and IBANs (checksum-checked)",
    "redact_ip_addresses": "IP addresses (v4 and v6)",
    "redact_national_ids": "US social security numbers",
    "redact_secrets": "API keys, tokens, JWTs, passwords in URLs, private keys, "
    "high-entropy strings",
}


def may_hold_pii(text: str) -> bool:
    """False when no built-in kind can be in `text` (the cheap pre-check)."""
    return _MAYBE_SENSITIVE.search(text) is not None


def _strings_in(value: Any) -> dict[str, None]:
    """Every string inside a JSON value, object keys included, once each (in a dict,
    which keeps their order). Exact types: a parsed body holds no subclasses, and a
    string missed here is only checked on its own later."""
    out: dict[str, None] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            out[item] = None
        elif kind is dict:
            for key, child in item.items():
                if type(key) is str:
                    out[key] = None
                child_kind = type(child)
                if child_kind is str:
                    out[child] = None
                elif child_kind is dict or child_kind is list:
                    stack.append(child)
        elif kind is list:
            for child in item:
                child_kind = type(child)
                if child_kind is str:
                    out[child] = None
                elif child_kind is dict or child_kind is list:
                    stack.append(child)
    return out


def _screen(strings: Iterable[str]) -> dict[str, bool]:
    """The pre-check's answer for each string, from one scan of them all joined by
    newlines (UTF-8 bytes: no offset decoding). No alternative of the pre-check
    matches a newline, so a match lies within one string; after it the scan
    resumes at the next string. Strings `_scan` changes before its pre-check
    (NUL, over the length cap) are left out and checked on their own."""
    unique = [
        s for s in dict.fromkeys(strings)
        if len(s) <= MAX_FIELD_CHARS and "\x00" not in s
    ]  # fmt: skip
    text = "\n".join(unique)
    try:
        joined = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: every string is checked on its own
        return {}
    ascii_only = text.isascii()
    starts: list[int] = []
    offset = 0
    for item in unique:
        starts.append(offset)
        offset += (len(item) if ascii_only else len(item.encode("utf-8"))) + 1
    answers = dict.fromkeys(unique, False)
    # RE2 itself, not the wrapper's match objects (see _byte_spans).
    match = _MAYBE_SENSITIVE._regexp.Match
    position, end = 0, len(joined)
    while (found := match(_UNANCHORED, joined, position, end)[0][0]) != -1:
        i = bisect.bisect_right(starts, found) - 1
        answers[unique[i]] = True
        if i + 1 == len(unique):
            break
        position = starts[i + 1]
    return answers


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def shannon_entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(text: str) -> bool:
    """True for opaque tokens, false for identifiers, hashes and repeated characters.

    Needs upper case, lower case and digits mixed, and at least 4.2 bits per
    character: snake_case identifiers and hex digests fail the first test, a
    random base62/base64 token of 32+ characters sits near 5 bits.
    """
    stripped = text.rstrip("=")
    mixed = (
        any(c.isdigit() for c in stripped)
        and any(c.isupper() for c in stripped)
        and any(c.islower() for c in stripped)
    )
    if not mixed:
        return False
    entropy = shannon_entropy(stripped)
    # A random token can fall under 4.2 bits by chance (about 1 in 100 of 32
    # characters); then how often the character class changes tells it from a
    # CamelCase name (measured: random ≥ 0.42 in 99 of 100, names 0.28-0.40).
    return entropy >= 4.2 or (entropy >= 3.9 and _class_switches(stripped) >= 0.45)


def _made_of_words(text: str) -> bool:
    """A name made of lower-case words with a short hash or number among them, as a
    bundler names a chunk ("css_vue_type_style_index_0_src_true_lang-pW5mq51o"): four
    or more words of two letters or more, half the characters or more. A random
    token's pieces between "_" and "-" are almost never all-lower-case letters (a
    5-character piece of base64 about 1 in 100)."""
    words = [p for p in _PIECES.split(text) if len(p) >= 2 and p.isalpha() and p.islower()]
    return len(words) >= 4 and 2 * sum(len(w) for w in words) >= len(text)


_PIECES = re.compile(r"[_-]")


def _class_switches(text: str) -> float:
    def kind(c: str) -> int:
        return 0 if c.isdigit() else 1 if c.isupper() else 2 if c.islower() else 3

    kinds = [kind(c) for c in text]
    return sum(a != b for a, b in zip(kinds, kinds[1:], strict=False)) / max(len(text) - 1, 1)


def iban_valid(text: str) -> bool:
    """ISO 13616 mod-97 check (what banks check before a transfer)."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


def ssn_valid(text: str) -> bool:
    """The SSA's rules: no 000, 666 or 9xx area, no 00 group, no 0000 serial."""
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _aws_secret(text: str) -> bool:
    # Base64 of 30 random bytes: all three character classes, high entropy; "/" or
    # "+" is no requirement (about 28% of real keys have neither).
    return _looks_random(text)


def _ip_end_ok(whole: str, end: int, text: str) -> bool:
    """What follows an address is no part of a longer number or name: a full stop or
    colon may end it ("from 10.1.2.3.", "10.1.2.3:8080") unless a digit follows the
    full stop (a longer dotted number), and a hex digit never may."""
    if end >= len(whole):
        return True
    after = whole[end]
    if after == ".":
        return end + 1 >= len(whole) or not whole[end + 1].isdigit()
    if after == ":":
        return "." in text  # an IPv4 address and its port; an IPv6 one goes on
    return after not in "0123456789abcdefABCDEF"


# A module's version after "@", not a mail domain: Go's toolchain modules
# ("golang.org/toolchain@v0.0.1-go1.24.4.linux-amd64/src/…", in every Go error that
# names a path in the module cache) end in letters as a domain does. A mail domain
# does not start with two numeric labels ("user@163.com" still is an address).
_VERSION_AFTER_AT = re2.compile(r"@v?[0-9]+\.[0-9]+")


def email_valid(text: str) -> bool:
    # Most domains start with a letter: one look at it spares them the search.
    return text[text.find("@") + 1] not in _VERSION_START or _VERSION_AFTER_AT.search(text) is None


_VERSION_START = frozenset("0123456789v")


# Where the payment networks issue numbers of other lengths than a first digit's
# usual one (the networks' published issuer ranges): first digit -> (usual lengths,
# (prefix, lengths) exceptions). 1: UATP's 15 digits, Indonesia's GPN (1946) 16, 18
# and 19; 2: Mastercard's 16, Mir (2200-2204) and BORICA (2205) up to 19; 9: Troy,
# Humo and other national cards' 16, Vietnam's Napas (9704) 19. No card starts with 0.
# Other first digits are left to the checksum: every length from 13 to 19 is issued.
_CARD_LENGTHS: dict[str, tuple[frozenset[int], tuple[tuple[str, frozenset[int]], ...]]] = {
    "0": (frozenset(), ()),
    "1": (frozenset({15}), (("1946", frozenset({16, 18, 19})),)),
    "2": (frozenset({16}), tuple((f"220{d}", frozenset(range(16, 20))) for d in "012345")),
    "9": (frozenset({16}), (("9704", frozenset({16, 19})),)),
}


def card_valid(text: str) -> bool:
    """A card number's length, checksum and issuer: so the Luhn-valid tenth of
    other long ids, Discord's and X's 18-19 digit snowflakes
    ("1085086090799284516"), a CTF's numbers, are no cards."""
    digits = _digits(text)
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    rule = _CARD_LENGTHS.get(digits[0])
    if rule is None:
        return True
    usual, exceptions = rule
    return len(digits) in usual or any(
        digits.startswith(prefix) and len(digits) in lengths for prefix, lengths in exceptions
    )


_CHECKS: dict[str, Callable[[str], bool]] = {
    "CREDIT_CARD": card_valid,
    "EMAIL": email_valid,
    "IBAN": iban_valid,
    "SSN": ssn_valid,
    "SECRET": _looks_random,
}
_PREFIXES = ("AUTH_PREFIX", "URL_PREFIX", "PARAM_PREFIX")


def _identifies_no_host(address: str) -> bool:
    """Loopback and the unspecified address (127.0.0.1, ::1, 0.0.0.0) name this
    machine or none, never a person's device: a server's "Listening at:
    http://[IP_ADDRESS]:8000" hid the address it was reachable on."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _after_version_word(whole: str, start: int) -> bool:
    """ "1.2.3.4" after "v" or "version" is a version number, not an address."""
    before = whole[max(0, start - 9) : start].lower()
    return before.endswith(("v", "version ", "version", "ver ", "release "))


# Kinds whose boundary is "no digit or dash next to it", so that one number inside
# a longer dash-separated run is not taken out of it. A dash with a letter beyond
# it ("ctx-4980062434389439-end", a tool name) is a separator, not part of a run.
_DIGIT_KINDS = {"CREDIT_CARD", "SSN"}


def _dash_before_word(whole: str, start: int, end: int) -> bool:
    """The only neighbours are dashes that lead to letters (or to the text's ends)."""

    def ok_before() -> bool:
        if start == 0 or whole[start - 1] not in "-":
            return start == 0 or not whole[start - 1].isdigit()
        return start < 2 or whole[start - 2].isalpha()

    def ok_after() -> bool:
        if end >= len(whole) or whole[end] not in "-":
            return end >= len(whole) or not whole[end].isdigit()
        return end + 1 >= len(whole) or whole[end + 1].isalpha()

    return ok_before() and ok_after()


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Kinds whose digit groups can sit inside a UUID ("8f80e01c-1296-4371-9486-…" holds
# a phone-shaped "1296-4371-9486"): a match inside a UUID is part of an identifier.
_NOT_IN_UUID = {"PHONE", "SSN", "CREDIT_CARD"}


def _inside_uuid(whole: str, start: int, end: int) -> bool:
    offset = max(0, start - 36)
    for match in _UUID.finditer(whole, offset, min(len(whole), end + 36)):
        if match.start() <= start and end <= match.end():
            return True
    return False


_HEX = frozenset("0123456789abcdefABCDEF")
# The lengths of hex identifiers: an OpenTelemetry span id (16), an ObjectId (24), a
# trace id, an MD5 or a UUID without dashes (32), a commit's SHA-1 (40), a SHA-256 (64).
_HEX_ID_LENGTHS = frozenset({16, 24, 32, 40, 64})


def _inside_hex_id(whole: str, start: int, end: int) -> bool:
    """The digits are part of a hex identifier: a run of hex characters of an
    identifier's length with a letter in it ("55531e7a37589056d231674786959265", a
    trace id, holds a Luhn-valid "231674786959265"). A card glued to other letters
    ("4111111111111111abc") is still a card."""
    a, b = start, end
    while a > 0 and whole[a - 1] in _HEX:
        a -= 1
    while b < len(whole) and whole[b] in _HEX:
        b += 1
    if (a, b) == (start, end) or b - a not in _HEX_ID_LENGTHS:
        return False
    return any(c.isalpha() for c in whole[a:b])


def _decimal_fraction(whole: str, start: int) -> bool:
    """The match starts right after "<digit>.": the decimals of a number."""
    return start >= 2 and whole[start - 1] == "." and whole[start - 2].isdigit()


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


# Strings shorter than this are scanned at each occurrence: remembering one costs
# about what scanning it does, and the strings a batch repeats at length (a chat's
# history, a tool's output) are what the memo is for.
_MEMO_CHARS = 64


def _cut(value: str) -> str:
    if len(value) <= MAX_FIELD_CHARS:
        return value
    return value[:MAX_FIELD_CHARS] + f"… [{len(value) - MAX_FIELD_CHARS} characters cut]"


class _AsciiMatch:
    """What `Redactor._replace` reads of a match, for a match made on the ASCII
    bytes of `string`: groups come back as text."""

    __slots__ = ("_match", "string", "lastindex")

    def __init__(self, match: Any, string: str) -> None:
        self._match, self.string, self.lastindex = match, string, match.lastindex

    def group(self, index: int = 0) -> str | None:
        value = self._match.group(index)
        return None if value is None else value.decode("ascii")

    def span(self) -> tuple[int, int]:
        return self._match.span()

    def start(self) -> int:
        return self._match.start()


class _SpanMatch:
    """A match of a kind whose replacement needs no group but the whole match
    (`_Compiled.plain` found the span, `_Compiled.kinds` the kind)."""

    __slots__ = ("string", "lastindex", "_start", "_end")

    def __init__(self, string: str, start: int, end: int, group: int) -> None:
        self.string, self._start, self._end, self.lastindex = string, start, end, group

    def group(self, index: int = 0) -> str | None:
        if index:
            raise IndexError(f"no group {index} on a span match")
        return self.string[self._start : self._end]

    def span(self) -> tuple[int, int]:
        return self._start, self._end

    def start(self) -> int:
        return self._start


@dataclass(frozen=True)
class _Compiled:
    """A compiled alternation of kinds and where its groups are.

    `plain` is the same alternation without capture groups and `kinds` an RE2 set
    of each kind alone, matching a whole span. Finding a match's span and then its
    kind with these costs about half of what one match with groups costs (RE2
    finds spans with its DFA, groups with a slower engine over a program this
    size), and gives the same matches: groups never change what RE2 matches, and
    at a match's start the alternation takes the first kind that matches there,
    which is then the first kind that matches the span exactly. The set sees the
    span without the text around it; that changes nothing for a kind whose
    pattern reads no context, and can only add kinds that read it (a word
    boundary before "bearer", the text's start before an address). Those kinds,
    and those whose replacement keeps a group, are in `needs_groups`: each is
    matched again on the span in its context, with groups, by its pattern alone
    (`alone`, a smaller program), and where it does not match there the next
    kind is tried."""

    pattern: Any
    kind_of_group: dict[int, str]
    prefix_groups: list[int]
    lead_group: int | None
    plain: Any = None
    kinds: Any = None
    group_of_kind: tuple[int, ...] = ()
    needs_groups: frozenset[int] = frozenset()
    alone: dict[int, _Compiled] = field(default_factory=dict)


@dataclass
class _Found:
    start: int
    end: int
    text: str | None  # None: card-shaped, but its checksum says it is no card
    kinds: dict[str, int]


# A named group inside a kind's pattern (a prefix that is kept, an address's lead).
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
# What makes a pattern read beyond its match or need a group: a word boundary, a
# start or end anchor (and so, conservatively, any "^" or "$", negated classes
# included), a named group.
_READS_CONTEXT = re.compile(r"\\[bBAzZ]|\^|\$|\(\?P<")
_WORD_SPLIT = re.compile(r"([_-])")
_LONG_WORD = re2.compile(r"[_-][A-Za-z0-9+]{32}|[A-Za-z0-9+]{32}[_-]", _OPTIONS)


def _matches(compiled: _Compiled, value: str, *, spans: bool = True) -> list[tuple[Any, _Compiled]]:
    """RE2 matches over `value`, each with the `_Compiled` its groups belong to:
    span first and kind second (`_Compiled`) unless `spans` is False (matching
    with groups, kept for tests to compare against). ASCII text is matched as
    bytes, where character and byte offsets are the same, so RE2's wrapper skips
    its per-match offset decoding, which dominated text dense with matches
    (bench/redaction.py)."""
    ascii_text = value.isascii()
    data: str | bytes = value.encode("ascii") if ascii_text else value

    def with_groups(match: Any) -> Any:
        return _AsciiMatch(match, value) if ascii_text else match

    if not spans or compiled.plain is None:
        return [(with_groups(match), compiled) for match in compiled.pattern.finditer(data)]
    out: list[tuple[Any, _Compiled]] = []
    found_spans = (
        _byte_spans(compiled.plain, data)
        if type(data) is bytes
        else [found.span() for found in compiled.plain.finditer(data)]
    )
    for start, end in found_spans:
        if compiled.kinds is None:  # one kind, which needs no group
            out.append((_SpanMatch(value, start, end, compiled.group_of_kind[0]), compiled))
            continue
        for kind in sorted(compiled.kinds.Match(data[start:end]) or ()):
            if kind not in compiled.needs_groups:
                out.append((_SpanMatch(value, start, end, compiled.group_of_kind[kind]), compiled))
                break
            # The kind alone, with groups and the text around the span as context.
            alone = compiled.alone[kind]
            match = alone.pattern.fullmatch(data, start, end)
            if match is not None:
                out.append((with_groups(match), alone))
                break
        else:  # cannot happen (see _Compiled); never skip a match
            return _matches(compiled, value, spans=False)
    return out


def _byte_spans(regex: Any, data: bytes) -> list[tuple[int, int]]:
    """The spans `regex.finditer(data)` gives over bytes, from RE2 itself: the
    wrapper's generator builds a match object per match and asks RE2 for the
    pattern's group count on every `span()`, which cost more than the search (a
    string with one email took 8.2 µs through `_builtin`, 5.1 now). The same loop
    as the wrapper's for bytes, its step past an empty match included."""
    match = regex._regexp.Match
    out: list[tuple[int, int]] = []
    pos, end = 0, len(data)
    while True:
        span = match(_UNANCHORED, data, pos, end)[0]
        if span[0] == -1:
            return out
        out.append(span)
        if pos == end:
            return out
        pos = pos + 1 if span[1] == pos else span[1]


def _merge(kept: list[_Found], new: list[_Found]) -> list[_Found]:
    """`kept` with the spans of `new` that overlap none of it (both sorted, each
    without overlaps of its own), in one linear walk."""
    out: list[_Found] = []
    i = 0
    for hit in new:
        while i < len(kept) and kept[i].start < hit.start:
            out.append(kept[i])
            i += 1
        if (out and out[-1].end > hit.start) or (i < len(kept) and kept[i].start < hit.end):
            continue
        out.append(hit)
    out.extend(kept[i:])
    return out


def _compile(rules: list[tuple[str, str, str, str]]) -> _Compiled:
    # Named outer groups: which one matched says the kind, whatever groups the
    # kinds' own patterns contain.
    pattern = re2.compile("|".join(f"(?P<{kind}>{regex})" for kind, _, _, regex in rules), _OPTIONS)
    index = dict(pattern.groupindex)
    plain_rules = [_NAMED_GROUP.sub("(?:", regex) for _, _, _, regex in rules]
    needs_groups = frozenset(
        i for i, (_, _, _, regex) in enumerate(rules) if _READS_CONTEXT.search(regex)
    )
    plain = re2.compile("|".join(f"(?:{regex})" for regex in plain_rules), _OPTIONS)
    kinds = None
    if len(rules) > 1:
        kinds = re2.Set.FullMatchSet(_OPTIONS)
        for regex in plain_rules:
            kinds.Add(regex)
        kinds.Compile()
    if plain.groups or (len(rules) == 1 and needs_groups):
        plain = kinds = None  # every match with groups
    return _Compiled(
        pattern=pattern,
        kind_of_group={index[kind]: kind for kind, _, _, _ in rules},
        prefix_groups=[index[p] for p in _PREFIXES if p in index],
        lead_group=index.get("IP_LEAD"),
        plain=plain,
        kinds=kinds,
        group_of_kind=tuple(index[kind] for kind, _, _, _ in rules),
        needs_groups=needs_groups,
        alone={i: _compile([rules[i]]) for i in needs_groups} if kinds is not None else {},
    )


# For `Redactor.value`: JSON's scalars other than strings, which hold nothing to
# redact; and the pre-check's answers when there are none (nothing known clean).
_SCALARS = frozenset({int, float, bool, type(None)})
_NOTHING_CLEAN: dict[str, bool] = {}


@dataclass
class Redactor:
    """Redacts text according to one workspace's policy; counts what it removed."""

    compiled: _Compiled | None  # every active kind in one alternation; None when all are off
    placeholders: dict[str, str]  # kind -> placeholder
    custom: list[tuple[str, Any]] = field(default_factory=list)
    # Each active kind alone, in order, for text where the alternation rejected a span.
    per_kind: list[_Compiled] = field(default_factory=list)
    # Per-workspace key for pseudonyms: the same value always becomes the same
    # pseudonym in one workspace, and a different one in another.
    pseudonym_key: bytes = b""
    # What the pre-check said of each string of a batch, screened at once
    # (`screened`); a string not in it is checked on its own.
    screen: dict[str, bool] | None = None
    # What each string the pre-check let through was stored as, and what was counted
    # in it, for a `screened` batch: a batch repeats its strings (a chat's history in
    # each model call, a tool's output quoted again, a run's prompt in every run), and
    # each distinct one is scanned once. Keyed by (text, pseudonymise).
    memo: dict[tuple[str, bool], tuple[str, tuple[tuple[str, int], ...]]] | None = None
    # An identifier made of words is judged by its words (`_secret`); False: whole,
    # as this product did before 2026-12-07 (`former_identifier`).
    ids_by_words: bool = True

    @property
    def pattern(self) -> Any:
        return self.compiled.pattern if self.compiled is not None else None

    def screened(self, value: Any) -> Redactor:
        """This redactor, with the pre-check already run over every string inside
        the JSON value `value` (a batch) in one pass: a call per string costs more
        in the regex wrapper than the scan itself, and most strings pass it."""
        if self.pattern is None:
            return self
        return replace(self, screen=_screen(_strings_in(value)), memo={})

    def identifier(self, value: str, counts: Counter[str]) -> str:
        """An identifier (agent, session, external id, tool, model, skill name) with
        what the policy removes replaced by a stable pseudonym, `[EMAIL:3f9a0c1d]`,
        so traces still group and re-sends still upsert onto the same row."""
        return self._scan(value, counts, pseudonymise=True)

    def former_identifier(self, value: str) -> str | None:
        """The identifier as stored before ids made of words were judged by their
        words ("[SECRET:…]" for a whole "inspect-<run id>-s1-e1"), where that differs
        from what it is stored as now; else None. A run stored then is found by it."""
        if len(value) < 32 or not _WORD_SPLIT.search(value):
            return None  # judged whole then as now
        before = replace(self, ids_by_words=False, screen=None, memo=None)
        former = before.identifier(value, Counter())
        return former if former != self.identifier(value, Counter()) else None

    def text(self, value: str, counts: Counter[str]) -> str:
        """Free text with what the policy removes replaced by typed placeholders."""
        return self._scan(value, counts, pseudonymise=False)

    def _scan(self, value: str, counts: Counter[str], *, pseudonymise: bool) -> str:
        if not value and not self.custom:
            # Nothing to find; most steps have no error text, and the pre-check's
            # regex call costs more than the rest of an empty string's path.
            return value
        if self.screen is not None and not self.custom and self.screen.get(value) is False:
            return value  # screened: no NUL, within the cap, nothing the pre-check finds
        if self.memo is None or len(value) < _MEMO_CHARS:
            return self._scan_once(value, counts, pseudonymise)
        done = self.memo.get((value, pseudonymise))
        if done is None:
            found: Counter[str] = Counter()
            done = self._scan_once(value, found, pseudonymise), tuple(found.items())
            self.memo[(value, pseudonymise)] = done
        for kind, n in done[1]:
            counts[kind] += n
        return done[0]

    def _scan_once(self, value: str, counts: Counter[str], pseudonymise: bool) -> str:
        if "\x00" in value:
            # PostgreSQL text and jsonb cannot hold NUL; it is never meaningful here.
            value = value.replace("\x00", "")
        value = _cut(value)
        if self.pattern is not None and self._may_hold(value):
            value = self._builtin(value, counts, pseudonymise)
        for name, regex in self.custom:
            value, n = regex.subn(
                (lambda m, name=name: self._placeholder(f"[{name}]", m.group(0)))
                if pseudonymise else f"[{name}]",
                value,
            )  # fmt: skip
            if n:
                counts[name] += n
        return value

    def _may_hold(self, value: str) -> bool:
        known = self.screen.get(value) if self.screen is not None else None
        return known if known is not None else _MAYBE_SENSITIVE.search(value) is not None

    def _builtin(self, value: str, counts: Counter[str], pseudonymise: bool) -> str:
        """One pass of the alternation of every kind. Where the first kind to match a
        span rejects it (a failed check or boundary: "customer_card_4111…" is no
        opaque token, a 40-character window of a 64-character token is no AWS key),
        another kind may still own all or part of it, so then every kind scans the
        text on its own and the accepted spans are kept by kind order, without
        overlaps. Each pass is linear; at most one per kind."""
        found: list[_Found] = []
        rejected = False
        assert self.compiled is not None
        for match, compiled in _matches(self.compiled, value):
            hit = self._replace(match, compiled, pseudonymise)
            if hit is None or hit.text is None:
                rejected = True
            else:
                found.append(hit)
        if rejected and self.per_kind:
            found = self._per_kind(value, pseudonymise)
        if not found:
            return value
        pieces: list[str] = []
        end = 0
        for hit in found:
            pieces += [value[end : hit.start], hit.text or ""]
            end = hit.end
            for kind, n in hit.kinds.items():
                counts[kind] += n
        pieces.append(value[end:])
        return "".join(pieces)

    def _per_kind(self, value: str, pseudonymise: bool) -> list[_Found]:
        kept: list[_Found] = []  # accepted spans, sorted, never overlapping
        # A card-shaped number that fails Luhn is an order or tracking number: its
        # digit groups are not then taken for a phone number. (Cards come before
        # phones in kind order, so this list is complete when phones are scanned.)
        not_cards: list[_Found] = []
        not_card_starts: list[int] = []
        for compiled in self.per_kind:
            new: list[_Found] = []
            for match, groups in _matches(compiled, value):
                hit = self._replace(match, groups, pseudonymise)
                if hit is None:
                    continue
                if hit.text is None:
                    not_cards.append(hit)
                    not_card_starts.append(hit.start)
                    continue
                if "PHONE" in hit.kinds:
                    j = bisect.bisect_right(not_card_starts, hit.start) - 1
                    if j >= 0 and hit.end <= not_cards[j].end:
                        continue
                new.append(hit)
            kept = _merge(kept, new)
        return kept

    def _placeholder(self, placeholder: str, raw: str) -> str:
        digest = hmac.new(self.pseudonym_key, raw.encode("utf-8", "replace"), hashlib.sha256)
        return f"{placeholder[:-1]}:{digest.hexdigest()[:8]}]"

    def _replace(self, match: Any, compiled: _Compiled, pseudonymise: bool) -> _Found | None:
        """The replacement of one match, or None when its kind's checks reject it."""
        text = match.group(0)
        start, end = match.span()
        # The outer named group that matched (RE2, like re, reports the outer one).
        kind = compiled.kind_of_group[match.lastindex]
        bounds = _BOUNDARY.get(kind)
        whole = match.string
        if bounds is not None:
            touches = (start > 0 and whole[start - 1] in bounds[0]) or (
                end < len(whole) and whole[end] in bounds[1]
            )
            if touches and not (kind in _DIGIT_KINDS and _dash_before_word(whole, start, end)):
                return None
        if kind in _NOT_IN_UUID and "-" in whole and _inside_uuid(whole, start, end):
            return None
        if kind == "CREDIT_CARD" and _inside_hex_id(whole, start, end):
            return _Found(start, end, None, {})  # an identifier's digits, not a card
        if kind == "CREDIT_CARD" and _decimal_fraction(whole, start):
            # "took 0.9182514000003721s": a number's decimals, neither a card nor a
            # phone (the same as a card-shaped number failing its checksum).
            return _Found(start, end, None, {})
        placeholder = self.placeholders[kind]
        if kind == "SECRET":
            return self._secret(text, start, end, placeholder, pseudonymise)
        if kind == "AWS_SECRET":
            return self._aws_keys(text, start, end, placeholder, pseudonymise)
        check = _CHECKS.get(kind)
        if check is not None and not check(text):
            return _Found(start, end, None, {}) if kind == "CREDIT_CARD" else None
        if kind == "IP_ADDRESS":
            lead = match.group(compiled.lead_group) or ""
            address = text[len(lead) :]
            if _after_version_word(whole, start + len(lead)) or not _ip_end_ok(whole, end, address):
                return None
            if _identifies_no_host(address):
                return None
            shown = self._placeholder(placeholder, address) if pseudonymise else placeholder
            return _Found(start, end, lead + shown, {kind: 1})
        if pseudonymise:
            placeholder = self._placeholder(placeholder, text)
        prefix = self._prefix(match, compiled) if kind in ("AUTH_HEADER", "PASSWORD") else None
        if prefix and prefix.lower() == "pwd=" and text[len(prefix) :][:1] in ("/", "~"):
            return None  # the shell's working directory ("PWD=/root" in `env`), no password
        if prefix:
            tail = "@" if text.endswith("@") and kind == "PASSWORD" else ""
            return _Found(start, end, prefix + placeholder + tail, {kind: 1})
        return _Found(start, end, placeholder, {kind: 1})

    def _secret(
        self, text: str, start: int, end: int, placeholder: str, pseudonymise: bool
    ) -> _Found | None:
        """An opaque token, whole, or the opaque words of an identifier it is glued to
        ("session_token_<64 random characters>" keeps "session_token_"). A UUID in
        it is an identifier: such a run is judged by its words ("Crew_<uuid>", as
        CrewAI names a crew, is kept; a random word beside the UUID is not). So is an
        identifier's run made of words (`pseudonymise`: a run id, a session id): ids
        are random by design, and "inspect-<its 22-character run id>-s1-e1" or
        "chatcmpl-<29 characters>" name a run, where a random word of 32 characters
        or more in them is still a secret."""
        by_words = self.ids_by_words and pseudonymise and _WORD_SPLIT.search(text) is not None
        if (
            not by_words
            and _looks_random(text)
            and not _UUID.search(text)
            and not _made_of_words(text)
        ):
            shown = self._placeholder(placeholder, text) if pseudonymise else placeholder
            return _Found(start, end, shown, {"SECRET": 1})
        if not _LONG_WORD.search(text):
            return None
        words = _WORD_SPLIT.split(text)
        out, n = [], 0
        for word in words:
            if len(word) >= 32 and _looks_random(word):
                out.append(self._placeholder(placeholder, word) if pseudonymise else placeholder)
                n += 1
            else:
                out.append(word)
        return _Found(start, end, "".join(out), {"SECRET": n}) if n else None

    def _aws_keys(
        self, text: str, start: int, end: int, placeholder: str, pseudonymise: bool
    ) -> _Found | None:
        """The AWS secret keys in a run of base64 characters: the run itself when it is
        one, else each 40-character stretch between slashes (or the run's ends) that
        looks random and is not a path of words ("/srv/uploads/<key>/…")."""
        slashes = [i for i, c in enumerate(text) if c == "/"]
        ends = {len(text), *slashes}
        keys: list[tuple[int, int]] = []
        for a in (0, *(i + 1 for i in slashes)):
            b = a + 40
            if (keys and a < keys[-1][1]) or b not in ends:
                continue
            window = text[a:b]
            if (len(window) == len(text) or window.count("/") <= 4) and _aws_secret(window):
                keys.append((a, b))
        if not keys:
            return None
        out, last = [], 0
        for a, b in keys:
            shown = self._placeholder(placeholder, text[a:b]) if pseudonymise else placeholder
            out += [text[last:a], shown]
            last = b
        out.append(text[last:])
        return _Found(start, end, "".join(out), {"AWS_SECRET": len(keys)})

    def _prefix(self, match: Any, compiled: _Compiled) -> str | None:
        """What stays of a match: the "Bearer " of a header, the "user:" of a URL."""
        for group in compiled.prefix_groups:
            value = match.group(group)
            if value is not None:
                return str(value)
        return None

    def value(self, value: Any, counts: Counter[str]) -> Any:
        """Redact every string inside a JSON value, object keys included (a key
        that redacts to one already present gets a #n suffix, so no value is lost)."""
        if isinstance(value, str):
            return self.text(value, counts)
        # Strings the batch's pre-check cleared, and numbers, are kept as they are
        # without a call each (what `_scan` does with them, a step's dozen values).
        clean = self.screen if self.screen is not None and not self.custom else _NOTHING_CLEAN
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            # The next suffix to try per redacted key: linear in the number of keys
            # however many of them redact to the same placeholder.
            next_suffix: dict[Any, int] = {}
            for key, item in value.items():
                if type(key) is str:
                    new_key = key if clean.get(key) is False else self.text(key, counts)
                else:
                    new_key = key if not isinstance(key, str) else self.text(key, counts)
                if new_key in out:
                    base, n = new_key, next_suffix.get(new_key, 2)
                    while f"{base}#{n}" in out:
                        n += 1
                    new_key, next_suffix[base] = f"{base}#{n}", n + 1
                kind = type(item)
                if kind in _SCALARS or (kind is str and clean.get(item) is False):
                    out[new_key] = item
                else:
                    out[new_key] = self.value(item, counts)
            return out
        if isinstance(value, list):
            return [
                v if type(v) in _SCALARS or (type(v) is str and clean.get(v) is False)
                else self.value(v, counts)
                for v in value
            ]  # fmt: skip
        return value


def build_redactor(
    *, enabled: dict[str, bool], custom_patterns: list[dict[str, str]] | None = None
) -> Redactor:
    """A Redactor for the kinds switched on in `enabled` (policy field -> bool)."""
    active = [rule for rule in _RULES if enabled.get(rule[2], True)]
    custom = [
        (_placeholder_name(p["name"]), re2.compile(p["pattern"], _OPTIONS))
        for p in (custom_patterns or [])
        if p.get("pattern") and validate_custom_pattern(p["pattern"]) is None
    ]
    return Redactor(
        compiled=_compile(active) if active else None,
        placeholders={k: ph for k, ph, _, _ in active},
        custom=custom,
        per_kind=[_compile([rule]) for rule in active],
    )


def _placeholder_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", name.strip().upper()) or "CUSTOM"


def validate_custom_pattern(pattern: str) -> str | None:
    """An error message for a policy pattern RE2 cannot run, else None.

    RE2 refuses what has no linear-time match (back-references, look-around)
    and patterns whose automaton would need more than `_OPTIONS.max_mem`.
    """
    if len(pattern) > 1000:
        return "A pattern may be at most 1,000 characters."
    try:
        re.compile(pattern)  # syntax only: it is never matched with Python's engine
    except re.error as exc:
        return f"Invalid regular expression: {exc}"
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return (
            f"This pattern cannot run in linear time here ({detail}). Look-ahead, look-behind "
            "and back-references are not supported; rewrite it without them."
        )
    return None


def redaction_preview(
    sample: str, *, enabled: dict[str, bool], custom_patterns: list[dict[str, str]]
) -> tuple[str, dict[str, int]]:
    """What `sample` would be stored as under these settings, and counts per kind."""
    counts: Counter[str] = Counter()
    text = build_redactor(enabled=enabled, custom_patterns=custom_patterns).text(sample, counts)
    return text, dict(counts)


def redactor_for_policy(policy: Any) -> Redactor:
    """The redactor for a workspace's policy. Compiling the kinds' patterns takes
    longer than a one-step batch's whole redaction (a hook event), so the compiled
    redactor is kept per set of switches and patterns and shared: its patterns are
    only matched, never changed; each call gets its own copy with the workspace's
    pseudonym key."""
    custom = tuple(
        (str(p.get("name", "")), str(p.get("pattern", "")))
        for p in (policy.custom_patterns or [])
        if isinstance(p, dict)
    )
    compiled = _compiled_redactor(
        tuple(bool(getattr(policy, name)) for name in POLICY_SWITCHES), custom
    )
    return replace(compiled, pseudonym_key=pseudonym_key(workspace_id=policy.workspace_id))


@functools.lru_cache(maxsize=64)
def _compiled_redactor(switches: tuple[bool, ...], custom: tuple[tuple[str, str], ...]) -> Redactor:
    return build_redactor(
        enabled=dict(zip(POLICY_SWITCHES, switches, strict=True)),
        custom_patterns=[{"name": name, "pattern": pattern} for name, pattern in custom],
    )


def pseudonym_key(*, workspace_id: int) -> bytes:
    """The workspace's pseudonym key, derived from the server's secret key."""
    from django.conf import settings

    material = f"hivemind-pseudonym:{workspace_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).digest()
