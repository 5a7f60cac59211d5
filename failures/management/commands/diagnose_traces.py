"""manage.py diagnose_traces --workspace SLUG [--all] [--batch]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from failures.mining import traces_diagnose
from traces.models import Trace
from workspaces.llm import model_for
from workspaces.models import Workspace

CHUNK = 2000


class Command(BaseCommand):
    help = (
        "Diagnose a workspace's traces now (the worker does this after every ingest). "
        "--all diagnoses unchanged traces again; --batch sends failed traces to Claude "
        "(when the workspace's model is Anthropic's) "
        "through the Message Batches API (half price; waits until the batch ends)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--all", action="store_true", help="Also traces that did not change.")
        parser.add_argument("--batch", action="store_true", help="Claude via Message Batches.")
        parser.add_argument("--poll-seconds", type=float, default=30.0)
        parser.add_argument(
            "--concurrency", type=int, default=None,
            help="Model requests at once (default HIVEMIND_LLM_CONCURRENCY, 1): for a "
                 "server of your own that takes more, e.g. vLLM.",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {options['workspace']!r}.")
        model, reason = model_for(workspace.pk)
        if options["batch"] and (model is None or model.provider != "anthropic"):
            raise CommandError(
                "--batch is Anthropic's Message Batches API; this workspace's model is "
                + (model.label if model else f"none ({reason})")
                + ". Without --batch, failed runs are diagnosed one by one."
            )
        ids = list(
            Trace.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)
        )
        totals = [0, 0, 0, 0]
        for start in range(0, len(ids), CHUNK):
            result = traces_diagnose(
                workspace_id=workspace.pk, trace_ids=ids[start : start + CHUNK],
                force=options["all"], use_batches=options["batch"],
                poll_seconds=options["poll_seconds"], concurrency=options["concurrency"], burst_limit=False,
            )  # fmt: skip
            totals = [a + b for a, b in zip(totals, [result.diagnosed, result.unchanged,
                      result.undiagnosed, result.incidents], strict=True)]  # fmt: skip
            self.stdout.write(f"{min(start + CHUNK, len(ids))}/{len(ids)} traces")
        self.stdout.write(
            f"Diagnosed {totals[0]} traces ({totals[1]} unchanged, skipped): {totals[3]} incidents, "
            f"{totals[2]} failed runs undiagnosed. Embedding and clustering follow in the worker."
        )
