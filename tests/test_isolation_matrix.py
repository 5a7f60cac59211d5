"""Cross-workspace matrix: every page and every API operation, asked by another
workspace's admin or API key about this workspace's objects, answers 404 (or
403/405), never this workspace's data, and changes nothing.

The routes are enumerated from the URL resolver and the OpenAPI document, so a
new page or operation joins the matrix by existing; one whose parameters this
test cannot fill fails until it is taught (see PAGE_PARAMS / API_PARAMS).
"""

from __future__ import annotations

import re

import pytest
from django.urls import get_resolver

from failures import labels
from failures.models import AgentPolicy, ClusterRun, FailureMode, Incident, PolicyRule
from hivemind_web.api import api
from metrics.snapshots import SnapshotFilter, snapshot_create
from skills import review
from skills.models import DistillationJob, Skill, SkillVersion
from tests.factories import ingest, make_key, trace_payload
from traces.models import SavedView, Trace
from workspaces.models import ApiKey, AuditEvent, Membership, Scope
from workspaces.services import invitation_create

SECRET_TASK = "Refund order for ACME-ONLY-CUSTOMER"


def _routes():
    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern), p.name

    return [(r, n) for r, n in walk(get_resolver().url_patterns) if r.startswith("w/<slug:slug>/")]


@pytest.fixture
def victim(tenant):
    """A workspace with one of everything."""
    ws = tenant.workspace
    ingest(workspace=ws, items=[trace_payload("acme-secret-trace", task=SECRET_TASK)])
    trace = Trace.objects.get(workspace=ws)
    mode = FailureMode.objects.create(workspace=ws, label="acme-only failure mode",
                                      incident_count=1)  # fmt: skip
    Incident.objects.filter(workspace=ws).update(failure_mode=mode)
    skill = Skill.objects.create(workspace=ws, name="acme-only-skill", source_mode=mode)
    SkillVersion.objects.create(skill=skill, number=1, description="Acme only.",
                                body="## Do\nx", authorship="user")  # fmt: skip
    review.skill_approve(skill=skill, number=1, actor=tenant.lead)
    job = DistillationJob.objects.create(workspace=ws, failure_mode=mode)
    run = ClusterRun.objects.create(workspace=ws)
    snapshot_create(workspace=ws, filters=SnapshotFilter(), actor=tenant.lead)
    label = labels.label_save(workspace=ws, trace=trace, step_index=1,
                              category="process.policy_violation", sentence="acme-only label",
                              author=labels.Author(user=tenant.lead))  # fmt: skip
    policy = AgentPolicy.objects.create(workspace=ws, agent=trace.agent, text="acme-only policy")
    rule = PolicyRule.objects.create(policy=policy, number=1, text="acme-only rule")
    saved = SavedView.objects.create(workspace=ws, user=tenant.admin, name="acme-only view",
                                     query="status=failed")  # fmt: skip
    return {"label": label, "policy": policy, "rule": rule, "saved_view": saved,
        "tenant": tenant, "trace": trace, "mode": mode, "skill": skill, "job": job, "run": run,
        "key": ApiKey.objects.filter(workspace=ws).first(),
        "member": Membership.objects.get(workspace=ws, user=tenant.viewer),
        "invitation": invitation_create(workspace=ws, email="acme-invitee@example.com",
                                        role="viewer", actor=tenant.admin).invitation,
    }  # fmt: skip


def _page_params(name: str, v: dict) -> dict:
    if name.startswith(("mode_", "draft_request")):
        return {"pk": v["mode"].pk, "mode_pk": v["mode"].pk}
    if name.startswith("skill_"):
        return {"pk": v["skill"].pk}
    if name.startswith("label_"):
        return {"pk": v["label"].pk}
    if name == "policy_rule_change":
        return {"pk": v["rule"].pk}
    if name.startswith("policy_"):
        return {"pk": v["policy"].pk}
    return {
        "trace_detail": {"pk": v["trace"].pk},
        "review_run": {"trace_pk": v["trace"].pk},
        "trace_incidents": {"pk": v["trace"].pk},
        "trace_compare": {"pk": v["trace"].pk},
        "trace_view_delete": {"pk": v["saved_view"].pk},
        "cluster_run": {"pk": v["run"].pk},
        "api_key_revoke": {"pk": v["key"].pk},
        "member_role": {"pk": v["member"].pk},
        "member_remove": {"pk": v["member"].pk},
        "invitation_revoke": {"pk": v["invitation"].pk},
        "job_status": {"pk": v["job"].pk},
        "snapshot_download": {"version": 1, "filename": "sft-train.jsonl"},
    }.get(name, {})


def _fill(route: str, params: dict, slug: str) -> str:
    def value(match: re.Match) -> str:
        key = match.group(2)
        if key == "slug":
            return slug
        if key not in params:
            raise AssertionError(f"the isolation matrix cannot fill <{key}> in {route}")
        return str(params[key])

    return "/" + re.sub(r"<(\w+:)?(\w+)>", value, route)


def _fingerprint(v: dict) -> tuple:
    ws = v["tenant"].workspace
    return (
        list(Trace.objects.filter(workspace=ws).values_list("status", "reward", "updated_at")),
        FailureMode.objects.filter(workspace=ws).values_list("label", "status").first(),
        Skill.objects.filter(workspace=ws).values_list("status", "published_version").first(),
        ApiKey.objects.filter(workspace=ws, revoked_at=None).count(),
        sorted(Membership.objects.filter(workspace=ws).values_list("role", flat=True)),
        list(SavedView.objects.filter(workspace=ws).values_list("name", "query")),
    )


@pytest.mark.django_db
def test_every_page_refuses_another_workspaces_admin(victim, other_tenant):
    outsider = other_tenant.client_for(other_tenant.admin)
    before = _fingerprint(victim)
    slug = victim["tenant"].workspace.slug
    routes = _routes()
    assert len(routes) >= 30
    for route, name in routes:
        url = _fill(route, _page_params(name, victim), slug)
        for method in ("get", "post"):
            response = getattr(outsider, method)(url)
            assert response.status_code in (403, 404, 405), (method, url, response.status_code)
            assert SECRET_TASK.encode() not in response.content, url
    assert _fingerprint(victim) == before
    assert not AuditEvent.objects.filter(workspace=victim["tenant"].workspace,
                                         actor=other_tenant.admin).exists()  # fmt: skip


API_PARAMS = {"external_id": "acme-secret-trace", "name": "acme-only-skill", "version": 1,
              "filename": "sft-train.jsonl"}  # fmt: skip


@pytest.mark.django_db
def test_every_api_operation_refuses_another_workspaces_key(client, victim, other_tenant):
    key = make_key(other_tenant.workspace, scopes=list(Scope))
    headers = {"Authorization": f"Bearer {key}"}
    before = _fingerprint(victim)
    paths = api.get_openapi_schema(path_prefix="/api/")["paths"]
    assert len(paths) >= 9
    acme_markers = [SECRET_TASK.encode(), b"acme-only-skill", b"acme-secret-trace", b"acme-only"]
    for path, operations in paths.items():
        url = re.sub(r"\{(\w+)\}", lambda m: str(API_PARAMS[m.group(1)]), path)
        for method in operations:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if method == "get":
                response = client.get(url, headers=headers)
            else:
                response = getattr(client, method)(url, "{}", content_type="application/json",
                                                   headers=headers)  # fmt: skip
            assert response.status_code < 500, (method, url, response.status_code)
            for marker in acme_markers:
                if marker.decode() in url:
                    continue  # the caller's own words echoed back are not a leak
                assert marker not in response.content, (method, url, marker)
    assert _fingerprint(victim) == before
