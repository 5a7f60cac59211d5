"""The PII redaction engine: removes personal data and secrets from text before
anything is stored.

One compiled alternation scans each string once; the first alternative that
matches at a position wins, so the order below goes from most to least specific
(a JWT is also a long high-entropy string; a card number also looks like a
phone number). Some kinds are confirmed after matching (Luhn for cards, entropy
for opaque strings); a match that fails its check is left as it was.

Each match becomes a typed placeholder (`[EMAIL]`, `[CREDIT_CARD]`, …) and is
counted, so a trace records how much was removed and of which kind.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# kind -> (placeholder, policy field that switches it, regex)
_SECRET = "redact_secrets"
_RULES: list[tuple[str, str, str, str]] = [
    (
        "PRIVATE_KEY",
        "[PRIVATE_KEY]",
        _SECRET,
        r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----",
    ),
    (
        "AUTH_HEADER",
        "[AUTH_HEADER]",
        _SECRET,
        # The value after "Authorization:" / "Bearer"; the word itself is kept
        # (group AUTH_PREFIX goes back into the text). A leading \b plus a literal
        # makes this alternative fail fast at almost every position.
        r"\b(?P<AUTH_PREFIX>(?i:authorization[:=] ?(?:bearer )?|bearer ))[A-Za-z0-9._~+/=-]{8,}",
    ),
    ("JWT", "[JWT]", _SECRET, r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    (
        "API_KEY",
        "[API_KEY]",
        _SECRET,
        r"\b(?:sk-ant-[A-Za-z0-9_-]{16,}|sk-(?:proj-)?[A-Za-z0-9_-]{20,}|"
        r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|"
        r"xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|"
        r"glpat-[A-Za-z0-9_-]{20,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|"
        r"hm_[0-9a-f]{12}_[A-Za-z0-9_-]{20,})",
    ),
    ("EMAIL", "[EMAIL]", "redact_emails", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    (
        "CREDIT_CARD",
        "[CREDIT_CARD]",
        "redact_credit_cards",
        # Card layouts (4-4-4-4, Amex 4-6-5, Diners 4-6-4, one separator kind) or a
        # bare 13-19 digit run. Fixed layouts stop a match from running on into
        # the next number in the text, which would then fail Luhn and hide both.
        r"(?<![\d-])(?:\d{4}(?P<s1>[ -]?)\d{4}(?P=s1)\d{4}(?P=s1)\d{4}"
        r"|\d{4}(?P<s2>[ -]?)\d{6}(?P=s2)\d{4,5}|\d{13,19})(?![\d-])",
    ),
    (
        "IP_ADDRESS",
        "[IP_ADDRESS]",
        "redact_ip_addresses",
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
        # IPv6: the lookahead rejects ordinary words starting with a-f at once.
        r"|(?<![:\w])(?=[0-9a-fA-F]{1,4}:[0-9a-fA-F:])"
        r"(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}"
        r"|(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?)(?![:\w])",
    ),
    (
        "PHONE",
        "[PHONE]",
        "redact_phone_numbers",
        r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?!\w)",
    ),
    # No "/" in the class: file paths are common in traces and never secrets.
    ("SECRET", "[SECRET]", _SECRET, r"(?<![A-Za-z0-9+_-])[A-Za-z0-9+_-]{32,}={0,2}"),
]

KINDS = [rule[0] for rule in _RULES]

# Something every built-in kind needs somewhere in the text (an "@", a run of
# digits, a long token, a keyword…). Most strings in a trace have none of these,
# and this one cheap search spares them the full scan; tests check that every
# kind's samples pass it.
_MAYBE_SENSITIVE = re.compile(
    r"@|\d{3}|\d\.\d|eyJ|-----BEGIN|[Bb][Ee][Aa][Rr][Ee][Rr]|[Aa]uthorization|AUTHORIZATION"
    r"|[A-Za-z0-9+_-]{16}|[0-9a-fA-F]:[0-9a-fA-F:]"
)
# Policy field -> human label, for the policy editor.
POLICY_SWITCHES = {
    "redact_emails": "Email addresses",
    "redact_phone_numbers": "Phone numbers",
    "redact_credit_cards": "Credit-card numbers (Luhn-checked)",
    "redact_ip_addresses": "IP addresses (v4 and v6)",
    "redact_secrets": "API keys, tokens, JWTs, Bearer values, private keys, high-entropy strings",
}


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
    return mixed and shannon_entropy(stripped) >= 4.2


_CHECKS = {
    "CREDIT_CARD": lambda m: (
        luhn_valid(re.sub(r"\D", "", m)) and 13 <= len(re.sub(r"\D", "", m)) <= 19
    ),
    "SECRET": _looks_random,
}


@dataclass
class Redactor:
    """Redacts text according to one workspace's policy; counts what it removed."""

    pattern: re.Pattern[str] | None
    placeholders: dict[str, str]  # kind -> placeholder
    custom: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)

    def text(self, value: str, counts: Counter[str]) -> str:
        if "\x00" in value:
            # PostgreSQL text and jsonb cannot hold NUL; it is never meaningful here.
            value = value.replace("\x00", "")
        if self.pattern is not None and _MAYBE_SENSITIVE.search(value):
            value = self.pattern.sub(lambda m: self._replace(m, counts), value)
        for name, regex in self.custom:
            value, n = regex.subn(f"[{name}]", value)
            if n:
                counts[name] += n
        return value

    def _replace(self, match: re.Match[str], counts: Counter[str]) -> str:
        kind = match.lastgroup or ""
        placeholder = self.placeholders[kind]
        check = _CHECKS.get(kind)
        if check is not None and not check(match.group(0)):
            return match.group(0)
        counts[kind] += 1
        if kind == "AUTH_HEADER":
            return match.group("AUTH_PREFIX") + placeholder
        return placeholder

    def value(self, value: Any, counts: Counter[str]) -> Any:
        """Redact every string inside a JSON value, object keys included (a key
        that redacts to one already present gets a #n suffix, so no value is lost)."""
        if isinstance(value, str):
            return self.text(value, counts)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self.text(key, counts) if isinstance(key, str) else key
                n = 2
                while new_key in out:
                    new_key, n = f"{new_key.split('#')[0]}#{n}", n + 1
                out[new_key] = self.value(item, counts)
            return out
        if isinstance(value, list):
            return [self.value(v, counts) for v in value]
        return value


def build_redactor(
    *, enabled: dict[str, bool], custom_patterns: list[dict[str, str]] | None = None
) -> Redactor:
    """A Redactor for the kinds switched on in `enabled` (policy field -> bool)."""
    active = [rule for rule in _RULES if enabled.get(rule[2], True)]
    # Named outer groups: match.lastgroup says which kind matched, whatever
    # groups the kinds' own patterns contain.
    alternatives = "|".join(f"(?P<{kind}>{regex})" for kind, _, _, regex in active)
    pattern = re.compile(alternatives) if active else None
    custom = [
        (_placeholder_name(p["name"]), re.compile(p["pattern"]))
        for p in (custom_patterns or [])
        if p.get("pattern")
    ]
    return Redactor(pattern=pattern, placeholders={k: ph for k, ph, _, _ in active}, custom=custom)


def _placeholder_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", name.strip().upper()) or "CUSTOM"


def validate_custom_pattern(pattern: str) -> str | None:
    """An error message for a policy regex that does not compile, else None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"Invalid regular expression: {exc}"
    return None


def redaction_preview(
    sample: str, *, enabled: dict[str, bool], custom_patterns: list[dict[str, str]]
) -> tuple[str, dict[str, int]]:
    """What `sample` would be stored as under these settings, and counts per kind."""
    counts: Counter[str] = Counter()
    text = build_redactor(enabled=enabled, custom_patterns=custom_patterns).text(sample, counts)
    return text, dict(counts)


def redactor_for_policy(policy: Any) -> Redactor:
    return build_redactor(
        enabled={name: getattr(policy, name) for name in POLICY_SWITCHES},
        custom_patterns=policy.custom_patterns,
    )
