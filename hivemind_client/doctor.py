"""`python -m hivemind_client doctor`: is capture set up right, and what to fix.

Checks, in order: the URL (set, answers /healthz), the key (set, known, not
revoked), its scopes (ingest to capture, skills:read to pull skills), the clock
(against the server's Date header) and the local spool (events waiting,
events dropped). Prints one line per check; exit 0 when nothing is wrong.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime

from .capture import spool_limit, spool_path

CLOCK_SKEW_SECONDS = 60


def _get(url: str, key: str = "") -> tuple[int, dict, bytes]:
    headers = {"User-Agent": "hivemind-client/0.1"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def diagnose() -> list[tuple[bool, str]]:
    """(ok, message) per check."""
    checks: list[tuple[bool, str]] = []
    url = os.environ.get("HIVEMIND_URL", "").rstrip("/")
    key = os.environ.get("HIVEMIND_API_KEY", "")
    if not url:
        checks.append(
            (False, "HIVEMIND_URL is not set: export HIVEMIND_URL=http://your-hivemind:8000")
        )
    else:
        try:
            started = time.monotonic()
            status, headers, _ = _get(url + "/healthz")
            took = (time.monotonic() - started) * 1000
            checks.append((status == 200, f"{url}/healthz answered {status} in {took:.0f} ms"
                           + ("" if status == 200 else ": is this the Hivemind address?")))  # fmt: skip
            server_date = headers.get("Date") or headers.get("date")
            if server_date:
                skew = abs(parsedate_to_datetime(server_date).timestamp() - time.time())
                checks.append((skew <= CLOCK_SKEW_SECONDS,
                               f"clock differs from the server's by {skew:.0f} s"
                               + ("" if skew <= CLOCK_SKEW_SECONDS else
                                  ": fix this machine's clock (NTP); step times will be off")))  # fmt: skip
        except (urllib.error.URLError, OSError, ValueError) as exc:
            checks.append((False, f"cannot reach {url}: {exc}. Check the address and that the "
                                  "server runs (make run)."))  # fmt: skip
            url = ""
    if not key:
        checks.append((False, "HIVEMIND_API_KEY is not set: create a key in Settings → API keys "
                              "and export HIVEMIND_API_KEY=hm_..."))  # fmt: skip
    elif url:
        status, _, body = _get(url + "/api/v1/whoami", key)
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        if status != 200:
            checks.append(
                (False, f"the key was refused ({status}): {data.get('detail', body[:200])}")
            )
        else:
            scopes = data.get("scopes", [])
            checks.append((True, f"key '{data.get('key_name')}' of workspace "
                                 f"'{data.get('workspace')}', scopes: {', '.join(scopes)}"))  # fmt: skip
            for scope, why in (("ingest", "to capture traces"), ("skills:read", "to pull skills")):
                if scope not in scopes:
                    checks.append((False, f"the key lacks '{scope}' ({why}): create a key with it"))
    spool = spool_path()
    dropped_file = spool.with_name(spool.name + ".dropped")
    waiting = len(spool.read_text().splitlines()) if spool.exists() else 0
    dropped = int(dropped_file.read_text() or 0) if dropped_file.exists() else 0
    size = spool.stat().st_size if spool.exists() else 0
    message = (f"spool {spool}: {waiting} event(s) waiting ({size / 1024:.0f} KB of "
               f"{spool_limit() // (1024 * 1024)} MB), {dropped} dropped")  # fmt: skip
    if waiting:
        message += "; they are sent with the next captured event once the checks above pass"
    if dropped:
        message += f"; delete {dropped_file} once you have read this"
    checks.append((not dropped, message))
    return checks


def main() -> int:
    checks = diagnose()
    for ok, message in checks:
        print(("ok    " if ok else "FIX   ") + message)
    return 0 if all(ok for ok, _ in checks) else 1
