from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@register.filter
def pct1(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@register.filter
def points(value: float | None) -> str:
    """A difference of two rates in percentage points, signed."""
    return "—" if value is None else f"{value * 100:+.1f}".replace("-", "−")


@register.filter
def agent_colour(agent: str) -> str:
    """The agent's colour in every chart (stable: a hash of its name)."""
    from metrics.charts import agent_colour as colour

    return colour(str(agent))


@register.filter
def preset_query(flt: Any, name: str) -> str:
    """The query string of a one-click range (metrics/filters.PRESETS), keeping the agent."""
    return str(flt.preset(name))


@register.filter
def colour_of(colours: dict[str, str] | None, agent: str) -> str:
    """The agent's colour on this page (the same as in its charts)."""
    from metrics.charts import agent_colour as colour

    return colour(agent, colours)
