from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()

# Inputs/outputs longer than this start collapsed on the trace page.
COLLAPSE_AT = 400


@register.filter
def pretty(value: Any) -> str:
    """A JSON value as readable text (strings as-is). Escaped by the template."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


@register.filter
def has_text(text: str) -> bool:
    """Worth a line on the page: not empty, and not an empty JSON object or list."""
    return text.strip() not in ("", "{}", "[]", "null", '""')


@register.filter
def is_long(text: str) -> bool:
    return len(text) > COLLAPSE_AT or text.count("\n") > 6


@register.filter
def status_badge(status: str) -> str:
    return {"succeeded": "badge-ok", "failed": "badge-bad", "running": "badge-warn"}.get(
        status, "badge-muted"
    )
