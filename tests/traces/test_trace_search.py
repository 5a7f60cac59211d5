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
    """The list reads a search as its newest N matches (one top-N per index); the
    pages and the capped count are the same as the whole search's, with filters."""
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
    for filters in ({"q": "refund"}, {"q": "refund", "agent": "a"},
                    {"q": "refund", "status": "failed"}, {"q": "w-007"}, {"q": "hovercraft"},
                    {"q": "refund", "sort": "-started"}):  # fmt: skip
        f = TraceFilters(**filters)
        whole = list(trace_list(workspace=tenant.workspace, filters=f).values_list("pk", flat=True))
        for window in (1, 5, 12, 200):
            part = trace_list(workspace=tenant.workspace, filters=f, window=window)
            assert list(part.values_list("pk", flat=True)) == whole[:window], (filters, window)
    monkeypatch.setattr(views, "PAGE_SIZE", 5)
    monkeypatch.setattr(views, "SEARCH_COUNT_CAP", 12)
    client = tenant.client_for(tenant.viewer)
    url = reverse("trace_list", args=[tenant.workspace.slug])
    whole = list(trace_list(workspace=tenant.workspace, filters=TraceFilters(q="refund")))
    assert len(whole) > 12
    # A rare word (the probe reads every match) and a common one (it stops early:
    # the page is read newest first, the count from the window or the probe).
    for probe_steps, probe_traces, common in ((20_000, 5_000, False), (3, 2, True), (30, 40, True)):
        monkeypatch.setattr(selectors, "PROBE_STEPS", probe_steps)
        monkeypatch.setattr(selectors, "PROBE_TRACES", probe_traces)
        page = client.get(url, {"q": "refund", "page": 2}).context["page"]
        assert (page.paginator.probe.ids is None) == common
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
