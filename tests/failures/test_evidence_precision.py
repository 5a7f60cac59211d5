"""Abstaining by measured precision: each offline incident carries how often its kind
of evidence was right on labelled runs, a kind shown to be usually wrong is only a
weak lead, and an agent saying it made up data is evidence of its own."""

from __future__ import annotations

import json

import pytest

from failures.diagnosis import evidence
from failures.diagnosis.facts import StepView, trace_facts
from failures.models import DiagnosisSettings, Incident, IncidentKind, TraceAnalysis
from tests.factories import ingest, trace_payload

pytestmark = pytest.mark.django_db


def _step(index: int, kind: str, output: str = "", name: str = "") -> StepView:
    return StepView(index, kind, name, None, output, "")


def test_the_agent_saying_it_assumes_or_simulates_data_is_read_from_its_own_messages():
    facts = trace_facts([
        _step(0, "assistant_message", "Plan: assume nothing, look it up."),  # the task as posed
        _step(1, "assistant_message", "I will search the archive first."),
        _step(2, "assistant_message", "The archive is down. Let's assume the dataset has 12 rows.\n"
                                      "Then the answer is 4."),
        _step(3, "assistant_message", "We use sample data to go on."),
    ])  # fmt: skip
    assert [s for s, _ in facts.assumptions] == [2, 3]
    assert facts.assumptions[0][1] == "Let's assume the dataset has 12 rows."
    assert "assumed" in facts.signals
    # Tool output is not the agent's words.
    facts = trace_facts(
        [
            _step(0, "user_prompt"),
            StepView(
                1, "tool_call", "fetch", {}, "This page shows sample data for a simulated run", ""
            ),
        ]
    )
    assert facts.assumptions == [] and "assumed" not in facts.signals


def test_a_failed_run_where_the_agent_made_up_data_is_diagnosed_at_that_message(tenant):
    steps = [
        {"kind": "user_prompt", "input": "How many athletes did the smallest team send in 1928?"},
        {"kind": "assistant_message", "output": "I will look for the historical records."},
        {"kind": "tool_call", "name": "search", "input": {"q": "1928 olympics"}, "output": "no hits"},
        {"kind": "assistant_message",
         "output": "We cannot reach the records. Let's assume a simulated dataset of teams."},
        {"kind": "assistant_message", "output": "The answer is CHN."},
    ]  # fmt: skip
    ingest(tenant.workspace, [trace_payload("made-up", status="failed", agent="solo", steps=steps)])
    incident = Incident.objects.get(trace__external_id="made-up")
    assert incident.step_index == 3
    assert incident.category == "reasoning.invented_information"
    assert "Let's assume a simulated dataset of teams." in incident.description
    assert TraceAnalysis.objects.get(trace__external_id="made-up").state == "diagnosed"


def test_a_kind_of_evidence_below_the_minimum_beyond_sampling_error_is_a_weak_lead(
    tenant, monkeypatch, tmp_path
):
    table = tmp_path / "precision.json"
    table.write_text(json.dumps({"kinds": {
        "error.ended": {"hits": 2, "incidents": 40},   # 5%: usually wrong
        "error.midway": {"hits": 3, "incidents": 4},   # too few to measure
    }}))  # fmt: skip
    monkeypatch.setattr(evidence, "PRECISION_FILE", table)
    evidence.measured.cache_clear()
    try:
        assert evidence.measured()["error.ended"].upper < 0.5
        assert evidence.too_weak({"method": "error", "ended": True}, 0.5) is not None
        assert evidence.too_weak({"method": "error", "ended": False}, 0.5) is None  # unmeasured
        assert evidence.too_weak({"evidence": "check"}, 0.99) is None  # a verdict, never gated
        steps = [{"kind": "user_prompt", "input": "refund order 7"},
                 {"kind": "tool_call", "name": "refund", "input": {"order": 7},
                  "error": "HTTP 500 from payments"}]  # fmt: skip
        ingest(tenant.workspace, [trace_payload("weak-1", status="failed", agent="payer",
                                                steps=steps)])  # fmt: skip
        incident = Incident.objects.get(trace__external_id="weak-1")
        assert incident.kind == IncidentKind.WEAK
        assert incident.stats["precision"] == 0.05 and incident.stats["precision_n"] == 40
        analysis = TraceAnalysis.objects.get(trace__external_id="weak-1")
        assert analysis.state == "undiagnosed"
        assert "A weak lead only (a tool error the run ended on)" in analysis.detail
        assert "right in 5% of 40 labelled runs" in analysis.detail
        page = tenant.client_for(tenant.viewer).get(
            f"/w/{tenant.workspace.slug}/traces/{incident.trace_id}/incidents/"
        )
        text = page.content.decode()
        assert ">weak lead</span>" in text and "right in 5% of 40 labelled runs" in text
        # A workspace that asks for less shows it as a cause.
        DiagnosisSettings.objects.create(workspace=tenant.workspace, min_precision=0.05)
        ingest(tenant.workspace, [trace_payload("weak-2", status="failed", agent="payer",
                                                steps=steps)])  # fmt: skip
        assert Incident.objects.get(trace__external_id="weak-2").kind == IncidentKind.STEP_ERROR
    finally:
        evidence.measured.cache_clear()


def test_the_shipped_table_is_the_benchs_tune_half_and_every_kind_is_described():
    data = json.loads(evidence.PRECISION_FILE.read_text())
    assert data["half"] == "tune" and data["written_by"].startswith("bench/truth.py")
    for kind, row in data["kinds"].items():
        assert 0 <= row["hits"] <= row["incidents"]
        assert evidence.describe(kind) != kind, kind


def test_min_precision_is_validated_and_shown_with_the_measured_table(tenant):
    url = f"/w/{tenant.workspace.slug}/settings/diagnosis/"
    admin = tenant.client_for(tenant.admin)
    page = admin.get(url)
    assert page.status_code == 200 and "Minimum precision" in page.content.decode()
    assert "the agent saying it went on with assumed or made-up data" in page.content.decode()
    from failures import taxonomy

    form = {"categories": taxonomy.to_text(list(taxonomy.DEFAULT)), "default_threshold": "", "thresholds": "", "write_tools": "",
            "read_tools": "", "min_precision": "1.5"}  # fmt: skip
    bad = admin.post(url, form)
    assert bad.status_code == 422 and "between 0 and 1" in bad.content.decode()
    assert admin.post(url, {**form, "min_precision": "0.7"}).status_code == 302
    assert DiagnosisSettings.objects.get(workspace=tenant.workspace).min_precision == 0.7
