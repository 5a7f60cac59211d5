"""Fixed-window rate limits kept in PostgreSQL (one upsert per check).

Used for ingestion per API key (429 with Retry-After) and for failed logins per
username and address. A window is `window` seconds long and aligned to the epoch,
so every process agrees on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connection

from .errors import RateLimited

if TYPE_CHECKING:
    from .models import ApiKey


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window ends


def _window(window: int) -> tuple[datetime, int]:
    now = time.time()
    start = int(now // window) * window
    return datetime.fromtimestamp(start, tz=UTC), max(1, int(start + window - now + 0.999))


def hit(key: str, *, limit: int, window: int) -> Verdict:
    """Count one request against `key` in the current window; allowed while within `limit`."""
    start, retry_after = _window(window)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO workspaces_ratewindow (key, window_start, count) VALUES (%s, %s, 1)
            ON CONFLICT (key, window_start) DO UPDATE SET count = workspaces_ratewindow.count + 1
            RETURNING count
            """,
            [key[:300], start],
        )
        count = cursor.fetchone()[0]
    return Verdict(count <= limit, retry_after)


def forget(key: str, *, window: int) -> None:
    """Clear the current window of `key` (a successful login clears its failures)."""
    start, _ = _window(window)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM workspaces_ratewindow WHERE key = %s AND window_start = %s",
            [key[:300], start],
        )


def peek(key: str, *, window: int) -> int:
    start, _ = _window(window)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count FROM workspaces_ratewindow WHERE key = %s AND window_start = %s",
            [key[:300], start],
        )
        row = cursor.fetchone()
    return row[0] if row else 0


def retry_after(window: int) -> int:
    return _window(window)[1]


def ingest_check(api_key: ApiKey, *, limit: int, window: int = 60) -> None:
    """Raise RateLimited (429 + Retry-After) when a key sends more requests than allowed."""
    if limit <= 0:
        return
    verdict = hit(f"ingest:key:{api_key.pk}", limit=limit, window=window)
    if not verdict.allowed:
        raise RateLimited(
            f"This API key sent more than {limit} ingest requests in {window} s; "
            f"retry after {verdict.retry_after} s, or send more traces per request.",
            retry_after=verdict.retry_after,
        )


def sweep(older_than: timedelta = timedelta(hours=2)) -> int:
    """Drop finished windows (the periodic sweep calls this)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM workspaces_ratewindow WHERE window_start < %s",
            [datetime.now(tz=UTC) - older_than],
        )
        return cursor.rowcount
