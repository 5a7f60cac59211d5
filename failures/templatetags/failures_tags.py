from __future__ import annotations

import math

from django import template

from failures import taxonomy

register = template.Library()
_LABELS = {c.key: c.label for c in taxonomy.DEFAULT}


@register.filter
def category_label(key: str) -> str:
    """A category key as words: the built-in label, else the key made readable."""
    if not key:
        return ""
    group = taxonomy.GROUPS.get(key.split(".", 1)[0], "")
    label = _LABELS.get(key) or key.split(".", 1)[-1].replace("_", " ").capitalize()
    return f"{group}: {label}" if group else label


@register.filter
def lift_figure(value: float, side: str = "") -> str:
    """A lift, or one end of its 95% interval (`side` "low" or "high"), to one decimal:
    the ends rounded outward, so the interval shown holds the one computed; and to as
    many more decimals (up to the three stored) as keep it on its side of 1, since the
    page judges by the value, not the rounding (a low end of 1.04 reads "1.04", not
    "1.0", where the mode counts as failing more often; a high end of 0.96, "0.96")."""
    value = float(value)
    for places in (1, 2, 3):
        scale = 10**places
        scaled = round(value * scale, 6)
        step = (
            math.floor(scaled)
            if side == "low"
            else math.ceil(scaled)
            if side == "high"
            else math.floor(scaled + 0.5)
        )
        shown = step / scale
        if (shown > 1) == (value > 1) and (shown < 1) == (value < 1):
            break
    return f"{shown:.{places}f}"


@register.filter
def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with one "…", not a second after a value
    the diagnosis had already cut ("…APN rese……"); a `name` the cut falls inside is
    closed after the "…", so `codespans` shows it as code, not a stray backtick."""
    text = str(text or "")
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rstrip()
    if cut.count("`") % 2:  # cut inside a `name`: the span is closed, or dropped if empty
        if cut.endswith("`"):
            cut = cut[:-1].rstrip()
        else:
            return cut.rstrip("…") + "…`"
    return cut if cut.endswith("…") else cut + "…"


@register.filter
def codespans(text: str) -> str:
    """Escape the text, then show `backticked` names as code."""
    import re

    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    return mark_safe(re.sub(r"`([^`\n]{1,200})`", r"<code>\1</code>", escape(text)))  # noqa: S308


@register.filter
def precision_words(stats: dict) -> str:
    """An incident's measured evidence precision in words (diagnosis/evidence.py)."""
    from failures.diagnosis.evidence import precision_words as words

    return words(stats if isinstance(stats, dict) else {})
