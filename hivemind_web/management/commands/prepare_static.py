"""Every system check, then `collectstatic`: what `make run` (hivemind_web/run.py)
runs beside its migrations, which skip the checks. The checks run once, off the
path to a migrated schema."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run every system check, then collect the static files (no prompt)."
    requires_system_checks = "__all__"

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("collectstatic", interactive=False, verbosity=0, skip_checks=True)
