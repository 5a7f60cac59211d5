"""Reads for traces. Every query here is scoped to one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


def trace_list(
    *,
    workspace: Workspace,
    filters: TraceFilters | None = None,
    window: int | None = None,
    probe: SearchProbe | None = None,
) -> QuerySet[Trace]:
    """A workspace's traces, newest first, narrowed by `filters`.

    A search can be given what `trace_search_probe` found: with every match read
    (a rare word), the traces are those ids; otherwise, with `window` (a search
    listed newest first), only the newest `window` matches are found, each index
    read as a top-N (`_newest_matches`), so a word in most runs costs what a page
    does, not a pass over every run it occurs in. The list's page N asks for N
    pages' worth; its count, for one more than the cap it shows.
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
    if f.q and probe is not None and probe.ids is not None:
        qs = qs.filter(pk__in=probe.ids)
    elif f.q and window is not None and f.windowed:
        task_ids = probe.task_ids if probe is not None else None
        qs = qs.filter(pk__in=_newest_matches(workspace, f, window, task_ids))
    elif f.q:
        # Words anywhere in the run: its task and ids, or any step's tool, input,
        # output or error (both through GIN indexes); an exact id as typed.
        # One set of trace ids from each index, then the traces by primary key (an OR
        # across the two tables would scan every trace of the workspace). The step
        # side is not joined to its trace: the workspace filter above keeps a match
        # in another workspace out.
        qs = qs.filter(pk__in=RawSQL(
            """
            SELECT t.id FROM traces_trace t WHERE t.workspace_id = %s AND (
                t.search_vector @@ websearch_to_tsquery('simple', %s)
                OR t.external_id = %s OR t.session_id = %s)
            UNION
            SELECT s.trace_id FROM traces_step s
            WHERE s.search_vector @@ websearch_to_tsquery('simple', %s)
            """,
            [workspace.pk, f.q, f.q, f.q, f.q],
        ))  # fmt: skip
    order = SORTS.get(f.sort.lstrip("-"), "started_at")
    if f.sort.startswith("-") or not f.sort:
        return qs.order_by(F(order).desc(nulls_last=True), "-id")
    return qs.order_by(F(order).asc(nulls_last=True), "id")


def _narrowing(f: TraceFilters) -> tuple[str, list[Any]]:
    """The list's own filters as SQL on `t` (the trace), for the search's queries."""
    extra, narrow = "", []
    for column, op, value in (("status", "=", f.status), ("agent", "=", f.agent),
                              ("started_at", ">=", f.since), ("started_at", "<", f.until)):  # fmt: skip
        if value:
            extra += f" AND t.{column} {op} %s"
            narrow.append(value)
    return extra, narrow


_WORDS = "websearch_to_tsquery('simple', %s)"
# How much of each index a search reads before it takes a word as common.
PROBE_STEPS = 20_000
PROBE_TRACES = 5_000


@dataclass(frozen=True)
class SearchProbe:
    """What a search's first read of the two indexes found (`trace_search_probe`)."""

    ids: list[int] | None  # every matching trace (the list's filters applied), if all were read
    at_least: int  # matching traces seen: their number, or a lower bound when ids is None
    task_ids: list[int] | None  # the traces matching on the run itself, if all were read


def trace_search_probe(*, workspace: Workspace, filters: TraceFilters) -> SearchProbe:
    """Read up to PROBE_STEPS matching steps and PROBE_TRACES matching runs from the
    GIN indexes (bitmap scans only: the planner's guess of how common a word or a
    two-word phrase is can be off a hundredfold, and a guess that it is common
    would walk every run of the workspace). A rare word is then read whole; a
    common one is known to be common, and its page is read newest first."""
    extra, narrow = _narrowing(filters)
    q = filters.q
    with transaction.atomic(), connection.cursor() as cursor:
        # (Disabled plan types cost "infinity" to the planner, which would then
        # JIT-compile the query: seconds, for a read of milliseconds.)
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"SELECT s.trace_id FROM traces_step s WHERE s.search_vector @@ {_WORDS} LIMIT %s",
            [q, PROBE_STEPS + 1],
        )
        steps = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""
            SELECT t.id FROM traces_trace t WHERE t.workspace_id = %s{extra} AND (
                t.search_vector @@ {_WORDS} OR t.external_id = %s OR t.session_id = %s)
            LIMIT %s
            """,
            [workspace.pk, *narrow, q, q, q, PROBE_TRACES + 1],
        )
        tasks = [row[0] for row in cursor.fetchall()]
        # The steps' traces that are this workspace's and pass the list's filters.
        cursor.execute(
            f"SELECT t.id FROM traces_trace t WHERE t.id = ANY(%s) AND t.workspace_id = %s{extra}",
            [sorted(set(steps)), workspace.pk, *narrow],
        )
        found = {row[0] for row in cursor.fetchall()} | set(tasks)
        # Within a caller's transaction the settings would outlive this read.
        cursor.execute("SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = on")
        cursor.execute("SET LOCAL jit = on")
    whole = len(steps) <= PROBE_STEPS and len(tasks) <= PROBE_TRACES
    return SearchProbe(
        ids=sorted(found) if whole else None,
        at_least=len(found),
        task_ids=tasks if len(tasks) <= PROBE_TRACES else None,
    )


def _newest_matches(
    workspace: Workspace, f: TraceFilters, window: int, task_ids: list[int] | None = None
) -> RawSQL:
    """The ids of the newest `window` traces of the workspace that match `f.q`: the
    newest `window` matching on the run itself (task, ids; or among `task_ids`, when
    the probe read them all) and the newest `window` with a matching step, merged.
    Each half is a top-N read newest first; the step half goes through its trace,
    so no other workspace's step is read."""
    extra, narrow = _narrowing(f)
    if task_ids is not None:
        own = "t.id = ANY(%s)"
        own_params: list[Any] = [task_ids]
    else:
        own = f"t.workspace_id = %s{extra} AND (t.search_vector @@ {_WORDS} OR t.external_id = %s OR t.session_id = %s)"
        own_params = [workspace.pk, *narrow, f.q, f.q, f.q]
    sql = f"""
        SELECT id FROM (
            (SELECT t.id, t.started_at FROM traces_trace t WHERE {own}
             ORDER BY t.started_at DESC, t.id DESC LIMIT %s)
            UNION
            (SELECT t.id, t.started_at FROM traces_trace t
             WHERE t.workspace_id = %s{extra} AND EXISTS (
                 SELECT 1 FROM traces_step s WHERE s.trace_id = t.id AND s.search_vector @@ {_WORDS})
             ORDER BY t.started_at DESC, t.id DESC LIMIT %s)
        ) matches ORDER BY started_at DESC, id DESC LIMIT %s
    """
    params = [*own_params, window, workspace.pk, *narrow, f.q, window, window]
    return RawSQL(sql, params)


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


def step_list(*, trace: Trace) -> QuerySet[Step]:
    # By time first: OTLP steps have indexes derived from span ids, not positions.
    return trace.steps.order_by(F("started_at").asc(nulls_last=True), "index")


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
