from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from workspaces.models import ApiKey, Workspace

pytestmark = pytest.mark.django_db


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
