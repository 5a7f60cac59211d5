from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.utils import timezone

from .models import TraceStatus
from .selectors import SORTS, TraceFilters

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class TraceFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "title": "Words anywhere in a run (its task, ids, any step's tool, input, "
                "output or error); a quoted phrase within one step; -word in none.",
            }
        ),
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *TraceStatus.choices])
    agent = forms.ChoiceField(required=False, choices=[("", "Any agent")])
    period = forms.ChoiceField(
        required=False,
        label="Started",
        choices=[("", "Any time"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"),
                 ("30d", "Last 30 days"), ("custom", "Between dates…")],
    )  # fmt: skip
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    incidents = forms.ChoiceField(
        required=False,
        label="Incidents",
        choices=[("", "With or without"), ("yes", "Has incidents"), ("no", "No incidents")],
    )

    sort = forms.ChoiceField(
        required=False,
        choices=[("", "Newest first")] + [(f"{d}{k}", k) for k in SORTS for d in ("", "-")],
        widget=forms.HiddenInput,
    )

    def __init__(self, *args: Any, agents: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "Any agent")] + [(a, a) for a in agents]
        cast(forms.ChoiceField, self.fields["agent"]).choices = choices

    def query_string(self) -> str:
        """The valid filters given, as a query string in the form's field order (a
        saved view's; "" when the filters are invalid or none is set)."""
        if not self.is_valid():
            return ""
        given = [(name, self.data.get(name, "").strip()) for name in self.fields]
        return urlencode([(name, value) for name, value in given if value])

    def filters(self) -> TraceFilters:
        if not self.is_valid():
            return TraceFilters()
        data = self.cleaned_data
        since = until = None
        if data["period"] in PERIODS:
            since = timezone.now() - PERIODS[data["period"]]
        elif data["period"] == "custom":
            tz = timezone.get_current_timezone()
            if data["start"]:
                since = datetime.combine(data["start"], time.min, tzinfo=tz)
            if data["end"]:
                until = datetime.combine(data["end"] + timedelta(days=1), time.min, tzinfo=tz)
        return TraceFilters(
            status=data["status"],
            agent=data["agent"],
            since=since,
            until=until,
            has_incidents={"yes": True, "no": False}.get(data["incidents"]),
            q=data["q"].strip(),
            sort=data["sort"],
        )
