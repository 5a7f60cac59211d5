from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from workspaces.models import ApiKey, Workspace

pytestmark = pytest.mark.django_db


@pytest.mark.shipped_precision  # the demo as `make run` shows it
def test_seed_demo_is_idempotent_and_prints_working_credentials(client, settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert first == second
    assert Workspace.objects.filter(slug="demo").count() == 1
    assert ApiKey.objects.filter(workspace__slug="demo").count() == 1
    password = re.search(r"Password\s+(\S+)", first).group(1)
    key = re.search(r"API key\s+(\S+)", first).group(1)
    assert client.login(username="admin", password=password)
    assert client.get("/w/demo/").status_code == 200
    assert (
        client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    )

    # The loop's human step: a seeded lead labelled five failed runs of each failure
    # the demo agents were built with; modes rest on those labels, and their skills
    # are drafted from the labels' fixes and say so.
    from failures.models import RunLabel
    from skills.models import DistillationJob, Skill
    from skills.services import distillation_run

    labels = RunLabel.objects.filter(workspace__slug="demo", author__username="demo-lead")
    sentences = set(labels.values_list("sentence", flat=True))
    assert len(sentences) == 6 and labels.count() == 30, sentences
    assert "`payments.refund` failed (429 Too Many Requests) and the run stopped there" in sentences
    # The worker drafts what the seed queued (here, in this process).
    for job in DistillationJob.objects.filter(failure_mode__workspace__slug="demo"):
        distillation_run(job_id=job.pk)
    skills = Skill.objects.filter(workspace__slug="demo", source_mode__label__in=sentences)
    assert skills.count() >= 3, list(
        DistillationJob.objects.filter(failure_mode__workspace__slug="demo").values_list(
            "failure_mode__label", "verdict", "detail"
        )
    )
    page = client.get(f"/w/demo/skills/{skills.first().pk}/")
    assert page.status_code == 200 and "demo-lead" in page.content.decode()
