"""`python -m hivemind_client import --format FORMAT PATH...`: send agent log
files from an agent's machine to Hivemind (standard library only).

The files are read with the same parsers as `manage.py import_traces`
(`formats.py`). A file is parsed whole before anything is sent, so a corrupt
file sends nothing and is reported with its line; a file with no trace is an
error too; and the server checks every trace of a file (`?dry_run=true`) before
any is stored, so a file with one bad trace sends nothing (all or nothing, like
`manage.py import_traces`). Traces go to
POST /api/v1/traces in requests of up to 200; the server validates each trace
and re-sending a trace updates it, so running the import again after a failure
sends the same traces and creates nothing twice. Hook logs are replayed to the
hook endpoint one payload at a time, a folder's event files merged by time
(`capture.replay`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .formats import (
    SWE_RESULT_FORMATS,
    FormatError,
    apply_swe_results,
    files_under,
    give_outcome,
    no_files_message,
    parse,
    swe_outcome_in,
)
from .retry import urlopen_waiting

BATCH = 200


class SendError(Exception):
    pass


def _post(
    url: str, key: str, path: str, body: object, headers: dict | None = None,
    ok: tuple[int, ...] = (),
) -> dict:  # fmt: skip
    request = urllib.request.Request(
        url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                 **(headers or {})},
    )  # fmt: skip
    try:
        with urlopen_waiting(request, timeout=120) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in ok:
            try:
                return dict(json.loads(exc.read() or b"{}"))
            except ValueError:
                pass
        detail = exc.read().decode(errors="replace")[:500]
        raise SendError(f"the server answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SendError(f"could not reach {url}: {exc}") from None


# File -> the agents its runs were sent under (main prints them).
AGENTS_SEEN: dict[str, set[str]] = {}


@dataclass
class Sent:
    """What the server did with one file's traces."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0  # sent again exactly as stored: nothing written
    rejected: list[str] = field(default_factory=list)  # per-trace rejections
    given: int = 0  # runs that took the outcome given with --status
    no_outcome: list[str] = field(default_factory=list)  # sent with none
    not_the_agent: list[str] = field(default_factory=list)  # none: the harness stopped them
    undated: list[str] = field(default_factory=list)  # created with no time of their own


def import_file(
    url: str, key: str, fmt: str, path: Path, agent: str = "", status: str = "",
    status_from_session: bool = False, results: Path | None = None,
) -> Sent:  # fmt: skip
    """Send one file, all or nothing; returns what the server did with it.

    Every batch is first checked by the server without storing anything
    (`?dry_run=true`, the same validation as a real send); if any trace is
    rejected, nothing of the file is sent and the rejections are returned. Then
    the batches are sent for real. (A network failure between two real batches
    leaves the earlier ones stored; sending the file again completes it, and
    creates nothing twice.)"""
    parsed = parse(fmt, path)
    if results is not None:
        apply_swe_results(parsed.traces, results)
    if status_from_session:
        # A live capture's session (OpenCode's plugin): with no outcome, the server
        # reads one from the session, as for a hook-built run (traces/transcripts.py).
        for trace in parsed.traces:
            trace["metadata"] = {**(trace.get("metadata") or {}), "status_from_session": True}
    if agent.strip():
        for trace in parsed.traces:
            trace["agent"] = agent.strip()[:200]
    given = give_outcome(parsed.traces, status)
    AGENTS_SEEN[str(path)] = {str(t.get("agent") or "") for t in parsed.traces}
    rejected: list[str] = []
    batches = [parsed.traces[i : i + BATCH] for i in range(0, len(parsed.traces), BATCH)]
    for number, batch in enumerate(batches):
        answer = _post(url, key, "/api/v1/traces?dry_run=true", {"traces": batch}, ok=(422,))
        if not answer.get("dry_run"):
            raise SendError("the server does not check batches (?dry_run); upgrade it first")
        for item in answer.get("results", []):
            if item.get("status") == "rejected":
                where = number * BATCH + int(item.get("index", 0))
                rejected.append(f"trace {where}: {item.get('detail', '')}")
    if rejected:
        return Sent(rejected=rejected)
    sent = Sent(given=given)
    for trace in parsed.traces:
        if str(trace.get("status") or "unknown") == "unknown":
            outcome_from = str((trace.get("metadata") or {}).get("outcome_from") or "")
            (sent.not_the_agent if outcome_from.startswith("none (") else sent.no_outcome).append(
                str(trace.get("external_id") or "")
            )
    for payload in parsed.hook_payloads:
        event = (
            "import-"
            + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
        )
        _post(url, key, "/api/v1/hooks/claude-code", payload, {"X-Hivemind-Event-Id": event})
        sent.updated += 1
    for batch in batches:
        answer = _post(url, key, "/api/v1/traces", {"traces": batch})
        for item in answer.get("results", []):
            trace = batch[int(item.get("index", 0))] if item.get("status") == "created" else {}
            if trace and not trace.get("started_at") and not trace.get("ended_at"):
                sent.undated.append(str(item.get("external_id") or trace.get("external_id")))
        sent.created += int(answer.get("created", 0))
        sent.updated += int(answer.get("updated", 0))
        sent.unchanged += int(answer.get("unchanged", 0))
    return sent


def _runs(names: list[str], shown: int) -> str:
    return ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )


def outcome_summary(
    *, given: int, status: str, no_outcome: list[str], not_the_agent: list[str],
    undated: list[str], today: str,
) -> list[str]:  # fmt: skip
    """What an import says of the runs it could not give an outcome or a time: the
    same lines from manage.py import_traces and from this client."""
    lines = []
    if given:
        lines.append(f"{given} run{'s' if given != 1 else ''} whose file gave no outcome took "
                     f"the one given with --status ({status}); each says so on its page.")  # fmt: skip
    if no_outcome:
        lines.append(
            f"{len(no_outcome)} run{'s' if len(no_outcome) != 1 else ''} came in with no "
            "outcome (unknown: nothing reported one, or a session's log ends before it did; "
            "nothing was guessed; a run its hooks already gave a status, read from its "
            "session, keeps it): " + _runs(no_outcome, 20)
            + ". Send their outcomes with POST /api/v1/traces/{external_id}/outcome, "
            "import the harness's results beside the runs, or import them again with "
            "--status failed (or succeeded) if you know it from elsewhere."
        )  # fmt: skip
    if not_the_agent:
        lines.append(
            f"{len(not_the_agent)} run{'s' if len(not_the_agent) != 1 else ''} stopped by "
            "the harness, not the agent (a simulated user's or the infrastructure's error): "
            "imported with no outcome, so they count neither way and are not diagnosed; "
            "each page says why: " + _runs(not_the_agent, 20) + "."
        )  # fmt: skip
    if undated:
        lines.append(
            f"{len(undated)} run{'s' if len(undated) != 1 else ''} carried no time of their "
            f"own (no start, end or step time): each is dated by its import, {today}, and "
            "counted on that day in Overview and Metrics: " + _runs(undated, 5) + "."
        )  # fmt: skip
    return lines


def main(
    url: str, key: str, fmt: str, paths: list[Path], agent: str = "", status: str = "",
    results: Path | None = None,
) -> int:  # fmt: skip
    if results is not None and fmt not in SWE_RESULT_FORMATS:
        print(f"hivemind: --results gives the outcomes of SWE-bench runs "
              f"({', '.join(SWE_RESULT_FORMATS)}), not of {fmt} runs.", file=sys.stderr)  # fmt: skip
        return 2
    if results is not None:
        try:
            swe_outcome_in(results, "")  # a report that cannot be read stops the import first
        except FormatError as exc:
            print(f"hivemind: --results: {exc}", file=sys.stderr)
            return 2
    if fmt == "claude-hooks":
        if status:
            print("hivemind: --status does not apply to hook logs (a replayed session's outcome "
                  "is read from the session).", file=sys.stderr)  # fmt: skip
            return 2
        # A hook-log folder is one record: its event files are merged by time.
        from .capture import replay

        return max((replay(path, url=url, key=key) for path in paths), default=0)
    files = files_under(paths, fmt)
    if not files:
        print(f"hivemind: {no_files_message(fmt)}", file=sys.stderr)
        return 2
    failed = 0
    total = Sent()
    for number, path in enumerate(files, start=1):
        prefix = f"[{number}/{len(files)}] {path}"
        try:
            sent = import_file(url, key, fmt, path, agent=agent, status=status, results=results)
        except (FormatError, SendError) as exc:
            failed += 1
            print(f"{prefix}: not imported: {exc}", file=sys.stderr)
            continue
        if sent.rejected:
            failed += 1
            print(f"{prefix}: not imported (nothing of it was sent): {len(sent.rejected)} "
                  "trace(s) rejected", file=sys.stderr)  # fmt: skip
            for line in sent.rejected:
                print(f"{prefix}: rejected {line}", file=sys.stderr)
            continue
        names = sorted(AGENTS_SEEN.pop(str(path), set()))
        print(f"{prefix}: {sent.created} created, {sent.updated} updated, {sent.unchanged} "
              "unchanged; agents: "
              f"{', '.join(n or '(none)' for n in names) or '(none)'}")  # fmt: skip
        total.given += sent.given
        total.no_outcome += sent.no_outcome
        total.not_the_agent += sent.not_the_agent
        total.undated += sent.undated
    today = datetime.now(UTC).strftime("%b %d, %Y").replace(" 0", " ")
    for line in outcome_summary(given=total.given, status=status, no_outcome=total.no_outcome,
                                not_the_agent=total.not_the_agent, undated=total.undated,
                                today=today):  # fmt: skip
        print(line)
    return 1 if failed else 0
