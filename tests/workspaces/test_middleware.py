"""DomainErrorMiddleware: domain errors under page views become responses in one place."""

from __future__ import annotations

import pytest
from django.urls import reverse

from failures.models import FailureMode

pytestmark = pytest.mark.django_db


@pytest.fixture
def mode(tenant):
    return FailureMode.objects.create(workspace=tenant.workspace, label="rate limits",
                                      incident_count=1)  # fmt: skip


def test_not_found_from_a_selector_is_the_404_page(tenant):
    url = reverse("mode_detail", args=[tenant.workspace.slug, 999_999])
    response = tenant.client_for(tenant.viewer).get(url)
    assert response.status_code == 404


def test_refused_action_comes_back_as_a_message_on_the_object_page(tenant, mode):
    url = reverse("mode_merge", args=[tenant.workspace.slug, mode.pk])
    response = tenant.client_for(tenant.lead).post(url, {"target": ""}, follow=True)
    detail = reverse("mode_detail", args=[tenant.workspace.slug, mode.pk])
    assert response.redirect_chain == [(detail, 302)]
    assert b"Choose the mode to merge this one into." in response.content


def test_next_outside_this_site_is_ignored(tenant, mode):
    url = reverse("mode_merge", args=[tenant.workspace.slug, mode.pk])
    response = tenant.client_for(tenant.lead).post(
        url, {"target": str(mode.pk), "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and "evil.example" not in response["Location"]


def test_permission_denied_from_a_service_is_the_403_page(tenant, mode, settings):
    # A viewer reaching a lead-only service (the decorator would stop it first; here
    # the service's own check is what answers).
    from failures import modes
    from workspaces.errors import PermissionDenied

    with pytest.raises(PermissionDenied, match="Only leads and admins can change failure modes"):
        modes.failure_mode_rename(workspace=tenant.workspace, mode_id=mode.pk, label="x",
                                  actor=tenant.viewer)  # fmt: skip
