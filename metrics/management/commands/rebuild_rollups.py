from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from metrics.services import rollups_rebuild


class Command(BaseCommand):
    help = "Recompute the daily metric rollups from raw traces."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace-id", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        rows = rollups_rebuild(workspace_id=options["workspace_id"])
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {rows} rollup rows."))
