"""Server time of the PM pages on a large workspace: overview, metrics, skill page.

    python bench/dashboard.py --quick     # 20k traces, 200k steps
    python bench/dashboard.py             # 1M traces, 10M steps over 90 days

Generates the data set inside PostgreSQL (generate_series; 5 agents, 8 failure
modes, 4 skills published 45 days ago that raise success for the agents using
them), builds the rollups with the app's own `rollups_rebuild`, then times each
page through Django's full request stack (test client, logged in as an admin of
the workspace): p50 and p95 of 30 requests after 3 warm-ups. Baseline in the same
run: the metrics page's main figure (weekly success per agent over 90 days)
computed by scanning the raw traces table instead of the rollups. The data is
deleted afterwards (unless --keep).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

AGENTS = 5
MODES = 8
SKILLS = 4
STEPS_PER_TRACE = 10

TRACES_SQL = """
    INSERT INTO traces_trace (workspace_id, external_id, agent, session_id, task, status,
        reward, started_at, ended_at, model, skills_in_scope, metadata, step_count, error_count,
        total_tokens, cost_usd, redaction_counts, received_at, updated_at)
    SELECT %(ws)s, 'bench-' || g, 'agent-' || (g %% 5), 's-' || g, 'task ' || (g %% 50),
        CASE WHEN random() < CASE WHEN x.skill IS NULL THEN 0.62 ELSE 0.78 END
             THEN 'succeeded' ELSE 'failed' END,
        NULL, x.started, x.started + interval '40 seconds', 'model-a',
        CASE WHEN x.skill IS NULL THEN '{}'::varchar[] ELSE ARRAY[x.skill || '@1'] END,
        '{}'::jsonb, %(steps)s, 0, 2000, 0.01, '{}'::jsonb, now(), now()
    FROM generate_series(1, %(n)s) g
    CROSS JOIN LATERAL (
        SELECT now() - (g::float / %(n)s) * interval '90 days' AS started,
               CASE WHEN g %% 5 < 3 AND (g::float / %(n)s) < 0.5 AND random() < 0.6
                    THEN 'bench-skill-' || (g %% %(skills)s) END AS skill
    ) x
"""

STEPS_SQL = """
    INSERT INTO traces_step (trace_id, index, kind, name, input, output, error, started_at,
        duration_ms, tokens)
    SELECT t.id, s, 'tool_call', 'tool-' || (s %% 7), NULL, NULL,
        CASE WHEN t.status = 'failed' AND s = %(last)s THEN 'tool failed: timeout' ELSE '' END,
        t.started_at + s * interval '1 second', 120, 200
    FROM traces_trace t CROSS JOIN generate_series(0, %(last)s) s
    WHERE t.workspace_id = %(ws)s
"""

INCIDENTS_SQL = """
    INSERT INTO failures_incident (workspace_id, trace_id, step_index, kind, tool, error_text,
        description, category, evidence_steps, source, confidence, stats,
        signature, embedding, embedded_at, failure_mode_id, assigned_by, occurred_at, created_at)
    SELECT t.workspace_id, t.id, %(last)s, 'step_error', 'tool-' || (t.id %% 7),
        'tool failed: timeout', 'tool failed: timeout', 'tool_use.error_not_handled',
        ARRAY[%(last)s], 'error', 1.0, '{}'::jsonb,
        'tool-' || (t.id %% 7) || ' failed: timeout', NULL, NULL,
        (%(modes)s::bigint[])[1 + (t.id %% %(nmodes)s)], 'cluster', t.started_at, now()
    FROM traces_trace t WHERE t.workspace_id = %(ws)s AND t.status = 'failed'
"""


def build(n_traces: int):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from failures.models import FailureMode
    from metrics.services import rollups_rebuild
    from skills.models import Skill, SkillVersion
    from skills.review import skill_approve
    from traces.models import Trace
    from workspaces.models import AuditEvent, Role
    from workspaces.services import membership_set, workspace_create

    user, _ = get_user_model().objects.get_or_create(username="bench-pm")
    suffix = uuid.uuid4().hex[:8]
    ws = workspace_create(name=f"Dash {suffix}", slug=f"dash-{suffix}", owner=user)
    membership_set(workspace=ws, user=user, role=Role.ADMIN, actor=None)
    now = timezone.now()
    modes = [
        FailureMode.objects.create(workspace=ws, label=f"tool-{i} failed: timeout",
                                   first_seen=now - timedelta(days=90), last_seen=now)
        for i in range(MODES)
    ]  # fmt: skip
    timings = {}
    params = {"ws": ws.pk, "n": n_traces, "steps": STEPS_PER_TRACE, "skills": SKILLS,
              "last": STEPS_PER_TRACE - 1, "modes": [m.pk for m in modes], "nmodes": MODES}  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        for name, sql in (
            ("traces", TRACES_SQL),
            ("steps", STEPS_SQL),
            ("incidents", INCIDENTS_SQL),
        ):
            started = time.perf_counter()
            with transaction.atomic():
                cursor.execute(sql, params)
            timings[name] = time.perf_counter() - started
            print(
                f"  generated {name}: {cursor.rowcount:,} rows in {timings[name]:.1f} s", flush=True
            )
        cursor.execute(
            "UPDATE traces_trace SET error_count = 1 WHERE workspace_id = %s AND status = 'failed'",
            [ws.pk],
        )
        cursor.execute("ANALYZE traces_trace; ANALYZE traces_step; ANALYZE failures_incident")
    skills = []
    for i in range(SKILLS):
        skill = Skill.objects.create(workspace=ws, name=f"bench-skill-{i}", source_mode=modes[i])
        SkillVersion.objects.create(skill=skill, number=1, description=f"Bench skill {i}.",
                                    body="## Do\nx", authorship="user")  # fmt: skip
        skills.append(skill_approve(skill=skill, number=1, actor=user))
    # Published halfway through the 90 days, when the generated traces start using them.
    AuditEvent.objects.filter(workspace=ws, action="skill.approve").update(
        created_at=now - timedelta(days=45)
    )
    started = time.perf_counter()
    rollups_rebuild(workspace_id=ws.pk)
    timings["rollups_rebuild"] = time.perf_counter() - started
    print(f"  rollups rebuilt in {timings['rollups_rebuild']:.1f} s", flush=True)
    assert Trace.objects.filter(workspace=ws).count() == n_traces
    return ws, user, skills, timings


def drop(ws) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM traces_step WHERE trace_id IN "
            "(SELECT id FROM traces_trace WHERE workspace_id = %s)", [ws.pk],
        )  # fmt: skip
        for table in ("failures_incident", "failures_modedailycount", "metrics_dailyrollup",
                      "metrics_skilldailyrollup", "skills_fetchlog", "traces_tracewords"):  # fmt: skip
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [ws.pk])
        cursor.execute("DELETE FROM traces_trace WHERE workspace_id = %s", [ws.pk])
    ws.delete()


def time_page(client, path: str, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    return times


def raw_scan(ws, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Baseline: weekly success per agent over 90 days straight from traces."""
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            started = time.perf_counter()
            cursor.execute(
                """
                SELECT agent, date_trunc('week', started_at), count(*) FILTER (WHERE status =
                       'succeeded'), count(*) FILTER (WHERE status IN ('succeeded', 'failed'))
                FROM traces_trace WHERE workspace_id = %s AND started_at >= now() - interval
                     '90 days' GROUP BY 1, 2
                """,
                [ws.pk],
            )
            cursor.fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return times


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated workspace")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
    import django

    django.setup()
    from django.test import Client

    n = 20_000 if args.quick else 1_000_000
    print(f"generating {n:,} traces × {STEPS_PER_TRACE} steps over 90 days …", flush=True)
    ws, user, skills, _ = build(n)
    try:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        base = f"/w/{ws.slug}"
        from django.utils import timezone

        until = timezone.now().date()
        since = until - timedelta(days=29)
        pages = {
            "overview": f"{base}/",
            "metrics": f"{base}/metrics/",
            "metrics_daily": f"{base}/metrics/?by=day",
            "skill": f"{base}/skills/{skills[0].pk}/",
            "skill_impact": f"{base}/metrics/skills/{skills[0].pk}/impact/",
            "impact_csv": f"{base}/metrics/skill-impact.csv",
            # A PM's filtered views (issue 7/7): one agent, a 30-day range, its CSV.
            "metrics_filtered": f"{base}/metrics/?agent=agent-1&from={since}&to={until}",
            "overview_filtered": f"{base}/?agent=agent-1&from={since}&to={until}",
            "series_csv": f"{base}/metrics/series.csv?agent=agent-1&from={since}&to={until}",
        }
        results = {name: time_page(client, path, args.runs) for name, path in pages.items()}
        baseline = raw_scan(ws, max(5, args.runs // 3))
    finally:
        if not args.keep:
            drop(ws)
    for name, times in results.items():
        print(f"  {name:14s} p50 {pct(times, 50):7.1f} ms   p95 {pct(times, 95):7.1f} ms")
    print(f"  raw-scan figure p50 {pct(baseline, 50):7.1f} ms   p95 {pct(baseline, 95):7.1f} ms")
    worst = max(pct(t, 95) for t in results.values())
    print(
        f"RESULT dashboard_worst_p95_ms={worst:.1f} ms baseline={pct(baseline, 95):.1f} "
        f"ratio={worst / pct(baseline, 95):.2f} traces={n} steps={n * STEPS_PER_TRACE} "
        + " ".join(f"{k}_p95={pct(v, 95):.1f}" for k, v in results.items())
    )


if __name__ == "__main__":
    main()
