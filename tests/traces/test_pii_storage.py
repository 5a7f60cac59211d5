"""Seeded PII of every kind, ingested with redaction on, is nowhere in the database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pgserver
import pytest
from django.db import connection

from tests.factories import trace_payload
from tests.workspaces.test_redaction import SAMPLES
from traces.models import Trace

PG_DUMP = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"


def _dump() -> str:
    params = connection.get_connection_params()
    command = [str(PG_DUMP), "--data-only", "--no-owner", "-d", params["dbname"]]
    command += [
        "-h",
        str(params.get("host") or "127.0.0.1"),
        "-U",
        params.get("user") or "postgres",
    ]
    if params.get("port"):
        command += ["-p", str(params["port"])]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@pytest.mark.django_db(transaction=True)  # committed rows, so pg_dump can see them
def test_database_dump_holds_no_raw_pii(client, tenant):
    pii = " ".join(
        v if k != "AUTH_HEADER" else f"Authorization: Bearer {v}" for k, v in SAMPLES.items()
    )
    payload = trace_payload(
        "pii-1",
        task=f"Help the customer: {pii}",
        metadata={"note": pii},
        steps=[
            {"kind": "user_prompt", "input": {"message": pii}},
            {
                "kind": "tool_call",
                "name": "crm.lookup",
                "input": [pii],
                "output": pii,
                "error": pii,
            },
        ],
    )
    response = client.post(
        "/api/v1/traces",
        json.dumps({"traces": [payload]}),
        content_type="application/json",
        headers=tenant.api_headers(),
    )
    assert response.status_code == 200
    client.post(
        "/api/v1/traces/pii-1/outcome",
        json.dumps(
            {
                "status": "failed",
                "comment": pii,
                "scores": [{"name": "x", "value": 0, "comment": pii}],
            }
        ),
        content_type="application/json",
        headers=tenant.api_headers(),
    )
    dump = _dump()
    assert "crm.lookup" in dump  # the dump does hold the trace
    for kind, raw in SAMPLES.items():
        for fragment in raw.splitlines():
            if len(fragment) > 12:
                assert fragment not in dump, f"raw {kind} value found in the database"
    counts = Trace.objects.get(external_id="pii-1").redaction_counts
    assert set(counts) == set(SAMPLES)
