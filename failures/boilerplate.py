"""Text shared by many unrelated incidents says nothing about any one of them.

An error often opens with a line every error of its environment shares: a
Python traceback's header, an environment's reminder ("Format your SQL command
as follows:"), a tool's preamble. Embedded as the failure, it pulls unrelated
failures into one mode. Two rules pick the line that says what went wrong:

- structural: an error is told by its decisive line (`diagnosis.facts.decisive_line`:
  a Python traceback's exception, not the output printed around it);
- learned per workspace: a line is boilerplate when at least `MIN_INCIDENTS`
  incidents (and `MIN_SHARE` of them) contain it and it is followed by at least
  `MIN_FOLLOWERS` different lines, i.e. it heads different failures. A line that
  is a whole error by itself (the same failure again and again) never is.

`error_gist` returns the decisive line of what is not boilerplate.
"""

from __future__ import annotations

import time
from collections import defaultdict

from traces.errors import decisive_line

from .signatures import normalise

MIN_INCIDENTS = 10
MIN_SHARE = 0.05
MIN_FOLLOWERS = 3
SAMPLE = 5000
CACHE_SECONDS = 600
_cache: dict[int, tuple[float, tuple[str, ...]]] = {}


def _lines(text: str, limit: int = 40) -> list[str]:
    return [line.strip() for line in text.splitlines()[:limit] if line.strip()]


def learn(error_texts: list[str]) -> frozenset[str]:
    """Boilerplate lines (normalised) of a body of error texts."""
    holders: dict[str, int] = defaultdict(int)
    followers: dict[str, set[str]] = defaultdict(set)
    for text in error_texts:
        lines = [normalise(line) for line in _lines(text)]
        for line in set(lines):
            holders[line] += 1
        for line, following in zip(lines, lines[1:], strict=False):
            followers[line].add(following)
    floor = max(MIN_INCIDENTS, MIN_SHARE * len(error_texts))
    return frozenset(
        line for line, n in holders.items()
        if n >= floor and len(followers[line]) >= MIN_FOLLOWERS
    )  # fmt: skip


def for_workspace(workspace_id: int, extra: list[str] | None = None) -> frozenset[str]:
    """The boilerplate of the workspace's latest incidents (read at most every
    CACHE_SECONDS) together with `extra` (the batch being written)."""
    from .models import Incident

    cached = _cache.get(workspace_id)
    if cached is None or time.monotonic() - cached[0] >= CACHE_SECONDS:
        texts = tuple(
            Incident.objects.filter(workspace_id=workspace_id)
            .exclude(error_text="")
            .order_by("-id")
            .values_list("error_text", flat=True)[:SAMPLE]
        )
        cached = _cache[workspace_id] = (time.monotonic(), texts)
    return learn(list(cached[1]) + list(extra or []))


def error_gist(text: str, boilerplate: frozenset[str] = frozenset()) -> str:
    """The line of an error that says what went wrong (`decisive_line`: a
    traceback's exception, else the first line saying it failed, else the first
    that is not a bare exit status), read once the workspace's boilerplate lines
    are taken out."""
    lines = [line for line in text.splitlines()[:200] if line.strip()]
    if not lines:
        return ""
    kept = [line for line in lines if normalise(line.strip()) not in boilerplate]
    return decisive_line("\n".join(kept)) if kept else lines[0].strip()
