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

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def previous(self) -> DashFilter:
        """The period of the same length just before this one."""
        return DashFilter(since=self.since - timedelta(days=self.days),
                          until=self.since - timedelta(days=1), agent=self.agent)  # fmt: skip

    def query(self, **extra: str) -> str:
        params = {"agent": self.agent, "from": self.since.isoformat(),
                  "to": self.until.isoformat(), **extra}  # fmt: skip
        return urlencode({k: v for k, v in params.items() if v})

    @property
    def label(self) -> str:
        span = f"{self.since:%b %-d} – {self.until:%b %-d, %Y}"
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


def dash_filter(params: QueryDict, *, default_days: int, agents: list[str]) -> DashFilter:
    today = timezone.now().date()
    problems: list[str] = []
    since = _date(params.get("from", ""), "start", problems)
    until = _date(params.get("to", ""), "end", problems)
    agent = params.get("agent", "").strip()[:200]
    if agent and agent not in agents:
        problems.append(f"No agent named “{agent}” has sent traces here: showing all agents.")
        agent = ""
    default = since is None and until is None
    until = min(until or today, today)
    since = since or until - timedelta(days=default_days - 1)
    if since > until:
        problems.append("The start date was after the end date: they were swapped.")
        since, until = until, since
    if (until - since).days + 1 > MAX_DAYS:
        problems.append(f"Ranges are at most {MAX_DAYS} days: the start was moved.")
        since = until - timedelta(days=MAX_DAYS - 1)
    return DashFilter(since=since, until=until, agent=agent, default=default and not agent,
                      problems=tuple(problems))  # fmt: skip
