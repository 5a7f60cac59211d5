from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from hivemind_web.celery import app as celery_app
from tests.factories import add_member, make_key, make_user, make_workspace
from workspaces.models import Role, Scope, Workspace

# The suite runs tasks inline where it enqueues them (tests about the broker and
# the worker switch to a real one with tests.factories.celery_broker).
celery_app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2 at Django's default cost takes ~0.5 s a hash on 2 cores; six users a
    # test made fixtures the slowest part of the suite. Production keeps PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Pages render the same whether or not collectstatic has run in this checkout.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _evidence_precision(request: Any, monkeypatch: Any, tmp_path_factory: Any) -> Any:
    """Tests see a fixed table of how often each kind of evidence was right: none
    measured, so every kind is a cause, whatever bench/truth.py last wrote into
    failures/diagnosis/evidence_precision.json. Tests about the gate write their own
    table; `@pytest.mark.shipped_precision` keeps the shipped one."""
    from failures.diagnosis import evidence

    if request.node.get_closest_marker("shipped_precision") is None:
        table = tmp_path_factory.mktemp("precision") / "evidence_precision.json"
        table.write_text('{"half": "tune", "kinds": {}}')
        monkeypatch.setattr(evidence, "PRECISION_FILE", table)
    evidence.measured.cache_clear()
    yield
    evidence.measured.cache_clear()


@dataclass
class Tenant:
    """A workspace with an admin, a lead, a viewer and an agent key (ingest, skills:read,
    failures:read; not export)."""

    workspace: Workspace
    admin: Any
    lead: Any
    viewer: Any
    key: str

    def client_for(self, user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    def api_headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


def _tenant(name: str) -> Tenant:
    admin = make_user(f"{name}-admin")
    workspace = make_workspace(name=name.title(), owner=admin)
    return Tenant(
        workspace=workspace,
        admin=admin,
        lead=add_member(workspace, Role.LEAD, make_user(f"{name}-lead")),
        viewer=add_member(workspace, Role.VIEWER, make_user(f"{name}-viewer")),
        key=make_key(workspace, scopes=[Scope.INGEST, Scope.SKILLS_READ, Scope.FAILURES_READ]),
    )


@pytest.fixture
def tenant(db: None) -> Tenant:
    return _tenant("acme")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    """A second workspace: nothing of `tenant` may be visible to it."""
    return _tenant("globex")


@pytest.fixture
def anon() -> Client:
    return Client()
