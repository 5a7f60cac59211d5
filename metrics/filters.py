"""The date range and agent filter of the Metrics and Overview pages, read from
the URL (`?agent=…&from=YYYY-MM-DD&to=YYYY-MM-DD`), so a filtered view can be
bookmarked and shared. Bad values are not errors: the page says what it did
instead (a message per problem) and shows the default range."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode

from django.http import QueryDict
from django.utils import timezone

MAX_DAYS = 400


@dataclass(frozen=True)
class DashFilter:
    since: date
    until: date
    agent: str = ""
    default: bool = True
    problems: tuple[str, ...] = field(default=())
    # "This month" (`?period=month`, and links from it: `vs=month`): compared with the
    # same days of the month before. Any other range, the default and "Last 7 days"
    # on the 7th of a month (the 1st to the 7th) included, with the range just before.
    month: bool = False

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def partial(self) -> bool:
        """The range ends today: its last day (and week) is not over yet."""
        return self.until >= timezone.now().date()

    def previous(self) -> DashFilter:
        """The period of the same length just before this one; for "This month" (the
        1st to a day of the same month, `month`), the same days of the month before."""
        if self.month:
            last_month_end = self.since - timedelta(days=1)
            start = last_month_end.replace(day=1)
            end = start.replace(day=min(self.until.day, last_month_end.day))
            return DashFilter(since=start, until=end, agent=self.agent)
        return DashFilter(since=self.since - timedelta(days=self.days),
                          until=self.since - timedelta(days=1), agent=self.agent)  # fmt: skip

    def preset(self, name: str) -> str:
        """The query of a one-click range, keeping the agent."""
        return urlencode({k: v for k, v in {"agent": self.agent, "period": name}.items() if v})

    def query(self, **extra: str) -> str:
        params = {"agent": self.agent, "from": self.since.isoformat(),
                  "to": self.until.isoformat(), "vs": "month" if self.month else "",
                  **extra}  # fmt: skip
        return urlencode({k: v for k, v in params.items() if v})

    @property
    def span(self) -> str:
        """The range as words, with its year(s) when not this one (`span_words`)."""
        return span_words(self.since, self.until)

    @property
    def year_span(self) -> str:
        """The range as words, with its year."""
        return span_words(self.since, self.until, year=True)

    @property
    def between(self) -> str:
        """ "between Nov 29 and Dec 5", "on Dec 5": the range in a sentence, with the
        year(s) as `span_words` gives them."""
        if self.since == self.until:
            return f"on {self.span}"
        other_year = self.since.year != self.until.year
        this_year = self.until.year == timezone.now().year
        start = f"{self.since:%b %-d, %Y}" if other_year else f"{self.since:%b %-d}"
        end = f"{self.until:%b %-d}" if this_year and not other_year else f"{self.until:%b %-d, %Y}"
        return f"between {start} and {end}"

    @property
    def label(self) -> str:
        span = self.year_span
        return f"{span}, {self.agent}" if self.agent else f"{span}, all agents"


def _date(text: str, name: str, problems: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        problems.append(
            f"“{text[:40]}” is not a date (use YYYY-MM-DD): the {name} date is ignored."
        )
        return None


# One-click ranges (`?period=`): each is compared with the range just before it.
PRESETS = {"7d": "Last 7 days", "4w": "Last 4 weeks", "month": "This month"}


def dash_filter(
    params: QueryDict, *, default_days: int, agents: list[str], last_day: date | None = None
) -> DashFilter:
    """The range asked for; with none, the last `default_days` days, or, when nothing
    arrived in them, the `default_days` up to `last_day` (the last day with traces)."""
    today = timezone.now().date()
    problems: list[str] = []
    since = _date(params.get("from", ""), "start", problems)
    until = _date(params.get("to", ""), "end", problems)
    preset = params.get("period", "")
    if preset in PRESETS and since is None and until is None:
        until = today
        since = {"7d": today - timedelta(days=6), "4w": today - timedelta(days=27),
                 "month": today.replace(day=1)}[preset]  # fmt: skip
    elif (
        since is None
        and until is None
        and last_day
        and last_day < today - timedelta(days=default_days - 1)
    ):
        until = last_day
        problems.append(
            f"Nothing arrived in the last {default_days} days: showing the {default_days} "
            f"days up to the last trace ({last_day:%b %-d, %Y})."
        )
    agent = params.get("agent", "").strip()[:200]
    if agent and agent not in agents:
        problems.append(f"No agent named “{agent}” has sent traces here: showing all agents.")
        agent = ""
    default = not params.get("from") and not params.get("to") and preset not in PRESETS
    until = min(until or today, today)
    since = since or until - timedelta(days=default_days - 1)
    if since > until:
        problems.append("The start date was after the end date: they were swapped.")
        since, until = until, since
    if (until - since).days + 1 > MAX_DAYS:
        problems.append(f"Ranges are at most {MAX_DAYS} days: the start was moved.")
        since = until - timedelta(days=MAX_DAYS - 1)
    asked_month = (preset == "month" and not params.get("from") and not params.get("to")) or (
        params.get("vs") == "month"
    )
    month = asked_month and since.day == 1 and (since.year, since.month) == (
        until.year, until.month
    )  # fmt: skip
    return DashFilter(since=since, until=until, agent=agent, default=default and not agent,
                      problems=tuple(problems), month=month)  # fmt: skip


def span_words(since: date, until: date, *, year: bool = False) -> str:
    """A date range as words: "Dec 1–3", "Nov 28 – Dec 3", "Dec 3"; with the year
    when it is not this one, or `year` asks ("Sep 27 – Oct 31, 2025"), on both ends
    when they are in two ("Nov 1, 2025 – Dec 5, 2026")."""
    if since.year != until.year:
        return f"{since:%b %-d, %Y} – {until:%b %-d, %Y}"
    year_words = f", {until:%Y}" if year or until.year != timezone.now().year else ""
    if since == until:
        return f"{since:%b %-d}{year_words}"
    if since.month == until.month:
        return f"{since:%b %-d}–{until:%-d}{year_words}"
    return f"{since:%b %-d} – {until:%b %-d}{year_words}"
