from __future__ import annotations

import gzip
import json

import pytest
from django.test import TestCase
from django.utils import timezone

from failures.models import DiagnosisState, Incident, TraceAnalysis
from tests.factories import make_key, trace_payload
from traces.models import Outcome, Step, Trace
from traces.selectors import TraceFilters, trace_list
from workspaces.models import PiiPolicy, Scope

pytestmark = pytest.mark.django_db

URL = "/api/v1/traces"


def post(client, tenant, body, key=None, **headers):
    """POST as an agent; what ingest queues after its commit (finding incidents,
    rollups) runs before this returns, as a worker would run it."""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            URL, data, content_type="application/json",
            headers={**tenant.api_headers(key), **headers},
        )  # fmt: skip


def counts():
    return (Trace.objects.count(), Step.objects.count(), Incident.objects.count())


def test_batch_creates_traces_steps_and_incidents(client, tenant):
    response = post(client, tenant, {"traces": [trace_payload("a"), trace_payload("b")]})
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 2 and body["rejected"] == 0
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    trace = Trace.objects.get(external_id="a")
    assert trace.workspace == tenant.workspace
    assert trace.step_count == 2 and trace.error_count == 1 and trace.status == "failed"
    incident = Incident.objects.get(trace=trace)
    assert incident.step_index == 1 and incident.tool == "payments.refund"
    assert "429 too many requests" in incident.signature


def test_retried_batch_leaves_row_counts_unchanged(client, tenant, monkeypatch):
    """A batch sent again as it was is answered `unchanged`: nothing is written (the
    traces keep their update time) and nothing is queued for analysis again."""
    from traces import services

    queued: list[list[int]] = []
    analyse = services._after_commit_analyse

    def spy(workspace_id: int, ids: list[int]) -> None:
        queued.append(list(ids))
        analyse(workspace_id, ids)

    monkeypatch.setattr(services, "_after_commit_analyse", spy)
    batch = {"traces": [trace_payload("a"), trace_payload("b")]}
    post(client, tenant, batch)
    before = counts()
    stamps = dict(Trace.objects.values_list("external_id", "updated_at"))
    response = post(client, tenant, batch)
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["unchanged", "unchanged"]
    assert response.json()["unchanged"] == 2 and response.json()["updated"] == 0
    assert counts() == before == (2, 4, 2)
    assert dict(Trace.objects.values_list("external_id", "updated_at")) == stamps
    assert len(queued) == 2 and queued[1] == []
    # One field different: written again, and analysed again.
    changed = {"traces": [trace_payload("a", status="succeeded"), trace_payload("b")]}
    assert [r["status"] for r in post(client, tenant, changed).json()["results"]] == [
        "updated", "unchanged"]  # fmt: skip
    assert Trace.objects.get(external_id="a").status == "succeeded"
    assert len(queued[2]) == 1


def test_a_trace_sent_again_after_the_pii_policy_changed_is_written_again(client, tenant):
    """What is stored was redacted under the policy of its time: the same trace sent
    under another policy is redacted again, not left as it was."""
    from workspaces.models import PiiPolicy

    item = trace_payload(
        "mail", steps=[{"kind": "user_prompt", "input": "Write to ann@example.com"}]
    )
    post(client, tenant, {"traces": [item]})
    assert "ann@example.com" not in str(Trace.objects.get().steps.get().input)
    policy = PiiPolicy.objects.get(workspace=tenant.workspace)
    policy.redact_emails = False
    policy.save()
    assert post(client, tenant, {"traces": [item]}).json()["results"][0]["status"] == "updated"
    assert "ann@example.com" in str(Trace.objects.get().steps.get().input)


def test_resent_trace_updates_steps_by_index_and_adds_new_ones(client, tenant):
    post(client, tenant, {"traces": [trace_payload("a", status="running")]})
    more = trace_payload(
        "a",
        status="succeeded",
        task="",
        steps=[
            {"index": 1, "kind": "tool_call", "name": "payments.refund", "output": {"ok": True}},
            {"index": 2, "kind": "assistant_message", "output": "Refunded."},
        ],
    )
    post(client, tenant, {"traces": [more]})
    trace = Trace.objects.get(external_id="a")
    assert trace.status == "succeeded"
    assert trace.task == "Refund order 8812"  # empty field in the update keeps the stored one
    assert list(trace.steps.values_list("index", "error")) == [(0, ""), (1, ""), (2, "")]
    assert trace.step_count == 3 and trace.error_count == 0
    assert not Incident.objects.filter(trace=trace).exists()


def test_every_step_column_is_stored_as_sent_by_both_copies(client, tenant):
    """New traces' steps COPY straight into the step table, re-sent ones' arrive as a
    JSON parameter. Every column's value comes back as sent, and JSON comes back
    as JSON (an object stays an object, a string a string)."""

    def step(index: int, output: object) -> dict:
        return {
            "index": index, "kind": "tool_call", "name": "crm.lookup",
            "input": {"query": "naïve café \u2028", "n": 3, "deep": [1, 2.5, None, True]},
            "output": output, "error": "timeout after 30 s", "tokens": 2_000_000_000 // 20,
            "duration_ms": 412, "started_at": "2026-11-21T10:00:01.250+02:00", "parent_index": 7,
        }  # fmt: skip

    def stored() -> list[tuple]:
        return list(
            Step.objects.filter(trace__external_id="cols").order_by("index").values_list(
                "index", "kind", "name", "input", "output", "error", "tokens", "duration_ms",
                "started_at", "parent_index",
            )
        )  # fmt: skip

    for output in ("plain text", {"rows": [{"id": 1}]}):  # new, then sent again
        body = {"traces": [trace_payload("cols", steps=[step(2_147_483_647, output)])]}
        assert post(client, tenant, body).status_code == 200
        [(index, kind, name, input_, out, error, tokens, duration, started, parent)] = stored()
        assert (index, kind, name, error, tokens, parent) == (
            2_147_483_647, "tool_call", "crm.lookup", "timeout after 30 s", 100_000_000, 7
        )  # fmt: skip
        assert input_ == {"query": "naïve café \u2028", "n": 3, "deep": [1, 2.5, None, True]}
        assert out == output and duration == 412.0 and isinstance(duration, float)
        assert started.isoformat() == "2026-11-21T08:00:01.250000+00:00"


def test_a_new_trace_stores_the_counts_a_resent_one_is_recounted_to(client, tenant):
    """A new trace's counts come from its batch, a re-sent one's from what is
    stored: the two ways give the same row, and the words it is searched by."""
    steps = [
        {"kind": "user_prompt", "input": "Mail ann@example.com about 4111 1111 1111 1111",
         "tokens": 40},
        {"kind": "tool_call", "name": "mail.send", "input": {"to": "ann@example.com"},
         "error": "relay refused", "tokens": 15},
        {"kind": "error", "output": "giving up"},
        {"kind": "assistant_message", "output": "Could not reach bob@example.org"},
    ]  # fmt: skip
    unsure = {k: v for k, v in trace_payload("new", steps=steps).items() if k != "status"}
    response = post(client, tenant, {"traces": [unsure]})
    assert response.status_code == 200, response.json()["results"]
    fields = ("status", "step_count", "error_count", "total_tokens", "redaction_counts")
    first = Trace.objects.values(*fields).get(external_id="new")
    assert first == {
        "status": "unknown", "step_count": 4, "error_count": 2, "total_tokens": 55,
        "redaction_counts": {"EMAIL": 3, "CREDIT_CARD": 1},
    }  # fmt: skip
    again = {**unsure, "metadata": {"attempt": 2}}  # sent again, not as it was
    assert post(client, tenant, {"traces": [again]}).json()["updated"] == 1
    assert Trace.objects.values(*fields).get(external_id="new") == first
    found = trace_list(workspace=tenant.workspace, filters=TraceFilters(q="relay refused"))
    assert [t.external_id for t in found] == ["new"]


def test_each_trace_record_is_read_by_one_statement_the_merge_or_the_insert(tenant):
    """A batch of new traces reaches no merge, and a batch sent again no insert: a
    trace's record (which may carry a run's whole policy in its metadata) is parsed by
    PostgreSQL once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from traces.services import trace_ingest_batch

    def statements(items):
        with CaptureQueriesContext(connection) as seen:
            trace_ingest_batch(workspace=tenant.workspace, items=items, skip_unchanged=False)
        sql = [" ".join(q["sql"].split()) for q in seen.captured_queries]
        return (sum(q.startswith("UPDATE traces_trace t SET agent") for q in sql),
                sum(q.startswith("INSERT INTO traces_trace") for q in sql))  # fmt: skip

    assert statements([trace_payload("a"), trace_payload("b")]) == (0, 1)
    assert statements([trace_payload("a"), trace_payload("b")]) == (1, 0)
    assert statements([trace_payload("a"), trace_payload("c")]) == (1, 1)
    assert Trace.objects.count() == 3


def test_a_trace_stored_by_another_request_after_the_lookup_is_merged_not_lost(
    client, tenant, monkeypatch
):
    """Each trace's record goes to the merge or the insert, by a lookup of what is
    stored. A trace another request stores after that lookup is merged into, not
    dropped and not duplicated: its fields and steps are the batch's, the other's
    steps kept by index, and its counts those of what is stored."""
    from traces import ingest

    real_insert = ingest._insert_new_traces

    def other_request_first(cursor, workspace_id, records):
        # Another request's write of trace "b", committed in between.
        other = {**trace_payload("b"), "task": "theirs", "metadata": {"from": "other"}}
        other["steps"] = [{"index": 5, "kind": "tool_call", "name": "db.read", "input": {"q": 1}}]
        monkeypatch.setattr(ingest, "_insert_new_traces", real_insert)
        post(client, tenant, {"traces": [other]})
        return real_insert(cursor, workspace_id, records)

    monkeypatch.setattr(ingest, "_insert_new_traces", other_request_first)
    response = post(client, tenant, {"traces": [trace_payload("a"), trace_payload("b")]})
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["created", "updated"]
    b = Trace.objects.get(external_id="b")
    assert Trace.objects.filter(external_id="b").count() == 1
    assert b.task == trace_payload("b")["task"] and b.metadata["from"] == "other"
    assert list(b.steps.values_list("index", flat=True).order_by("index")) == [0, 1, 5]
    assert b.step_count == 3 and b.error_count == 1
    assert Trace.objects.get(external_id="a").step_count == 2


def test_resent_pieces_change_the_counts_by_what_they_add_and_replace(client, tenant):
    """A re-sent trace's counts change by the difference its steps make (not by
    counting all its steps again); after any sequence of pieces they equal a count
    from scratch: replaced errors and tokens, new steps, a piece with no steps."""
    from traces.ingest import refresh_aggregates

    def piece(external_id: str, steps: list[dict], **fields: object) -> dict:
        return {**trace_payload(external_id, steps=steps), "task": "", **fields}

    fields = ("step_count", "error_count", "total_tokens", "redaction_counts")
    batches = [
        [piece("p", [{"index": 0, "kind": "tool_call", "error": "boom", "tokens": 10},
                     {"index": 1, "kind": "error", "tokens": 5}]),
         piece("q", [{"index": 0, "kind": "user_prompt", "input": "hi", "tokens": 3}])],
        # p: step 0 fixed (no error, no tokens), step 1 now a message, step 2 new and
        # failed; q: a piece with no steps, its task mailing someone.
        [piece("p", [{"index": 0, "kind": "tool_call", "output": "ok"},
                     {"index": 1, "kind": "assistant_message", "tokens": 7},
                     {"index": 2, "kind": "tool_call", "error": "relay", "tokens": 4}]),
         piece("q", [], task="Mail ann@example.com")],
        [piece("q", [{"index": 0, "kind": "error", "input": "call 4111 1111 1111 1111"},
                     {"index": 5, "kind": "tool_call", "tokens": 2}])],
    ]  # fmt: skip
    for batch in batches:
        assert post(client, tenant, {"traces": batch}).status_code == 200
    stored = {t["external_id"]: t for t in Trace.objects.values("external_id", *fields)}
    assert stored["p"] == {"external_id": "p", "step_count": 3, "error_count": 1,
                           "total_tokens": 11, "redaction_counts": {}}  # fmt: skip
    assert stored["q"] == {"external_id": "q", "step_count": 2, "error_count": 1,
                           "total_tokens": 2, "redaction_counts": {"EMAIL": 1, "CREDIT_CARD": 1}}  # fmt: skip
    refresh_aggregates(list(Trace.objects.values_list("id", flat=True)))
    assert {t["external_id"]: t for t in Trace.objects.values("external_id", *fields)} == stored


def test_a_run_sent_again_as_it_grows_writes_only_the_steps_that_changed(client, tenant):
    """A client that re-sends its whole run as it grows (a transcript imported at
    each turn's end): the steps sent as they are stored keep their row (no new row
    version, no search vector computed again); the changed and new ones are
    written, and the counts change by them alone."""
    from django.db import connection

    steps = [{"index": 0, "kind": "user_prompt", "input": "fix the build"},
             {"index": 1, "kind": "tool_call", "name": "Bash", "input": {"command": "make"},
              "output": "ok", "tokens": 10, "started_at": "2026-11-20T10:00:01.123456Z"},
             {"index": 2, "kind": "tool_call", "name": "Bash", "input": {"command": "make test"},
              "error": "exit 2", "tokens": 5, "parent_index": 1}]  # fmt: skip

    def versions() -> dict[int, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT s.index, s.xmin::text FROM traces_step s JOIN traces_trace t "
                           "ON t.id = s.trace_id WHERE t.external_id = 'grows'")  # fmt: skip
            return dict(cursor.fetchall())

    assert (
        post(client, tenant, {"traces": [trace_payload("grows", steps=steps)]}).status_code == 200
    )
    first = versions()
    # Sent again: step 2 now passes, a step 3 is new; step 2 comes without its parent
    # (kept), steps 0 and 1 exactly as before.
    steps[2] = {**steps[2], "error": "", "output": "12 passed", "parent_index": None}
    steps.append({"index": 3, "kind": "assistant_message", "output": "Fixed.", "tokens": 7})
    assert (
        post(client, tenant, {"traces": [trace_payload("grows", steps=steps)]}).status_code == 200
    )
    second = versions()
    assert second[0] == first[0] and second[1] == first[1]  # not written again
    assert second[2] != first[2] and 3 in second
    trace = Trace.objects.get(external_id="grows")
    assert (trace.step_count, trace.error_count, trace.total_tokens) == (4, 0, 22)
    assert Step.objects.get(trace=trace, index=2).parent_index == 1
    # The same run once more, step 2's parent moved: that step alone is written.
    steps[2]["parent_index"] = 0
    assert (
        post(client, tenant, {"traces": [trace_payload("grows", steps=steps)]}).status_code == 200
    )
    third = versions()
    assert [i for i in third if third[i] != second[i]] == [2]


def test_mixed_batch_stores_good_traces_and_reports_bad_ones(client, tenant):
    bad_step = trace_payload("bad", steps=[{"kind": "teleport"}])
    response = post(client, tenant, {"traces": [trace_payload("good"), bad_step, "nope"]})
    assert response.status_code == 207
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["created", "rejected", "rejected"]
    rejected = body["results"][1]
    assert rejected["external_id"] == "bad"
    assert "traces[1] (external_id 'bad')" in rejected["detail"]
    assert rejected["errors"][0]["field"] == "steps.0.kind"
    assert "JSON object" in body["results"][2]["detail"]
    assert list(Trace.objects.values_list("external_id", flat=True)) == ["good"]
    assert not Step.objects.filter(trace__external_id="bad").exists()


def test_all_rejected_is_422_and_writes_nothing(client, tenant):
    response = post(client, tenant, {"traces": [trace_payload("x", status="exploded")]})
    assert response.status_code == 422
    assert "status" in response.json()["results"][0]["detail"]
    assert counts() == (0, 0, 0)


def test_unknown_field_is_named(client, tenant):
    response = post(client, tenant, {"traces": [trace_payload("x", stpes=[])]})
    assert response.status_code == 422
    assert response.json()["results"][0]["errors"][0]["field"] == "stpes"


def test_duplicate_external_id_in_batch_rejects_the_second(client, tenant):
    response = post(client, tenant, {"traces": [trace_payload("x"), trace_payload("x")]})
    assert response.status_code == 207
    assert "earlier in the same batch" in response.json()["results"][1]["detail"]
    assert Trace.objects.count() == 1


def test_duplicate_step_index_is_rejected(client, tenant):
    steps = [{"index": 0, "kind": "user_prompt"}, {"index": 0, "kind": "error", "error": "x"}]
    response = post(client, tenant, {"traces": [trace_payload("x", steps=steps)]})
    assert response.status_code == 422
    assert "share an index" in response.json()["results"][0]["detail"]


def test_too_many_steps_is_422(client, tenant, settings):
    settings.HIVEMIND_MAX_STEPS_PER_TRACE = 3
    steps = [{"kind": "user_prompt"}] * 4
    response = post(client, tenant, {"traces": [trace_payload("x", steps=steps)]})
    assert response.status_code == 422
    assert "4 steps; the limit is 3" in response.json()["results"][0]["detail"]


def test_too_many_traces_is_422(client, tenant, settings):
    settings.HIVEMIND_MAX_TRACES_PER_BATCH = 1
    response = post(client, tenant, {"traces": [trace_payload(), trace_payload()]})
    assert response.status_code == 422
    assert "limit is 1" in response.json()["detail"]


def test_undecodable_json_is_400(client, tenant):
    response = post(client, tenant, b'{"traces": [')
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_long_integers_are_stored_exactly_and_nan_in_a_step_as_null(client, tenant):
    # The fast parser reads a 64-bit-overflowing integer as a float; such bodies take
    # the standard library's, digit for digit. NaN (which Python's json.dumps writes)
    # in a step's output is stored as null, as JSON.stringify writes it: the trace
    # is kept, not refused by the database.
    step = '{"kind": "tool_call", "input": {"order_id": 123456789012345678901234567890}}'
    response = post(client, tenant, f'{{"traces": [{{"external_id": "big", "steps": [{step}]}}]}}')
    assert response.status_code == 200, response.json()
    assert Step.objects.get(trace__external_id="big").input == {
        "order_id": 123456789012345678901234567890
    }
    step = '{"kind": "tool_call", "output": {"score": NaN, "ok": true}}'
    response = post(client, tenant, f'{{"traces": [{{"external_id": "nan", "steps": [{step}]}}]}}')
    assert response.status_code == 200, response.json()
    assert Step.objects.get(trace__external_id="nan").output == {"score": None, "ok": True}


def test_wrong_envelope_is_422(client, tenant):
    response = post(client, tenant, {"trace": []})
    assert response.status_code == 422
    assert '{"traces": [ ... ]}' in response.json()["detail"]


def test_body_over_the_cap_is_413(client, tenant, settings):
    settings.HIVEMIND_MAX_BODY_BYTES = 200
    response = post(client, tenant, {"traces": [trace_payload(task="x" * 500)]})
    assert response.status_code == 413
    assert "limit is 200" in response.json()["detail"]
    assert Trace.objects.count() == 0


def test_gzip_body_is_accepted_and_bomb_is_413(client, tenant, settings):
    body = gzip.compress(json.dumps({"traces": [trace_payload("gz")]}).encode())
    response = post(client, tenant, body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200 and Trace.objects.filter(external_id="gz").exists()
    settings.HIVEMIND_MAX_BODY_BYTES = 10_000
    bomb = gzip.compress(b'{"traces": ["' + b"a" * 1_000_000 + b'"]}')
    assert post(client, tenant, bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    assert post(client, tenant, b"not gzip", **{"Content-Encoding": "gzip"}).status_code == 400


def test_key_without_ingest_scope_is_403(client, tenant):
    key = make_key(tenant.workspace, scopes=[Scope.SKILLS_READ])
    response = post(client, tenant, {"traces": [trace_payload()]}, key=key)
    assert response.status_code == 403
    assert "lacks the 'ingest' scope" in response.json()["detail"]


def test_anonymous_is_401(client, db):
    response = client.post(URL, json.dumps({"traces": []}), content_type="application/json")
    assert response.status_code == 401
    assert "Missing API key" in response.json()["detail"]


def test_capture_switched_off_for_workspace_is_403(client, tenant):
    PiiPolicy.objects.filter(workspace=tenant.workspace).update(capture_enabled=False)
    response = post(client, tenant, {"traces": [trace_payload()]})
    assert response.status_code == 403
    assert "Capture is switched off" in response.json()["detail"]
    assert Trace.objects.count() == 0


def test_capture_off_header_stores_nothing(client, tenant):
    response = post(
        client, tenant, {"traces": [trace_payload("x")]}, **{"X-Hivemind-Capture": "off"}
    )
    assert response.status_code == 202
    assert response.json()["results"][0]["status"] == "skipped"
    assert Trace.objects.count() == 0


def test_same_external_id_in_two_workspaces_stays_separate(client, tenant, other_tenant):
    post(client, tenant, {"traces": [trace_payload("shared", task="Acme task")]})
    response = post(client, other_tenant, {"traces": [trace_payload("shared", task="Globex task")]})
    assert response.json()["results"][0]["status"] == "created"
    assert Trace.objects.get(workspace=tenant.workspace).task == "Acme task"
    assert Trace.objects.get(workspace=other_tenant.workspace).task == "Globex task"


def test_failed_trace_where_nothing_is_found_is_undiagnosed_not_a_catch_all(client, tenant):
    quiet = trace_payload("q", steps=[{"kind": "assistant_message", "output": "Gave up."}])
    post(client, tenant, {"traces": [quiet]})
    assert not Incident.objects.filter(trace__external_id="q").exists()
    assert TraceAnalysis.objects.get(trace__external_id="q").state == DiagnosisState.UNDIAGNOSED
    # A later payload that names the failing step: that step is the incident.
    post(client, tenant, {"traces": [trace_payload("q")]})
    incident = Incident.objects.get(trace__external_id="q")
    assert (incident.step_index, incident.source) == (1, "error")
    assert TraceAnalysis.objects.get(trace__external_id="q").state == DiagnosisState.DIAGNOSED


# --- outcomes -------------------------------------------------------------------


def outcome(client, tenant, external_id, body, key=None):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            f"{URL}/{external_id}/outcome",
            json.dumps(body),
            content_type="application/json",
            headers=tenant.api_headers(key),
        )


def test_outcome_after_trace_updates_status_and_reward(client, tenant):
    post(client, tenant, {"traces": [trace_payload("a", status="running")]})
    response = outcome(
        client, tenant, "a",
        {"status": "succeeded", "reward": 0.9, "scores": [{"name": "csat", "value": 4, "comment": "ok"}]},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json() == {
        "external_id": "a", "applied": True, "trace_status": "succeeded", "detail": "Outcome applied."
    }  # fmt: skip
    trace = Trace.objects.get(external_id="a")
    assert (trace.status, trace.reward) == ("succeeded", 0.9)
    assert trace.outcomes.get().scores == [{"name": "csat", "value": 4.0, "comment": "ok"}]


def test_outcome_before_trace_is_kept_and_applied_on_arrival(client, tenant):
    response = outcome(
        client, tenant, "later", {"status": "failed", "reward": 0, "comment": "wrong refund"}
    )
    assert response.status_code == 202 and response.json()["applied"] is False
    assert Outcome.objects.get(external_id="later").trace is None
    ok_steps = [{"kind": "assistant_message", "output": "Refunded twice"}]
    post(client, tenant, {"traces": [trace_payload("later", status="succeeded", steps=ok_steps)]})
    trace = Trace.objects.get(external_id="later")
    assert (trace.status, trace.reward) == ("failed", 0.0)
    assert Outcome.objects.get(external_id="later").trace == trace
    # The failure came from the outcome, and no step names it: counted as undiagnosed.
    analysis = TraceAnalysis.objects.get(trace=trace)
    assert (analysis.verdict, analysis.state) == ("failed", DiagnosisState.UNDIAGNOSED)


def test_outcome_validation_errors_are_422(client, tenant):
    response = outcome(client, tenant, "a", {"status": "great"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "status"


def test_outcome_from_another_workspace_does_not_touch_the_trace(client, tenant, other_tenant):
    post(client, tenant, {"traces": [trace_payload("a", status="running")]})
    response = outcome(client, other_tenant, "a", {"status": "failed"})
    assert response.status_code == 202  # kept for globex's own future trace "a"
    assert Trace.objects.get(workspace=tenant.workspace).status == "running"


def test_outcome_access_anonymous_and_wrong_scope(client, tenant):
    assert client.post(f"{URL}/a/outcome", "{}", content_type="application/json").status_code == 401
    key = make_key(tenant.workspace, scopes=[Scope.SKILLS_READ])
    assert outcome(client, tenant, "a", {"status": "failed"}, key=key).status_code == 403


def test_openapi_documents_the_batch_body_with_an_example(client, db):
    schema = client.get("/api/openapi.json").json()
    op = schema["paths"]["/api/v1/traces"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/TraceBatchIn"
    trace_schema = schema["components"]["schemas"]["TraceIn"]
    assert trace_schema["example"]["external_id"]
    assert "StepIn" in schema["components"]["schemas"]


def test_a_hook_event_with_capture_switched_off_is_403_and_stores_nothing(client, tenant):
    """A hook event reads the workspace's policy once, for the session's stored id
    and for the batch: capture off refuses it before anything is written."""
    from traces.models import StepKey

    PiiPolicy.objects.filter(workspace=tenant.workspace).update(capture_enabled=False)
    event = {"session_id": "s-off", "hook_event_name": "PreToolUse", "tool_name": "Bash",
             "tool_use_id": "toolu_1", "tool_input": {"command": "ls"}}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/api/v1/hooks/claude-code", json.dumps(event),
                               content_type="application/json", headers=tenant.api_headers())  # fmt: skip
    assert response.status_code == 403 and "Capture is switched off" in response.json()["detail"]
    assert not Trace.objects.exists() and not StepKey.objects.exists()


def test_a_policy_handed_in_for_another_workspace_is_not_used(tenant, other_tenant):
    """trace_ingest_batch reads the workspace's own policy when the one it is given
    belongs to another workspace."""
    from traces.services import trace_ingest_batch

    PiiPolicy.objects.filter(workspace=other_tenant.workspace).update(capture_enabled=False)
    elsewhere = PiiPolicy.objects.get(workspace=other_tenant.workspace)
    batch = trace_ingest_batch(
        workspace=tenant.workspace, items=[trace_payload("mine")], policy=elsewhere
    )
    assert [r.status for r in batch.results] == ["created"]
    assert Trace.objects.get().workspace == tenant.workspace


@pytest.mark.django_db(transaction=True)
def test_traces_stored_with_framework_steps_are_counted_by_the_migration():
    """Migration 0020: a trace stored with framework steps before it has them
    counted (and is marked changed, so the rollup sweep recounts its day)."""
    from tests.factories import latest_migrations, migrate

    before = [("traces", "0019_step_kind_span")]
    latest = latest_migrations()
    try:
        old = migrate(before).loader.project_state(before).apps
        ws = old.get_model("workspaces", "Workspace").objects.create(name="Old", slug="old-spans")
        OldTrace, OldStep = old.get_model("traces", "Trace"), old.get_model("traces", "Step")
        spans = OldTrace.objects.create(
            workspace=ws,
            external_id="graph",
            status="failed",
            started_at=timezone.now(),
            step_count=4,
            error_count=3,
        )
        plain = OldTrace.objects.create(
            workspace=ws,
            external_id="plain",
            status="failed",
            started_at=timezone.now(),
            step_count=1,
            error_count=1,
        )
        for index, kind in enumerate(["span", "span", "span", "tool_call"]):
            OldStep.objects.create(trace=spans, index=index, kind=kind, name=f"s{index}",
                                   error="boom" if index else "")  # fmt: skip
        OldStep.objects.create(trace=plain, index=0, kind="tool_call", name="t", error="boom")
        stamp = OldTrace.objects.get(pk=spans.pk).updated_at
        migrate(latest)
        counted = Trace.objects.get(pk=spans.pk)
        assert (counted.span_count, counted.span_error_count) == (3, 2)
        assert counted.updated_at > stamp
        assert (Trace.objects.get(pk=plain.pk).span_count,
                Trace.objects.get(pk=plain.pk).span_error_count) == (0, 0)  # fmt: skip
    finally:
        migrate(latest)
