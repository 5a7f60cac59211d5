"""Pure functions from selector output to plotly figure dicts (no database)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from .stats import wilson

PALETTE = ["#4b5bdc", "#c0322b", "#1a7f4b", "#b25e09", "#7b3fb5", "#177e89"]
DAY_MS = 86_400_000


def _time_axis(unit: str, periods: list[Any]) -> dict[str, Any]:
    """A calendar x axis: dates as "Nov 22", one tick per day or week, and half a
    period of room either side (a single day must not zoom into milliseconds)."""
    step = DAY_MS * (7 if unit == "week" else 1)
    axis: dict[str, Any] = {
        "title": {"text": "week starting (UTC)" if unit == "week" else "day (UTC)"},
        "type": "date", "tickformat": "%b %d",
    }  # fmt: skip
    dates = sorted({date.fromisoformat(str(p)[:10]) for p in periods})
    if dates:
        half = timedelta(days=3.5 if unit == "week" else 0.5)
        start = datetime.combine(dates[0], datetime.min.time()) - half
        end = datetime.combine(dates[-1], datetime.min.time()) + half
        axis["range"] = [start.isoformat(), end.isoformat()]
        if len(dates) <= 14:
            axis["dtick"] = step
            axis["tick0"] = dates[0].isoformat()  # ticks on the periods themselves
    return axis


def success_rate_figure(series: dict[str, list[dict]], *, unit: str = "day") -> dict[str, Any]:
    """Success rate per agent and period, with 95% Wilson intervals as error bars."""
    data = []
    for i, (agent, points) in enumerate(sorted(series.items())):
        points = [p for p in points if p["decided"]]
        xs = [str(p["period"]) for p in points]
        ys, lo, hi, texts = [], [], [], []
        for p in points:
            rate = p["succeeded"] / p["decided"]
            low, high = wilson(p["succeeded"], p["decided"])  # type: ignore[misc]
            ys.append(round(rate * 100, 1))
            lo.append(round((rate - low) * 100, 1))
            hi.append(round((high - rate) * 100, 1))
            texts.append(f"n={p['decided']}, 95% CI {low * 100:.0f}–{high * 100:.0f}%")
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": agent, "x": xs, "y": ys,
            "text": texts, "hovertemplate": "%{x}: %{y}% (%{text})<extra>" + agent + "</extra>",
            "error_y": {"type": "data", "symmetric": False, "array": hi, "arrayminus": lo,
                        "thickness": 1, "width": 3},
            "line": {"color": PALETTE[i % len(PALETTE)]},
        })  # fmt: skip
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Success rate per {unit} (95% Wilson intervals)"},
            "xaxis": _time_axis(unit, [p["period"] for ps in series.values() for p in ps]),
            "yaxis": {"title": {"text": "success rate (%)"}, "range": [0, 105]},
            "legend": {"orientation": "h", "y": -0.25},
            "margin": {"l": 60, "r": 20, "t": 50, "b": 80}, "height": 380,
        },
    }  # fmt: skip


def volume_figure(series: dict[str, list[dict]], *, unit: str = "day") -> dict[str, Any]:
    data = [
        {"type": "bar", "name": agent, "x": [str(p["period"]) for p in points],
         "y": [p["traces"] for p in points], "marker": {"color": PALETTE[i % len(PALETTE)]},
         # On a date axis bar widths are in milliseconds: most of a day (or week).
         "width": int(DAY_MS * (7 if unit == "week" else 1) * 0.8)}
        for i, (agent, points) in enumerate(sorted(series.items()))
    ]  # fmt: skip
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Traces per {unit}"}, "barmode": "stack",
            "xaxis": _time_axis(unit, [p["period"] for ps in series.values() for p in ps]),
            "yaxis": {"title": {"text": "traces"}},
            "legend": {"orientation": "h", "y": -0.25},
            "margin": {"l": 60, "r": 20, "t": 50, "b": 80}, "height": 320,
        },
    }  # fmt: skip
