"""Skills that hold up: every drafted instruction backtested on runs it was not drafted from.

    python bench/skills_backtest.py            # every tau2-bench and InterCode run
    python bench/skills_backtest.py --quick    # the sample bench/modes.py uses (< 90 s)

Each set is imported with the product's importers into a throw-away workspace,
diagnosed, embedded and clustered (the services the worker runs); every open
mode with enough incidents is drafted offline (`skills.distill.draft_offline`).
The contrast learns instructions from the *drafting* half of the labelled runs
and checks each on the *backtest* half (split by a hash of the task key, so a
task's repeats stay together: tau2 dev runs the base and the fine-tuned model
on the same 40 task ids per domain; InterCode has several episodes per task).

Printed per set: drafts (modes drafted), offered (drafts that reach the review
queue), held back, instructions offered, passed_share (offered instructions
that passed their backtest, over those that could be backtested), harmful
(offered instructions that forbid a tool that ≥ 20% of the agent's successful
runs call, on *all* runs, or are about a tool the agent never calls itself) and
within_task_pairs (pairs of runs of one task that differ in following an
offered instruction and in outcome). Baseline, in the same run: the same
candidates with no gate (what was offered before issue 3/8).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

SETS = ("tau2-bench", "intercode")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--show", action="store_true", help="print every instruction")
    args = parser.parse_args()
    import django

    django.setup()
    from failures.embedding import get_embedder
    from traces import services as trace_services
    from workspaces.models import Workspace

    trace_services._after_commit_analyse = lambda workspace_id, trace_ids: None  # type: ignore[assignment]
    get_embedder().embed(["warm up"])
    started = time.perf_counter()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            workspace = Workspace.objects.create(
                name=f"bench {name}", slug=f"bench-backtest-{name}-{os.getpid()}"
            )
            try:
                lines.append(run_set(name, workspace, args.quick, Path(tmp), args.show))
            finally:
                workspace.delete()
    print(f"\n{time.perf_counter() - started:.0f} s")
    for line in lines:
        print(line)


def run_set(name: str, workspace, quick: bool, tmp: Path, show: bool) -> str:  # type: ignore[no-untyped-def]
    from diagnosis import QUICK_PER_FILE, load, sample
    from diagnosis import SETS as FORMATS
    from django.conf import settings

    from failures.diagnosis.facts import is_generic
    from failures.embedding import incidents_embed
    from failures.mining import traces_diagnose
    from failures.models import FailureMode, ModeStatus
    from failures.selectors import mode_incidents_nearest
    from failures.services import failure_modes_recluster
    from failures.stats import labelled_runs
    from skills import distill
    from traces.importing import traces_import_file
    from traces.models import Trace

    fmt = FORMATS[name][0]
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
    agents = set(Trace.objects.filter(workspace=workspace).values_list("agent", flat=True))
    runs = labelled_runs(workspace.pk, agents)
    successes = [r for r in runs if not r.failed]
    called = {t for r in runs for t in r.tools}

    def harmful(item: dict) -> bool:
        tool = str(item.get("tool") or "")
        if tool.startswith("user.") or (tool and tool not in called):
            return True
        if item.get("kind") == "unexpected" and successes:
            return sum(tool in r.tools for r in successes) / len(successes) >= distill.NEEDED_SHARE
        return False

    modes = FailureMode.objects.filter(
        workspace=workspace, status=ModeStatus.OPEN,
        incident_count__gte=settings.HIVEMIND_DISTILL_MIN_INCIDENTS,
    )  # fmt: skip
    drafts = offered = held_back = 0
    offered_items: list[dict] = []
    candidates_all: list[dict] = []
    seen_ids: dict[str, int] = {}
    for mode in modes:
        drafts += 1
        context = distill.Context(
            mode, mode_incidents_nearest(mode=mode, limit=distill.MAX_EVIDENCE), []
        )
        candidates = [
            i
            for i in (distill._instruction(e, is_generic) for e in distill.evidence_of(context))
            if i
        ]
        candidates_all += candidates
        draft = distill.draft_offline(context)
        if draft.verdict == "skip":
            held_back += draft.reason.startswith("Held back")
            if show:
                kind = "held back" if draft.reason.startswith("Held back") else "skipped"
                print(f"  [{kind}] {mode.label[:80]}: {draft.reason[:300]}")
                for item in draft.held_back:
                    print(f"      - {item['text'][:110]}\n        {item['reason'][:400]}")
            continue
        offered += 1
        for item in draft.instructions:
            seen_ids[item["id"]] = seen_ids.get(item["id"], 0) + 1
            offered_items.append(item)
            if show:
                test = item.get("backtest") or {}
                print(
                    f"  [offered] {item['text'][:100]} — {test.get('verdict')}: {str(test.get('reason'))[:160]}"
                )
    testable = [
        i
        for i in offered_items
        if (i.get("backtest") or {}).get("verdict") not in (None, "untestable")
    ]
    passed = [i for i in testable if i["backtest"]["verdict"] == "passed"]
    pairs = sum(
        int(i["backtest"].get("pairs_won", 0)) + int(i["backtest"].get("pairs_lost", 0))
        for i in testable
    )
    bad = sum(harmful(i) for i in offered_items)
    duplicates = sum(n - 1 for n in seen_ids.values() if n > 1)
    baseline_bad = sum(harmful(i) for i in candidates_all)
    share = f"{len(passed) / len(testable):.3f}" if testable else "n/a"
    print(
        f"\n== {name}: {len(ids)} runs, {drafts} modes drafted: {offered} offered, {held_back} held back"
    )
    print(f"   instructions offered {len(offered_items)} ({len(testable)} testable, {len(passed)} passed, "
          f"{len(offered_items) - len(testable)} not testable by calls); harmful offered {bad}; "
          f"duplicates {duplicates}; within-task pairs {pairs}")  # fmt: skip
    print(f"   baseline (no gate): instructions {len(candidates_all)}, harmful {baseline_bad}")
    return (
        f"RESULT dataset={name} drafts={drafts} offered={offered} held_back={held_back} "
        f"instructions={len(offered_items)} passed_share={share} harmful={bad} "
        f"within_task_pairs={pairs} untestable={len(offered_items) - len(testable)} "
        f"duplicates={duplicates} baseline_instructions={len(candidates_all)} "
        f"baseline_harmful={baseline_bad}"
    )


if __name__ == "__main__":
    main()
