"""Create (or refresh) the demo workspace, its admin and an API key, and print them.

Idempotent: running it again reuses the same workspace, user and key. The demo
password and key are kept in HIVEMIND_DATA_DIR/demo_credentials.json (mode 600)
because the database only holds their hashes and a second run must still be
able to print them.
"""

from __future__ import annotations

import gc
import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from workspaces.models import ApiKey, Role, Scope, Workspace
from workspaces.services import api_key_create, hash_secret, membership_set, workspace_create

DEMO_SLUG = "demo"
DEMO_USERNAME = "admin"
DEMO_TRACES = 720
DEMO_LEAD = "demo-lead"
# Runs the seeded lead labels per failure the demo agents were built with: five,
# the fewest a skill's instruction may rest on (skills/distill.py).
DEMO_LABELS = 5


class Command(BaseCommand):
    help = "Create the demo workspace, an admin user and an API key; print their credentials."

    def run_from_argv(self, argv: list[str]) -> None:
        super().run_from_argv(argv)
        # Run as its own process (`make run` seeds beside the start), the command
        # ends here. The interpreter's collections on the way out would scan
        # everything the seed left (the ingest, mining and clustering above): ~0.4 s
        # of CPU, spent while the web server answers the first pages a person
        # opens. Frozen, they are skipped; memory goes back to the system at exit
        # either way. (Not in call_command, where the process goes on.)
        gc.freeze()

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.DATA_DIR) / "demo_credentials.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        with transaction.atomic():
            user, password = self._admin(stored.get("password"))
            workspace = self._workspace(user)
            api_key = self._api_key(workspace, user, stored.get("api_key"))
        self._traces(workspace)
        path.write_text(json.dumps({"password": password, "api_key": api_key}))
        path.chmod(0o600)
        url = settings.HIVEMIND_PUBLIC_URL.rstrip("/")
        self.stdout.write(
            self.style.SUCCESS("Demo workspace ready.")
            + f"\n  Open      {url}/login/"
            + f"\n  Username  {DEMO_USERNAME}"
            + f"\n  Password  {password}"
            + f"\n  API key   {api_key}   (scopes: ingest, skills:read, failures:read)\n"
        )

    def _admin(self, password: str | None) -> tuple[Any, str]:
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "admin@example.com"}
        )
        if not password or not user.check_password(password):
            password = password or secrets.token_urlsafe(12)
            user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        return user, password

    def _workspace(self, user: Any) -> Workspace:
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if workspace is None:
            return workspace_create(name="Demo", slug=DEMO_SLUG, owner=user)
        membership_set(workspace=workspace, user=user, role=Role.ADMIN, actor=None)
        return workspace

    def _traces(self, workspace: Workspace) -> None:
        """Demo traces, sent through the same ingest service agents use.

        External ids are fixed, so a second run updates the same traces.
        Timestamps are anchored to the first seed, so the demo stays put.
        """
        from traces.demo import demo_traces
        from traces.models import Trace
        from traces.services import trace_ingest_batch

        seeded = Trace.objects.filter(workspace=workspace, external_id__startswith="demo-").count()
        if seeded < DEMO_TRACES:  # re-sending would change nothing (ingest upserts), only cost time
            anchor = workspace.created_at.replace(microsecond=0)
            items = demo_traces(count=DEMO_TRACES, now=anchor)
            for start in range(0, len(items), 200):
                trace_ingest_batch(workspace=workspace, items=items[start : start + 200])
        # The newcomer sees failure modes at once: the stages the worker would run
        # after ingest, run here directly (idempotent if the worker runs them too).
        from failures.embedding import incidents_embed
        from failures.mining import incidents_mine
        from failures.services import failure_modes_recluster

        trace_ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
        incidents_mine(workspace_id=workspace.pk, trace_ids=trace_ids)
        self._labels(workspace)
        incidents_embed(workspace_id=workspace.pk)
        failure_modes_recluster(workspace_id=workspace.pk)  # cheap; no model needed
        # One proposed skill per recurring mode (offline unless Claude is set up),
        # drafted by the worker once it is up: the jobs are queued here, and the
        # mode pages say "Queued" / "Drafting" until each skill is there.
        from skills.services import distill_due

        distill_due(workspace_id=workspace.pk)

    def _labels(self, workspace: Workspace) -> None:
        """The loop's human step, as a lead takes it in Review runs: a tool error the
        run ended on is only a weak lead (labelled runs show that kind of evidence is
        right less often than not), so the demo's failed runs start undiagnosed. A
        seeded lead, `demo-lead`, labels up to `DEMO_LABELS` failed runs of each
        failure the demo agents were built with, at the failing call, with a sentence
        and a fix; modes and skills then rest on those labels and say so. Runs already
        labelled are left as they are."""
        from failures.labels import Author, label_save
        from failures.models import RunLabel
        from traces.demo import DEMO_AGENTS, DEMO_FIXES
        from traces.models import Step

        User = get_user_model()
        lead, _ = User.objects.get_or_create(
            username=DEMO_LEAD, defaults={"email": "lead@example.com", "first_name": "Demo lead"}
        )
        if lead.has_usable_password():
            lead.set_unusable_password()  # a seeded author, not an account to sign in with
            lead.save()
        membership_set(workspace=workspace, user=lead, role=Role.LEAD, actor=None)
        author = Author(user=lead)
        for agent, spec in DEMO_AGENTS.items():
            for tool, template, _, recovery in spec["modes"]:
                what = template.split(":")[0].split(" (")[0].strip()
                sentence = f"`{tool}` failed ({what}) and the run stopped there"
                fix = DEMO_FIXES.get(tool) or (
                    f"When `{tool}` fails with {what}, call `{recovery}` next, "
                    "as the runs that got past it did"
                )
                steps = (
                    Step.objects.filter(
                        trace__workspace=workspace,
                        trace__agent=agent,
                        trace__status="failed",
                        name=tool,
                        kind="tool_call",
                    )  # fmt: skip
                    .exclude(error="")
                    .select_related("trace")
                    .order_by("trace__external_id")[:DEMO_LABELS]
                )
                labelled = set(
                    RunLabel.objects.filter(workspace=workspace).values_list("trace_id", flat=True)
                )
                for step in steps:
                    if step.trace_id not in labelled:
                        label_save(
                            workspace=workspace, trace=step.trace, step_index=step.index,
                            category="tool_use.error_not_handled", sentence=sentence, fix=fix,
                            author=author,
                        )  # fmt: skip

    def _api_key(self, workspace: Workspace, user: Any, secret: str | None) -> str:
        if secret:
            live = ApiKey.objects.filter(
                workspace=workspace, secret_hash=hash_secret(secret), revoked_at=None
            ).exists()
            if live:
                return secret
        scopes: list[str] = [Scope.INGEST, Scope.SKILLS_READ, Scope.FAILURES_READ]
        return api_key_create(workspace=workspace, name="demo", scopes=scopes, actor=user).secret
