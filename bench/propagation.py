"""From a few labels to the runs like them: how right are the "same failure?" candidates?

    python bench/propagation.py            # k = 1, 3, 10 labels per failure kind
    python bench/propagation.py --quick    # the same (the sets are small); a few minutes

A simulated lead labels k failed runs of each failure kind (the product's
`label_save`, as the review page does), the product's propagation
(failures/propagation.py) offers candidates, and the bench, which alone reads
the sets' labels, checks whether each candidate run failed the same way.

Failure kinds (the data folder is ../shared/devdata, or HIVEMIND_DEVDATA):

- **tau2-bench dev** (44 failed runs): as in bench/truth.py, the culprit of a
  failed run is the agent's first state-changing call that matches no expected
  call of `reward_info.action_checks`; its kind is `wrong <tool>`, and the lead
  labels that step. A run with no culprit but an expected state-changing call it
  never made is of kind `missing <tool>`, labelled as a whole run. Runs with
  neither are left out (no truth to check against).
- **Who&When** (126 failed runs): the kind is the labelled `mistake_agent` (the
  agent that made the mistake), and the lead labels the labelled step.

Each set is split by a hash of its task id into a `tune` and a `measure` half,
each imported into its own workspace, so candidates come only from the same
half. For each k, on each half, for every kind with more than k runs: the first
k runs of the kind (by a hash of their id) are labelled, and their candidates
pooled (best score per run). Measured over all such kinds together:

- `precision_at_10`: share of the top 10 candidates (fewer if fewer are
  offered) that are runs of the same kind;
- `recall_at_50`: share of the kind's other runs found in the top 50;
- `labels_for_80pct`: labels needed, one more at a time, until the labelled runs
  plus the right candidates in the top 50 cover 80% of the kind (mean over
  kinds with at least 4 runs), against ceil(0.8·n) labels without propagation.

Reference in the same run: `random_precision`, the share of the kind among the
other failed runs of the half (what a random ranking's top 10 would hold).

The product's similarity threshold (`propagation.MIN_SIMILARITY`) is chosen
here, on the tune halves of both sets pooled at k = 3 (the highest
precision@10 that keeps recall@50 ≥ 0.5), and every figure is printed for both
halves at that threshold; RESULT lines are the measure halves. The bench keeps
every candidate and applies thresholds itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

from truth import TAU2, WHO, _norm, _writes, compared, half  # noqa: E402

KS = (1, 3, 10)
TOP_P, TOP_R = 10, 50


def _order(external_id: str) -> bytes:
    return hashlib.sha256(external_id.encode()).digest()


def load_tau2(workspaces: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """external id -> {half, kind, step (-1: whole run)} for failed runs with truth."""
    from traces.importing import traces_import_file

    truth: dict[str, dict[str, Any]] = {}
    halves: dict[str, str] = {}
    for path in sorted(TAU2.rglob("*.json")):
        data = json.loads(path.read_text())
        domain = (data.get("info", {}).get("environment_info") or {}).get("domain_name", "")
        for sim in data["simulations"]:
            info = sim.get("reward_info") or {}
            halves[f"tau2-{sim.get('id')}"[:200]] = half(f"{domain}:{sim.get('task_id')}")
            if info.get("reward") == 1.0:
                continue
            keys = compared(info.get("action_checks") or [])
            checks = [(c["action"]["name"],
                       _norm(c["action"].get("arguments") or {}, keys[c["action"]["name"]]))
                      for c in info.get("action_checks") or []
                      if (c.get("action") or {}).get("requestor", "assistant") == "assistant"]  # fmt: skip
            truth[f"tau2-{sim.get('id')}"[:200]] = {
                "half": half(f"{domain}:{sim.get('task_id')}"), "checks": checks, "keys": keys,
            }  # fmt: skip
        for workspace in workspaces.values():
            result = traces_import_file(workspace=workspace, fmt="tau2-bench", path=path)
            if not result.ok:
                raise SystemExit(f"{path}: {result.error}")
    found: dict[str, dict[str, Any]] = {}
    for name, workspace in workspaces.items():
        _prepare(workspace, keep={e for e, h in halves.items() if h == name})
        calls = _calls(workspace)
        for external_id, t in truth.items():
            if t["half"] != name or external_id not in calls:
                continue
            agent = [(i, n, _norm(a, t["keys"].get(n)))
                     for i, n, a in calls[external_id] if not n.startswith("user.")]  # fmt: skip
            expected = set(t["checks"])
            culprit = next(((i, n) for i, n, a in agent if _writes(n) and (n, a) not in expected),
                           None)  # fmt: skip
            done = {(n, a) for _, n, a in agent}
            missing = sorted({n for n, a in t["checks"] if _writes(n) and (n, a) not in done})
            wrong = {f"wrong {n}" for _, n, a in agent if _writes(n) and (n, a) not in expected}
            if culprit is not None:
                found[external_id] = {"half": name, "kind": f"wrong {culprit[1]}",
                                      "step": culprit[0], "also": wrong}  # fmt: skip
            elif missing:
                found[external_id] = {"half": name, "kind": f"missing {missing[0]}", "step": -1}
    return found


def load_who(workspaces: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from traces.importing import traces_import_file

    found: dict[str, dict[str, Any]] = {}
    for path in sorted(WHO.glob("*.json"), key=lambda p: int(p.stem)):  # each into its half
        raw = json.loads(path.read_text())
        task_id = str(raw.get("question_ID") or path.stem)
        name = half(task_id)
        result = traces_import_file(workspace=workspaces[name], fmt="ag2-chat", path=path)
        if not result.ok:
            raise SystemExit(f"{path}: {result.error}")
        found[f"ag2-{path.stem}-{task_id}"[:200]] = {
            "half": name, "kind": str(raw.get("mistake_agent")), "step": int(raw["mistake_step"]),
        }  # fmt: skip
    for name, workspace in workspaces.items():
        _prepare(workspace, keep={e for e, t in found.items() if t["half"] == name})
    return found


def _prepare(workspace: Any, keep: set[str]) -> None:
    """Keep only the half's runs, and diagnose them (the pool is its failed runs)."""
    from failures.mining import traces_diagnose
    from traces.models import Trace

    Trace.objects.filter(workspace=workspace).exclude(external_id__in=keep).delete()
    ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
    traces_diagnose(workspace_id=workspace.pk, trace_ids=ids, force=True)


def _calls(workspace: Any) -> dict[str, list[tuple[int, str, Any]]]:
    from traces.models import Step

    calls: dict[str, list[tuple[int, str, Any]]] = defaultdict(list)
    for external_id, index, name, data in (
        Step.objects.filter(trace__workspace=workspace, kind="tool_call")
        .order_by("trace_id", "index")
        .values_list("trace__external_id", "index", "name", "input")
    ):
        calls[external_id].append((index, name, data or {}))
    return calls


def _reset(workspace: Any) -> None:
    from failures.models import FailureMode, Incident, RunLabel

    Incident.objects.filter(workspace=workspace, source="human").delete()
    RunLabel.objects.filter(workspace=workspace).delete()
    FailureMode.objects.filter(workspace=workspace, label_source="human").delete()


def _offer(workspace: Any, seeds: list[str], truth: dict[str, dict[str, Any]],
           ids: dict[str, int]) -> list[tuple[str, float, float]]:  # fmt: skip
    """Label the seeds and propagate each: every candidate (run, score, similarity),
    whatever its similarity (the threshold is applied when pooling)."""
    from failures import labels
    from failures.models import LabelCandidate
    from failures.propagation import propagate
    from traces.models import Trace

    _reset(workspace)
    made = []
    for external_id in seeds:
        t = truth[external_id]
        label = labels.label_save(
            workspace=workspace, trace=Trace.objects.get(pk=ids[external_id]),
            step_index=t["step"], category="process.policy_violation",
            sentence=f"failed as {t['kind']}", author=labels.Author(key_name="bench"),
        )  # fmt: skip
        made.append(label.pk)
    for pk in made:
        propagate(label_id=pk)
    return list(
        LabelCandidate.objects.filter(label_id__in=made).values_list(
            "trace__external_id", "score", "similarity"
        )
    )


def _pooled(offers: list[tuple[str, float, float]], threshold: float) -> list[str]:
    """Runs offered at or above the threshold, best score first (as leads see them)."""
    best: dict[str, float] = {}
    for external_id, score, similarity in offers:
        if similarity >= threshold:
            best[external_id] = max(score, best.get(external_id, -9.0))
    return [e for e, _ in sorted(best.items(), key=lambda item: (-item[1], item[0]))]


THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def collect(name: str, workspaces: dict[str, Any], truth: dict[str, dict[str, Any]]) -> dict:
    """Every (half, k, kind) experiment's candidates, and each kind's coverage runs."""
    from traces.models import Trace

    found: dict[str, Any] = {}
    for half_name, workspace in workspaces.items():
        ids = dict(Trace.objects.filter(workspace=workspace).values_list("external_id", "pk"))
        mine = {e: t for e, t in truth.items() if t["half"] == half_name and e in ids}
        kinds: dict[str, list[str]] = defaultdict(list)
        for external_id in sorted(mine, key=_order):
            kinds[mine[external_id]["kind"]].append(external_id)
        print(f"\n== {name} / {half_name}: {len(mine)} failed runs with truth in {len(kinds)} "
              f"kinds; kinds with 2+ runs: "
              + ", ".join(f"{k} ({len(v)})" for k, v in sorted(kinds.items(), key=lambda x: -len(x[1]))
                          if len(v) > 1))  # fmt: skip
        runs: dict[tuple[int, str], list] = {}
        for k in KS:
            for kind, members in kinds.items():
                if len(members) > k:
                    runs[(k, kind)] = _offer(workspace, members[:k], mine, ids)
        cover: dict[str, list] = {}
        for kind, members in kinds.items():
            if len(members) >= 4:
                goal = math.ceil(0.8 * len(members))
                cover[kind] = [
                    _offer(workspace, members[:j], mine, ids) for j in range(1, goal + 1)
                ]
        found[half_name] = {"mine": mine, "kinds": kinds, "runs": runs, "cover": cover}
    return found


def _same(truth: dict[str, Any] | None, kind: str) -> bool:
    """Lenient: the run made the same wrong call, first or not (tau2)."""
    return truth is not None and (truth["kind"] == kind or kind in truth.get("also", ()))


def figures(half: dict, k: int, threshold: float) -> dict[str, Any]:
    mine, kinds = half["mine"], half["kinds"]
    right10 = shown10 = right50 = wanted = n_kinds = lenient10 = 0
    prevalence = []
    for (kk, kind), offers in half["runs"].items():
        if kk != k:
            continue
        ranked = _pooled(offers, threshold)
        top10, top50 = ranked[:TOP_P], ranked[:TOP_R]
        right10 += sum(mine[e]["kind"] == kind for e in top10 if e in mine)
        lenient10 += sum(_same(mine.get(e), kind) for e in top10)
        shown10 += len(top10)
        right50 += sum(mine[e]["kind"] == kind for e in top50 if e in mine)
        wanted += len(kinds[kind]) - k
        n_kinds += 1
        prevalence.append((len(kinds[kind]) - k) / max(len(mine) - k, 1))
    needed, plain = [], []
    for kind, tries in half["cover"].items():
        goal = math.ceil(0.8 * len(kinds[kind]))
        plain.append(goal)
        j = next((j for j, offers in enumerate(tries, start=1)
                  if j + sum(mine[e]["kind"] == kind for e in _pooled(offers, threshold)[:TOP_R]
                             if e in mine) >= goal), goal)  # fmt: skip
        needed.append(j)
    return {
        "kinds": n_kinds, "right10": right10, "shown10": shown10, "right50": right50,
        "wanted": wanted,
        "precision": right10 / shown10 if shown10 else None,
        "lenient": lenient10 / shown10 if shown10 else None, "lenient10": lenient10,
        "recall": right50 / wanted if wanted else None,
        "random": sum(prevalence) / len(prevalence) if prevalence else None,
        "needed": sum(needed) / len(needed) if needed else None,
        "plain": sum(plain) / len(plain) if plain else None,
    }  # fmt: skip


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def choose_threshold(sets: dict[str, dict]) -> float:
    """On the tune halves of every set pooled, at k = 3: the lowest similarity
    threshold whose precision@10 is the highest while recall@50 stays ≥ 0.5
    (any threshold if none keeps that recall)."""
    best, best_key = 0.0, (-1.0, -1.0)
    print("\n== choosing the similarity threshold on the tune halves (k=3, sets pooled)")
    for threshold in THRESHOLDS:
        right10 = shown10 = right50 = wanted = 0
        for found in sets.values():
            f = figures(found["tune"], 3, threshold)
            right10, shown10 = right10 + f["right10"], shown10 + f["shown10"]
            right50, wanted = right50 + f["right50"], wanted + f["wanted"]
        precision = right10 / shown10 if shown10 else 0.0
        recall = right50 / wanted if wanted else 0.0
        print(f"   threshold {threshold:.2f}: precision@10 {precision:.3f} ({right10}/{shown10}) · "
              f"recall@50 {recall:.3f} ({right50}/{wanted})")  # fmt: skip
        key = (1.0 if recall >= 0.5 else 0.0, precision)
        if key > best_key:
            best, best_key = threshold, key
    print(f"   chosen: {best:.2f}")
    return best


def report(name: str, found: dict, threshold: float) -> list[str]:
    lines = []
    for half_name in ("tune", "measure"):
        print(f"\n== {name} / {half_name} at similarity ≥ {threshold:.2f}")
        for k in KS:
            f = figures(found[half_name], k, threshold)
            if not f["kinds"]:
                print(f"   k={k}: no kind has more than {k} runs")
                continue
            print(f"   k={k}: {f['kinds']} kinds · precision@10 {_f(f['precision'])} "
                  f"({f['right10']}/{f['shown10']}; the same wrong call anywhere in the run: "
                  f"{_f(f['lenient'])}) · recall@50 {_f(f['recall'])} "
                  f"({f['right50']}/{f['wanted']}) · random ranking's precision {_f(f['random'])} · "
                  f"labels for 80% {_f(f['needed'], 1)} (without propagation {_f(f['plain'], 1)})")  # fmt: skip
            if half_name == "measure":
                lines.append(
                    f"RESULT dataset={name} k={k} precision_at_10={_f(f['precision'])} "
                    f"precision_at_10_same_wrong_call={_f(f['lenient'])} "
                    f"recall_at_50={_f(f['recall'])} labels_for_80pct={_f(f['needed'], 1)} "
                    f"labels_for_80pct_without={_f(f['plain'], 1)} "
                    f"random_precision={_f(f['random'])} threshold={threshold:.2f} "
                    f"shown_at_10={f['shown10']}"
                )  # fmt: skip
    return lines


def _memo_embedder() -> None:
    """Each text embedded once for the whole bench (the product embeds per label)."""
    from failures import embedding

    embedder = embedding.get_embedder()
    plain = embedder.embed
    cache: dict[str, Any] = {}

    def embed(texts: list[str]) -> Any:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in cache]
        if todo:
            for text, vector in zip(todo, plain(todo), strict=True):
                cache[text] = vector
        return np.stack([cache[t] for t in texts]) if texts else plain([])

    embedder.embed = embed  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same runs (they are few)")
    parser.parse_args()
    if not WHO.exists() or not TAU2.exists():
        raise SystemExit("the labelled dev sets are missing: set HIVEMIND_DEVDATA")
    import django

    django.setup()
    from traces import services as trace_services
    from workspaces.models import Workspace

    # The bench diagnoses and propagates itself, in order (no worker, no broker).
    trace_services._after_commit_analyse = lambda workspace_id, trace_ids: None  # type: ignore[assignment]
    from hivemind_web import celery as hm_celery

    hm_celery.enqueue = lambda name, *a: True  # type: ignore[assignment]
    _memo_embedder()
    import logging

    from failures import propagation

    logging.getLogger("hivemind_web.celery").setLevel(logging.ERROR)
    # Every candidate is kept; thresholds are applied (and chosen) by the bench.
    propagation.MIN_SIMILARITY, propagation.MAX_CANDIDATES = -1.0, 500
    started = time.perf_counter()
    sets: dict[str, dict] = {}
    for name, loader in (("tau2-bench", load_tau2), ("who_and_when", load_who)):
        workspaces = {
            h: Workspace.objects.create(
                name=f"propagation {name} {h}", slug=f"bench-prop-{name}-{h}-{os.getpid()}"
            )  # fmt: skip
            for h in ("tune", "measure")
        }
        try:
            truth = loader(workspaces)
            sets[name] = collect(name, workspaces, truth)
        finally:
            for workspace in workspaces.values():
                workspace.delete()
    threshold = choose_threshold(sets)
    lines = []
    for name, found in sets.items():
        lines += report(name, found, threshold)
    print(f"\n{time.perf_counter() - started:.0f} s")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
