"""schemathesis against /api/openapi.json: every operation, generated inputs (valid
and invalid), no 5xx, and every response matches the documented schema (status
code, content type, body). Runs in-process over WSGI against the test database,
authenticated with a key that has every scope."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from hivemind_web.wsgi import application
from tests.factories import make_key
from workspaces.models import Scope

# Loading the schema serves /api/openapi.json through the app (no database access).
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


_current_key: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class TenantKey:
    """The test's key, sent the way the schema documents (Bearer). schemathesis also
    drops or corrupts it to check that every operation then answers 401."""

    def get(self, case, context):  # type: ignore[no-untyped-def]
        return _current_key.get("key", "hm_unset_unset")

    def set(self, case, data, context):  # type: ignore[no-untyped-def]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(autouse=True)
def _keep_test_connection():  # type: ignore[no-untyped-def]
    """As Django's test client does: a finished request must not close the test
    transaction's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case, tenant):  # type: ignore[no-untyped-def]
    _current_key["key"] = make_key(tenant.workspace, scopes=list(Scope))
    response = case.call(headers={"Host": "127.0.0.1"})
    excluded = []
    if case.operation.path == "/api/v1/traces" and case.method == "POST":
        # Documented design (issue 2/9): each trace in a batch is judged on its own;
        # a batch with some invalid traces stores the valid ones and answers 207.
        excluded.append(negative_data_rejection)
        # And rules across fields that a schema cannot state: two steps of a trace
        # sharing an index (a step without one takes its position), one external id
        # twice in a batch. A batch of only such traces is a 422 with the reason.
        excluded.append(positive_data_acceptance)
    if case.operation.path == "/api/v1/snapshots" and case.method == "POST":
        # The one cross-field rule a schema cannot state: 'since' after 'until' is a
        # 422 with the reason, although each field alone is valid.
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)
