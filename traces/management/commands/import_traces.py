"""manage.py import_traces --workspace SLUG --format FORMAT PATH [PATH ...]"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from hivemind_client.formats import (
    FORMATS,
    GIVEN_STATUSES,
    OUTCOME_SOURCES,
    SWE_RESULT_FORMATS,
    FormatError,
    files_under,
    no_files_message,
    swe_outcome_in,
)
from hivemind_client.importer import outcome_summary
from traces.importing import traces_import_file, traces_import_hook_logs
from workspaces.models import Workspace


class Command(BaseCommand):
    help = (
        "Import agent log files (folders are searched for files of the format). Each file is "
        "imported whole or not at all; re-importing changes nothing. Formats, and where each "
        "run's outcome is read: "
        + "; ".join(f"{name}: {OUTCOME_SOURCES.get(name, '?')}" for name in FORMATS)
        + ". A run whose outcome is not found comes in as unknown and is named in the summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--format", required=True, choices=sorted(FORMATS), dest="fmt")
        parser.add_argument(
            "--results", type=Path, default=None,
            help="swe-agent and openhands: a SWE-bench report (a summary with resolved_ids, or "
                 "a report keyed by instance id) with the runs' outcomes, if it is not beside "
                 "them.",
        )  # fmt: skip
        parser.add_argument(
            "--agent", default="",
            help="Name the agent of every imported run (default: what the data says, e.g. "
                 "tau2's agent model; InterCode and tau-bench results carry none, so their "
                 "file name).",
        )  # fmt: skip
        parser.add_argument(
            "--status", choices=GIVEN_STATUSES, default="",
            help="The outcome of the runs whose files give none, when you know it from "
                 "elsewhere (e.g. transcripts of sessions that failed); never over one a "
                 "file gives. Each such run says its outcome was given at import.",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {options['workspace']!r}.")
        if options["results"] is not None and options["fmt"] not in SWE_RESULT_FORMATS:
            raise CommandError(
                f"--results gives the outcomes of SWE-bench runs ({', '.join(SWE_RESULT_FORMATS)}), "
                f"not of {options['fmt']} runs."
            )
        if options["results"] is not None:
            try:
                swe_outcome_in(options["results"], "")  # unreadable: stop before any file
            except FormatError as exc:
                raise CommandError(f"--results: {exc}") from None
        if options["status"] and options["fmt"] == "claude-hooks":
            raise CommandError(
                "--status does not apply to hook logs: a replayed session's outcome is read "
                "from the session. Send outcomes with POST /api/v1/traces/{external_id}/outcome."
            )
        files = files_under(options["paths"], options["fmt"])
        if not files:
            raise CommandError(no_files_message(options["fmt"]))
        failed = 0
        totals = [0, 0, 0, 0]
        agents: dict[str, int] = {}
        no_outcome: list[str] = []
        not_the_agent: list[str] = []
        given = 0
        undated: list[str] = []
        groups: list[list[Path]] = [[path] for path in files]
        if options["fmt"] == "claude-hooks":
            # A hook-log folder is one record: its event files are merged by time.
            folders: dict[Path, list[Path]] = {}
            for path in files:
                folders.setdefault(path.parent, []).append(path)
            groups = list(folders.values())
        shown = _shown([group[0] if len(group) == 1 else group[0].parent for group in groups])
        for number, group in enumerate(groups, start=1):
            path = group[0] if len(group) == 1 else group[0].parent
            if options["fmt"] == "claude-hooks":
                result = traces_import_hook_logs(workspace=workspace, paths=group,
                                                 agent=options["agent"])  # fmt: skip
            else:
                result = traces_import_file(workspace=workspace, fmt=options["fmt"], path=path,
                                            agent=options["agent"], results=options["results"],
                                            status=options["status"])  # fmt: skip
            bar = "#" * (20 * number // len(groups))
            prefix = f"[{bar:<20}] {number}/{len(groups)} {shown[path]}"
            if not result.ok:
                failed += 1
                self.stderr.write(f"{prefix}: not imported: {result.error}")
                continue
            totals = [a + b for a, b in zip(totals, [result.created, result.updated,
                      result.unchanged, 0], strict=True)]  # fmt: skip
            totals[3] = result.purge_next
            no_outcome += result.no_outcome
            not_the_agent += result.not_the_agent
            given += result.given_outcome
            undated += result.undated
            for name, runs in result.agents.items():
                agents[name] = agents.get(name, 0) + runs
            self.stdout.write(
                f"{prefix}: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged"
            )
        self.stdout.write(
            f"Imported {len(groups) - failed} of {len(groups)} "
            f"{'folders' if options['fmt'] == 'claude-hooks' else 'files'}: {totals[0]} traces created, "
            f"{totals[1]} updated, {totals[2]} unchanged. Diagnosis runs in the worker."
        )
        for line in outcome_summary(
            given=given, status=options["status"], no_outcome=no_outcome,
            not_the_agent=not_the_agent, undated=undated, today=f"{timezone.now():%b %-d, %Y}",
        ):  # fmt: skip
            self.stdout.write(line)
        if agents:
            self.stdout.write("Agents: " + ", ".join(
                f"{name or '(none)'} ({runs} run{'s' if runs != 1 else ''})"
                for name, runs in sorted(agents.items())) + ".")  # fmt: skip
        self.stdout.write(
            "Retention counts from when a trace reached Hivemind, so imported runs are kept "
            "for the whole retention period whatever their age. "
            + (f"The next daily purge deletes {totals[3]} trace{'s' if totals[3] != 1 else ''} "
               "of this workspace that arrived before the retention window (Settings → PII "
               "policy and retention)." if totals[3] else
               "The next daily purge deletes nothing in this workspace.")
        )  # fmt: skip
        if failed:
            sys.exit(1)


def _shown(paths: list[Path]) -> dict[Path, str]:
    """How each imported path is named in the progress lines: its file name, unless
    another has the same one (an SDK conversation's `base_state.json`, a run folder's
    `output.jsonl`), then its path under the folder they all share."""
    names = [path.name for path in paths]
    if len(set(names)) == len(names):
        return {path: path.name for path in paths}
    root = Path(os.path.commonpath([path.parent for path in paths]))
    return {path: str(path.relative_to(root)) for path in paths}
