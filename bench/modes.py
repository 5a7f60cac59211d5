"""Failure modes and drafted skills on real, labelled agent runs (issue 4/7).

    python bench/modes.py            # every run in ../shared/devdata
    python bench/modes.py --quick    # a sample of each data set (< 60 s)
    python bench/modes.py --show     # also print every mode and every draft

Each data set of ../shared/devdata (HIVEMIND_DEVDATA elsewhere) is imported
through the product's importer into a throw-away workspace, then taken through
the worker's own services in order: diagnosis (`traces_diagnose`), embedding
(`incidents_embed`), clustering (`failure_modes_recluster`), and an offline
draft for every mode with enough incidents (`skills.distill.draft_offline`, as
the worker drafts when no ANTHROPIC_API_KEY is set). Timed from the start of
the import to the last draft.

Per data set:
- modes: open failure modes holding incidents;
- incidents_in_lift_modes: share of clustered incidents in modes whose lift
  (failure rate of runs showing the mode against runs that do not) has a 95%
  interval above 1;
- duplicate_modes: open modes whose error text (label) another open mode has too;
- skills: drafted skills (a skip with a reason is not a skill);
- skills_with_evidence: share of drafted skills with at least one instruction
  backed by counts;
- seconds_to_skills: from the import's start to the last draft.

Baseline, in the same run and on the same incidents: the clustering before
this issue (every incident embedded and clustered as it is: no de-duplication,
no boilerplate removal, no merging of modes with the same text), measured for
modes, incidents_in_lift_modes and duplicate_modes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

from diagnosis import QUICK_PER_FILE, SETS, load, sample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--keep", action="store_true", help="keep the workspaces (inspection)")
    args = parser.parse_args()
    import django

    django.setup()
    from django.db import connection

    from failures.embedding import get_embedder
    from traces import services as trace_services
    from workspaces.models import Workspace

    # The bench drives each stage itself; the import's after-commit analysis is off.
    trace_services._after_commit_analyse = lambda workspace_id, trace_ids: None  # type: ignore[assignment]
    connection.ensure_connection()
    get_embedder().embed(["warm up"])
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            workspace = Workspace.objects.create(
                name=f"bench {name}", slug=f"bench-modes-{name}-{os.getpid()}"
            )
            try:
                lines.append(run_set(name, workspace, args.quick, Path(tmp), args.show))
            finally:
                if not args.keep:
                    workspace.delete()
    print()
    for line in lines:
        print(line)


def run_set(name: str, workspace, quick: bool, tmp: Path, show: bool) -> str:  # type: ignore[no-untyped-def]
    from failures.embedding import incidents_embed
    from failures.mining import traces_diagnose
    from failures.services import failure_modes_recluster
    from traces.importing import traces_import_file
    from traces.models import Trace

    fmt = SETS[name][0]
    started = time.perf_counter()
    for path in load(name, quick):
        source = sample(path, fmt, QUICK_PER_FILE[name] if quick else None, tmp)
        result = traces_import_file(workspace=workspace, fmt=fmt, path=source)
        if not result.ok:
            raise SystemExit(f"import failed: {result.error}")
    ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
    traces_diagnose(workspace_id=workspace.pk, trace_ids=ids, force=True)
    while incidents_embed(workspace_id=workspace.pk):
        pass
    failure_modes_recluster(workspace_id=workspace.pk)
    drafts = draft_all(workspace.pk)
    seconds = time.perf_counter() - started
    figures = measure(workspace.pk)
    baseline = measure_baseline(workspace.pk)
    with_evidence = [d for d in drafts if d["verdict"] != "skip"]
    backed = [d for d in with_evidence if d["backed"] > 0]
    print(f"\n== {name}: {len(ids)} runs, {figures['incidents']} incidents, "
          f"{figures['clustered']} clustered, {seconds:.1f} s to skills")  # fmt: skip
    print(f"  modes {figures['modes']} (baseline {baseline['modes']}); "
          f"incidents in lift modes {figures['lift_share']:.3f} "
          f"(baseline {baseline['lift_share']:.3f}); duplicate modes "
          f"{figures['duplicates']} (baseline {baseline['duplicates']})")  # fmt: skip
    skips = Counter(d["reason"][:90] for d in drafts if d["verdict"] == "skip")
    print(f"  drafts: {len(with_evidence)} skills, {len(drafts) - len(with_evidence)} skips")
    for reason, n in skips.most_common(5):
        print(f"    skip ×{n}: {reason}")
    if show:
        for row in figures["rows"]:
            print(f"  [{row['incidents']:4d} inc, {row['traces']:3d} tr] lift {row['lift']} "
                  f"{row['label'][:100]}")  # fmt: skip
        for draft in drafts:
            print(f"\n  --- {draft['verdict']} {draft['name']} ({draft['backed']} backed)")
            print("  " + draft["text"].replace("\n", "\n  ")[:1500])
    share = (len(backed) / len(with_evidence)) if with_evidence else 0.0
    return (
        f"RESULT dataset={name} modes={figures['modes']} "
        f"incidents_in_lift_modes={figures['lift_share']:.3f} "
        f"duplicate_modes={figures['duplicates']} skills={len(with_evidence)} "
        f"skills_with_evidence={share:.3f} seconds_to_skills={seconds:.1f} "
        f"baseline_modes={baseline['modes']} "
        f"baseline_incidents_in_lift_modes={baseline['lift_share']:.3f} "
        f"baseline_duplicate_modes={baseline['duplicates']}"
    )


def draft_all(workspace_id: int) -> list[dict]:
    from django.conf import settings

    from failures.models import FailureMode, ModeStatus
    from failures.selectors import mode_incidents_nearest
    from skills import distill

    drafts = []
    modes = FailureMode.objects.filter(
        workspace_id=workspace_id, status=ModeStatus.OPEN,
        incident_count__gte=settings.HIVEMIND_DISTILL_MIN_INCIDENTS,
    )  # fmt: skip
    for mode in modes:
        incidents = mode_incidents_nearest(mode=mode, limit=distill.MAX_EVIDENCE)
        draft = distill.draft_offline(distill.Context(mode, incidents, []))
        text = draft.doc.body if draft.doc else draft.reason
        drafts.append({
            "verdict": draft.verdict, "reason": draft.reason, "text": text,
            "name": draft.doc.name if draft.doc else "",
            "backed": sum(1 for i in draft.instructions if i.get("counts")),
        })  # fmt: skip
    return drafts


def measure(workspace_id: int) -> dict:
    from failures.models import FailureMode, Incident, ModeStatus

    modes = list(
        FailureMode.objects.filter(workspace_id=workspace_id, incident_count__gt=0)
        .exclude(status=ModeStatus.MERGED)
        .order_by("-incident_count")
    )
    clustered = sum(m.incident_count for m in modes)
    in_lift = sum(m.incident_count for m in modes if (m.stats or {}).get("lift_low", 0) > 1)
    labels = Counter(_text(m.label) for m in modes)
    rows = [
        {"incidents": m.incident_count, "traces": m.trace_count, "label": m.label,
         "lift": _lift(m.stats or {})}
        for m in modes
    ]  # fmt: skip
    return {
        "modes": len(modes),
        "incidents": Incident.objects.filter(workspace_id=workspace_id).count(),
        "clustered": clustered,
        "lift_share": in_lift / clustered if clustered else 0.0,
        "duplicates": sum(n for n in labels.values() if n > 1),
        "rows": rows,
    }


def measure_baseline(workspace_id: int) -> dict:
    """The clustering before this issue, on the same embedded incidents."""
    import numpy as np
    from django.conf import settings

    from failures import clustering
    from failures.models import Incident
    from failures.stats import mode_lift

    rows = list(
        Incident.objects.filter(workspace_id=workspace_id)
        .exclude(embedding=None)
        .values_list("id", "embedding", "signature")
    )
    if not rows:
        return {"modes": 0, "lift_share": 0.0, "duplicates": 0}
    vectors = np.stack([np.asarray(r[1], dtype=np.float32) for r in rows])
    labels = clustering.cluster_vectors_baseline(
        vectors, min_cluster_size=settings.HIVEMIND_MIN_MODE_SIZE
    )
    groups: dict[int, list[int]] = {}
    for (pk, _, _), label in zip(rows, labels, strict=True):
        if label != clustering.NOISE:
            groups.setdefault(int(label), []).append(pk)
    clustered = sum(len(v) for v in groups.values())
    in_lift = 0
    texts: Counter[str] = Counter()
    signatures = {pk: sig for pk, _, sig in rows}
    for members in groups.values():
        stats = mode_lift(workspace_id=workspace_id, incident_ids=members)
        if stats.get("lift_low", 0) > 1:
            in_lift += len(members)
        common = Counter(clustering.parse_signature(signatures[m]).error for m in members)
        texts[common.most_common(1)[0][0]] += 1
    return {
        "modes": len(groups),
        "lift_share": in_lift / clustered if clustered else 0.0,
        "duplicates": sum(n for n in texts.values() if n > 1),
    }


def _text(label: str) -> str:
    return label.split(": ", 1)[-1].strip().lower()


def _lift(stats: dict) -> str:
    if "lift" not in stats:
        return "n/a"
    return f"{stats['lift']:.2f} [{stats['lift_low']:.2f}–{stats['lift_high']:.2f}]"


if __name__ == "__main__":
    main()
