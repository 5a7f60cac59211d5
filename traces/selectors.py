"""Reads for traces. Every query here is scoped to one workspace."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import ExpressionWrapper, F, Q, QuerySet
from django.db.models import fields as model_fields
from django.db.models.expressions import RawSQL

from workspaces.errors import NotFound
from workspaces.filtering import filter_given
from workspaces.models import Workspace

from .models import SavedView, Step, Trace, TraceStatus


@dataclass(frozen=True)
class TraceFilters:
    status: str = ""
    agent: str = ""
    since: datetime | None = None
    until: datetime | None = None
    has_incidents: bool | None = None
    q: str = ""
    # A column of SORTS, "-" first for descending; empty: newest first.
    sort: str = ""

    @property
    def windowed(self) -> bool:
        """Whether a search can be read as the newest N matches: sorted newest first
        (the order both indexes are read in), with filters the top-N can apply itself."""
        return self.sort in ("", "-started") and self.has_incidents is None


# The trace list's sortable columns → the field each sorts by.
SORTS = {"started": "started_at", "steps": "step_count", "errors": "error_count",
         "tokens": "total_tokens", "cost": "cost_usd", "duration": "duration",
         "status": "status", "agent": "agent"}  # fmt: skip


def trace_list(*, workspace: Workspace, filters: TraceFilters | None = None) -> QuerySet[Trace]:
    """A workspace's traces, sorted and narrowed by `filters`.

    A search keeps the runs that contain its words (`_search_words`), and the runs
    whose id or session id it is. This reads every match, in whatever order the
    list is sorted by; the list page reads a search sorted newest first through
    `trace_search`, which does not.
    """
    f = filters or TraceFilters()
    qs = filter_given(
        Trace.objects.filter(workspace=workspace).annotate(
            duration=ExpressionWrapper(
                F("ended_at") - F("started_at"), output_field=model_fields.DurationField()
            )
        ),
        status=f.status, agent=f.agent, started_at__gte=f.since, started_at__lt=f.until,
    )  # fmt: skip
    if f.has_incidents is True:
        qs = qs.filter(Q(error_count__gt=0) | Q(incidents__isnull=False)).distinct()
    elif f.has_incidents is False:
        qs = qs.filter(error_count=0, incidents__isnull=True)
    if f.q:
        words = _search_words(f.q)
        where, params = _words_where(words)
        qs = qs.filter(pk__in=RawSQL(
            f"""
            SELECT d.trace_id FROM traces_tracewords d WHERE d.workspace_id = %s AND {where}
            UNION
            SELECT t.id FROM traces_trace t
            WHERE t.workspace_id = %s AND (t.external_id = %s OR t.session_id = %s)
            """,
            [workspace.pk, *params, workspace.pk, f.q, f.q],
        ))  # fmt: skip
    order = SORTS.get(f.sort.lstrip("-"), "started_at")
    if f.sort.startswith("-") or not f.sort:
        return qs.order_by(F(order).desc(nulls_last=True), "-id")
    return qs.order_by(F(order).asc(nulls_last=True), "id")


@dataclass(frozen=True)
class _Words:
    """A search as PostgreSQL reads it (`websearch_to_tsquery`, the `simple`
    configuration the search vectors use)."""

    exact: str  # the query (tsquery text); empty when it holds no word
    # What a run's words (traces_tracewords) are matched with: the query itself, or
    # for a phrase its words in any order (then `exact` is checked step by step).
    runs: str
    phrase: bool


# A quoted lexeme, or a phrase operator (<->, <N>) between two.
_TSQUERY_PARTS = re.compile(r"'(?:[^']|'')*'|<(?:-|\d+)>")


def _search_words(text: str) -> _Words:
    """Unquoted words match a run that has them anywhere: its task, its ids or any
    step's tool, input, output or error. A phrase (quoted, or a word the search
    splits, such as `order_id`) matches within one step, or the task."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT q::text, querytree(q) FROM websearch_to_tsquery('simple', %s) AS q", [text]
        )
        exact, indexable = cursor.fetchone()
    phrase = any(m.group(0).startswith("<") for m in _TSQUERY_PARTS.finditer(exact))
    if not phrase:
        return _Words(exact=exact, runs=exact, phrase=False)
    # The phrase's words, in any order: every run with the phrase has them. (The
    # indexable part leaves out negations, which a run could satisfy elsewhere.)
    runs = _TSQUERY_PARTS.sub(
        lambda m: " & " if m.group(0).startswith("<") else m.group(0), indexable
    )
    return _Words(exact=exact, runs="" if runs.strip() == "T" else runs, phrase=True)


def _words_where(words: _Words) -> tuple[str, list[Any]]:
    """SQL on `d` (a run's words) for the runs a search matches."""
    if not words.exact:
        return "false", []
    where, params = [], []
    if words.runs:
        where.append("d.words @@ %s::tsquery")
        params.append(words.runs)
    if words.phrase:
        where.append(
            "(EXISTS (SELECT 1 FROM traces_step s WHERE s.trace_id = d.trace_id"
            " AND s.search_vector @@ %s::tsquery) OR EXISTS (SELECT 1 FROM traces_trace o"
            " WHERE o.id = d.trace_id AND o.search_vector @@ %s::tsquery))"
        )
        params += [words.exact, words.exact]
    return " AND ".join(where), params


def _narrowing(f: TraceFilters) -> tuple[str, str, list[Any]]:
    """The list's own filters on `d` (a run's words; its trace `t` joined when a
    filter needs it): a join and a condition, for the search's queries."""
    join, where, params = "", "", []
    if f.status or f.agent:
        join = " JOIN traces_trace t ON t.id = d.trace_id"
    for column, op, value in (("t.status", "=", f.status), ("t.agent", "=", f.agent),
                              ("d.started_at", ">=", f.since), ("d.started_at", "<", f.until)):  # fmt: skip
        if value:
            where += f" AND {column} {op} %s"
            params.append(value)
    return join, where, params


# How many of the newest runs a search reads first (`trace_search`).
RECENT_RUNS = 20_000


@dataclass(frozen=True)
class TraceSearch:
    """What the list shows of a search sorted newest first (`trace_search`)."""

    ids: list[int]  # the newest matches, newest first, at most the window asked for
    count: int  # matches, at most cap + 1
    from_recent: bool  # whether the newest runs held the page and the count


def trace_search(
    *, workspace: Workspace, filters: TraceFilters, window: int, cap: int
) -> TraceSearch:
    """The newest `window` runs matching a search and their number up to `cap` + 1,
    without sorting or counting every match: a word in half a million runs costs
    what a rare one does.

    The newest RECENT_RUNS runs are read first, newest first (one index, each
    run's words in its row). A word common among them is done there: its page and
    its count (past the cap) are in them. Otherwise its runs come from the GIN
    index over runs' words (a bitmap: every match, sorted by time as a top-N), which
    is cheap because the word is rare in recent runs. A workspace with fewer runs
    than RECENT_RUNS is read from that index at once: the walk would read every
    run's words (bench/trace_search.py --quick --traces 10000: median 39.2 ms
    walked, 21.4 ms from the index). A run whose id or session id is the query
    matches too.
    """
    words = _search_words(filters.q)
    where, params = _words_where(words)
    join, narrow, narrow_params = _narrowing(filters)
    base = f"traces_tracewords d{join} WHERE d.workspace_id = %s{narrow}"
    base_params = [workspace.pk, *narrow_params]
    t_narrow = narrow.replace("d.started_at", "t.started_at")
    with transaction.atomic(), connection.cursor() as cursor:
        # Disabled plan types cost "infinity" to the planner, which would then
        # JIT-compile the query: seconds, for a read of milliseconds.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"SELECT t.id, t.started_at FROM traces_trace t WHERE t.workspace_id = %s{t_narrow}"
            " AND (t.external_id = %s OR t.session_id = %s) ORDER BY t.started_at DESC, t.id DESC"
            " LIMIT %s",
            [*base_params, filters.q, filters.q, cap + 1],
        )
        by_id = cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {base} LIMIT %s) n",
                       [*base_params, RECENT_RUNS])  # fmt: skip
        every_run_read = cursor.fetchone()[0] < RECENT_RUNS
        recent: list[Any] = []
        if not every_run_read:
            # The newest runs, walked newest first (no bitmap: that would read every
            # match).
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(
                f"""
                SELECT d.trace_id, d.started_at FROM (
                    SELECT d.trace_id, d.started_at, d.words FROM {base}
                    ORDER BY d.started_at DESC, d.trace_id DESC LIMIT %s) d
                WHERE {where} LIMIT %s
                """,
                [*base_params, RECENT_RUNS, *params, max(cap + 1, window)],
            )
            recent = cursor.fetchall()
            cursor.execute("SET LOCAL enable_bitmapscan = on")
        matches, count = recent, cap + 1
        # Rare among the newest runs, or a workspace smaller than the walk (which
        # would read every run's words): the GIN index over runs' words, as a bitmap.
        if every_run_read or len(recent) <= cap or len(recent) < window:
            cursor.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off")
            if every_run_read or len(recent) <= cap:
                cursor.execute(
                    f"SELECT count(*) FROM ((SELECT d.trace_id FROM {base} AND {where} LIMIT %s)"
                    " UNION (SELECT unnest(%s::bigint[]))) n",
                    [*base_params, *params, cap + 1, [pk for pk, _ in by_id]],
                )
                count = cursor.fetchone()[0]
            if every_run_read or len(recent) < window:
                cursor.execute(
                    f"SELECT d.trace_id, d.started_at FROM {base} AND {where}"
                    " ORDER BY d.started_at DESC, d.trace_id DESC LIMIT %s",
                    [*base_params, *params, window],
                )
                matches = cursor.fetchall()
            cursor.execute("SET LOCAL enable_indexscan = on; SET LOCAL enable_seqscan = on")
        cursor.execute("SET LOCAL jit = on")
    newest = sorted(set(matches) | set(by_id), key=lambda m: (m[1], m[0]), reverse=True)
    return TraceSearch(
        ids=[pk for pk, _ in newest[:window]],
        count=min(count, cap + 1),
        from_recent=every_run_read or (len(recent) > cap and len(recent) >= window),
    )


def trace_agent_list(*, workspace: Workspace) -> list[str]:
    """The workspace's agent names, in order. One index descent per agent (a loose
    index scan on `trace_ws_agent`), not a pass over every trace: searches and
    pages ask for it on every request."""
    table = Trace._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE agents(name) AS (
              (SELECT agent FROM {table} WHERE workspace_id = %(ws)s AND agent > ''
               ORDER BY agent LIMIT 1)
              UNION ALL
              SELECT (SELECT agent FROM {table} WHERE workspace_id = %(ws)s AND agent > a.name
                      ORDER BY agent LIMIT 1)
              FROM agents a WHERE a.name IS NOT NULL
            )
            SELECT name FROM agents WHERE name IS NOT NULL
            """,
            {"ws": workspace.pk},
        )
        return [row[0] for row in cursor.fetchall()]


def trace_list_by_ids(*, workspace: Workspace, ids: list[int]) -> QuerySet[Trace]:
    """These traces of the workspace (ids of another workspace match nothing), newest first."""
    return Trace.objects.filter(workspace=workspace, pk__in=ids).order_by("-started_at", "-id")


def trace_get(*, workspace: Workspace, pk: int) -> Trace:
    trace = Trace.objects.filter(workspace=workspace, pk=pk).first()
    if trace is None:
        raise NotFound("No such trace in this workspace.")
    return trace


def step_list(*, trace: Trace) -> list[Step]:
    """A run's steps in the order they happened: by time when every step has one
    (spans sent in several batches), else by index, the order its log holds them:
    a step with no time of its own (ATIF's user turns, a prompt before timed calls)
    would otherwise sort after every timed one."""
    steps = list(trace.steps.order_by("index"))
    if all(step.started_at is not None for step in steps):
        steps.sort(key=lambda step: cast(datetime, step.started_at))  # stable: index breaks ties
    return steps


def session_traces(*, trace: Trace, limit: int = 20) -> list[Trace]:
    """The other traces of this trace's session, in time order."""
    if not trace.session_id:
        return []
    return list(
        Trace.objects.filter(workspace_id=trace.workspace_id, session_id=trace.session_id)
        .exclude(pk=trace.pk)
        .order_by("started_at", "id")[:limit]
    )


def failed_trace_count(*, workspace: Workspace) -> int:
    return Trace.objects.filter(workspace=workspace, status=TraceStatus.FAILED).count()


def saved_view_list(*, workspace: Workspace, user: Any) -> QuerySet[SavedView]:
    """One person's saved trace-list views in this workspace, by name."""
    return SavedView.objects.filter(workspace=workspace, user=user).order_by("name", "id")


def saved_view_get(*, workspace: Workspace, user: Any, pk: int) -> SavedView:
    """One of this person's saved views; another person's, or another workspace's, is not found."""
    view = SavedView.objects.filter(workspace=workspace, user=user, pk=pk).first()
    if view is None:
        raise NotFound("No such saved view of yours in this workspace.")
    return view
