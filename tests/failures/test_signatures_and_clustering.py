from __future__ import annotations

import numpy as np

from failures import clustering
from failures.signatures import embedding_text, normalise, step_signature


def test_incidents_differing_only_in_ids_numbers_and_timestamps_share_a_signature():
    a = step_signature(
        tool="http_get",
        error="Timeout after 30000 ms fetching https://api.x.com/orders/8812 "
        "(request 550e8400-e29b-41d4-a716-446655440000 at 2026-11-21T10:00:00Z, trace 9f86d081884c)",
        step_input={"order_id": 8812, "retry": True},
        task="Refund order 8812",
    )
    b = step_signature(
        tool="http_get",
        error="Timeout after 5000 ms fetching https://api.x.com/orders/17 "
        "(request 123e4567-e89b-12d3-a456-426614174000 at 2026-10-01T23:59:59Z, trace 0a1b2c3d4e5f)",
        step_input={"order_id": 17, "retry": False},
        task="Refund order 17776",
    )
    assert a == b
    assert "tool: http_get" in a and "input: {order_id: number, retry: boolean}" in a


def test_signature_keeps_short_codes_that_tell_failures_apart():
    assert normalise("HTTP 429 Too Many Requests") != normalise("HTTP 503 Service Unavailable")
    assert normalise("retry after 17s") == normalise("retry after 2400s")
    assert normalise("/var/data/run_1.csv denied") == normalise("/tmp/x/y.txt denied")


def test_embedding_text_drops_the_task():
    signature = step_signature(tool="t", error="boom", step_input=None, task="do things")
    assert embedding_text(signature) == "tool: t | error: boom"


def _blobs(rng, centers, per, noise=0.05):
    vectors, labels = [], []
    for label, center in enumerate(centers):
        points = center + rng.normal(0, noise, (per, len(center)))
        vectors.append(points / np.linalg.norm(points, axis=1, keepdims=True))
        labels += [label] * per
    return np.vstack(vectors).astype(np.float32), labels


def test_hdbscan_finds_known_modes_and_leaves_outliers_as_noise():
    rng = np.random.default_rng(1)
    centers = np.eye(32)[:4]
    vectors, truth = _blobs(rng, centers, 30)
    outliers = np.eye(32, dtype=np.float32)[10:15]  # five lone directions
    labels = clustering.cluster_vectors(np.vstack([vectors, outliers]), min_cluster_size=5)
    nmi, ari = clustering.nmi_ari(truth, list(labels[: len(truth)]))
    assert nmi > 0.95 and ari > 0.95
    assert (labels[len(truth) :] == clustering.NOISE).all()


def test_match_clusters_keeps_ids_by_overlap_and_by_centroid():
    new = {0: {1, 2, 3, 4}, 1: {10, 11}, 2: {20, 21}}
    old = {100: {1, 2, 3}, 200: {99}}
    new_c = {0: np.array([1.0, 0]), 1: np.array([0.0, 1.0]), 2: np.array([0.7, 0.7])}
    old_c = {100: np.array([1.0, 0]), 200: np.array([0.0, 1.0])}
    assert clustering.match_clusters(new, old, new_c, old_c) == {0: 100, 1: 200, 2: None}


def test_ctfidf_keywords_pick_words_specific_to_each_cluster():
    docs = {
        0: ["tool: pay | error: rate limit exceeded"] * 3,
        1: ["tool: crm | error: read timeout waiting"] * 3,
    }
    keywords = clustering.ctfidf_keywords(docs)
    assert any("rate" in k or "limit" in k for k in keywords[0])
    assert any("timeout" in k for k in keywords[1])
    assert not any(k == "error" or k == "tool" for k in keywords[0] + keywords[1])


def test_keywords_leave_out_the_signatures_fields_and_the_products_own_wording():
    finding = "never called `refund`, which successful runs of the same task did"
    docs = {
        0: [f"tool: refund | error: {finding} | category: process.gave_up"] * 3,
        1: ["tool: crm | error: read timeout waiting | category: error"] * 3,
    }
    words = " ".join(clustering.ctfidf_keywords(docs)[0]).split()
    assert "refund" in " ".join(words)
    assert not {"category", "called", "did", "successful", "runs"} & set(words)
    assert "process.gave_up" not in words  # the product's category, not the mode's words
    # No word pair across two fields ("… waiting" + task "refund …").
    docs[1] = ["tool: crm | error: read timeout waiting | task: refund the order"] * 3
    assert "waiting refund" not in clustering.ctfidf_keywords(docs)[1]
    # No word pair across a word left out: Who&When's mode read "went assumed".
    said = "went on with assumed or made-up data instead of what it could not get"
    docs[0] = [f"tool: none | error: {said} | task: price of museum passes"] * 3
    pairs = [k for k in clustering.ctfidf_keywords(docs, top=20)[0] if " " in k]
    assert pairs == ["museum passes"]  # not "went assumed", "assumed data", "price museum"


def test_mode_label_reads_tool_and_error():
    label = clustering.mode_label(
        ["tool: pay | error: 429 rate limit | task: x"] * 2, ["pay", "pay"]
    )
    assert label == "pay: 429 rate limit"


def test_mode_label_names_a_tool_only_when_most_incidents_concern_it():
    # A mode of failed checks where one incident in nine named a tool: the label
    # said "modify_pending_order_items: …" over six incidents that involved none.
    signatures = ["tool:  | error: `db_match` failed | category: x"] * 9
    tools = ["", "", "", "", "", "", "exchange_items", "modify_items", "modify_address"]
    assert clustering.mode_label(signatures, tools) == "`db_match` failed"
    tools = ["modify_items"] * 5 + [""] * 4
    assert clustering.mode_label(signatures, tools) == "modify_items: `db_match` failed"


def test_one_wrong_call_or_failed_check_signs_alike_whatever_its_values():
    """A mode is the failure, not the values of one run of it: two same-task
    divergences on one tool, or one failed check with different company, sign
    alike (and so cluster as one mode); other tools and checks do not."""
    from failures.diagnosis.offline import Finding
    from failures.mining import signature_of

    def extra(tool: str, args: str, instead: str) -> Finding:
        return Finding(
            3, f"Called `{tool}` with {args}; the successful run of this task (1 run: a) did not;"
            f" they called `{instead}`.", "tool_use.wrong_tool", [3], 0.9, tool,
            stats={"evidence": "same_task", "successful_runs": 1},
        )  # fmt: skip

    def check(name: str, more: str) -> Finding:
        return Finding(-1, f"`{name}` failed: the database did not end as expected{more}",
                       "outcome.check_failed", [], 1.0, "", stats={"evidence": "check"})  # fmt: skip

    def error_part(finding: Finding) -> str:
        return embedding_text(signature_of(finding, "the task"))

    a = extra("transfer_to_human_agents", 'summary="MMS fails"', "enable_roaming")
    b = extra("transfer_to_human_agents", 'summary="no data abroad, line L2"', "refuel_data")
    assert error_part(a) == error_part(b)
    assert "successful runs of the same task did not" in error_part(a)
    assert error_part(a) != error_part(extra("cancel_order", 'order_id="#W1"', "modify_order"))
    assert error_part(check("db_match", "")) == error_part(
        check("db_match", " (3 more checks failed)")
    )
    assert error_part(check("db_match", "")) != error_part(check("env_assertions", ""))
    # A score in parentheses is the run's, not the failure's.
    assert error_part(check("result rows", " (best score 0.40 at action 2 of 3)")) == error_part(
        check("result rows", " (10 actions scored, none above 0)")
    )
