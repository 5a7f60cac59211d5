"""Issue 4/7: modes that hold up on real data, figures a lead decides on, and
skills drafted from contrast, as itemised instructions with their evidence."""

from __future__ import annotations

import numpy as np
import pytest

from failures import clustering
from failures.boilerplate import error_gist, learn
from failures.embedding import incidents_embed
from failures.models import FailureMode, Incident
from failures.services import failure_modes_recluster
from failures.stats import Mark, Run, lift_figures, risk_ratio
from skills import distill
from skills.instructions import instruction_changes, read_back
from tests.factories import ingest, successful_payloads, trace_payload

# --- clustering ----------------------------------------------------------------------


def _blob(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    points = centre + rng.normal(0, spread, (n, len(centre)))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_one_cluster_only_as_a_fallback():
    rng = np.random.default_rng(0)
    a, b = np.eye(16)[0], np.eye(16)[1]
    one = _blob(rng, a, 20, 0.02)
    labels = clustering.cluster_vectors(one, min_cluster_size=5)
    # A workspace with one failure kind has that mode, though HDBSCAN alone finds none.
    assert (clustering._hdbscan(one, 5, single=False) == clustering.NOISE).all()
    assert set(labels.tolist()) == {0, clustering.NOISE} and (labels == 0).sum() >= 5
    two = np.vstack([_blob(rng, a, 20, 0.02), _blob(rng, b, 20, 0.02)])
    labels = clustering.cluster_vectors(two, min_cluster_size=5)
    assert len(set(labels.tolist()) - {clustering.NOISE}) == 2  # never one catch-all


def test_identical_texts_always_share_a_label_whatever_their_vectors():
    rng = np.random.default_rng(1)
    a, b = np.eye(16)[0], np.eye(16)[1]
    vectors = np.vstack([_blob(rng, a, 12, 0.03), _blob(rng, b, 12, 0.03)])
    keys = [f"a{i % 3}" for i in range(12)] + [f"b{i % 3}" for i in range(12)]
    # The same text embedded in two batches: vectors differ by ~1e-7.
    vectors[3] = vectors[0] + 1e-7
    labels = clustering.cluster_vectors(vectors, min_cluster_size=3, keys=keys)
    for key in set(keys):
        assert len({labels[i] for i, k in enumerate(keys) if k == key}) == 1, key
    assert labels[0] != labels[12]
    # A text seen min_cluster_size times is a mode even alone in its group.
    alone = clustering.cluster_vectors(vectors[:5], min_cluster_size=5, keys=["x"] * 5)
    assert set(alone.tolist()) == {0}


@pytest.mark.django_db
def test_identical_texts_get_one_vector_across_batches(tenant):
    ingest(workspace=tenant.workspace, items=[trace_payload("one")])
    incidents_embed(workspace_id=tenant.workspace.pk)
    ingest(workspace=tenant.workspace, items=[trace_payload("two")])
    incidents_embed(workspace_id=tenant.workspace.pk)
    first, second = Incident.objects.filter(workspace=tenant.workspace).order_by("pk")
    assert first.embedding_key == second.embedding_key
    assert np.array_equal(np.asarray(first.embedding), np.asarray(second.embedding))


def test_clusters_with_the_same_text_merge_and_noise_with_it_joins():
    labels = np.array([0, 0, 1, 1, clustering.NOISE, 2])
    texts = ["x", "x", "x", "y", "x", "z"]
    merged = clustering.merge_same_text(labels, texts)
    assert merged[0] == merged[2] == merged[4]  # cluster 1's commonest text is "x" too
    assert merged[5] == 2


def test_labels_say_masks_in_words_and_keep_the_tool():
    label = clustering.mode_label(
        ["tool: payments.refund | error: 429 too many requests, retry after <n>s | category: x"],
        ["payments.refund"],
    )
    assert label == "payments.refund: 429 too many requests, retry after Ns"
    assert "<" not in clustering.mode_label(["tool: t | error: no row <str> at <path>"], ["t"])


# --- boilerplate -----------------------------------------------------------------------


def test_a_line_heading_many_different_errors_is_boilerplate_and_skipped():
    causes = ["KeyError in payments", "disk full", "permission denied", "bad gateway"]
    texts = [f"Environment notice: read the docs\n{causes[i % 4]}" for i in range(12)]
    texts += ["invalid action"] * 12  # the same failure again: not boilerplate
    texts += [f"other failure {i}" for i in range(40)]
    found = learn(texts)
    assert "environment notice: read the docs" in found
    assert "invalid action" not in found
    assert error_gist(texts[0], found) == "KeyError in payments"
    assert error_gist("invalid action", found) == "invalid action"


def test_a_traceback_is_told_by_its_last_line():
    text = 'Traceback (most recent call last):\n  File "x.py", line 1\nModuleNotFoundError: x'
    assert error_gist(text) == "ModuleNotFoundError: x"


# --- lift and also in successful runs -------------------------------------------------------


def test_lift_and_also_in_successes_on_known_counts():
    mark = Mark("signal", ("error:pay:rate_limit",))
    runs = [Run(i, "a", i < 8, {"error:pay:rate_limit"}, []) for i in range(10)]  # 8 of 10 fail
    runs += [Run(100 + i, "a", i < 3, set(), []) for i in range(30)]  # 3 of 30 fail
    figures = lift_figures({mark}, set(), runs)
    assert (figures["failed_with"], figures["runs_with"]) == (8, 10)
    assert (figures["failed_without"], figures["runs_without"]) == (3, 30)
    assert figures["lift"] == pytest.approx(8.0)
    low, high = figures["lift_low"], figures["lift_high"]
    # Katz: se = sqrt(1/8 - 1/10 + 1/3 - 1/30) = 0.570
    assert low == pytest.approx(8 * np.exp(-1.96 * 0.5701), rel=1e-3) and low > 1
    assert high == pytest.approx(8 * np.exp(1.96 * 0.5701), rel=1e-3)
    assert figures["also_in_successes"] == pytest.approx(2 / 29, abs=1e-3)
    ratio, low, high = risk_ratio(5, 10, 5, 10)
    assert ratio == 1 and low < 1 < high
    # Every run failed (Who&When is a set of failed runs): no lift, not "×1.0".
    all_failed = [
        Run(i, "a", True, {"error:pay:rate_limit"} if i < 5 else set(), []) for i in range(20)
    ]
    figures = lift_figures({mark}, set(), all_failed)
    assert "lift" not in figures and figures["also_in_successes"] is None


def test_lift_compares_runs_within_each_agent():
    """Pooled across agents, an agent whose runs all fail (Who&When's group chats)
    and mostly show the mode made it look like failure: ×1.4 with an interval
    above 1, where within the one agent that has successes it changes nothing."""
    mark = Mark("signal", ("error:pay:rate_limit",))
    shown = {"error:pay:rate_limit"}
    chat = [Run(i, "chat", True, shown if i < 40 else set(), []) for i in range(50)]
    # Agent "b": half of its runs fail, with the mode or without it.
    b = [Run(100 + i, "b", i % 2 == 0, shown if i < 10 else set(), []) for i in range(40)]
    figures = lift_figures({mark}, set(), chat + b)
    crude, crude_low, _ = risk_ratio(45, 50, 25, 40)
    assert crude_low > 1  # what pooling the runs said
    assert figures["lift"] == pytest.approx(1.0)
    assert figures["lift_low"] < 1 < figures["lift_high"]
    # The counts shown beside it stay every run's.
    assert (figures["failed_with"], figures["runs_with"]) == (45, 50)
    # One agent: the plain ratio, as before.
    assert lift_figures({mark}, set(), b)["lift"] == pytest.approx(1.0)


@pytest.mark.django_db
def test_a_mode_shows_its_lift_and_how_often_successful_runs_have_it(tenant, settings):
    settings.HIVEMIND_MIN_MODE_SIZE = 3
    failing = [
        trace_payload(f"f-{i}", steps=[{"kind": "tool_call", "name": "payments.refund",
                                        "input": {"o": i}, "error": "429 Too Many Requests"}])
        for i in range(8)
    ]  # fmt: skip
    ingest(workspace=tenant.workspace, items=failing + successful_payloads(16))
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    mode = FailureMode.objects.get(workspace=tenant.workspace, incident_count__gt=0)
    stats = mode.stats
    assert (stats["failed_with"], stats["runs_with"]) == (8, 8)
    assert (stats["failed_without"], stats["runs_without"]) == (0, 16)
    assert stats["also_in_successes"] == 0 and stats["lift_low"] > 1
    assert stats["failed_traces"] == 8 and stats["share_of_failed"] == 1.0


# --- drafting from contrast ------------------------------------------------------------------


def _booking(i: int, *, look_first: bool, failed: bool) -> dict:
    calls = ["search_flights"] + (["get_reservation_details"] if look_first else [])
    calls += ["update_reservation_flights"]
    return trace_payload(
        f"{'f' if failed else 's'}-{i}", agent="airline-agent",
        task=f"Change the flights of reservation R{i:03d} to a later date",
        status="failed" if failed else "succeeded",
        steps=[{"kind": "tool_call", "name": name, "input": {"r": i}, "output": {"ok": True}}
               for name in calls],
    )  # fmt: skip


@pytest.mark.django_db
def test_offline_draft_states_the_rule_with_its_counts(tenant, settings):
    settings.HIVEMIND_MIN_MODE_SIZE = 3
    # Drafted from half the runs (by task), backtested on the other half.
    items = [_booking(i, look_first=True, failed=False) for i in range(30)]
    items += [_booking(100 + i, look_first=False, failed=True) for i in range(20)]
    ingest(workspace=tenant.workspace, items=items)
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    mode = FailureMode.objects.filter(workspace=tenant.workspace, incident_count__gt=0).first()
    assert mode is not None, list(Incident.objects.values_list("description", flat=True))
    incidents = list(mode.incidents.select_related("trace"))
    draft = distill.draft_offline(distill.Context(mode, incidents, []))
    assert draft.verdict == "new", draft.reason
    rule = draft.instructions[0]
    assert "`get_reservation_details`" in rule["text"]
    counts = rule["counts"]
    assert counts["failed_with"] == counts["runs_with"] >= 5 and counts["failed_without"] == 0
    done = counts["successes_relevant"]
    assert f"{done} of {done} successful runs" in rule["because"]
    assert done + counts["runs_with"] < 50  # the backtest half was left out of the counts
    test = rule["backtest"]
    assert test["verdict"] == "passed", test
    assert test["followed"] + test["other"] == 50 - done - counts["runs_with"]
    assert rule["text"] in draft.doc.body and "retry" not in draft.doc.body.lower()
    assert draft.doc.name.startswith(("before", "call")) and "--" not in draft.doc.name
    assert {i.failure_mode_id for i in incidents} == {mode.pk}  # evidence from its own mode


@pytest.mark.django_db
def test_a_mode_of_shell_errors_with_no_agreed_recovery_is_skipped_with_a_reason(tenant, settings):
    settings.HIVEMIND_MIN_MODE_SIZE = 3
    failing = [
        trace_payload(f"b-{i}", agent="shell-agent",
                      steps=[{"kind": "tool_call", "name": "bash", "input": {"cmd": f"ls /x{i}"},
                              "error": "ls: cannot access '/x': No such file or directory"}])
        for i in range(8)
    ]  # fmt: skip
    ingest(workspace=tenant.workspace, items=failing + successful_payloads(
        12, tool="bash", agent="shell-agent"))  # fmt: skip
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    mode = FailureMode.objects.get(workspace=tenant.workspace, incident_count__gt=0)
    draft = distill.draft_offline(distill.Context(mode, list(mode.incidents.all()), []))
    assert draft.verdict == "skip" and "`bash`" in draft.reason and draft.doc is None


def test_names_keep_negations_and_are_cut_between_words():
    assert distill.name_from("Do not call `payments.refund` twice.") == (
        "do-not-call-payments-refund-twice"
    )
    assert "not-exist" in distill.name_from("When the column does not exist, describe it")
    long = distill.name_from("Before calling `update_reservation_flights`, call " * 3)
    assert len(long) <= 64 and not long.endswith("-")
    assert all(part in "before calling update reservation flights call" for part in long.split("-"))


def test_a_name_is_the_instructions_not_its_reason_or_next_sentence():
    """A lead's fix often says why after what (the demo's: "…, as the runs that got
    past it did"); cut at 64 characters, the name was the reason's words."""
    fix = (
        "When `fs.write` fails with PermissionError, call `fs.write_tmp` next, "
        "as the runs that got past it did."
    )
    assert distill.name_from(fix) == "fs-write-fails-permissionerror-call-fs-write-tmp"
    assert distill.name_from("Check the SKU first because lookups of unknown SKUs fail") == (
        "check-sku-first"
    )
    refuses = (
        "Call `inventory.lookup` only when its precondition holds: it refuses with "
        "“SKU not found”. Check that first with the information you already have."
    )
    name = distill.name_from(refuses)
    assert name == "call-inventory-lookup-only-precondition-holds-refuses"
    # A tool in backticks is whole or left out (the demo's were cut to `sql-describe`,
    # `inventory-normalize`, `crm-get`), an exception's module path is its class, and a
    # name never ends on a word that needs the next one.
    sql = ("When `sql.query` fails with psycopg.errors.UndefinedColumn, call "
           "`sql.describe_table` next, as the runs that got past it did.")  # fmt: skip
    assert distill.name_from(sql) == "sql-query-fails-undefinedcolumn-call-sql-describe-table"
    # Too long whole, it does without the words the error already says ("fails"), so
    # the tool the instruction ends on fits.
    sku = "When `inventory.lookup` fails with SKU not found, call `inventory.normalize_sku` next."
    assert distill.name_from(sku) == "inventory-lookup-sku-not-found-call-inventory-normalize-sku"
    cut = ("When `crm.search` answers “ReadTimeout”, the action did not happen: do not report "
           "the task as done until a `crm.search` call succeeds.")  # fmt: skip
    assert distill.name_from(cut) == "crm-search-readtimeout-action-did-not-happen-do-not-report"
    for limit in (44, 50, 52, 55):  # cut before what "do not" negates: the negation goes too
        assert distill.name_from(cut, limit=limit) == (
            "crm-search-readtimeout-action-did-not-happen"
        ), limit
    # A text that is all reason still names the skill by its words.
    assert distill.name_from("As the runs did") == "as-runs-did"


# --- itemised instructions -----------------------------------------------------------------


PREVIOUS = [
    {"id": "i-1", "section": "Do", "text": "Before calling `a`, call `b`.", "because": "9 of 9",
     "counts": {"x": 1}},
    {"id": "i-2", "section": "Don't", "text": "Do not call `c` for tasks like these.",
     "because": "5 of 6", "counts": {"x": 1}},
]  # fmt: skip


def test_a_revision_is_instructions_added_edited_and_removed():
    body = (
        "## When this applies\n- x\n\n## Do\n- Before calling `a`, call `b` and read it.\n"
        "- Check the order total first.\n\n## Don't\n- Nothing beyond the rules above.\n"
        "\n## How to check\n- y\n"
    )
    new = read_back(body, PREVIOUS, "lead")
    assert new[0]["id"] == "i-1" and new[0]["edited_by"] == "lead"  # kept its id, edited
    assert new[0]["because"] == "9 of 9"
    assert new[1]["id"].startswith("h-") and new[1]["added_by"] == "lead"
    changes = {(c["change"], c["id"]) for c in instruction_changes(PREVIOUS, new)}
    assert changes == {("edited", "i-1"), ("added", new[1]["id"]), ("removed", "i-2")}


# --- Claude names modes ----------------------------------------------------------------------


@pytest.mark.django_db
def test_claude_names_modes_once_and_reclustering_keeps_the_name(tenant, settings):
    from failures.naming import failure_modes_name
    from tests.skills.fake_anthropic import FakeAnthropic, tool_answer

    settings.HIVEMIND_MIN_MODE_SIZE = 3
    failing = [
        trace_payload(f"f-{i}", steps=[{"kind": "tool_call", "name": "payments.refund",
                                        "input": {"o": i}, "error": "429 Too Many Requests"}])
        for i in range(6)
    ]  # fmt: skip
    ingest(workspace=tenant.workspace, items=failing + successful_payloads(10))
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    assert failure_modes_name(workspace_id=tenant.workspace.pk) == 0  # no key: offline label
    server = FakeAnthropic()
    try:
        settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL = "sk-test", server.url
        server.queue.append((200, tool_answer({"label": "Refunds hit the payment rate limit"},
                                              tool="name_mode"), {}))  # fmt: skip
        assert failure_modes_name(workspace_id=tenant.workspace.pk) == 1
        prompt = server.requests[0]["body"]["messages"][0]["content"]
        assert "<incident" in prompt and "untrusted DATA" in server.requests[0]["body"]["system"]
        assert failure_modes_name(workspace_id=tenant.workspace.pk) == 0  # named once
    finally:
        server.close()
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    mode = FailureMode.objects.get(workspace=tenant.workspace, incident_count__gt=0)
    assert mode.label == "Refunds hit the payment rate limit" and mode.label_source == "claude"


@pytest.mark.django_db
def test_runs_of_a_templated_task_find_their_neighbours_however_many_successes(tenant):
    # Ids in the task text ("reservation R105") used to outweigh the template as the
    # pool grew: at 40 successful runs the failed ones found no neighbour at all.
    items = [_booking(i, look_first=True, failed=False) for i in range(60)]
    items += [_booking(100 + i, look_first=False, failed=True) for i in range(10)]
    ingest(workspace=tenant.workspace, items=items)
    found = Incident.objects.filter(workspace=tenant.workspace, trace__status="failed")
    assert found.count() == 10
    assert all("without `get_reservation_details` first" in i.description for i in found)


@pytest.mark.django_db
def test_the_migration_drops_only_lifts_measured_without_successes(tenant):
    import importlib

    from django.db import connection

    from failures.models import FailureMode

    sql = importlib.import_module("failures.migrations.0023_no_lift_without_successes").DROP_SQL
    lift = {"lift": 1.0, "lift_low": 0.9, "lift_high": 1.0}
    none = FailureMode.objects.create(workspace=tenant.workspace, label="a",
                                      stats={**lift, "successes": 0, "failed_traces": 29})  # fmt: skip
    some = FailureMode.objects.create(workspace=tenant.workspace, label="b",
                                      stats={**lift, "successes": 4})  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql)
    none.refresh_from_db()
    some.refresh_from_db()
    assert none.stats == {"successes": 0, "failed_traces": 29}
    assert some.stats["lift"] == 1.0
