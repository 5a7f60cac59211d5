"""Requests that wait when the server asks them to.

The server answers 429 (an API key over its ingest rate) or 503 (the broker or
database catching up) with `Retry-After`. A command that sends many requests
(an import, a replay) waits that long and sends the request again, rather than
stopping part-way; the hook a live agent runs (`capture.py`) never waits, it
spools.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

WAIT_STATUSES = (429, 503)
# At most this long, in all, for one request; then the server's answer stands.
MAX_WAIT_SECONDS = 300.0
# When a 429 or 503 names no wait.
DEFAULT_WAIT_SECONDS = 5.0


def retry_after(error: urllib.error.HTTPError) -> float | None:
    """How long the server asked to wait (`Retry-After` in seconds), or None when
    it is not an answer to wait on."""
    if error.code not in WAIT_STATUSES:
        return None
    value = (error.headers.get("Retry-After") or "").strip() if error.headers else ""
    try:
        seconds = float(value) if value else DEFAULT_WAIT_SECONDS
    except ValueError:  # an HTTP date: the server names a time; wait the default
        seconds = DEFAULT_WAIT_SECONDS
    return max(seconds, 0.5)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def urlopen_waiting(
    request: urllib.request.Request,
    timeout: float,
    *,
    say: Callable[[str], None] = _say,
    sleep: Callable[[float], None] | None = None,
) -> Any:
    """`urllib.request.urlopen`, waiting as the server asks on 429 and 503, at most
    MAX_WAIT_SECONDS in all; any other answer, or a longer wait, raises as
    urlopen does."""
    waited = 0.0
    while True:
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            wait = retry_after(exc)
            if wait is None or waited + wait > MAX_WAIT_SECONDS:
                raise
            detail = "over its rate limit" if exc.code == 429 else "busy"
            say(f"The server is {detail} ({exc.code}); sending again in {wait:.0f} s.")
            exc.close()
            (sleep or time.sleep)(wait)
            waited += wait
