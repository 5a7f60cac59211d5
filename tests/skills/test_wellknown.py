"""/.well-known/agent-skills/index.json, `skills pull --index`, `doctor` and `replay`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skills import review
from tests.factories import make_key
from tests.skills.test_review_and_api import make_skill, published_skill
from traces.models import Trace
from workspaces.models import Scope

ROOT = Path(__file__).resolve().parents[2]
INDEX = "/.well-known/agent-skills/index.json"


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.django_db
def test_index_lists_published_skills_with_digests_of_immutable_versioned_paths(client, tenant):
    published_skill(tenant)
    make_skill(tenant.workspace, name="still-a-proposal")
    index = client.get(INDEX, headers=auth(tenant.key))
    assert index.status_code == 200
    data = index.json()
    assert data["$schema"] == "https://schemas.agentskills.io/discovery/0.2.0/schema.json"
    [entry] = data["skills"]
    assert entry["name"] == "respect-rate-limits" and entry["type"] == "skill-md"
    assert entry["url"] == "/.well-known/agent-skills/respect-rate-limits/v1/SKILL.md"
    document = client.get(entry["url"], headers=auth(tenant.key))
    assert document.status_code == 200 and "immutable" in document["Cache-Control"]
    assert entry["digest"] == "sha256:" + hashlib.sha256(document.content).hexdigest()
    missing = client.get("/.well-known/agent-skills/respect-rate-limits/v7/SKILL.md",
                         headers=auth(tenant.key))  # fmt: skip
    assert missing.status_code == 404 and "v1/SKILL.md" in missing.json()["detail"]


@pytest.mark.django_db
def test_index_access(client, tenant, other_tenant):
    published_skill(tenant)
    assert client.get(INDEX).status_code == 401
    assert client.get(INDEX, headers=auth("hm_nope_nope")).status_code == 401
    ingest_only = make_key(tenant.workspace, scopes=[Scope.INGEST])
    refused = client.get(INDEX, headers=auth(ingest_only))
    assert refused.status_code == 403 and "skills:read" in refused.json()["detail"]
    assert client.get(INDEX, headers=auth(other_tenant.key)).json()["skills"] == []
    url = "/.well-known/agent-skills/respect-rate-limits/v1/SKILL.md"
    assert client.get(url, headers=auth(other_tenant.key)).status_code == 404
    assert client.get(url).status_code == 401


@pytest.mark.django_db
def test_a_skill_on_trial_is_listed_only_for_its_treated_sessions(client, tenant):
    skill = make_skill(tenant.workspace)
    review.skill_approve(skill=skill, number=1, actor=tenant.lead, rollout="trial",
                         holdout_share=0.5)  # fmt: skip
    assert client.get(INDEX, headers=auth(tenant.key)).json()["skills"] == []  # no session id
    served = [
        bool(client.get(INDEX, headers={**auth(tenant.key), "X-Hivemind-Session": f"s{i}"})
             .json()["skills"])
        for i in range(40)
    ]  # fmt: skip
    assert 5 < sum(served) < 35


def run_client(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hivemind_client", *args], cwd=ROOT,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_pull_through_the_index_downloads_only_changed_digests(live_server, tenant, tmp_path):
    published_skill(tenant)
    env = {"HIVEMIND_URL": live_server.url, "HIVEMIND_API_KEY": tenant.key}
    first = run_client(["skills", "pull", "--index", "--dir", str(tmp_path)], env)
    assert first.returncode == 0, first.stderr
    assert "Back off on HTTP 429" in (tmp_path / "respect-rate-limits" / "SKILL.md").read_text()
    again = run_client(["skills", "pull", "--index", "--dir", str(tmp_path)], env)
    assert "up to date" in again.stdout
    bad = run_client(["skills", "pull", "--index", "--hook", "--dir", str(tmp_path)],
                     {**env, "HIVEMIND_API_KEY": "hm_nope_nope"})  # fmt: skip
    assert bad.returncode == 0 and "401" in bad.stderr  # a hook never fails the session


@pytest.mark.django_db(transaction=True)
def test_a_pull_with_nothing_published_says_so(live_server, tenant, tmp_path):
    """It said "Wrote 0 skill(s), removed 0." (and, through the index, "Skills are up
    to date."), which reads as a pull that did nothing wrong: nothing is published."""
    make_skill(tenant.workspace)  # proposed, never approved
    env = {"HIVEMIND_URL": live_server.url, "HIVEMIND_API_KEY": tenant.key}
    for index in ([], ["--index"]):
        pulled = run_client(["skills", "pull", *index, "--dir", str(tmp_path)], env)
        assert pulled.returncode == 0, pulled.stderr
        assert "No skill is published for this session yet" in pulled.stdout, index
    hook = run_client(["skills", "pull", "--hook", "--dir", str(tmp_path / "h")], env)
    assert "No skill is published" not in hook.stdout  # a hook's output is the agent's context


@pytest.mark.django_db(transaction=True)
def test_doctor_says_what_to_fix(live_server, tenant, tmp_path):
    ok = run_client(["doctor"], {"HIVEMIND_URL": live_server.url, "HIVEMIND_API_KEY": tenant.key,
                                 "HIVEMIND_SPOOL": str(tmp_path / "spool.jsonl")})  # fmt: skip
    assert ok.returncode == 0, ok.stdout
    assert "healthz answered 200" in ok.stdout and "workspace 'acme'" in ok.stdout
    skills_only = make_key(tenant.workspace, scopes=[Scope.SKILLS_READ])
    fix = run_client(["doctor"], {"HIVEMIND_URL": live_server.url, "HIVEMIND_API_KEY": skills_only,
                                  "HIVEMIND_SPOOL": str(tmp_path / "spool.jsonl")})  # fmt: skip
    assert fix.returncode == 1 and "FIX   the key lacks 'ingest'" in fix.stdout
    unset = run_client(["doctor"], {"HIVEMIND_SPOOL": str(tmp_path / "spool.jsonl")})
    assert (
        "HIVEMIND_URL is not set" in unset.stdout and "HIVEMIND_API_KEY is not set" in unset.stdout
    )


@pytest.mark.django_db(transaction=True)
def test_replay_sends_a_recorded_session_in_order(live_server, tenant, tmp_path):
    from tests.traces.test_claude_code import _session_with_failures

    recorded = tmp_path / "session.jsonl"
    recorded.write_text("\n".join(json.dumps(e) for e in _session_with_failures("rec-1")) + "\n")
    result = run_client(["replay", str(recorded)],
                        {"HIVEMIND_URL": live_server.url, "HIVEMIND_API_KEY": tenant.key})  # fmt: skip
    assert result.returncode == 0, result.stderr
    trace = Trace.objects.get(external_id="claude-code-rec-1")
    assert trace.status == "succeeded" and trace.step_count == 32  # prompt, 29 calls, stop, end
