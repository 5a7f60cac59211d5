"""`manage.py snapshot`: make a training snapshot and write its files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from metrics.models import Snapshot
from metrics.snapshots import SnapshotFilter, snapshot_create
from workspaces.errors import DomainError
from workspaces.models import Workspace


class Command(BaseCommand):
    help = "Make an immutable training snapshot (SFT JSONL + DPO pairs) and write its files."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--min-reward", type=float, default=None)
        parser.add_argument("--agent", default="")
        parser.add_argument("--since", type=date.fromisoformat, default=None)
        parser.add_argument("--until", type=date.fromisoformat, default=None)
        parser.add_argument("--failure-mode", type=int, default=None)
        parser.add_argument("--skill", default="")
        parser.add_argument("--heldout", type=int, default=10, help="held-out percent (0-50)")
        parser.add_argument("--out", default=".", help="directory for the JSONL files")

    def handle(self, *args: Any, **o: Any) -> None:
        workspace = Workspace.objects.filter(slug=o["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace {o['workspace']!r}.")
        filters = SnapshotFilter(
            min_reward=o["min_reward"], agent=o["agent"], since=o["since"], until=o["until"],
            failure_mode=o["failure_mode"], skill=o["skill"], heldout_percent=o["heldout"],
        )  # fmt: skip
        try:
            snapshot = snapshot_create(workspace=workspace, filters=filters, name=o["name"],
                                       actor=None, actor_label="manage.py snapshot")  # fmt: skip
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        out = Path(o["out"])
        out.mkdir(parents=True, exist_ok=True)
        for filename, field in Snapshot.FILES.items():
            path = out / f"snapshot-v{snapshot.version}-{filename}"
            path.write_text(getattr(snapshot, field))
            self.stdout.write(f"wrote {path}")
        self.stdout.write(f"snapshot v{snapshot.version}: {snapshot.counts}")
