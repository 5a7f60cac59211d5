"""Pure functions from selector output to plotly figure dicts (no database)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any

from .stats import wilson

# Twelve colours that stay readable on white.
PALETTE = ["#4b5bdc", "#c0322b", "#1a7f4b", "#b25e09", "#7b3fb5", "#177e89", "#a8326e",
           "#3d6e1f", "#8a5a00", "#2f4f8f", "#9c3d16", "#5a5a5a"]  # fmt: skip
DAY_MS = 86_400_000


def _time_axis(unit: str, periods: list[Any]) -> dict[str, Any]:
    """A calendar x axis: dates as "Nov 22", one tick per day or week, and half a
    period of room either side (a single day must not zoom into milliseconds)."""
    step = DAY_MS * (7 if unit == "week" else 1)
    axis: dict[str, Any] = {
        "title": {"text": "week starting (UTC)" if unit == "week" else "day (UTC)"},
        "type": "date", "tickformat": "%b %d",
        # Room for the tick labels however they turn (narrow screens tilt them):
        # the axis title goes below them, never over them.
        "automargin": True,
    }  # fmt: skip
    dates = sorted({date.fromisoformat(str(p)[:10]) for p in periods})
    if dates:
        half = timedelta(days=3.5 if unit == "week" else 0.5)
        start = datetime.combine(dates[0], datetime.min.time()) - half
        end = datetime.combine(dates[-1], datetime.min.time()) + half
        axis["range"] = [start.isoformat(), end.isoformat()]
        # A tick on each period only when the axis spans few of them (two weeks
        # with data a year apart would get 52 crowded ticks).
        if (dates[-1] - dates[0]).days * DAY_MS // step < 14:
            axis["dtick"] = step
            axis["tick0"] = dates[0].isoformat()  # ticks on the periods themselves
        if dates[0].year != dates[-1].year:
            axis["tickformat"] = "%b %d, %Y"
    return axis


def _gaps(points: list[dict], unit: str) -> list[tuple[str, dict | None]]:
    """`points` (by period) as (period, point), with (the period after one, None)
    where the next is not the next period: the line breaks there, rather than
    draw a trend through periods with no data."""
    step = timedelta(days=7 if unit == "week" else 1)
    out: list[tuple[str, dict | None]] = []
    before: date | None = None
    for p in points:
        day = date.fromisoformat(str(p["period"])[:10])
        if before is not None and day - before > step:
            out.append(((before + step).isoformat(), None))
        out.append((str(p["period"]), p))
        before = day
    return out


def _runs(count: int, values: list[float | None]) -> list[slice]:
    """The stretches of `values` (of length `count`) between Nones."""
    runs, start = [], 0
    for i in range(count + 1):
        if i == count or values[i] is None:
            if i > start:
                runs.append(slice(start, i))
            start = i + 1
    return runs


def agent_colour(agent: str, colours: dict[str, str] | None = None) -> str:
    """An agent's colour: from the workspace's assignment (`agent_colours`) when given,
    else one from a hash of its name."""
    if colours and agent in colours:
        return colours[agent]
    return PALETTE[int(hashlib.sha256(agent.encode()).hexdigest()[:8], 16) % len(PALETTE)]


def agent_colours(agents_by_first_seen: list[str]) -> dict[str, str]:
    """The workspace's agents in the order they first sent traces, each the next
    colour: the first twelve are all different, and an agent keeps its colour when
    another appears (a newcomer comes last)."""
    return {agent: PALETTE[i % len(PALETTE)] for i, agent in enumerate(agents_by_first_seen)}


def _band(colour: str) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.18)"


def _partial_note(unit: str, last: Any) -> dict[str, Any]:
    """An annotation over the last period when it is not over yet."""
    return {
        "text": f"this {unit} so far", "showarrow": False, "xref": "x", "yref": "paper",
        "x": str(last), "y": 1.0, "yanchor": "bottom", "xanchor": "right",
        "font": {"size": 11, "color": "#5b6478"},
    }  # fmt: skip


def success_rate_figure(
    series: dict[str, list[dict]],
    *,
    unit: str = "day",
    partial: bool = False,
    colours: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Success rate per period, one small chart per agent (sharing the time axis),
    the 95% Wilson interval as a shaded band: lines of different agents never
    cross each other."""
    agents = [a for a, points in sorted(series.items()) if any(p["decided"] for p in points)]
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        # Two short lines: one long one was cut at both ends on a phone.
        "title": {"text": f"Success rate per {unit}, by agent<br>"
                          "<sup>shaded: 95% Wilson interval</sup>"},
        "grid": {"rows": max(len(agents), 1), "columns": 1, "pattern": "coupled",
                 "roworder": "top to bottom", "ygap": 0.35},
        "xaxis": _time_axis(unit, [p["period"] for ps in series.values() for p in ps]),
        "showlegend": False, "margin": {"l": 60, "r": 20, "t": 70, "b": 50},
        "height": 120 + 150 * max(len(agents), 1), "annotations": [],
    }  # fmt: skip
    for i, agent in enumerate(agents, start=1):
        axis = "" if i == 1 else str(i)
        colour = agent_colour(agent, colours)
        points = _gaps([p for p in series[agent] if p["decided"]], unit)
        xs: list[str] = []
        ys: list[float | None] = []
        lows: list[float | None] = []
        highs: list[float | None] = []
        texts: list[str] = []
        for period, p in points:
            xs.append(period)
            if p is None:  # no outcome in the periods up to the next point
                ys.append(None)
                lows.append(None)
                highs.append(None)
                texts.append("")
                continue
            low, high = wilson(p["succeeded"], p["decided"])  # type: ignore[misc]
            ys.append(round(p["succeeded"] / p["decided"] * 100, 1))
            lows.append(round(low * 100, 1))
            highs.append(round(high * 100, 1))
            read = p.get("inferred") or 0
            texts.append(f"n={p['decided']}, 95% CI {low * 100:.0f}–{high * 100:.0f}%"
                         + (f"; {read} read from sessions, not reported" if read else ""))  # fmt: skip
        # The band, a pair of traces per run of consecutive periods: a fill to the
        # next trace would shade across a gap even where the line breaks.
        common = {"xaxis": "x", "yaxis": f"y{axis}", "hoverinfo": "skip",
                  "mode": "lines", "line": {"width": 0, "color": colour}}  # fmt: skip
        for run in _runs(len(xs), ys):
            if run.stop - run.start == 1:  # a period alone: its interval as a bar
                i = run.start
                data.append({
                    "type": "scatter", "mode": "markers", "x": [xs[i]], "y": [ys[i]],
                    "xaxis": "x", "yaxis": f"y{axis}", "hoverinfo": "skip",
                    "marker": {"size": 1, "color": colour},
                    "error_y": {"type": "data", "symmetric": False, "color": _band(colour),
                                "thickness": 6, "width": 0,
                                "array": [highs[i] - ys[i]],
                                "arrayminus": [ys[i] - lows[i]]},
                })  # fmt: skip
                continue
            data.append({**common, "type": "scatter", "x": xs[run], "y": highs[run]})
            data.append({**common, "type": "scatter", "x": xs[run], "y": lows[run],
                         "fill": "tonexty", "fillcolor": _band(colour)})  # fmt: skip
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": agent, "x": xs, "y": ys,
            "xaxis": "x", "yaxis": f"y{axis}", "text": texts, "line": {"color": colour},
            "hovertemplate": "%{x}: %{y} (%{text})<extra>" + agent + "</extra>",
        })  # fmt: skip
        layout[f"yaxis{axis}"] = {"range": [0, 105], "ticksuffix": "%", "nticks": 3}
        layout["annotations"].append({
            "text": f"<b>{agent}</b>", "showarrow": False, "xref": "paper",
            "yref": f"y{axis} domain", "x": 0, "y": 1.18, "xanchor": "left",
            "font": {"color": colour},
        })  # fmt: skip
    periods = sorted({p["period"] for ps in series.values() for p in ps})
    if partial and periods and agents:
        layout["annotations"].append(_partial_note(unit, periods[-1]))
    return {"data": data, "layout": layout}


def volume_figure(
    series: dict[str, list[dict]],
    *,
    unit: str = "day",
    partial: bool = False,
    colours: dict[str, str] | None = None,
) -> dict[str, Any]:
    periods = sorted({p["period"] for ps in series.values() for p in ps})
    last = periods[-1] if partial and periods else None
    data = [
        {"type": "bar", "name": agent, "x": [str(p["period"]) for p in points],
         "y": [p["traces"] for p in points],
         # The period not over yet is drawn lighter: its count is still growing.
         "marker": {"color": agent_colour(agent, colours),
                    "opacity": [0.45 if p["period"] == last else 1 for p in points]},
         # On a date axis bar widths are in milliseconds: most of a day (or week).
         "width": int(DAY_MS * (7 if unit == "week" else 1) * 0.8)}
        for agent, points in sorted(series.items())
    ]  # fmt: skip
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Traces per {unit}"}, "barmode": "stack",
            "xaxis": _time_axis(unit, [p["period"] for ps in series.values() for p in ps]),
            "yaxis": {"title": {"text": "traces"}},
            # Below the axis title, never over the axes.
            "legend": {"orientation": "h", "y": -0.42, "yanchor": "top", "x": 0},
            "margin": {"l": 60, "r": 20, "t": 50, "b": 130}, "height": 380,
            "annotations": [_partial_note(unit, last)] if last is not None else [],
        },
    }  # fmt: skip
