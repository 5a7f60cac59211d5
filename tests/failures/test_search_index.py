"""Incident search reads a stored full-text vector (GIN-indexed) and caches a
query's embedding per text."""

from __future__ import annotations

import pytest

from failures import embedding
from failures.models import Incident
from failures.search import incident_search
from tests.factories import ingest, trace_payload

pytestmark = pytest.mark.django_db


def _failed(i: int, error: str) -> dict:
    return trace_payload(f"run-{i}", steps=[
        {"kind": "user_prompt", "input": "Refund order 8812"},
        {"kind": "tool_call", "name": "payments.refund", "input": {"order": "8812"}, "error": error},
    ])  # fmt: skip


def test_the_stored_vector_follows_the_incident_and_finds_it_by_a_word(tenant):
    ingest(tenant.workspace, [_failed(1, "upstream gateway throttled the request")])
    incident = Incident.objects.get(workspace=tenant.workspace)
    assert incident.embedding is None  # found by its words alone, before any vector
    hits = incident_search(workspace=tenant.workspace, query="throttled").hits
    assert [h.incident.pk for h in hits] == [incident.pk]
    Incident.objects.filter(pk=incident.pk).update(
        signature="payments.refund: card declined", error_text="card declined by issuer"
    )
    assert incident_search(workspace=tenant.workspace, query="throttled").hits == []
    assert incident_search(workspace=tenant.workspace, query="declined").hits


def test_a_query_is_embedded_once_per_text(tenant, monkeypatch):
    calls: list[list[str]] = []
    real = embedding.get_embedder()

    class Counting:
        name, dimensions = real.name, real.dimensions

        def embed(self, texts: list[str]):  # type: ignore[no-untyped-def]
            calls.append(texts)
            return real.embed(texts)

    monkeypatch.setattr("failures.embedding.get_embedder", lambda: Counting())
    embedding._query_vector.cache_clear()
    for _ in range(3):
        incident_search(workspace=tenant.workspace, query="a question asked three times")
    incident_search(workspace=tenant.workspace, query="another question")
    assert calls == [["a question asked three times"], ["another question"]]


def test_one_embedding_of_a_workspace_at_a_time(tenant):
    import psycopg
    from django.db import connection

    ingest(tenant.workspace, [_failed(2, "upstream gateway throttled the request")])
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:  # another worker holds it
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)", [embedding.EMBED_LOCK, tenant.workspace.pk]
        )
        assert embedding.incidents_embed(workspace_id=tenant.workspace.pk) == []
        assert Incident.objects.get(workspace=tenant.workspace).embedding is None
        other.execute(
            "SELECT pg_advisory_unlock(%s, %s)", [embedding.EMBED_LOCK, tenant.workspace.pk]
        )
    assert len(embedding.incidents_embed(workspace_id=tenant.workspace.pk)) == 1
    assert Incident.objects.get(workspace=tenant.workspace).embedding is not None


def test_words_most_incidents_share_are_left_out_of_the_keyword_half(tenant):
    """ "error" is in every incident (a signature's field name): left in, a query
    with it would make every incident a keyword match to rank."""
    from django.db import connection

    from failures.search import _keyword_candidates, _telling_lexemes

    ingest(tenant.workspace, [_failed(10 + i, f"upstream refused the call {i}") for i in range(20)])
    ingest(tenant.workspace, [_failed(40, "gateway throttled the request")])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Incident._meta.db_table}")
    assert _telling_lexemes("error throttled") == ["throttl"]
    base = Incident.objects.filter(workspace=tenant.workspace)
    throttled = Incident.objects.get(workspace=tenant.workspace, error_text__contains="throttled")
    assert _keyword_candidates(tenant.workspace, base, "error throttled") == [throttled.pk]
    # Only common words: all are kept, and they match.
    assert len(_keyword_candidates(tenant.workspace, base, "error")) == 21


def test_every_connection_searches_the_hnsw_index_as_wide_as_configured(settings):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('hnsw.ef_search')")
        assert cursor.fetchone()[0] == str(settings.HIVEMIND_HNSW_EF_SEARCH)


def test_incidents_written_while_another_caller_embedded_are_not_left_waiting(tenant, monkeypatch):
    """A caller that finds the lock taken returns at once; its incidents may be
    written after the holder's last look, so the holder looks again after it
    lets go (they used to wait for the periodic sweep, minutes later)."""
    ingest(tenant.workspace, [_failed(50, "upstream gateway throttled the request")])
    Incident.objects.filter(workspace=tenant.workspace).update(embedded_at=None, embedding=None)
    real = embedding._embed_pending
    arrived: list[int] = []

    def meanwhile(workspace_id: int, limit: int) -> list[int]:
        found = real(workspace_id, limit)
        if not arrived:  # another caller's incident, written after this look
            source = Incident.objects.get(workspace=tenant.workspace)
            source.pk, source.step_index = None, 99
            source.embedding, source.embedded_at, source.failure_mode = None, None, None
            source.save()
            arrived.append(source.pk)
        return found

    monkeypatch.setattr(embedding, "_embed_pending", meanwhile)
    done = embedding.incidents_embed(workspace_id=tenant.workspace.pk)
    assert arrived[0] in done
    assert not Incident.objects.filter(workspace=tenant.workspace, embedded_at=None).exists()


def test_the_newest_keyword_matches_read_in_slices_are_those_of_one_query(
    tenant, other_tenant, monkeypatch
):
    """The keyword half reads the newest RANKED matches slice by slice of ids (the
    newest walked, older ones from the GIN index by range): the same incidents as
    one query over every incident, whatever the slice sizes, within the workspace."""
    from django.contrib.postgres.search import SearchQuery, SearchRank
    from django.db.models import F

    from failures import search

    errors = ["upstream gateway throttled", "card declined by issuer", "gateway timeout",
              "throttled again by the gateway", "ledger locked"]  # fmt: skip
    ingest(tenant.workspace, [_failed(i, errors[i % 5] if i % 11 else "rare zeppelin fault")
                              for i in range(120)])  # fmt: skip
    ingest(other_tenant.workspace, [_failed(i, "gateway throttled") for i in range(30)])
    base = search._filtered(tenant.workspace, search.SearchFilters())
    for raw in ("'gateway'", "'throttl' | 'declin'", "'zeppelin'", "'hovercraft'", "'ledger'"):
        every = list(
            base.filter(search_vector=SearchQuery(raw, search_type="raw", config="simple"))
            .order_by("-id").values_list("id", flat=True)
        )  # fmt: skip
        assert (len(every) > 40) == (raw in ("'gateway'", "'throttl' | 'declin'")), raw
        for recent, ranked in ((5000, 500), (3, 7), (1, 2), (10, 40)):
            monkeypatch.setattr(search, "RECENT", recent)
            monkeypatch.setattr(search, "RANKED", ranked)
            rank = SearchRank(F("search_vector"), SearchQuery(raw, search_type="raw",
                                                               config="simple"))  # fmt: skip
            found = search._newest_matches(tenant.workspace, base, raw, rank=rank)
            assert [pk for pk, _ in found] == every[:ranked], (raw, recent, ranked)


def _texts(workspace, vectors: dict[int, tuple[str, list[float]]]) -> None:  # type: ignore[no-untyped-def]
    """Give incidents a text key and vector, and the workspace those texts."""
    from failures.models import IncidentText

    for pk, (key, vector) in vectors.items():
        Incident.objects.filter(pk=pk).update(embedding=vector, embedding_key=key)
        IncidentText.objects.get_or_create(
            workspace=workspace, key=key, defaults={"embedding": vector}
        )


def _unit(*head: float) -> list[float]:
    return [*head] + [0.0] * (384 - len(head))


def test_a_small_workspace_beside_a_large_one_gets_its_own_nearest_incidents(
    tenant, other_tenant, monkeypatch
):
    """The HNSW index serves every workspace and filters after: a small workspace
    beside a larger one whose texts are nearer the query would keep none of the
    few the index returns. Such a workspace is searched by exact distance."""
    from django.db import connection

    from failures import search
    from failures.models import IncidentText

    ingest(tenant.workspace, [_failed(i, "ledger locked") for i in range(3)])
    ingest(other_tenant.workspace, [_failed(i, "ledger locked") for i in range(12)])
    mine = list(Incident.objects.filter(workspace=tenant.workspace).values_list("pk", flat=True))
    theirs = Incident.objects.filter(workspace=other_tenant.workspace).values_list("pk", flat=True)
    _texts(tenant.workspace, {pk: (f"mine-{n}", _unit(0.1 * n, 1.0)) for n, pk in enumerate(mine)})
    _texts(other_tenant.workspace, {pk: (f"theirs-{n}", _unit(1.0, 0.01 * n))
                                    for n, pk in enumerate(theirs)})  # fmt: skip
    monkeypatch.setattr(search, "query_vector", lambda text: _unit(1.0))
    monkeypatch.setattr(search, "FEW_TEXTS", 0)  # as if both were large
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {IncidentText._meta.db_table}")
        # Plans as in a large table (an index read that needs no sort: the HNSW
        # index), the HNSW index as narrow as it goes.
        cursor.execute(
            "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off"
        )
        cursor.execute("SELECT set_config('hnsw.ef_search', '1', false)")
    try:
        base = search._filtered(tenant.workspace, search.SearchFilters())
        ids, _ = search._vector_candidates(tenant.workspace, base, "ledger")
        assert ids == [mine[2], mine[1], mine[0]]  # nearest text first
        assert search._exact_is_truer(tenant.workspace)
        assert not search._exact_is_truer(other_tenant.workspace)  # most of the table
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort")
            cursor.execute("RESET hnsw.ef_search")


def test_the_nearest_incidents_are_those_of_the_nearest_texts_newest_first(tenant, monkeypatch):
    """Each text is measured once and its copies (same key) share its distance:
    the nearest CANDIDATES incidents are those measuring every incident would
    give, copies newest first; the filters apply to the incidents."""
    from pgvector.django import CosineDistance

    from failures import search

    ingest(tenant.workspace, [_failed(i, f"error {i}") for i in range(30)])
    ids = list(
        Incident.objects.filter(workspace=tenant.workspace)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    _texts(tenant.workspace, {pk: (f"text-{n % 4}", _unit(1.0, n % 4, 0.5 * (n % 4)))
                              for n, pk in enumerate(ids)})  # fmt: skip
    monkeypatch.setattr(search, "CANDIDATES", 11)
    query = _unit(1.0, 1.0, 0.4)
    monkeypatch.setattr(search, "query_vector", lambda text: query)
    base = search._filtered(tenant.workspace, search.SearchFilters())
    every = [pk for _, pk in sorted(
        (round(d, 6), -pk) for pk, d in base.annotate(
            d=CosineDistance("embedding", query)).values_list("pk", "d")
    )[:11]]  # fmt: skip
    got, similarity = search._vector_candidates(tenant.workspace, base, "q")
    assert got == [-pk for pk in every]
    # A filter that leaves some copies out: the next texts fill the list.
    Incident.objects.filter(pk__in=got[:5]).update(tool="other")
    narrowed = base.filter(tool="payments.refund")
    got2, _ = search._vector_candidates(tenant.workspace, narrowed, "q")
    assert len(got2) == 11 and not set(got2) & set(got[:5])


def test_a_modes_most_typical_incidents_are_measured_on_the_mode_not_through_the_index(
    tenant, other_tenant
):
    """The HNSW index over every incident filters by mode after its search: with
    other incidents nearer the mode's centre, it would leave the mode none of its
    own. A mode's most typical incidents are its own, nearest its centre first."""
    from django.db import connection

    from failures.models import FailureMode
    from failures.selectors import mode_incidents_nearest

    ingest(tenant.workspace, [_failed(i, "ledger locked") for i in range(3)])
    ingest(other_tenant.workspace, [_failed(i, "ledger locked") for i in range(12)])
    mode = FailureMode.objects.create(
        workspace=tenant.workspace, label="ledger locked", incident_count=3, centroid=_unit(1.0)
    )
    mine = list(Incident.objects.filter(workspace=tenant.workspace).order_by("pk"))
    for n, incident in enumerate(mine):  # the oldest nearest the centre
        Incident.objects.filter(pk=incident.pk).update(
            failure_mode=mode, embedding=_unit(1.0, 0.2 * (n + 1))
        )
    Incident.objects.filter(workspace=other_tenant.workspace).update(embedding=_unit(1.0, 0.01))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE failures_incident")
        # Plans as for a mode of many incidents in a large table: not by the
        # mode's own index (dropped until the test's transaction rolls back), no
        # sort if an index gives the order, the HNSW index as narrow as it goes.
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'failures_incident' "
            "AND indexdef LIKE '%%(failure_mode_id)%%'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off"
        )
        cursor.execute("SELECT set_config('hnsw.ef_search', '1', false)")
    try:
        nearest = mode_incidents_nearest(mode=mode, limit=2)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort")
            cursor.execute("RESET hnsw.ef_search")
    assert [i.pk for i in nearest] == [mine[0].pk, mine[1].pk]


def test_the_query_vector_is_computed_on_this_processs_own_thread(monkeypatch):
    """The vector is computed beside the keyword half, on a thread of the process
    that searches: a forked child (another pid) makes its own, never its parent's."""
    import threading

    import numpy as np

    from failures import search

    seen: list[str] = []

    def vector(text: str):  # type: ignore[no-untyped-def]
        seen.append(threading.current_thread().name)
        return np.zeros(384, dtype=np.float32)

    monkeypatch.setattr(search, "query_vector", vector)
    search._embed_soon("x").result()
    assert seen and seen[0].startswith("query-vector")
    pool = search._embedding_pool
    assert pool is not None
    monkeypatch.setattr(search.os, "getpid", lambda: -1)
    search._embed_soon("y").result()
    assert search._embedding_pool is not None and search._embedding_pool[0] == -1
    assert search._embedding_pool[1] is not pool[1]


def test_an_incident_whose_text_was_embedded_before_takes_its_vector_without_the_model(
    tenant, monkeypatch
):
    from failures.models import IncidentText

    ingest(tenant.workspace, [_failed(10, "upstream gateway throttled the request")])
    assert embedding.incidents_embed(workspace_id=tenant.workspace.pk)
    first = Incident.objects.get(workspace=tenant.workspace)
    calls: list[list[str]] = []
    real = embedding.get_embedder()

    class Counting:
        name, dimensions = real.name, real.dimensions

        def embed(self, texts: list[str]):  # type: ignore[no-untyped-def]
            calls.append(texts)
            return real.embed(texts)

    monkeypatch.setattr("failures.embedding.get_embedder", lambda: Counting())
    # Later runs failing the same way, and one failing another way.
    ingest(tenant.workspace, [_failed(i, "upstream gateway throttled the request")
                              for i in range(11, 14)])  # fmt: skip
    ingest(tenant.workspace, [_failed(20, "card declined by the issuer")])
    done = embedding.incidents_embed(workspace_id=tenant.workspace.pk)
    assert len(done) == 4 and len(calls) == 1 and len(calls[0]) == 1  # only the new text
    same = Incident.objects.filter(workspace=tenant.workspace, embedding_key=first.embedding_key)
    assert same.count() == 4
    assert all(list(i.embedding) == list(first.embedding) for i in same)
    assert IncidentText.objects.filter(workspace=tenant.workspace).count() == 2


def test_what_a_hit_shows_is_read_with_the_search_and_nothing_after(tenant, rf):
    """The search reads only the fields a hit shows (the rest cost more to parse than
    the search itself); showing them in the API, MCP or the page queries nothing more."""
    from django.db import connection
    from django.template.loader import render_to_string
    from django.test.utils import CaptureQueriesContext

    from failures.api import _hit_out, _mode_ref
    from failures.models import FailureMode

    ingest(tenant.workspace, [_failed(i, "upstream gateway throttled the request")
                              for i in range(3)])  # fmt: skip
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="throttled")
    Incident.objects.filter(workspace=tenant.workspace).update(failure_mode=mode)
    result = incident_search(workspace=tenant.workspace, query="throttled")
    assert len(result.hits) == 3
    with CaptureQueriesContext(connection) as queries:
        shown = [_hit_out(h).model_dump() for h in result.hits]
        shown += [_mode_ref(m["mode"]) for m in result.modes]
        shown += [(h.incident.trace.task, h.incident.kind, h.incident.description,
                   h.incident.failure_mode.incident_count, h.incident.failure_mode.trace_count,
                   h.incident.failure_mode.last_seen) for h in result.hits]  # fmt: skip
        page = render_to_string(
            "failures/_search_results.html", {"search": result, "workspace": tenant.workspace}
        )
    assert "throttled" in page and len(shown) == 7
    assert not queries.captured_queries, [q["sql"][:120] for q in queries.captured_queries]


def test_a_search_names_the_mode_of_a_few_labelled_runs_among_many_weak_copies(tenant):
    """On the demo, a rate-limit mode a lead's labels seeded holds 5 incidents beside
    30 copies of the same error that are only weak leads or recovered from: the top
    hits were all copies, so "payments refund rate limited" named no mode, on the
    page, the API and MCP. The modes now come from every candidate that the words
    and the meaning both found; a mode only the meaning's nearest texts reach (an
    unrelated error) is not named."""
    from failures.models import FailureMode

    limited = "429 Too Many Requests: rate limit exceeded on refunds"
    ingest(tenant.workspace, [_failed(i, limited) for i in range(12)])
    ingest(tenant.workspace, [
        trace_payload(f"denied-{i}", task="Export signups since Monday", steps=[
            {"kind": "user_prompt", "input": "Export signups since Monday"},
            {"kind": "tool_call", "name": "fs.write", "input": {"path": "/data/x.csv"},
             "error": "PermissionError: [Errno 13] Permission denied: '/data/x.csv'"},
        ]) for i in range(4)
    ])  # fmt: skip
    embedding.incidents_embed(workspace_id=tenant.workspace.pk)
    refunds = Incident.objects.filter(workspace=tenant.workspace, tool="payments.refund")
    assert refunds.count() == 12
    labelled = FailureMode.objects.create(
        workspace=tenant.workspace, label="payments.refund rate limited", incident_count=3
    )
    # The oldest copies: each half reads the newest of a text first.
    Incident.objects.filter(pk__in=list(refunds.order_by("id").values_list("id", flat=True)[:3]))\
        .update(failure_mode=labelled)  # fmt: skip
    denied = FailureMode.objects.create(
        workspace=tenant.workspace, label="fs.write denied", incident_count=4
    )
    Incident.objects.filter(workspace=tenant.workspace, tool="fs.write").update(failure_mode=denied)

    result = incident_search(workspace=tenant.workspace, query="payments refund rate limited", k=3)
    assert all(h.incident.failure_mode_id is None for h in result.hits)  # copies on top
    named = [m["mode"] for m in result.modes if m["mode"] is not None]
    assert named == [labelled]
