from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from skills import review
from skills.models import FetchLog, Skill, SkillVersion, WebhookEndpoint
from skills.skillmd import parse, validate
from skills.webhooks import sign, webhook_deliver
from workspaces.errors import Conflict, InvalidInput, PermissionDenied
from workspaces.models import ApiKey, AuditEvent, Scope
from workspaces.services import api_key_revoke

BODY = "## When this applies\nx\n\n## Do\ny\n\n## Don't\nz\n\n## How to check\nw"


def make_skill(
    workspace, name="respect-rate-limits", description="Back off on HTTP 429 rate limits."
):
    skill = Skill.objects.create(workspace=workspace, name=name)
    SkillVersion.objects.create(skill=skill, number=1, description=description, body=BODY,
                                authorship="offline")  # fmt: skip
    return skill


def published_skill(tenant, **kwargs):
    skill = make_skill(tenant.workspace, **kwargs)
    return review.skill_approve(skill=skill, number=1, actor=tenant.lead)


# --- transitions and roles ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["lead", "admin"])
def test_leads_and_admins_can_approve(tenant, role):
    skill = review.skill_approve(
        skill=make_skill(tenant.workspace), number=1, actor=getattr(tenant, role)
    )
    assert skill.status == "published" and skill.published_version.number == 1
    event = AuditEvent.objects.get(action="skill.approve")
    assert event.before == {"status": "proposed"} and event.after["version"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["approve", "edit", "reject", "retire", "rollback"])
def test_viewer_and_outsider_cannot_act(tenant, other_tenant, action):
    skill = make_skill(tenant.workspace)
    calls = {
        "approve": lambda u: review.skill_approve(skill=skill, number=1, actor=u),
        "edit": lambda u: review.skill_edit(skill=skill, description="d", body=BODY, actor=u),
        "reject": lambda u: review.skill_reject(skill=skill, reason="no", actor=u),
        "retire": lambda u: review.skill_retire(skill=skill, reason="", actor=u),
        "rollback": lambda u: review.skill_rollback(skill=skill, number=1, actor=u),
    }
    for user in (tenant.viewer, other_tenant.admin):
        with pytest.raises(PermissionDenied):
            calls[action](user)
    skill.refresh_from_db()
    assert skill.status == "proposed" and skill.versions.count() == 1


@pytest.mark.django_db
def test_full_lifecycle_edit_publish_rollback_retire(tenant):
    skill = published_skill(tenant)
    v2 = review.skill_edit(
        skill=skill, description="Better text.", body=BODY + "\nmore", actor=tenant.lead
    )
    skill.refresh_from_db()
    assert v2.number == 2 and v2.authorship == "user"
    assert (
        skill.status == "published" and skill.published_version.number == 1
    )  # edit is not a publish
    review.skill_approve(skill=skill, number=2, actor=tenant.lead)
    review.skill_rollback(skill=skill, number=1, actor=tenant.lead)
    skill.refresh_from_db()
    assert skill.published_version.number == 1
    review.skill_retire(skill=skill, reason="obsolete", actor=tenant.admin)
    skill.refresh_from_db()
    assert skill.status == "retired"
    actions = list(
        AuditEvent.objects.filter(object_type="Skill")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "skill.approve",
        "skill.edit",
        "skill.approve",
        "skill.rollback",
        "skill.retire",
    ]


@pytest.mark.django_db
def test_forbidden_transitions(tenant):
    skill = make_skill(tenant.workspace)
    with pytest.raises(Conflict):
        review.skill_retire(skill=skill, reason="", actor=tenant.lead)  # not published
    with pytest.raises(Conflict):
        review.skill_rollback(skill=skill, number=1, actor=tenant.lead)
    review.skill_reject(skill=skill, reason="too vague", actor=tenant.lead)
    with pytest.raises(Conflict):
        review.skill_approve(skill=skill, number=1, actor=tenant.lead)  # rejected: edit first
    with pytest.raises(Conflict):
        review.skill_reject(skill=skill, reason="again", actor=tenant.lead)


@pytest.mark.django_db
def test_reject_needs_a_reason_and_edit_is_validated(tenant):
    from workspaces.errors import InvalidInput

    skill = make_skill(tenant.workspace)
    with pytest.raises(InvalidInput, match="Say why"):
        review.skill_reject(skill=skill, reason=" ", actor=tenant.lead)
    with pytest.raises(InvalidInput, match="description"):
        review.skill_edit(skill=skill, description="", body=BODY, actor=tenant.lead)


@pytest.mark.django_db
def test_version_diff_is_side_by_side_and_escaped(tenant):
    skill = make_skill(tenant.workspace)
    v2 = review.skill_edit(skill=skill, description="<b>new</b>", body=BODY, actor=tenant.lead)
    html = review.version_diff(skill.versions.get(number=1), v2)
    assert "<table" in html and "&lt;b&gt;new" in html


@pytest.mark.django_db
def test_review_pages_enforce_roles(tenant, other_tenant, anon):
    skill = make_skill(tenant.workspace)
    url = reverse("skill_approve", args=[tenant.workspace.slug, skill.pk])
    assert anon.post(url, {"version": 1}).status_code == 302
    assert other_tenant.client_for(other_tenant.admin).post(url, {"version": 1}).status_code == 404
    assert tenant.client_for(tenant.viewer).post(url, {"version": 1}).status_code == 403
    skill.refresh_from_db()
    assert skill.status == "proposed"
    assert tenant.client_for(tenant.lead).post(url, {"version": 1}).status_code == 302
    skill.refresh_from_db()
    assert skill.status == "published"
    page = tenant.client_for(tenant.viewer).get(
        reverse("skill_detail", args=[tenant.workspace.slug, skill.pk])
    )
    assert b"skill.approve" in page.content and b"Approve and publish" not in page.content


# --- the agents' API ------------------------------------------------------------------


@pytest.mark.django_db
def test_only_published_skills_are_served(client, tenant):
    published_skill(tenant)
    make_skill(tenant.workspace, name="still-proposed", description="Not yet reviewed.")
    body = client.get("/api/v1/skills", headers=tenant.api_headers()).json()
    assert [s["name"] for s in body["items"]] == ["respect-rate-limits"]
    assert body["items"][0]["url"].endswith("/api/v1/skills/respect-rate-limits")
    assert (
        client.get("/api/v1/skills/still-proposed", headers=tenant.api_headers()).status_code == 404
    )


@pytest.mark.django_db
def test_etag_and_304(client, tenant):
    published_skill(tenant)
    first = client.get("/api/v1/skills", headers=tenant.api_headers())
    etag = first["ETag"]
    assert etag.startswith('"') and len(etag) > 10
    again = client.get("/api/v1/skills", headers={**tenant.api_headers(), "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = published_skill(tenant, name="second-skill", description="Another.")
    assert other.status == "published"
    changed = client.get("/api/v1/skills", headers={**tenant.api_headers(), "If-None-Match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.django_db
def test_fast_list_answers_exactly_what_the_view_answers(client, tenant):
    """The plain poll is served from the published set before the view; a query
    string sends it through the ninja view. Both must say the same."""
    published_skill(tenant)
    published_skill(tenant, name="check-sql-columns", description="Inspect columns first.")
    fast = client.get("/api/v1/skills", headers=tenant.api_headers())
    view = client.get("/api/v1/skills", {"offset": 0}, headers=tenant.api_headers())
    assert fast.status_code == view.status_code == 200
    assert fast["Content-Type"] == "application/json"
    assert fast.json() == view.json() and fast["ETag"] == view["ETag"]
    assert [i["name"] for i in fast.json()["items"]] == ["check-sql-columns", "respect-rate-limits"]
    assert FetchLog.objects.count() == 2  # both polls logged


@pytest.mark.django_db
def test_fast_list_follows_every_transition_and_refuses_bad_keys(client, tenant):
    skill = published_skill(tenant)

    def names():
        return [
            i["name"]
            for i in client.get("/api/v1/skills", headers=tenant.api_headers()).json()["items"]
        ]

    assert names() == ["respect-rate-limits"]
    review.skill_retire(skill=skill, reason="obsolete", actor=tenant.lead)
    assert names() == []
    review.skill_approve(skill=skill, number=1, actor=tenant.lead)
    assert names() == ["respect-rate-limits"]
    api_key = ApiKey.objects.get(workspace=tenant.workspace, revoked_at=None,
                                 scopes__contains=[Scope.SKILLS_READ])  # fmt: skip
    revoked = client.get("/api/v1/skills", headers={"Authorization": "Bearer hm_nope_x"})
    assert revoked.status_code == 401 and "Unknown API key" in revoked.json()["detail"]
    api_key_revoke(api_key=api_key, actor=None)
    gone = client.get("/api/v1/skills", headers=tenant.api_headers())
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]


@pytest.mark.django_db
def test_task_ranking_puts_the_relevant_skill_first(client, tenant):
    published_skill(
        tenant,
        name="respect-rate-limits",
        description="Back off when an API answers 429 Too Many Requests.",
    )
    published_skill(
        tenant,
        name="check-sql-columns",
        description="Inspect table columns before writing SQL queries.",
    )
    published_skill(
        tenant,
        name="verify-email-addresses",
        description="Validate recipient email addresses before sending mail.",
    )
    body = client.get("/api/v1/skills", {"task": "write a SQL query for the revenue table", "k": 2},
                      headers=tenant.api_headers()).json()  # fmt: skip
    assert body["items"][0]["name"] == "check-sql-columns" and len(body["items"]) == 2
    assert body["items"][0]["score"] > body["items"][1]["score"]


@pytest.mark.django_db
def test_skill_file_and_zip_are_spec_valid(client, tenant):
    published_skill(tenant)
    text = client.get("/api/v1/skills/respect-rate-limits", headers=tenant.api_headers())
    assert text["Content-Type"].startswith("text/markdown")
    doc = parse(text.content.decode())
    assert doc.name == "respect-rate-limits" and not validate(doc)
    archive = zipfile.ZipFile(
        io.BytesIO(client.get("/api/v1/skills.zip", headers=tenant.api_headers()).content)
    )
    assert archive.namelist() == ["respect-rate-limits/SKILL.md"]
    assert not validate(parse(archive.read("respect-rate-limits/SKILL.md").decode()))


@pytest.mark.django_db
def test_fetch_log_records_agent_session_and_skills(client, tenant):
    published_skill(tenant)
    client.get("/api/v1/skills", headers={**tenant.api_headers(), "X-Hivemind-Agent": "bot",
                                          "X-Hivemind-Session": "sess-9"})  # fmt: skip
    log = FetchLog.objects.get()
    assert (log.agent, log.session_id, log.skills) == ("bot", "sess-9", ["respect-rate-limits@1"])


@pytest.mark.django_db
def test_api_keys_cannot_write_and_need_the_scope(client, tenant):
    from tests.factories import make_key

    published_skill(tenant)
    for method in ("post", "put", "patch", "delete"):
        for url in ("/api/v1/skills", "/api/v1/skills/respect-rate-limits"):
            response = getattr(client, method)(url, headers=tenant.api_headers())
            assert response.status_code == 405, (method, url)
    ingest_only = make_key(tenant.workspace, scopes=[Scope.INGEST])
    response = client.get("/api/v1/skills", headers={"Authorization": f"Bearer {ingest_only}"})
    assert response.status_code == 403 and "skills:read" in response.json()["detail"]
    assert client.get("/api/v1/skills").status_code == 401


@pytest.mark.django_db
def test_skills_api_is_isolated_per_workspace(client, tenant, other_tenant):
    published_skill(tenant)
    for url in ("/api/v1/skills", "/api/v1/skills.zip"):
        own = client.get(url, headers=tenant.api_headers())
        assert own.status_code == 200 and b"respect-rate-limits" in own.content  # not vacuous
        response = client.get(url, headers=other_tenant.api_headers())
        assert response.status_code == 200 and b"respect-rate-limits" not in response.content
    own = client.get("/api/v1/skills/respect-rate-limits", headers=tenant.api_headers())
    assert own.status_code == 200 and b"name: respect-rate-limits" in own.content
    theirs = client.get("/api/v1/skills/respect-rate-limits", headers=other_tenant.api_headers())
    assert theirs.status_code == 404 and "respect-rate-limits" in theirs.json()["detail"]


# --- webhooks ------------------------------------------------------------------------


@pytest.mark.django_db
def test_publish_webhook_is_signed_and_recorded(
    tenant, django_capture_on_commit_callbacks, settings
):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            received["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            received["signature"] = self.headers["X-Hivemind-Signature"]
            self.send_response(204)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    settings.HIVEMIND_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the test's own listener
    endpoint = WebhookEndpoint.objects.create(
        workspace=tenant.workspace,
        url=f"http://127.0.0.1:{server.server_address[1]}/hook",
        secret="s3cret",
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        published_skill(tenant)
    assert callbacks  # the delivery is enqueued after commit
    from skills.webhooks import webhook_enqueue

    skill = Skill.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        webhook_enqueue(skill_id=skill.pk, version_id=skill.published_version_id)
    delivery = webhook_deliver(delivery_id=endpoint.deliveries.get().pk)
    server.server_close()
    assert delivery.state == "delivered" and delivery.response_code == 204
    assert received["signature"] == sign("s3cret", received["body"])
    assert json.loads(received["body"])["skill"] == "respect-rate-limits"
    assert endpoint.deliveries.count() == 1


# --- the pull client against a live server --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pull_client_adds_updates_removes_and_keeps_foreign_folders(live_server, tenant, tmp_path):
    from hivemind_client.skills import pull

    target = tmp_path / "skills"
    (target / "my-own-notes").mkdir(parents=True)
    (target / "my-own-notes" / "SKILL.md").write_text("mine")
    skill = published_skill(tenant)
    other = published_skill(tenant, name="second-skill", description="Another one.")

    first = pull(url=live_server.url, key=tenant.key, directory=target)
    assert sorted(first.written) == ["respect-rate-limits", "second-skill"]
    assert "name: respect-rate-limits" in (target / "respect-rate-limits" / "SKILL.md").read_text()

    assert pull(url=live_server.url, key=tenant.key, directory=target).changed is False  # ETag

    review.skill_edit(skill=skill, description="Updated text.", body=BODY, actor=tenant.lead)
    review.skill_approve(skill=skill, number=2, actor=tenant.lead)
    review.skill_retire(skill=other, reason="", actor=tenant.lead)
    third = pull(url=live_server.url, key=tenant.key, directory=target)
    assert third.removed == ["second-skill"] and not (target / "second-skill").exists()
    assert "Updated text." in (target / "respect-rate-limits" / "SKILL.md").read_text()
    assert (target / "my-own-notes" / "SKILL.md").read_text() == "mine"


def test_pull_cli_needs_url_and_key(capsys, monkeypatch):
    from hivemind_client.__main__ import main

    monkeypatch.delenv("HIVEMIND_URL", raising=False)
    monkeypatch.delenv("HIVEMIND_API_KEY", raising=False)
    assert main(["skills", "pull"]) == 2
    assert "HIVEMIND_API_KEY" in capsys.readouterr().err


@pytest.mark.django_db
def test_webhook_settings_page_access(tenant, other_tenant, anon, monkeypatch):
    import socket

    # hooks.example.com stands for a public host (no DNS in tests).
    monkeypatch.setattr("skills.outbound.resolve", lambda host, port, **kw: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))])  # fmt: skip
    url = reverse("webhook_settings", args=[tenant.workspace.slug])
    assert anon.get(url).status_code == 302
    assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
    assert tenant.client_for(tenant.lead).get(url).status_code == 403
    response = tenant.client_for(tenant.admin).post(
        url, {"url": "https://hooks.example.com/hivemind", "secret": "abc", "active": "on"}
    )
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get(workspace=tenant.workspace).url.endswith("/hivemind")
    page = tenant.client_for(tenant.admin).get(reverse("settings", args=[tenant.workspace.slug]))
    assert b"hooks.example.com" in page.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "view, data, published_first",
    [("skill_edit", {"description": "New text.", "body": BODY}, False),
     ("skill_reject", {"reason": "vague"}, False),
     ("skill_retire", {"reason": ""}, True),
     ("skill_rollback", {"version": "1"}, True)],
)  # fmt: skip
def test_every_review_action_access(tenant, other_tenant, anon, view, data, published_first):
    skill = make_skill(tenant.workspace)
    if published_first:
        skill = published_skill_from(tenant, skill)
    url = reverse(view, args=[tenant.workspace.slug, skill.pk])
    before = (skill.status, skill.versions.count(), skill.published_version_id)
    assert anon.post(url, data).status_code == 302
    assert other_tenant.client_for(other_tenant.admin).post(url, data).status_code == 404
    assert tenant.client_for(tenant.viewer).post(url, data).status_code == 403
    skill.refresh_from_db()
    assert (skill.status, skill.versions.count(), skill.published_version_id) == before
    assert tenant.client_for(tenant.lead).post(url, data).status_code == 302
    skill.refresh_from_db()
    assert (skill.status, skill.versions.count(), skill.published_version_id) != before


def published_skill_from(tenant, skill):
    """Published at v2 (so there is something to roll back to)."""
    review.skill_approve(skill=skill, number=1, actor=tenant.lead)
    review.skill_edit(skill=skill, description="Second.", body=BODY, actor=tenant.lead)
    return review.skill_approve(skill=skill, number=2, actor=tenant.lead)


@pytest.mark.django_db
def test_rename_is_a_new_version_keeps_history_and_the_old_name_redirects(client, tenant):
    skill = published_skill(tenant)
    old = skill.name
    version = review.skill_rename(skill=skill, name="honour-refund-rate-limits", actor=tenant.lead)
    skill.refresh_from_db()
    assert skill.name == "honour-refund-rate-limits" and version.number == 2
    assert [v.number for v in skill.versions.order_by("number")] == [1, 2]
    assert version.body == skill.versions.get(number=1).body
    event = AuditEvent.objects.get(workspace=tenant.workspace, action="skill.rename")
    assert event.after["from_name"] == old and event.after["to_name"] == skill.name
    listed = client.get("/api/v1/skills", headers=tenant.api_headers()).json()["items"]
    assert [s["name"] for s in listed] == ["honour-refund-rate-limits"]
    moved = client.get(f"/api/v1/skills/{old}", headers=tenant.api_headers())
    assert moved.status_code == 301 and moved["Location"].endswith("/api/v1/skills/" + skill.name)
    served = client.get(moved["Location"].split("127.0.0.1:8000")[-1], headers=tenant.api_headers())
    assert b"name: honour-refund-rate-limits" in served.content
    with pytest.raises(InvalidInput):
        review.skill_rename(skill=skill, name="Not A Name", actor=tenant.lead)
    with pytest.raises(PermissionDenied):
        review.skill_rename(skill=skill, name="other-name", actor=tenant.viewer)
    review.skill_retire(skill=skill, reason="done", actor=tenant.lead)
    gone = client.get(f"/api/v1/skills/{old}", headers=tenant.api_headers())
    assert gone.status_code == 410 and "renamed to" in gone.json()["detail"]
    other = client.get(f"/api/v1/skills/{old}", headers={"Authorization": "Bearer hm_x_y"})
    assert other.status_code == 401


@pytest.mark.django_db
def test_the_skill_page_shows_what_agents_receive_after_rollback_and_retire(tenant):
    from failures.models import FailureMode, ModeStatus

    mode = FailureMode.objects.create(workspace=tenant.workspace, label="m", incident_count=3)
    skill = make_skill(tenant.workspace)
    SkillVersion.objects.filter(skill=skill).update(source_mode=mode)
    review.skill_approve(skill=skill, number=1, actor=tenant.lead)
    mode.refresh_from_db()
    assert mode.status == ModeStatus.ADDRESSED
    review.skill_edit(skill=skill, description=skill.latest_version.description,
                      body=skill.latest_version.body + "\n- One more line.", actor=tenant.lead)  # fmt: skip
    review.skill_approve(skill=skill, number=2, actor=tenant.lead)
    review.skill_rollback(skill=skill, number=1, actor=tenant.lead)
    url = reverse("skill_detail", args=[tenant.workspace.slug, skill.pk])
    page = tenant.client_for(tenant.viewer).get(url).content.decode()
    assert "Agents receive v1" in page and "Showing</dt><dd>v1" in page
    assert "newer draft, not served" in page  # v2 is listed, not shown as served
    review.skill_retire(skill=skill, reason="done", actor=tenant.lead)
    page = tenant.client_for(tenant.viewer).get(url).content.decode()
    assert "Not served: retired on" in page and "agents receive this" not in page
    assert "served until retired" in page
    impact = (
        tenant.client_for(tenant.viewer)
        .get(
            reverse("skill_impact", args=[tenant.workspace.slug, skill.pk]), HTTP_HX_REQUEST="true"
        )
        .content.decode()
    )
    assert "retired since: no longer served" in impact
    mode.refresh_from_db()
    assert mode.status == ModeStatus.OPEN  # no published skill addresses it any more


@pytest.mark.django_db
def test_editing_a_published_skill_shows_the_new_version_with_its_diff_and_approve(tenant):
    skill = published_skill(tenant)
    lead = tenant.client_for(tenant.lead)
    url = reverse("skill_edit", args=[tenant.workspace.slug, skill.pk])
    body = skill.published_version.body + "\n- Check the retry-after header first."
    response = lead.post(url, {"description": skill.published_version.description, "body": body},
                         follow=True)  # fmt: skip
    page = response.content.decode()
    assert response.redirect_chain[-1][0].endswith("?version=2")
    assert "Saved as v2. Review the diff below, then approve it." in page
    assert "Changes from v1 to v2" in page and "Approve and publish v2" in page
    assert "not what agents receive" in page  # v1 is still what agents get
    # The published skill's earlier version: "Serve … again", one word per action.
    review.skill_approve(skill=skill, number=2, actor=tenant.lead)
    page = lead.get(
        reverse("skill_detail", args=[tenant.workspace.slug, skill.pk])
    ).content.decode()
    assert "Serve this version again" in page and "Roll back" not in page
