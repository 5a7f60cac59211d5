"""Pure figure builders for the traces app's own pages (mode and skill pages).

They live here rather than in metrics/charts.py because traces and skills may
not import metrics (apps import downward only).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def incidents_per_day_figure(counts: list[int], *, last_day: date, title: str) -> dict[str, Any]:
    """A bar per day ending at `last_day`, as a plotly figure dict."""
    start = last_day - timedelta(days=len(counts) - 1)
    return {
        "data": [{
            "type": "bar", "name": "incidents", "marker": {"color": "#c0322b"},
            "x": [(start + timedelta(days=i)).isoformat() for i in range(len(counts))],
            "y": counts,
        }],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "day (UTC)"}},
            "yaxis": {"title": {"text": "incidents"}, "rangemode": "tozero"},
            # A title of two lines (a phone's width) needs room above the bars.
            "margin": {"l": 50, "r": 20, "t": 60 if "<br>" in title else 40, "b": 50},
            "height": 270 if "<br>" in title else 250,
        },
    }  # fmt: skip
