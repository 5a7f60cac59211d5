"""Incident search: a question in plain words → the closest incidents and their modes.

Hybrid retrieval: pgvector nearest neighbours of the query's embedding among
the workspace's distinct incident texts (exact, or HNSW for a large workspace;
cosine; the query's vector cached per text), then the incidents of those
texts; and PostgreSQL full-text matches on the signature and error (a stored
tsvector with a GIN index); fused by reciprocal rank. Before that, the query is read for a time phrase ("this
week", "last 24 hours", "yesterday", …) and for an agent it names
("checkout" → checkout-agent); both become filters, and are reported back so
the caller sees how the question was understood.
"""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, Max, Min, QuerySet
from django.utils import timezone

from traces.selectors import trace_agent_list
from workspaces.filtering import filter_given
from workspaces.models import Workspace

from .embedding import query_vector
from .models import FailureMode, Incident, IncidentText

CANDIDATES = 50
# Keyword matches ranked per query (the newest).
RANKED = 500
# Ids read newest first before the rest are read from the GIN index by range.
RECENT = 5000
# The nearest texts read per query (their incidents become the vector half).
TEXTS = 200
# A workspace with at most FEW_TEXTS distinct texts, or at most EXACT_AT_MOST and
# less than half of all, is searched by exact distance (`_nearest_texts`).
FEW_TEXTS = 2_000
EXACT_AT_MOST = 20_000
# A word in at least this share of all incidents is left out of the keyword half.
COMMON_SHARE = 0.5
# What a hit shows (failures/api.py, hivemind_web/mcp_server.py, the search partial).
SHOWN = (
    "id", "trace_id", "step_index", "kind", "tool", "description", "error_text", "signature",
    "failure_mode_id", "occurred_at", "trace__external_id", "trace__agent", "trace__task",
    "trace__status",
    "failure_mode__label", "failure_mode__status", "failure_mode__workspace_id",
    "failure_mode__incident_count", "failure_mode__trace_count", "failure_mode__last_seen",
)  # fmt: skip
RRF_K = 60

_TIME_PHRASES: list[tuple[re.Pattern[str], timedelta | str]] = [
    (re.compile(r"\b(?:in the )?(?:last|past) (\d+) hours?\b", re.I), "hours"),
    (re.compile(r"\b(?:in the )?(?:last|past) (\d+) days?\b", re.I), "days"),
    (re.compile(r"\btoday\b", re.I), timedelta(days=1)),
    (re.compile(r"\byesterday\b", re.I), timedelta(days=2)),
    (re.compile(r"\b(?:this|last|past) week\b", re.I), timedelta(days=7)),
    (re.compile(r"\b(?:this|last|past) month\b", re.I), timedelta(days=30)),
]


@dataclass
class SearchFilters:
    agent: str = ""
    tool: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class SearchHit:
    incident: Incident
    score: float
    similarity: float | None


@dataclass
class SearchResult:
    query: str
    text: str  # what was embedded / matched, after time and agent phrases were read
    filters: SearchFilters
    understood: list[str] = field(default_factory=list)
    hits: list[SearchHit] = field(default_factory=list)
    modes: list[dict] = field(default_factory=list)


def parse_query(
    query: str, filters: SearchFilters, agents: list[str]
) -> tuple[str, SearchFilters, list[str]]:
    """Read time phrases and agent names out of a question into filters."""
    text, understood = query, []
    for pattern, span in _TIME_PHRASES:
        match = pattern.search(text)
        if match and filters.since is None:
            if isinstance(span, str):
                span = timedelta(**{span: int(match.group(1))})
            filters.since = timezone.now() - span
            understood.append(f"since {filters.since:%Y-%m-%d %H:%M} ({match.group(0)})")
            text = text.replace(match.group(0), " ")
    if not filters.agent:
        for word in re.findall(r"[A-Za-z][\w-]{2,}", text):
            # A word names an agent when it is the agent's name or one part of it
            # ("checkout" → checkout-agent); "agent" itself names none.
            if word.lower() == "agent":
                continue
            named = [a for a in agents if word.lower() in _name_parts(a)]
            if len(named) == 1:
                filters.agent = named[0]
                understood.append(f"agent {named[0]} (“{word}”)")
                text = re.sub(rf"\b(?:in |for |from )?{re.escape(word)}\b", " ", text)
                break
    text = re.sub(r"\s+", " ", text).strip() or query
    return text, filters, understood


def _name_parts(agent: str) -> set[str]:
    lowered = agent.lower()
    return {lowered, *re.split(r"[-_.\s]+", lowered)}


def incident_search(
    *, workspace: Workspace, query: str, filters: SearchFilters | None = None, k: int = 20
) -> SearchResult:
    """Top incidents for `query` within one workspace, with the modes they belong to."""
    filters = filters or SearchFilters()
    agents = trace_agent_list(workspace=workspace)
    text, filters, understood = parse_query(query, filters, agents)
    base = _filtered(workspace, filters)
    # The query's vector is computed on another core while the database finds the
    # keyword half (the model releases the GIL): one no longer waits for the other.
    embedded = _embed_soon(text)
    keyword_ids = _keyword_candidates(workspace, base, text)
    embedded.result()  # cached now (query_vector): the vector half reads it
    vector_ids, similarity = _vector_candidates(workspace, base, text)
    scores: dict[int, float] = {}
    for ranked in (vector_ids, keyword_ids):
        for rank, incident_id in enumerate(ranked):
            scores[incident_id] = scores.get(incident_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    top = sorted(scores, key=lambda i: -scores[i])[:k]
    incidents = (
        base.filter(pk__in=top)
        .select_related("trace", "failure_mode")
        # Only what the page, the API and MCP show: vectors, a run's bulky fields
        # and a mode's figures cost more to read and parse than the search itself.
        .only(*SHOWN)
        .in_bulk()
    )
    hits = [SearchHit(incidents[i], scores[i], similarity.get(i)) for i in top if i in incidents]
    # Candidates the words and the meaning both found, and the top hits: the modes
    # are read from these.
    agreed = (set(vector_ids) & set(keyword_ids)) | set(top)
    modes = _modes_of(workspace, base, {i: scores[i] for i in agreed})
    return SearchResult(query, text, filters, understood, hits, modes)


_embedding_pool: tuple[int, ThreadPoolExecutor] | None = None
_embedding_pool_lock = threading.Lock()


def _embed_soon(text: str) -> Future[Any]:
    """`query_vector(text)` started on this process's embedding thread (made after a
    fork, never inherited: a forked child has none of its parent's threads)."""
    global _embedding_pool
    with _embedding_pool_lock:
        if _embedding_pool is None or _embedding_pool[0] != os.getpid():
            _embedding_pool = (
                os.getpid(),
                ThreadPoolExecutor(max_workers=2, thread_name_prefix="query-vector"),
            )
        pool = _embedding_pool[1]
    return pool.submit(lambda: query_vector(text))


def _filtered(workspace: Workspace, filters: SearchFilters) -> QuerySet[Incident]:
    return filter_given(
        Incident.objects.filter(workspace=workspace),
        trace__agent=filters.agent, tool=filters.tool,
        occurred_at__gte=filters.since, occurred_at__lt=filters.until,
    )  # fmt: skip


def _vector_candidates(
    workspace: Workspace, base: QuerySet[Incident], text: str
) -> tuple[list[int], dict[int, float]]:
    """The CANDIDATES incidents nearest the query: the workspace's nearest texts
    (IncidentText, one row per distinct embedded text), then the incidents of
    each within the filters, nearest text first and newest first among copies.
    One statement: the texts in order of distance, each joined to its newest
    incidents (the (workspace, embedding_key, id) index), cut at CANDIDATES."""
    exact = _exact_is_truer(workspace)
    table = Incident._meta.db_table
    copies, params = (
        base.extra(where=[f"{table}.embedding_key = near.key"])
        .order_by("-id")
        .values("id")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        # `+ 0`: an expression no index serves, so every text is measured.
        cursor.execute(
            f"""
            SELECT i.id, near.d
            FROM (SELECT key, (embedding <=> %s::vector){" + 0" if exact else ""} AS d
                  FROM {IncidentText._meta.db_table} WHERE workspace_id = %s
                  ORDER BY d LIMIT %s) AS near
            CROSS JOIN LATERAL ({copies} LIMIT %s) AS i
            LIMIT %s
            """,
            [_vector_literal(query_vector(text)), workspace.pk, TEXTS, *params,
             CANDIDATES, CANDIDATES],
        )  # fmt: skip
        rows = sorted(cursor.fetchall(), key=lambda r: (r[1], -r[0]))
    return [pk for pk, _ in rows], {pk: 1.0 - float(d) for pk, d in rows}


def _vector_literal(vector: Any) -> str:
    return "[" + ",".join(str(float(x)) for x in vector) + "]"


def _exact_is_truer(workspace: Workspace) -> bool:
    """Whether the workspace's texts are measured exactly rather than read from
    the HNSW index: when it has few texts, or at most EXACT_AT_MOST and less than
    half of all workspaces' texts. The index serves every workspace and filters
    after it (pgvector 0.6 has no iterative scan), so beside a larger workspace it
    would return the other's neighbours, not this one's."""
    table = IncidentText._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT (SELECT count(*) FROM (SELECT 1 FROM {table}
                                          WHERE workspace_id = %s LIMIT %s) AS mine),
                   (SELECT reltuples FROM pg_class WHERE relname = %s)
            """,
            [workspace.pk, EXACT_AT_MOST + 1, table],
        )
        mine, every = cursor.fetchone()
    return bool(
        mine <= FEW_TEXTS or (mine <= EXACT_AT_MOST and mine < 0.5 * max(float(every or 0), mine))
    )


def _keyword_candidates(workspace: Workspace, base: QuerySet[Incident], text: str) -> list[int]:
    kept = _telling_lexemes(text)
    if not kept:
        return []
    # Any of the words (OR): all of them would miss "rate-limit errors" against
    # "rate limit exceeded". The lexemes are stemmed already ("simple" keeps them).
    raw = " | ".join("'" + lexeme.replace("'", "''") + "'" for lexeme in kept)
    query = SearchQuery(raw, search_type="raw", config="simple")
    # The stored vector and its GIN index (`@@` first, then ranked): no vector is
    # built per incident per query. Only the newest RANKED matches are ranked: a
    # query whose words most incidents share would otherwise rank all of them
    # (the tail of the search's latency); the vector half still reaches the rest.
    # Each is ranked as it is read (a second query fetching them again by id to
    # rank them cost as much as finding them).
    matches = _newest_matches(workspace, base, raw, rank=SearchRank(F("search_vector"), query))
    return [pk for pk, _ in sorted(matches, key=lambda m: (-m[1], -m[0]))[:CANDIDATES]]


def _newest_matches(
    workspace: Workspace, base: QuerySet[Incident], raw: str, *, rank: SearchRank
) -> list[tuple[int, float]]:
    """The newest RANKED incidents matching `raw` (a tsquery), with their `rank`,
    read in slices of ids from the newest back: the first slice (RECENT ids) walked
    newest first, each older one read from the GIN index and the id range together
    (a bitmap of the matches in that range only), sized by the density of matches
    seen so far. One query over all incidents would either walk them newest first
    (for a word in 1% of them whose matches are old: 37,000 rows for 500 matches)
    or read every match from the index (a word in 10% of them: 100,000)."""
    # The workspace's ids bound the slices (`base` may join each incident's run).
    span = Incident.objects.filter(workspace=workspace).aggregate(low=Min("id"), high=Max("id"))
    low, high = span["low"], span["high"]
    if high is None:
        return []
    words = f"{Incident._meta.db_table}.search_vector @@ to_tsquery('simple', %s)"
    found: list[tuple[int, float]] = []
    width, first = RECENT, True
    while high >= low and len(found) < RANKED:
        rows = (
            base.filter(id__gt=high - width, id__lte=high)
            .extra(where=[words], params=[raw])
            .annotate(rank=rank)
            .order_by("-id")
            .values_list("id", "rank")[: RANKED - len(found)]
        )
        with transaction.atomic(), connection.cursor() as cursor:
            # Never a pass over every workspace's incidents.
            cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL jit = off")
            cursor.execute(
                f"SET LOCAL {'enable_bitmapscan' if first else 'enable_indexscan'} = off"
            )
            got = list(rows)
        found += got
        high -= width
        # The next slice: wide enough for what is missing at the density seen.
        needed = (RANKED - len(found)) * 1.5
        width = min(width * 8, int(needed * width / len(got)) + 1) if got else width * 8
        first = False
    return found


def _telling_lexemes(text: str) -> list[str]:
    """The query's words as PostgreSQL stems them, less those that most incidents
    contain (a signature's field names, "error", …: they match everything, tell
    nothing and make every incident a candidate to rank). The share comes from
    the table's statistics (ANALYZE: `most_common_elems` of the stored vector);
    when every word is that common, all are kept."""
    words = re.findall(r"\w{3,}", text.lower())
    source = " ".join(words) if len(words) > 1 else text
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT
              ARRAY(SELECT lexeme FROM unnest(to_tsvector('english', %s))),
              ARRAY(SELECT u.lexeme FROM pg_stats s,
                           unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
                             AS u(lexeme, share)
                    WHERE s.schemaname = current_schema() AND s.tablename = %s
                      AND s.attname = 'search_vector' AND u.share >= %s)
            """,
            [source, Incident._meta.db_table, COMMON_SHARE],
        )
        lexemes, common = cursor.fetchone()
    common = set(common)
    return [lexeme for lexeme in lexemes if lexeme not in common] or lexemes


def _modes_of(
    workspace: Workspace, base: QuerySet[Incident], scores: dict[int, float]
) -> list[dict]:
    """The modes of `scores`' incidents: the top hits and every candidate that both
    halves found (its words match and its meaning is near), not of the top hits
    alone. A mode a lead's labels seeded holds a few incidents beside many copies
    of the same error that are only weak leads or recovered from, and those filled
    the top hits: "payments refund rate limited" named no mode on the demo, whose
    rate-limit mode it is. A candidate only one half found is not enough to name
    its mode: the nearest meanings always include some, however far. Each mode
    with how many of these incidents it holds and their best score; incidents in
    no mode are one entry (mode None)."""
    of = dict(base.filter(pk__in=list(scores)).values_list("id", "failure_mode_id"))
    modes = FailureMode.objects.filter(
        workspace=workspace, pk__in={m for m in of.values() if m is not None}
    ).in_bulk()
    found: dict[int | None, dict] = {}
    for incident_id, mode_id in of.items():
        mode = modes.get(mode_id) if mode_id is not None else None
        entry = found.setdefault(mode.pk if mode else None, {"mode": mode, "hits": 0, "best": 0.0})
        entry["hits"] += 1
        entry["best"] = max(entry["best"], scores[incident_id])
    # The mode of the best match first: a mode with many weak matches is less
    # likely the answer than the one holding the closest incident.
    return sorted(found.values(), key=lambda m: (-m["best"], -m["hits"]))
