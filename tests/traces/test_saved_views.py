"""Saved views of the trace list (6/8 item 3): a person names the list's filters and
finds them again; the view is theirs only, rebuilt from valid filters, and each
bad save says what to do."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import ingest, trace_payload
from traces.models import SavedView
from traces.services import SAVED_VIEWS_MAX

pytestmark = pytest.mark.django_db


def _save(client, slug: str, name: str, query: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("trace_view_save", args=[slug]), {"name": name, "query": query})


def test_a_viewer_saves_filters_and_finds_them_again_and_nobody_else_sees_them(tenant):
    ingest(tenant.workspace, [trace_payload("t-failed", status="failed"),
                              trace_payload("t-ok", status="succeeded")])  # fmt: skip
    slug = tenant.workspace.slug
    viewer = tenant.client_for(tenant.viewer)
    listing = viewer.get(reverse("trace_list", args=[slug]) + "?status=failed&sort=-steps")
    assert "Save these filters as" in listing.content.decode()
    assert 'value="status=failed&amp;sort=-steps"' in listing.content.decode()
    # Unknown parameters and the page number are not part of a view.
    response = _save(viewer, slug, "  Failed   runs ", "status=failed&sort=-steps&page=3&evil=1")
    assert response.status_code == 302
    assert response["Location"].endswith("/traces/?status=failed&sort=-steps")
    view = SavedView.objects.get(workspace=tenant.workspace, user=tenant.viewer)
    assert (view.name, view.query) == ("Failed runs", "status=failed&sort=-steps")
    page = viewer.get(reverse("trace_list", args=[slug])).content.decode()
    assert ">Failed runs</a>" in page and "?status=failed&amp;sort=-steps" in page
    # The same name replaces the view.
    _save(viewer, slug, "Failed runs", "status=succeeded")
    assert SavedView.objects.get(user=tenant.viewer).query == "status=succeeded"
    # Another person of the same workspace sees none of it, and cannot delete it.
    lead = tenant.client_for(tenant.lead)
    assert ">Failed runs</a>" not in lead.get(reverse("trace_list", args=[slug])).content.decode()
    refused = lead.post(reverse("trace_view_delete", args=[slug, view.pk]))
    assert refused.status_code == 404 and SavedView.objects.filter(pk=view.pk).exists()
    deleted = viewer.post(reverse("trace_view_delete", args=[slug, view.pk]))
    assert deleted.status_code == 302 and not SavedView.objects.filter(pk=view.pk).exists()


def test_each_bad_save_says_what_to_do_and_saves_nothing(tenant):
    slug = tenant.workspace.slug
    viewer = tenant.client_for(tenant.viewer)
    cases = [("", "status=failed", "Give the view a name"),
             ("x" * 81, "status=failed", "at most 80"),
             ("No filters", "page=2", "Set at least one filter"),
             ("Bad filters", "status=exploded", "Set at least one filter")]  # fmt: skip
    for name, query, said in cases:
        response = _save(viewer, slug, name, query)
        assert response.status_code == 400, name
        assert said in response.content.decode(), name
    assert not SavedView.objects.exists()
    for n in range(SAVED_VIEWS_MAX):
        SavedView.objects.create(workspace=tenant.workspace, user=tenant.viewer, name=f"v{n}",
                                 query="status=failed")  # fmt: skip
    full = _save(viewer, slug, "one more", "status=failed")
    assert full.status_code == 400 and "delete one first" in full.content.decode()
    assert _save(viewer, slug, "v1", "status=succeeded").status_code == 302  # replacing is fine


def test_saved_views_refuse_the_anonymous_and_other_workspaces(tenant, other_tenant, anon):
    slug = tenant.workspace.slug
    view = SavedView.objects.create(workspace=tenant.workspace, user=tenant.admin, name="mine",
                                    query="status=failed")  # fmt: skip
    for url in (reverse("trace_view_save", args=[slug]),
                reverse("trace_view_delete", args=[slug, view.pk])):  # fmt: skip
        # The anonymous are sent to log in.
        assert anon.post(url, {"name": "x", "query": "status=failed"}).status_code == 302
        outsider = other_tenant.client_for(other_tenant.admin)
        assert outsider.post(url, {"name": "x", "query": "status=failed"}).status_code == 404
    # An admin of both workspaces: the view belongs to the workspace it was saved in.
    other_slug = other_tenant.workspace.slug
    assert tenant.client_for(tenant.admin).post(
        reverse("trace_view_delete", args=[other_slug, view.pk])).status_code in (403, 404)  # fmt: skip
    assert SavedView.objects.count() == 1
