"""A mode whose skill is only on trial says "On trial", not "Addressed": the trial
serves the skill to part of the sessions (issue 6/8, states that are not true)."""

from __future__ import annotations

import pytest

from failures.models import FailureMode
from skills import review
from tests.skills.test_review_and_api import make_skill

pytestmark = pytest.mark.django_db


def _mode_with_skill(tenant, rollout: str):  # type: ignore[no-untyped-def]
    mode = FailureMode.objects.create(
        workspace=tenant.workspace, label="HTTP 429", incident_count=5
    )
    skill = make_skill(tenant.workspace)
    skill.source_mode = mode
    skill.save(update_fields=["source_mode"])
    review.skill_approve(skill=skill, number=1, actor=tenant.lead, rollout=rollout)
    mode.refresh_from_db()
    assert mode.status == "addressed"
    return mode


def test_the_list_and_the_page_say_on_trial_while_the_skill_is_on_trial(tenant):
    mode = _mode_with_skill(tenant, "trial")
    viewer = tenant.client_for(tenant.viewer)
    slug = tenant.workspace.slug
    cells = viewer.get(f"/w/{slug}/failure-modes/skills/").content.decode()
    assert f'id="mode-status-{mode.pk}" hx-swap-oob="true"' in cells and ">On trial<" in cells
    assert "(on trial)" in cells
    panel = viewer.get(f"/w/{slug}/failure-modes/{mode.pk}/skills/").content.decode()
    assert 'id="mode-status" hx-swap-oob="true"' in panel and "Published on trial" in panel
    page = viewer.get(f"/w/{slug}/failure-modes/{mode.pk}/").content.decode()
    assert 'id="mode-status"' in page  # what the panel's swap replaces


def test_rolled_out_to_everyone_it_stays_addressed(tenant):
    mode = _mode_with_skill(tenant, "all")
    viewer = tenant.client_for(tenant.viewer)
    slug = tenant.workspace.slug
    cells = viewer.get(f"/w/{slug}/failure-modes/skills/").content.decode()
    assert "On trial" not in cells and "(published)" in cells
    panel = viewer.get(f"/w/{slug}/failure-modes/{mode.pk}/skills/").content.decode()
    assert "On trial" not in panel
