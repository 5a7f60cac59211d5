"""Compare a failed run with a successful run of the same task (6/8 item 2): the
closest successful run is chosen and the choice explained, calls are aligned,
identical stretches folded, and the first divergence is the diagnosis's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from failures.compare import run_comparison
from tests.factories import ingest, trace_payload
from traces.models import Trace

pytestmark = pytest.mark.django_db


def _run(external_id: str, status: str, calls: list[tuple[str, dict]]) -> dict:
    steps = [{"kind": "user_prompt", "input": "Change my flight to Friday"}]
    steps += [
        {"kind": "tool_call", "name": n, "input": a, "output": {"ok": True}} for n, a in calls
    ]
    steps.insert(2, {"kind": "tool_call", "name": "user.check_phone", "input": {}})
    return trace_payload(external_id, task="Change my flight to Friday", task_key="airline:7",
                         status=status, steps=steps)  # fmt: skip


READS = [("get_user_details", {"user_id": "mia_li"}), ("get_reservation_details", {"id": "XK2Q9"}),
         ("search_direct_flight", {"origin": "JFK", "destination": "SEA", "date": "2024-05-17"})]  # fmt: skip


def _pair(workspace) -> tuple[Trace, Trace]:  # type: ignore[no-untyped-def]
    ingest(workspace, [
        _run("failed-1", "failed", [*READS, ("update_reservation_flights",
             {"reservation_id": "XK2Q9", "cabin": "basic_economy", "flight": "HAT045"})]),
        _run("good-1", "succeeded", [*READS, ("update_reservation_flights",
             {"reservation_id": "XK2Q9", "cabin": "economy", "flight": "HAT045"})]),
        _run("good-2", "succeeded", [("get_user_details", {"user_id": "mia_li"}),
             ("cancel_reservation", {"reservation_id": "XK2Q9"})]),
    ])  # fmt: skip
    return (Trace.objects.get(workspace=workspace, external_id="failed-1"),
            Trace.objects.get(workspace=workspace, external_id="good-1"))  # fmt: skip


def test_the_closest_successful_run_is_aligned_and_the_divergence_marked(tenant):
    failed, good = _pair(tenant.workspace)
    comparison = run_comparison(workspace=tenant.workspace, trace=failed)
    assert comparison is not None and comparison.success == good  # shares the most calls
    assert "2 successful runs of the same task" in comparison.why
    kinds = [row.kind for row in comparison.rows]
    assert kinds == ["same", "pair"]  # three identical reads folded, then the write differs
    assert comparison.rows[0].folded == 3
    last = comparison.rows[-1]
    assert last.first and last.failed and last.success
    assert last.failed.differs == ["cabin"] and last.success.args["cabin"] == "economy"
    assert "update_reservation_flights" in comparison.finding
    # The simulated user's call is left out of both sides.
    assert all(r.failed is None or not r.failed.name.startswith("user.") for r in comparison.rows)


def test_a_call_to_the_tool_the_successful_run_called_is_put_beside_it(tenant):
    """tau2 retail: the failed run tried an exchange (refused), then modified the
    order with another item; the successful run only modified it. The two
    modifications are side by side with the differing item marked, and the refused
    exchange stands alone."""
    item = {"order_id": "#W7464385", "item_ids": ["1810466394"]}
    ingest(tenant.workspace, [
        _run("failed-x", "failed", [*READS,
             ("exchange_delivered_order_items", {**item, "new_item_ids": ["6117189161"]}),
             ("modify_pending_order_items", {**item, "new_item_ids": ["6117189161"]})]),
        _run("good-x", "succeeded", [*READS,
             ("modify_pending_order_items", {**item, "new_item_ids": ["6700049080"]})]),
    ])  # fmt: skip
    failed = Trace.objects.get(workspace=tenant.workspace, external_id="failed-x")
    comparison = run_comparison(workspace=tenant.workspace, trace=failed)
    assert comparison is not None
    shown = [(r.kind, r.failed and r.failed.name, r.success and r.success.name)
             for r in comparison.rows]  # fmt: skip
    assert shown == [
        ("same", "get_user_details", "get_user_details"),
        ("failed_only", "exchange_delivered_order_items", None),
        ("pair", "modify_pending_order_items", "modify_pending_order_items"),
    ]
    assert comparison.rows[-1].failed.differs == ["new_item_ids"]


def test_a_chosen_successful_run_and_a_task_with_none(tenant):
    failed, _ = _pair(tenant.workspace)
    other = Trace.objects.get(workspace=tenant.workspace, external_id="good-2")
    chosen = run_comparison(workspace=tenant.workspace, trace=failed, success_pk=other.pk)
    assert chosen is not None and chosen.success == other and "you chose" in chosen.why
    ingest(tenant.workspace, [trace_payload("alone", task="Something else", task_key="x:1")])
    alone = Trace.objects.get(workspace=tenant.workspace, external_id="alone")
    assert run_comparison(workspace=tenant.workspace, trace=alone) is None
    html = tenant.client_for(tenant.viewer).get(
        reverse("trace_compare", args=[tenant.workspace.slug, alone.pk])).content.decode()  # fmt: skip
    assert "No successful run of this task" in html


def test_the_page_and_the_link_from_the_diagnosis(tenant):
    failed, good = _pair(tenant.workspace)
    client = tenant.client_for(tenant.viewer)
    partial = client.get(reverse("trace_incidents", args=[tenant.workspace.slug, failed.pk]))
    assert "Compare with a successful run of this task" in partial.content.decode()
    page = client.get(reverse("trace_compare", args=[tenant.workspace.slug, failed.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "first divergence" in html and good.external_id in html
    assert 'class="compare-differs"><span class="muted">cabin</span>' in html
    # A successful run offers no comparison.
    partial = client.get(reverse("trace_incidents", args=[tenant.workspace.slug, good.pk]))
    assert "Compare with a successful run" not in partial.content.decode()


def test_with_no_successful_run_of_the_task_the_nearest_similar_task_is_used_and_said(tenant):
    def run(external_id: str, task: str, task_key: str, status: str, calls: list) -> dict:
        steps = [{"kind": "user_prompt", "input": task}]
        steps += [
            {"kind": "tool_call", "name": n, "input": a, "output": {"ok": True}} for n, a in calls
        ]
        return trace_payload(external_id, task=task, task_key=task_key, status=status, steps=steps)

    ingest(tenant.workspace, [
        run("failed-q", "Cancel reservation XK2Q9 for mia li, she is sick", "airline:1", "failed",
            [("get_reservation_details", {"id": "XK2Q9"}), ("cancel_reservation", {"id": "XK2Q9"})]),
        run("good-q", "Cancel reservation ZZ81P for omar khan, he is sick", "airline:2", "succeeded",
            [("get_reservation_details", {"id": "ZZ81P"}), ("get_user_details", {"id": "omar"}),
             ("cancel_reservation", {"id": "ZZ81P"})]),
        run("good-far", "Book a hotel in Lisbon for three nights", "hotel:9", "succeeded",
            [("get_reservation_details", {"id": "H1"})]),
    ])  # fmt: skip
    failed = Trace.objects.get(workspace=tenant.workspace, external_id="failed-q")
    comparison = run_comparison(workspace=tenant.workspace, trace=failed)
    assert comparison is not None and not comparison.same_task
    assert comparison.success.external_id == "good-q"  # the most alike task, not the hotel
    assert comparison.similarity is not None and comparison.similarity >= 0.2
    assert "No run of this task has succeeded" in comparison.why and "alike" in comparison.why
    assert "alike, 0 calls in common)" in comparison.why  # the same tool, other values
    # One call in common is one call (InterCode's read "1 calls in common").
    ingest(tenant.workspace, [
        run("failed-one", "Cancel reservation QQ7 for ann lee, she is sick", "airline:3", "failed",
            [("get_user_details", {"id": "omar"}), ("cancel_reservation", {"id": "QQ7"})]),
    ])  # fmt: skip
    one = Trace.objects.get(workspace=tenant.workspace, external_id="failed-one")
    single = run_comparison(workspace=tenant.workspace, trace=one)
    assert single is not None and "alike, 1 call in common)" in single.why, single.why
    # Matched by tool: the first read lines up (its value differs with the task), and
    # the first divergence is the call the failed run never made.
    kinds = [row.kind for row in comparison.rows]
    assert kinds == ["similar", "success_only", "similar"], kinds
    assert comparison.rows[0].failed and comparison.rows[0].failed.differs == ["id"]
    assert comparison.rows[1].first and comparison.rows[1].success.name == "get_user_details"
    assert comparison.finding == ""  # the diagnosis's value-by-value divergence is for one task
    client = tenant.client_for(tenant.viewer)
    html = client.get(
        reverse("trace_compare", args=[tenant.workspace.slug, failed.pk])
    ).content.decode()
    assert "a similar task, not this one" in html and "Cancel reservation ZZ81P" in html
    detail = client.get(reverse("trace_incidents", args=[tenant.workspace.slug, failed.pk]))
    assert "Compare with a successful run of a similar task" in detail.content.decode()
