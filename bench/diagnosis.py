"""Diagnosis on real, labelled agent runs: does a failed run get a specific incident?

    python bench/diagnosis.py            # every run in ../shared/devdata, 10,000-trace throughput
    python bench/diagnosis.py --quick    # a sample of each data set, 1,000-trace throughput (< 60 s)

The data is ../shared/devdata (set HIVEMIND_DEVDATA elsewhere; its README says
what each set is): tau2-bench (customer service, gpt-4.1 and a fine-tune),
InterCode (Bash, Python, SQL, CTF; gpt-3.5 and gpt-4) and three Claude Code
session transcripts (no outcome labels). Each set is imported through the
product's importers (`traces.importing`, the code behind `manage.py
import_traces`) into a throw-away workspace of the configured database, then
diagnosed by the offline diagnoser (`failures.mining.traces_diagnose`, the
service the worker runs), timed.

Printed per data set:
- failed_with_incident: share of failed runs with at least one incident (every
  incident is specific: a step, a description, a category; there is no
  catch-all);
- success_with_incident: share of successful runs that get incidents (stored),
  not counting *recovered* incidents (tool errors in a run that succeeded,
  kept with their text, never clustered), which are counted apart
  (recovered_incidents);
- flagged_if_diagnosed: the stricter check: share of successful runs that would
  get an incident if the diagnoser judged them as failures (leave-one-out: the
  run is taken out of its agent's baseline and neighbours first);
- incidents_also_in_successes: share of incidents whose signal also occurs in at
  least one successful run of the agent (shown beside each incident);
- the same two shares and their difference (discrimination) on each half of
  the tasks, split by a hash of the task key as bench/truth.py splits: the
  diagnosis's thresholds are chosen on `tune`, the figure is `measure`'s; and
  the same difference from the trace alone (`_trace_alone`): a failed run
  whose only cause is a failed check of the outcome (the harness's verdict,
  such as InterCode's score or tau2's `db_match`) is not counted;
- the description most shared between runs with different tasks, and how many;
- traces_per_s: diagnosis throughput (facts, task embeddings, baseline,
  divergence, writes) over the whole set;
- critical-step accuracy: none of these sets labels the failing step, so it is
  reported as n/a.

Baseline, in the same run: the method it replaces (an incident for each step
flagged with an error, plus one catch-all "trace failed" incident for a failed
run without one): its share of failed runs with a *specific* (step-error)
incident, and of successful runs with any incident.

Throughput: N synthetic traces of 50 steps built from the real runs' tool calls
and outputs (tasks made unique, so every task is embedded), diagnosed in one
call. Target: 10,000 in ≤ 120 s on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVDATA = Path(os.environ.get("HIVEMIND_DEVDATA", ROOT.parent / "shared" / "devdata"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

SETS = {
    "tau2-bench": ("tau2-bench", "tau2-bench_sierra_gpt-4.1"),
    "intercode": ("intercode", "intercode"),
    "claude_code": ("claude-transcript", "claude_code"),
}
QUICK_PER_FILE = {"tau2-bench": 20, "intercode": 30, "claude_code": None}


def load(name: str, quick: bool) -> list[Path]:
    from hivemind_client.formats import files_under

    fmt, folder = SETS[name]
    root = DEVDATA / folder
    if not root.exists():
        raise SystemExit(f"{root} not found: set HIVEMIND_DEVDATA to the devdata folder")
    if fmt == "claude-transcript":
        return sorted(root.rglob("chat.json"))
    return files_under([root], fmt)


def sample(path: Path, fmt: str, per_file: int | None, tmp: Path) -> Path:
    """A quick-mode copy of a file holding its first `per_file` runs (same format)."""
    import json

    if per_file is None:
        return path
    data = json.loads(path.read_text())
    if fmt == "tau2-bench":
        data["simulations"] = data["simulations"][:per_file]
    elif fmt == "intercode":
        data = dict(list(data.items())[:per_file])
    out = tmp / path.name
    out.write_text(json.dumps(data))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    import tempfile

    from django.db import connection

    from traces import services as trace_services
    from workspaces.models import Workspace

    # Time the diagnosis alone: the import's after-commit analysis is not queued.
    trace_services._after_commit_analyse = lambda workspace_id, trace_ids: None  # type: ignore[assignment]
    connection.ensure_connection()
    from failures.embedding import get_embedder

    get_embedder().embed(["warm up"])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            workspace = Workspace.objects.create(
                name=f"bench {name}", slug=f"bench-diag-{name}-{os.getpid()}"
            )
            try:
                results.append(run_set(name, workspace, args.quick, Path(tmp)))
            finally:
                workspace.delete()
        workspace = Workspace.objects.create(
            name="bench throughput", slug=f"bench-diag-tp-{os.getpid()}"
        )
        try:
            throughput = run_throughput(workspace, 1000 if args.quick else 10_000)
        finally:
            workspace.delete()
    print()
    print(f"throughput: {throughput[0]:,} traces × 50 steps diagnosed in {throughput[1]:.1f} s "
          f"({throughput[0] / throughput[1]:.0f} traces/s; target 10,000 in ≤ 120 s)")  # fmt: skip
    for line in results:
        print(line)
    print(f"RESULT dataset=synthetic-50-steps diagnoser=offline traces={throughput[0]} "
          f"seconds={throughput[1]:.1f} traces_per_s={throughput[0] / throughput[1]:.0f}")  # fmt: skip


def run_set(name: str, workspace, quick: bool, tmp: Path) -> str:  # type: ignore[no-untyped-def]
    from failures.mining import traces_diagnose
    from traces.importing import traces_import_file
    from traces.models import Trace

    fmt = SETS[name][0]
    started = time.perf_counter()
    files = load(name, quick)
    for path in files:
        source = sample(path, fmt, QUICK_PER_FILE[name] if quick else None, tmp)
        result = traces_import_file(workspace=workspace, fmt=fmt, path=source)
        if not result.ok:
            raise SystemExit(f"import failed: {result.error}")
    imported = time.perf_counter() - started
    ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
    started = time.perf_counter()
    traces_diagnose(workspace_id=workspace.pk, trace_ids=ids, force=True)
    seconds = time.perf_counter() - started
    figures = measure(workspace.pk)
    figures["traces_per_s"] = len(ids) / seconds
    print(f"\n== {name}: {len(files)} files, {len(ids)} runs imported in {imported:.1f} s, "
          f"diagnosed in {seconds:.1f} s")  # fmt: skip
    for key, value in figures.items():
        if key not in {"categories", "halves"}:
            print(f"  {key}: {value}")
    for half_name, (nf, ns, cause, wrong, disc, alone) in figures["halves"].items():
        print(f"  {half_name:8} half: {nf} failed, {ns} successful; failed with a cause {cause:.3f}, "
              f"successful flagged if judged as failed {wrong:.3f}, discrimination {disc:.3f} "
              f"(from the trace alone, failed checks left out: {alone:.3f})")  # fmt: skip
    print(f"  categories: {figures['categories']}")
    share = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    return (
        f"RESULT dataset={name} diagnoser=offline failed_with_incident={share(figures['failed_with_incident'])} "
        f"success_with_incident={share(figures['success_with_incident'])} "
        f"incidents_also_in_successes={share(figures['incidents_also_in_successes'])} "
        f"traces_per_s={figures['traces_per_s']:.0f} "
        f"flagged_if_diagnosed={share(figures['flagged_if_diagnosed'])} "
        f"baseline_failed_with_specific={share(figures['baseline_failed_with_specific'])} "
        f"baseline_success_with_incident={share(figures['baseline_success_with_incident'])} "
        f"critical_step_accuracy=n/a recovered_incidents={figures['recovered_incidents']}"
        + "".join(f" discrimination_{h}={v[4]:.3f}" for h, v in figures["halves"].items())
        + "".join(
            f" discrimination_{h}_trace_alone={v[5]:.3f}" for h, v in figures["halves"].items()
        )
    )


def _half(task_key: str) -> str:
    """`tune` or `measure`, by a hash of the task key (the split bench/truth.py uses)."""
    return "tune" if hashlib.sha256(task_key.encode()).digest()[0] % 2 == 0 else "measure"


def measure(workspace_id: int) -> dict:
    from django.db.models import Q

    from failures.diagnosis import evidence, offline
    from failures.diagnosis.facts import StepView, trace_facts
    from failures.diagnosis.model_calls import with_model_calls, with_user_turns
    from failures.diagnosis.same_task import diverge as same_task_diverge
    from failures.mining import (
        TraceRow,
        _profile,
        _same_task_successes,
        is_cause,
        success_pool,
        tool_vocabularies,
        weigh_evidence,
    )
    from failures.models import Incident, TraceAnalysis
    from traces.models import Step

    verdicts = dict(
        TraceAnalysis.objects.filter(workspace_id=workspace_id).values_list("trace_id", "verdict")
    )
    # Recovered incidents (tool errors in runs that succeeded) are not diagnoses
    # of a failure: counted apart, so success_with_incident still measures
    # failures found where there were none.
    recovered = Incident.objects.filter(workspace_id=workspace_id, kind="recovered").count()
    incidents = list(
        Incident.objects.filter(workspace_id=workspace_id)
        .exclude(kind__in=["recovered", "symptom", "weak"])  # causes only, as the trace shows
        .values_list("trace_id", "description", "category", "stats", "trace__task")
    )
    with_incident = {t for t, *_ in incidents}
    # The same, from the trace alone: a failed check of the outcome (the harness's
    # verdict, e.g. InterCode's score or tau2's `db_match`) left out.
    from_trace = {t for t, _, _, s, _ in incidents if s.get("evidence") != "check"}
    failed = [t for t, v in verdicts.items() if v == "failed"]
    succeeded = [t for t, v in verdicts.items() if v == "succeeded"]
    ratio = lambda part, whole: (len(part) / len(whole)) if whole else None  # noqa: E731
    also = [s["also_in_successes"] > 0 for _, _, _, s, _ in incidents if "also_in_successes" in s]
    shared: dict[str, set[str]] = defaultdict(set)
    for _, description, _, _, task in incidents:
        shared[description].add(task)
    top = max(shared.items(), key=lambda kv: len(kv[1]), default=("", set()))
    # Baseline: step-error incidents, and a catch-all for failed runs without one.
    errored = set(
        Step.objects.filter(trace__workspace_id=workspace_id)
        .filter(~Q(error="") | Q(kind="error"))
        .values_list("trace_id", flat=True)
    )
    # The stricter check: judge each successful run as if it had failed.
    flagged = []
    flagged_ids: set[int] = set()
    if succeeded and failed:
        agents = dict(
            TraceAnalysis.objects.filter(trace_id__in=succeeded).values_list("trace_id", "agent")
        )
        tasks = dict(
            TraceAnalysis.objects.filter(trace_id__in=succeeded).values_list(
                "trace_id", "trace__task"
            )
        )
        task_keys = dict(
            TraceAnalysis.objects.filter(trace_id__in=succeeded).values_list(
                "trace_id", "trace__task_key"
            )
        )
        profiles = {
            a: _profile(workspace_id, a, {t for t in succeeded if agents[t] == a})
            for a in set(agents.values())
        }
        indexes = {
            a: offline.TaskIndex(success_pool(workspace_id, a)) for a in set(agents.values())
        }
        steps: dict[int, list[StepView]] = defaultdict(list)
        for row in (
            Step.objects.filter(trace_id__in=succeeded)
            .order_by("trace_id", "index")
            .values_list("trace_id", "index", "kind", "name", "input", "output", "error")
        ):
            steps[row[0]].append(StepView(*row[1:]))
        # As the product reads them (mining.TraceRow.views): calls recorded only in
        # model calls are calls.
        steps = defaultdict(
            list, {t: with_model_calls(with_user_turns(found)) for t, found in steps.items()}
        )
        # Judged as the product judges a failed run: first against successful runs
        # of the same task (this run left out), then by the other methods.
        rows = [TraceRow(t, agents[t], "failed", None, tasks[t], None, task_key=task_keys[t])
                for t in succeeded]  # fmt: skip
        same_task = _same_task_successes(workspace_id, rows)
        vocabulary = tool_vocabularies(
            workspace_id, set(agents.values()) | {a for r in same_task.values() for a in r}
        )
        for trace_id in succeeded:
            if trace_id in same_task and same_task_diverge(
                steps[trace_id], same_task[trace_id], agent=agents[trace_id], vocabulary=vocabulary
            ):
                flagged.append(True)
                flagged_ids.add(trace_id)
                continue
            facts = trace_facts(steps[trace_id])
            profile = profiles[agents[trace_id]]
            neighbours = indexes[agents[trace_id]].nearest(
                tasks[trace_id], set(facts.tools), trace_id
            )
            found = offline.diagnose(facts, profile, failed=True, neighbours=neighbours,
                                     own=(False, profile.signals_of(facts)))  # fmt: skip
            # Symptoms and weak leads are no diagnosis (the product's gate, default minimum).
            found = weigh_evidence(found, evidence.DEFAULT_MIN_PRECISION)
            flagged.append(any(is_cause(f) for f in found))
            if flagged[-1]:
                flagged_ids.add(trace_id)
    # The same check on each half of the tasks (by a hash of the task key, as
    # bench/truth.py splits): thresholds are chosen on `tune`, reported on `measure`.
    keys = dict(
        TraceAnalysis.objects.filter(workspace_id=workspace_id).values_list(
            "trace_id", "trace__task_key"
        )
    )
    halves = {}
    for name in ("tune", "measure"):
        f = [t for t in failed if _half(keys.get(t) or str(t)) == name]
        s_ = [t for t in succeeded if _half(keys.get(t) or str(t)) == name]
        if f and s_:
            cause = sum(t in with_incident for t in f) / len(f)
            wrong = sum(t in flagged_ids for t in s_) / len(s_)
            alone = sum(t in from_trace for t in f) / len(f)
            halves[name] = (len(f), len(s_), cause, wrong, cause - wrong, alone - wrong)
    return {
        "runs": len(verdicts),
        "failed": len(failed),
        "succeeded": len(succeeded),
        "unknown outcome": len(verdicts) - len(failed) - len(succeeded),
        "incidents": len(incidents),
        "recovered_incidents": recovered,
        "failed_with_incident": ratio([t for t in failed if t in with_incident], failed),
        "success_with_incident": ratio([t for t in succeeded if t in with_incident], succeeded),
        "flagged_if_diagnosed": (sum(flagged) / len(flagged)) if flagged else None,
        "incidents_also_in_successes": (sum(also) / len(also)) if also else None,
        "most shared description": f"{len(top[1])} tasks: {top[0][:120]!r}",
        "baseline_failed_with_specific": ratio([t for t in failed if t in errored], failed),
        "baseline_success_with_incident": ratio([t for t in succeeded if t in errored], succeeded),
        "categories": Counter(c for _, _, c, _, _ in incidents).most_common(),
        "halves": halves,
    }


def run_throughput(workspace, count: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """`count` traces of 50 steps made from real tool calls; returns (count, seconds)."""
    from failures.mining import traces_diagnose
    from hivemind_client.formats import parse
    from traces.models import Trace
    from traces.services import trace_ingest_batch

    source = parse("tau2-bench", load("tau2-bench", False)[0]).traces
    source += parse("intercode", load("intercode", False)[-1]).traces
    calls = [s for t in source for s in t["steps"] if s["kind"] == "tool_call"]
    rng = random.Random(7)
    batch = []
    for i in range(count):
        base = source[i % len(source)]
        steps = [{"kind": "user_prompt", "input": base["task"]}] + [
            dict(rng.choice(calls)) for _ in range(49)
        ]
        batch.append({"external_id": f"tp-{i}", "agent": f"agent-{i % 4}", "task": f"{base['task']} (case {i})",
                      "status": "failed" if rng.random() < 0.35 else "succeeded", "steps": steps})  # fmt: skip
        if len(batch) == 500:
            trace_ingest_batch(workspace=workspace, items=batch)
            batch = []
    if batch:
        trace_ingest_batch(workspace=workspace, items=batch)
    ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
    started = time.perf_counter()
    traces_diagnose(workspace_id=workspace.pk, trace_ids=ids, force=True)
    return len(ids), time.perf_counter() - started


if __name__ == "__main__":
    main()
