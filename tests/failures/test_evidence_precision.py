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


def test_code_the_agent_wrote_is_not_it_saying_it_assumes():
    facts = trace_facts([
        _step(0, "user_prompt"),
        _step(1, "assistant_message", "Run this:\n```python\nvalue = placeholder()  # simulate\n"
                                      "print(value)\n```\nThen report `dummy_total`."),
        _step(2, "assistant_message", "```bash\necho 'sample data'\n"),  # a fence left open
        _step(3, "assistant_message", "The file is gone, so we simulate the counts:\n"
                                      "```python\ncounts = [1, 2]\n```"),
    ])  # fmt: skip
    assert facts.assumptions == [(3, "The file is gone, so we simulate the counts:")]


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
        assert (incident.stats["precision_low"], incident.stats["precision_high"]) == (0.014, 0.165)
        analysis = TraceAnalysis.objects.get(trace__external_id="weak-1")
        assert analysis.state == "undiagnosed"
        assert "A weak lead only (a tool error the run ended on)" in analysis.detail
        # With its sampling error, and said to be measured on public runs, not this
        # workspace's ("88% of 8 runs people labelled" read as this team's own labels).
        said = "right in 5% (95% interval 1–17%) of 40 findings on public runs people labelled"
        assert said in analysis.detail
        page = tenant.client_for(tenant.viewer).get(
            f"/w/{tenant.workspace.slug}/traces/{incident.trace_id}/incidents/"
        )
        text = page.content.decode()
        assert ">weak lead</span>" in text and said in text
        modes = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/failure-modes/")
        assert "1 failed run undiagnosed" in modes.content.decode()
        assert "(1 with a weak lead, shown on the run)" in modes.content.decode()
        # In Review runs the label form starts at the weak lead's step, not the last.
        closing = [*steps, {"kind": "assistant_message", "output": "I could not refund it."}]
        ingest(tenant.workspace, [trace_payload("weak-3", status="failed", agent="payer",
                                                steps=closing)])  # fmt: skip
        weak_3 = Incident.objects.get(trace__external_id="weak-3")
        assert weak_3.kind == IncidentKind.WEAK and weak_3.step_index == 1
        review = (
            tenant.client_for(tenant.lead)
            .get(f"/w/{tenant.workspace.slug}/failures/review/{weak_3.trace_id}/")
            .content.decode()
        )
        assert '<option value="1" selected>' in review
        assert '<option value="2" selected>' not in review
        # A workspace that asks for less shows it as a cause.
        DiagnosisSettings.objects.create(workspace=tenant.workspace, min_precision=0.05)
        ingest(tenant.workspace, [trace_payload("weak-2", status="failed", agent="payer",
                                                steps=steps)])  # fmt: skip
        assert Incident.objects.get(trace__external_id="weak-2").kind == IncidentKind.STEP_ERROR
    finally:
        evidence.measured.cache_clear()


def test_a_kind_is_a_cause_only_where_it_reached_the_minimum(monkeypatch, tmp_path):
    table = tmp_path / "precision.json"
    table.write_text(json.dumps({"kinds": {
        "error.midway": {"hits": 13, "incidents": 28},  # 46%: its interval reaches 50%
        "assumed": {"hits": 12, "incidents": 18},       # 67%
    }}))  # fmt: skip
    monkeypatch.setattr(evidence, "PRECISION_FILE", table)
    evidence.measured.cache_clear()
    assert evidence.measured()["error.midway"].upper > 0.5
    assert evidence.too_weak({"method": "error", "ended": False}, 0.5) is not None
    assert evidence.too_weak({"method": "assumed"}, 0.5) is None
    assert evidence.too_weak({"method": "assumed"}, 0.7) is not None
    rows = {r["kind"]: r for r in evidence.table(0.5)}
    midway = rows[evidence.describe("error.midway")]
    assert midway["weak"] is True
    assert round(midway["lower"], 2) == 0.30 and round(midway["upper"], 2) == 0.64
    assert rows[evidence.describe("assumed")]["weak"] is False


@pytest.mark.shipped_precision
def test_the_shipped_table_is_the_benchs_tune_half_and_every_kind_is_described():
    data = json.loads(evidence.PRECISION_FILE.read_text())
    assert data["half"] == "tune" and data["written_by"].startswith("bench/truth.py")
    for kind, row in data["kinds"].items():
        assert 0 <= row["hits"] <= row["incidents"]
        assert evidence.describe(kind) != kind, kind


@pytest.mark.shipped_precision
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


def test_a_run_that_went_on_talking_after_its_last_failed_call_did_not_end_on_it(tenant):
    def run(name: str, said_after: int) -> dict:
        steps = [
            {"kind": "user_prompt", "input": "count the awnings"},
            {"kind": "tool_call", "name": "python", "input": {"code": "count()"},
             "error": "NameError: name 'count' is not defined"},
        ] + [{"kind": "assistant_message", "output": f"Reasoning on, turn {i}."}
             for i in range(said_after)]  # fmt: skip
        return trace_payload(name, status="failed", agent="chat", steps=steps)

    ingest(tenant.workspace, [run("closing", 1), run("talked-on", 4)])
    closing = Incident.objects.get(trace__external_id="closing")
    talked_on = Incident.objects.get(trace__external_id="talked-on")
    assert evidence.evidence_kind(closing.stats) == "error.ended"
    assert evidence.evidence_kind(talked_on.stats) == "error.midway"


def test_an_unreadable_table_gates_nothing_and_says_so(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(evidence, "PRECISION_FILE", tmp_path / "missing.json")
    evidence.measured.cache_clear()
    with caplog.at_level("WARNING", logger="failures.diagnosis.evidence"):
        assert evidence.measured() == {}
    assert "missing.json not read" in caplog.text
    assert evidence.too_weak({"method": "error", "ended": True}, 0.5) is None
    assert evidence.precision_note({"method": "error"})["precision"] is None


def test_words_that_only_look_like_an_assumption_are_not_one():
    """Who&When tune half: a search result the agent pasted ("plays a fictional
    character"), a case in a proof ("Assume all residents are humans"), a page's
    "made up 46 percent" were read as the agent inventing data."""
    facts = trace_facts([
        _step(0, "user_prompt"),
        _step(1, "assistant_message", "2. [Leap Day](https://example.org)\nJim Carrey plays a "
                                      "fictional character within the universe of 30 Rock."),
        _step(2, "assistant_message", "1. **Assume all residents are humans:** then each "
                                      "statement is true."),
        _step(3, "assistant_message", "Women made up 46 percent of its inaugural class."),
    ])  # fmt: skip
    assert facts.assumptions == []
    facts = trace_facts([
        _step(0, "user_prompt"),
        _step(1, "assistant_message", "We fill in fictional names and made up numbers for now."),
        _step(2, "assistant_message", "Assume a table of 10 rows."),
    ])  # fmt: skip
    assert [s for s, _ in facts.assumptions] == [1, 2]


def test_a_commands_placeholder_is_no_assumption_and_placeholder_data_is():
    """InterCode's dev runs: a shell agent's "the placeholder for the hostname" (a
    command's syntax) formed part of a mode of agents going on with made-up data."""
    facts = trace_facts([
        _step(0, "user_prompt"),
        _step(1, "assistant_message", "I should use the option of the command to specify the "
                                      "placeholder for the hostname."),
    ])  # fmt: skip
    assert facts.assumptions == []
    facts = trace_facts([
        _step(0, "user_prompt"),
        _step(1, "assistant_message", "I cannot open the page, so I will use placeholder values."),
        _step(2, "assistant_message", "I put 120 in as a placeholder until we find the figure."),
    ])  # fmt: skip
    assert [s for s, _ in facts.assumptions] == [1, 2]


def test_the_assumption_named_is_the_one_that_says_what_the_agent_could_not_get(tenant):
    """Who&When tune half: "Assuming we have the dataset as a CSV file" came first,
    the labelled mistake was "Since we don't have the file, I will demonstrate the
    approach using sample data"."""
    steps = [
        {"kind": "user_prompt", "input": "How many stations closed in 2020?"},
        {"kind": "assistant_message", "output": "Assuming we have the dataset as a CSV file, "
                                                "let's explore it first."},
        {"kind": "tool_call", "name": "python", "input": {"code": "open('x.csv')"},
         "output": "FileNotFoundError: x.csv"},
        {"kind": "assistant_message", "output": "Since we don't have the file, I will "
                                                "demonstrate the approach using sample data."},
        {"kind": "assistant_message", "output": "The answer is 12."},
    ]  # fmt: skip
    ingest(tenant.workspace, [trace_payload("lacking", status="failed", agent="solo", steps=steps)])
    incident = Incident.objects.get(trace__external_id="lacking", stats__method="assumed")
    assert incident.step_index == 3 and "don't have the file" in incident.description


def test_an_incidents_precision_reads_as_the_diagnosis_settings_table_reads_it(tenant):
    """The same measurement, the same figures: the trace page said 50–90% where the
    Diagnosis settings page said 51–90% (12 of 16; the stored lower end 0.505 was
    rounded twice)."""
    from django.template import Context, Template

    stats = {"evidence": "assumed", "precision": 0.75, "precision_n": 16,
             "precision_low": 0.505, "precision_high": 0.898}  # fmt: skip
    said = evidence.precision_words(stats)
    row = evidence.Measured("assumed", 12, 16)
    table = Template(
        "{% widthratio e.precision 1 100 %}% (95% interval {% widthratio e.lower 1 100 %}–"
        "{% widthratio e.upper 1 100 %}%)"
    ).render(Context({"e": row}))
    assert said.startswith(f"right in {table} of 16 findings")
    assert said.startswith("right in 75% (95% interval 51–90%)")
    # An incident stored before the interval was recorded shows one all the same.
    older = evidence.precision_words({"precision": 0.464, "precision_n": 28})
    assert (
        older == "right in 46% (95% interval 30–64%) of 28 findings on public runs people labelled"
    )
    assert evidence.precision_words({"precision": None}) == ""
