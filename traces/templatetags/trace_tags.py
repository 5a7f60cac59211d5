from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from traces.errors import decisive_line
from traces.messages import chat_text

register = template.Library()

_ERROR_PREFIX = re.compile(r"^error\s*:\s*", re.I)

# Inputs/outputs longer than this start collapsed on the trace page.
COLLAPSE_AT = 400


# A JSON value whose one-line form is at most this long is shown on one line: a
# tool call's few arguments, indented one per line, took more lines than the
# page shows before "Show all", and hid the very argument a diagnosis names.
ONE_LINE_AT = 240


@register.filter
def pretty(value: Any) -> str:
    """A JSON value as readable text (strings as-is): on one line when short,
    indented otherwise. Escaped by the template."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    line = json.dumps(value, ensure_ascii=False)
    if len(line) <= ONE_LINE_AT:
        return line
    return json.dumps(value, indent=2, ensure_ascii=False)


@register.filter
def readable(value: Any) -> str:
    """A step's input or output for a person: a model call's messages as a
    transcript, a role a line (`chat_text`); anything else as `pretty` shows it."""
    return chat_text(value) or pretty(value)


@register.filter
def has_text(text: str) -> bool:
    """Worth a line on the page: not empty, and not an empty JSON object or list."""
    return text.strip() not in ("", "{}", "[]", "null", '""')


@register.filter
def is_long(text: str) -> bool:
    return len(text) > COLLAPSE_AT or text.count("\n") > 6


@register.filter
def error_line(text: str) -> str:
    """The line of a step's error that says what went wrong (`errors.decisive_line`):
    a traceback's exception, not "exitcode: 1" or the output printed around it.
    Shown after the page's own "Error:", so the tool's "Error: " is not repeated."""
    line = decisive_line(text) if text else ""
    return _ERROR_PREFIX.sub("", line, count=1) or line


@register.filter
def error_says_more(step: Any) -> bool:
    """Whether a step's error holds more than its decisive line and its output does
    not already show it (an AG2 terminal reports the same text as both): then the
    whole error is shown under that line."""
    text = step.error
    if not text or text.strip() == decisive_line(text):
        return False
    output = step.output if isinstance(step.output, str) else pretty(step.output)
    return text.strip() not in output


@register.filter
def status_badge(status: str) -> str:
    return {"succeeded": "badge-ok", "failed": "badge-bad", "running": "badge-warn"}.get(
        status, "badge-muted"
    )


@register.filter
def when(value: Any) -> str:
    """A run's time, "Nov 16, 09:56 UTC", with the year when it is not this one
    ("Jul 21, 2025, 18:42 UTC"): imported runs can be years old."""
    if not value:
        return ""
    local = timezone.localtime(value)
    shown = "M j, H:i T" if local.year == timezone.localtime().year else "M j, Y, H:i T"
    return date_format(local, shown)


@register.filter
def ago(value: Any) -> str:
    """How long ago, as `timesince` says it ("3 minutes ago"), and "just now" under a
    minute (not "0 minutes ago"); "" for no time."""
    from django.utils.timesince import timesince

    if not isinstance(value, datetime):
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def day(value: Any) -> str:
    """A run's day, "Nov 16", with the year when it is not this one ("Aug 1, 2025")."""
    if not value:
        return ""
    local = timezone.localtime(value) if isinstance(value, datetime) else value
    return date_format(local, "M j" if local.year == timezone.localtime().year else "M j, Y")


@register.filter
def middle(text: str, width: int = 30) -> str:
    """A long id cut in the middle, so that ids sharing a prefix still differ."""
    text = str(text)
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return f"{text[: width - 1 - tail]}…{text[-tail:]}"


@register.filter
def duration(value: Any) -> str:
    """A timedelta as a person reads it: 850 ms, 12.4 s, 3 min 5 s, 2 h 10 min."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 0:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


@register.simple_tag
def sort_href(query: str, column: str, current: str) -> str:
    """The list's URL sorted by `column`: descending first, ascending on a second click."""
    from django.http import QueryDict

    params = QueryDict(query, mutable=True)
    params.pop("sort", None)
    params.pop("page", None)
    params["sort"] = column if current == f"-{column}" else f"-{column}"
    return "?" + params.urlencode()


@register.simple_tag
def sort_state(column: str, current: str) -> str:
    """aria-sort for a column header."""
    if current == f"-{column}" or (column == "started" and not current):
        return "descending"
    return "ascending" if current == column else "none"


@register.filter
def pair(left: Any, right: Any) -> list[Any]:
    """Two values to loop over (the two sides of a comparison row)."""
    return [left, right]


@register.filter
def is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


_NO_COST = mark_safe('<span class="muted" title="The agent did not report a cost">—</span>')
_NO_TOKENS = mark_safe('<span class="muted">—</span>')
_NO_ERRORS = mark_safe('<span class="muted">0</span>')


@register.simple_tag
def trace_rows(traces: Any, workspace: Any) -> SafeString:
    """The trace list's rows (`_trace_results.html`), in Python: the list's hot loop.
    Through the template engine a row of ten cells took about 1 ms on a slow 2-core
    machine, 50 a page, most of the page's time; the markup is the template's was."""
    year = timezone.localtime().year

    def cells(t: Any) -> tuple[Any, ...]:
        started = timezone.localtime(t.started_at) if t.started_at else None
        when = "" if started is None else date_format(
            started, "M j, H:i T" if started.year == year else "M j, Y, H:i T")  # fmt: skip
        reward = "" if t.reward is None else format_html(
            ' <span class="muted small">r={}</span>', floatformat(t.reward, 2))  # fmt: skip
        return (
            reverse("trace_detail", args=[workspace.slug, t.pk]), t.external_id,
            middle(t.external_id, 30), t.agent or "—", Truncator(t.task).chars(70),
            status_badge(t.status), t.get_status_display(), reward, t.step_count,
            format_html('<span class="badge badge-bad">{}</span>', t.error_count)
            if t.error_count else _NO_ERRORS,
            floatformat(t.total_tokens, "g") if t.total_tokens else _NO_TOKENS,
            _NO_COST if t.cost_usd is None else "$" + floatformat(t.cost_usd, 4),
            duration(t.duration), "" if started is None else started.strftime("%Y-%m-%d %H:%M:%S"),
            when,
        )  # fmt: skip

    return format_html_join(
        "\n",
        "      <tr>\n"
        '        <td><a href="{}" title="{}"><code class="small">{}</code></a></td>\n'
        "        <td>{}</td>\n"
        "        <td>{}</td>\n"
        '        <td><span class="badge {}">{}</span>{}</td>\n'
        "        <td>{}</td>\n"
        "        <td>{}</td>\n"
        "        <td>{}</td>\n"
        "        <td>{}</td>\n"
        '        <td class="small">{}</td>\n'
        '        <td class="small" title="{}">{}</td>\n'
        "      </tr>",
        (cells(t) for t in traces),
    )
