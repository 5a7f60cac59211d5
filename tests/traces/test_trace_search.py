"""Trace search reads what happened in a run (6/8 item 3): words in any step's
input, output or error, through GIN indexes, within one workspace; the list
sorts by its columns and shows ids so that they differ."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import ingest, make_user, make_workspace, trace_payload
from traces.models import Trace
from traces.selectors import TraceFilters, trace_list

pytestmark = pytest.mark.django_db


def _runs(workspace) -> None:  # type: ignore[no-untyped-def]
    ingest(workspace, [
        trace_payload("airline-run-0001-retail-tau2-with-a-long-shared-prefix-aaaa", steps=[
            {"kind": "user_prompt", "input": "Cancel my trip"},
            {"kind": "tool_call", "name": "cancel_reservation", "input": {"reservation_id": "XK2Q9"},
             "output": {"status": "cancelled", "refund": "travel certificate"}},
        ], started_at="2026-11-20T10:00:00Z", ended_at="2026-11-20T10:00:30Z"),
        trace_payload("airline-run-0001-retail-tau2-with-a-long-shared-prefix-bbbb", steps=[
            {"kind": "user_prompt", "input": "Change my seat"},
            {"kind": "tool_call", "name": "update_seat", "input": {"seat": "12A"},
             "error": "seat map unavailable: HTTP 503"},
            {"kind": "tool_call", "name": "update_seat", "input": {"seat": "12B"}},
        ], started_at="2026-11-21T10:00:00Z", ended_at="2026-11-21T10:05:00Z"),
    ])  # fmt: skip


def _ids(workspace, **filters) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        t.external_id[-4:] for t in trace_list(workspace=workspace, filters=TraceFilters(**filters))
    ]


def test_search_finds_words_in_step_inputs_outputs_and_errors(tenant):
    _runs(tenant.workspace)
    assert _ids(tenant.workspace, q="certificate") == ["aaaa"]  # an output
    assert _ids(tenant.workspace, q="XK2Q9") == ["aaaa"]  # an input value
    assert _ids(tenant.workspace, q="seat map unavailable") == ["bbbb"]  # an error
    assert _ids(tenant.workspace, q="cancel_reservation") == ["aaaa"]  # a tool
    assert _ids(tenant.workspace, q="seat") == ["bbbb"]  # the task
    assert _ids(tenant.workspace, q="hovercraft") == []


def test_search_never_crosses_workspaces(tenant):
    _runs(tenant.workspace)
    other = make_workspace(name="Other", owner=make_user("other-owner"))
    _runs(other)
    assert len(_ids(tenant.workspace, q="certificate")) == 1
    html = (
        tenant.client_for(tenant.viewer)
        .get(reverse("trace_list", args=[tenant.workspace.slug]), {"q": "certificate"})
        .content.decode()
    )
    assert "1 trace match" in html


def test_the_list_sorts_by_its_columns_and_ids_differ(tenant):
    _runs(tenant.workspace)
    assert _ids(tenant.workspace, sort="-steps") == ["bbbb", "aaaa"]
    assert _ids(tenant.workspace, sort="steps") == ["aaaa", "bbbb"]
    assert _ids(tenant.workspace, sort="-duration") == ["bbbb", "aaaa"]
    client = tenant.client_for(tenant.viewer)
    html = client.get(
        reverse("trace_list", args=[tenant.workspace.slug]), {"sort": "-steps"}
    ).content.decode()
    assert "Sorted by steps (highest first)" in html
    assert 'aria-sort="descending"><a href="?sort=steps">Steps ▼' in html
    assert "5 min 0 s" in html and "30.0 s" in html  # durations
    assert "airline-run-000…ed-prefix-aaaa" in html and "airline-run-000…ed-prefix-bbbb" in html


def test_the_agent_list_is_each_agent_once_in_order_and_only_this_workspaces(tenant, other_tenant):
    from traces.selectors import trace_agent_list

    names = ["zeta", "alpha", "Beta", "alpha", "", "checkout-agent", "zeta"]
    ingest(tenant.workspace, [trace_payload(f"a-{i}", agent=n) for i, n in enumerate(names)])
    ingest(other_tenant.workspace, [trace_payload("o-1", agent="elsewhere")])
    expected = list(
        Trace.objects.filter(workspace=tenant.workspace).exclude(agent="")
        .values_list("agent", flat=True).distinct().order_by("agent")
    )  # fmt: skip
    assert trace_agent_list(workspace=tenant.workspace) == expected
    assert len(expected) == 4 and "elsewhere" not in expected


def test_a_search_read_as_its_newest_matches_lists_and_counts_what_the_full_search_does(
    tenant, monkeypatch
):
    """The list reads a search sorted newest first as its newest matches: from the
    newest runs when the word is common among them, else from the GIN index over
    runs' words. Pages and the capped count are the whole search's, with filters."""
    from traces import selectors, views

    words = ["refund", "other", "refund later", "nothing"]
    ingest(tenant.workspace, [
        trace_payload(
            f"w-{i:03d}", agent="a" if i % 3 else "b", status="failed" if i % 2 else "succeeded",
            task=f"Task {i}" + (" about a refund" if i % 7 == 0 else ""),
            started_at=f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            steps=[{"kind": "tool_call", "name": "lookup", "input": {"n": i},
                    "output": {"text": words[i % 4]}}],
        ) for i in range(90)
    ])  # fmt: skip
    monkeypatch.setattr(views, "PAGE_SIZE", 5)
    monkeypatch.setattr(views, "SEARCH_COUNT_CAP", 12)
    client = tenant.client_for(tenant.viewer)
    url = reverse("trace_list", args=[tenant.workspace.slug])
    whole = list(trace_list(workspace=tenant.workspace, filters=TraceFilters(q="refund")))
    assert len(whole) > 12
    # Every run read first (a small workspace); a few of the newest, where "refund"
    # is common (its page and count are there); one, where it is not (the index).
    for recent, from_recent in ((20_000, True), (30, True), (1, False)):
        monkeypatch.setattr(selectors, "RECENT_RUNS", recent)
        for filters in ({"q": "refund"}, {"q": "refund", "agent": "a"},
                        {"q": "refund", "status": "failed"}, {"q": "w-007"}, {"q": "hovercraft"},
                        {"q": "refund", "sort": "-started"}, {"q": "refund later"},
                        {"q": '"refund later"'}, {"q": "refund -later"}):  # fmt: skip
            f = TraceFilters(**filters)
            every = list(
                trace_list(workspace=tenant.workspace, filters=f).values_list("pk", flat=True)
            )
            for window in (1, 5, 12, 200):
                found = selectors.trace_search(
                    workspace=tenant.workspace, filters=f, window=window, cap=12
                )
                assert found.ids == every[:window], (recent, filters, window)
                assert found.count == min(len(every), 13), (recent, filters, window)
        page = client.get(url, {"q": "refund", "page": 2}).context["page"]
        assert page.paginator._search(2).from_recent == from_recent
        assert [t.pk for t in page.object_list] == [t.pk for t in whole[5:10]]
        assert page.paginator.count == 13  # the cap and one more: "more than 12"
        assert client.get(url, {"q": "refund", "page": 3}).context["capped"]
        narrow = client.get(url, {"q": "refund", "agent": "b", "page": 2}).context["page"]
        expected = list(
            trace_list(workspace=tenant.workspace, filters=TraceFilters(q="refund", agent="b"))
        )
        assert narrow.paginator.count == min(len(expected), 13)
        assert [t.pk for t in narrow.object_list] == [t.pk for t in expected[5:10]]
        by_steps = client.get(url, {"q": "refund", "sort": "-steps"}).context["page"]
        assert by_steps.paginator.count == 13


def test_words_match_anywhere_in_the_run_and_a_phrase_within_one_step(tenant):
    """Unquoted words may be in different steps (or the task); a phrase, quoted or
    a word the search splits (`seat_map`), must be in one step; a word after "-"
    must be in none of them."""
    _runs(tenant.workspace)
    assert _ids(tenant.workspace, q="cancelled certificate XK2Q9") == ["aaaa"]  # three steps
    assert _ids(tenant.workspace, q="trip refund") == ["aaaa"]  # a prompt and an output
    assert _ids(tenant.workspace, q='"trip refund"') == []
    assert _ids(tenant.workspace, q='"travel certificate"') == ["aaaa"]
    assert _ids(tenant.workspace, q="seat -unavailable") == []
    assert _ids(tenant.workspace, q="cancel_reservation -hovercraft") == ["aaaa"]
    assert _ids(tenant.workspace, q="reservation_id") == ["aaaa"]  # split: 'reservation' <-> 'id'
    assert _ids(tenant.workspace, q="id_reservation") == []


def test_the_runs_words_follow_every_write_of_its_steps(tenant):
    """TraceWords is kept by the database: a step added, rewritten or removed, a
    task changed, are found (or no longer found) at once, whichever code wrote them."""
    from traces.models import Step

    _runs(tenant.workspace)
    trace = Trace.objects.get(workspace=tenant.workspace, external_id__endswith="aaaa")
    Step.objects.create(trace=trace, index=7, kind="tool_call", name="issue_voucher",
                        output={"voucher": "GOLDFINCH"})  # fmt: skip
    assert _ids(tenant.workspace, q="goldfinch") == ["aaaa"]
    Step.objects.filter(trace=trace, index=7).update(output={"voucher": "KESTREL"})
    assert _ids(tenant.workspace, q="goldfinch") == [] and _ids(tenant.workspace, q="kestrel") == [
        "aaaa"
    ]
    Step.objects.filter(trace=trace, index=7).delete()
    assert _ids(tenant.workspace, q="kestrel") == []
    Trace.objects.filter(pk=trace.pk).update(task="Rebook a flight to Oslo")
    assert _ids(tenant.workspace, q="oslo") == ["aaaa"]
    assert _ids(tenant.workspace, q="certificate") == ["aaaa"]  # its steps' words stay
    trace.delete()
    assert _ids(tenant.workspace, q="certificate") == []


def _words_rebuilt_from_scratch(trace_id: int) -> tuple[str, str]:
    """A run's stored words, and the words its trace and steps give when rebuilt."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT d.words::text, traces_words_join(t.search_vector, ARRAY(
                   SELECT s.search_vector FROM traces_step s WHERE s.trace_id = t.id
                   ORDER BY s.index))::text
               FROM traces_tracewords d JOIN traces_trace t ON t.id = d.trace_id
               WHERE d.trace_id = %s""",
            [trace_id],
        )
        stored, rebuilt = cursor.fetchone()
    return stored, rebuilt


def test_words_added_to_a_run_are_its_words_rebuilt(tenant):
    """Steps appended to a run (a hook event, an OTLP batch) and a step that only
    gains words (its output arriving) add to the run's words instead of rebuilding
    them; each time the run's words are what rebuilding them gives."""
    from traces.models import Step

    _runs(tenant.workspace)
    trace = Trace.objects.get(workspace=tenant.workspace, external_id__endswith="aaaa")
    Step.objects.create(trace=trace, index=2, kind="tool_call", name="issue_voucher",
                        input={"amount": "PELICAN"})  # fmt: skip
    stored, rebuilt = _words_rebuilt_from_scratch(trace.pk)
    assert "'pelican'" in stored and stored == rebuilt
    Step.objects.filter(trace=trace, index=2).update(
        output={"voucher": "GOLDFINCH"}  # the call's output arrives: PELICAN stays
    )
    stored, rebuilt = _words_rebuilt_from_scratch(trace.pk)
    assert "'goldfinch'" in stored and "'pelican'" in stored and stored == rebuilt
    assert _ids(tenant.workspace, q="goldfinch pelican certificate") == ["aaaa"]


def test_the_bulk_writer_writes_a_new_runs_words_once_and_triggers_keep_the_rest(tenant):
    """A batch's new runs get their words in one row write each (the insert triggers
    stand aside for those two statements, migration 0021), and a run sent again in
    the same batch is still kept by the triggers: both are found, and both hold
    what rebuilding them gives."""
    from django.db import connection

    def tracewords_writes() -> tuple[int, int]:
        with connection.cursor() as cursor:  # this transaction's own counts
            cursor.execute(
                "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables"
                " WHERE relname = 'traces_tracewords'"
            )
            return cursor.fetchone()

    inserted, updated = tracewords_writes()
    _runs(tenant.workspace)  # two new runs
    after = tracewords_writes()
    assert (after[0] - inserted, after[1] - updated) == (2, 0)  # before: (2, 2)
    ingest(tenant.workspace, [
        trace_payload("airline-run-0001-retail-tau2-with-a-long-shared-prefix-aaaa", steps=[
            {"index": 5, "kind": "tool_call", "name": "issue_voucher", "output": "PELICAN"}]),
        trace_payload("airline-run-0002-cccc", steps=[
            {"kind": "tool_call", "name": "rebook", "output": {"flight": "OSPREY"}}]),
    ])  # fmt: skip
    assert _ids(tenant.workspace, q="pelican") == ["aaaa"]  # sent again: the trigger's
    assert _ids(tenant.workspace, q="osprey") == ["cccc"]  # new: the writer's
    assert _ids(tenant.workspace, q="rebook") == ["cccc"]
    for trace in Trace.objects.filter(workspace=tenant.workspace):
        stored, rebuilt = _words_rebuilt_from_scratch(trace.pk)
        assert stored == rebuilt
    with connection.cursor() as cursor:  # the setting does not outlive the batch
        cursor.execute("SELECT current_setting('hivemind.words_by_writer', true)")
        assert cursor.fetchone()[0] in (None, "", "off")


def test_a_runs_steps_replaced_by_new_ones_leave_none_of_the_old_words(tenant):
    """A transcript replaces the steps its hooks built: every step is deleted, then
    the new ones are written. The old steps' words go with them."""
    from traces.models import Step

    _runs(tenant.workspace)
    trace = Trace.objects.get(workspace=tenant.workspace, external_id__endswith="aaaa")
    Step.objects.filter(trace=trace).delete()
    Step.objects.create(trace=trace, index=0, kind="tool_call", name="rebook",
                        output={"flight": "OSPREY"})  # fmt: skip
    assert _ids(tenant.workspace, q="osprey") == ["aaaa"]
    assert _ids(tenant.workspace, q="certificate") == []
    stored, rebuilt = _words_rebuilt_from_scratch(trace.pk)
    assert stored == rebuilt


def test_a_step_moved_to_another_run_takes_its_words_along(tenant):
    from traces.models import Step

    _runs(tenant.workspace)
    aaaa = Trace.objects.get(workspace=tenant.workspace, external_id__endswith="aaaa")
    bbbb = Trace.objects.get(workspace=tenant.workspace, external_id__endswith="bbbb")
    Step.objects.filter(trace=aaaa, index=1).update(trace=bbbb, index=9)
    assert _ids(tenant.workspace, q="certificate") == ["bbbb"]
    for trace in (aaaa, bbbb):
        stored, rebuilt = _words_rebuilt_from_scratch(trace.pk)
        assert stored == rebuilt


def test_a_run_with_more_words_than_a_tsvector_holds_is_stored_and_found(tenant):
    """PostgreSQL refuses a tsvector over 1 MB; a run's words stop at about 500 KB
    (the steps after add nothing) instead of failing its ingest."""
    import random

    rng = random.Random(3)

    def words(n: int) -> str:
        return " ".join(
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12)) for _ in range(n)
        )

    steps = [{"kind": "tool_call", "name": "dump", "input": {"part": i},
              "output": {"text": words(1500)}, "error": words(1500)} for i in range(40)]  # fmt: skip
    steps[0]["output"] = {"text": "zebrafinch " + words(100)}
    result = ingest(
        tenant.workspace, [trace_payload("huge-run", task="Dump every table", steps=steps)]
    )
    assert result is not None
    trace = Trace.objects.get(workspace=tenant.workspace, external_id="huge-run")
    assert trace.step_count == 40
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_size(words) FROM traces_tracewords WHERE trace_id = %s", [trace.pk]
        )
        assert 400_000 < cursor.fetchone()[0] <= 500_000  # the cap, reached
    assert _ids(tenant.workspace, q="zebrafinch") == ["-run"]
    assert _ids(tenant.workspace, q="table") == ["-run"]
