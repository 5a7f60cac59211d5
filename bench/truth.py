"""Is the diagnosis *right*? Incidents measured against labels, beside trivial references.

    python bench/truth.py            # every labelled run
    python bench/truth.py --quick    # the same runs (they are few); well under 90 s
    python bench/truth.py --model    # diagnosed by the configured model, with tokens and cost

Two labelled dev sets (the data folder is ../shared/devdata, or HIVEMIND_DEVDATA):

- **Who&When** (`who_and_when/`, 126 failed AG2 group chats): a person labelled
  the step where each run went wrong (`mistake_step`). Imported with the
  product's `ag2-chat` importer (which never reads the labels), diagnosed by
  the offline diagnoser (the service the worker runs). A run's *named step* is
  the step of its most confident incident. Measured: `coverage` (runs with a
  named step), `step_exact` and `step_pm1` (named step equal to, or within one
  of, the label, over all runs: a run with no named step counts as wrong), and
  `precision_pm1` (within one, over the runs with a named step). References in
  the same run: the first step, the last step, the first step with an error,
  and a random step (its expected value over a uniform choice).
- **tau2-bench dev** (`tau2-bench_sierra_gpt-4.1/`, 160 runs, 44 failed): each
  simulation's `reward_info.action_checks` lists the calls the task expected
  and whether each was matched. Only this bench reads them. For a failed run
  the *culprit* is the first state-changing call of the agent (not a read:
  get/find/list/search/calculate/check…; not the simulated user's `user.*`)
  that matches no expected call (tool and arguments), and the *missing* calls
  are expected state-changing calls that no call of the run matches. The run is
  `named` when one of its incidents is at the culprit's step, or is about a
  missing call (its tool). A `false incident` is one at a step where the run
  did what was expected (an agent call equal to an expected one) or at a
  simulated user's call. References: the first state-changing call, the last
  one, the last tool call. `named_with_success` restricts to failed runs whose
  task has a successful run in the set (the issue's target population).
  `discrimination` = failed runs with an incident − successful runs that get
  one when judged as failed (bench/diagnosis.py's leave-one-out check).
- **tau2-bench dev recorded as model calls only** (`tau2-bench_model_calls`):
  the same simulations as an application instrumented at its model client alone
  records them (`as_model_calls`: a model call per agent turn, sent the
  conversation so far in OpenAI chat messages, answering with its text and tool
  calls; no tool step, no user step), sent as the API takes them, with the same
  checks. The same measures, each call at the step of the model call that asked
  for it; a step is "where the run did what was expected" only when every call
  made there was expected. The figures should equal the imported runs': what
  differs is how the run was recorded, not what the agent did. Two more
  recordings of the same runs: `tau2-bench_model_calls_bare_tool_spans` (a bare
  span of the application's around each tool run, carrying only its name and
  failure) and `tau2-bench_otlp_genai` (the model calls as GenAI `chat` spans
  through the product's OTLP receiver).

- **Who&When hand-crafted** (`Who&When/Hand-Crafted/`, Magentic-One teams, the
  failing step labelled the same way), when that folder is beside the
  algorithm-generated one (it is not in ../shared/devdata; the public dataset
  has it): the same measures and references, on every run, printed as `held
  out`. Nothing is chosen on it, and the dev runs never saw it.
- **TRAIL** (`trail/` beside the dev sets, or `HIVEMIND_TRAIL`: a copy of
  PatronusAI/TRAIL or of patronus-ai/trail-benchmark's `benchmarking/`), when
  present: smolagents runs on GAIA and SWE-bench as OpenInference span trees,
  each with the spans people located its errors at. Imported with the product's
  `openinference-json` importer (given the outcome failed: the files name none),
  the same measures and references, a step right when within one of any located
  error's step; printed as `held out`.

Every figure is printed for both halves of each set, split by a hash of the
task id: `tune` (where any threshold would be chosen) and `measure` (reported).
What is chosen here is chosen on the tune half only: the words that count as
an agent saying it assumed or made up data, and the precision of each kind of
evidence that the product's gate reads (`--write-precision` writes the tune
half's table). One RESULT line per set, on the measure half; `best reference`
is the best trivial reference's ±1 precision when it names a step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEVDATA = Path(os.environ.get("HIVEMIND_DEVDATA", ROOT.parent / "shared" / "devdata"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

WHO = DEVDATA / "who_and_when" / "Who&When" / "Algorithm-Generated"
WHO_HAND = WHO.parent / "Hand-Crafted"
# TRAIL (PatronusAI/TRAIL, patronus-ai/trail-benchmark), when a copy is beside the dev sets.
TRAIL = Path(os.environ.get("HIVEMIND_TRAIL", DEVDATA / "trail"))
TAU2 = DEVDATA / "tau2-bench_sierra_gpt-4.1"
READ_LIKE = re.compile(
    r"^(get|find|list|search|calculate|check|lookup|look_up|view|show|fetch|describe|verify|"
    r"query|read)", re.I,
)  # fmt: skip


# (set, half, kind of evidence) → whether each incident of that kind was right.
KINDS: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
# Incidents the product does not show as a cause (RESULT figures count causes only).
NOT_SHOWN_AS_CAUSE = ("recovered", "symptom", "weak")
PRECISION_FILE = ROOT / "failures" / "diagnosis" / "evidence_precision.json"


def half(task_id: str) -> str:
    """`tune` or `measure`, by a hash of the task id (stable across runs and machines)."""
    return "tune" if hashlib.sha256(task_id.encode()).digest()[0] % 2 == 0 else "measure"


def _pct(part: float, whole: float) -> str:
    return "n/a" if not whole else f"{part / whole:.3f}"


# --- Who&When -----------------------------------------------------------------------------


# --model: the diagnosis by the model the environment configures (workspaces/llm.py:
# HIVEMIND_LLM_PROVIDER, ANTHROPIC_API_KEY or OPENAI_BASE_URL, HIVEMIND_LLM_MODEL);
# without it, the offline diagnoser whatever the environment says.
MODEL = False


def diagnose(workspace, trace_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Offline first (facts and baselines for every run); with --model, then every run
    again with the model, as `manage.py diagnose_traces` does (no burst limit;
    HIVEMIND_LLM_CONCURRENCY requests at once)."""
    from django.conf import settings

    from failures.mining import traces_diagnose

    provider = settings.HIVEMIND_LLM_PROVIDER
    settings.HIVEMIND_LLM_PROVIDER = "offline"
    traces_diagnose(workspace_id=workspace.pk, trace_ids=trace_ids, force=True)
    settings.HIVEMIND_LLM_PROVIDER = provider
    if not MODEL:
        return
    traces_diagnose(
        workspace_id=workspace.pk, trace_ids=trace_ids, force=True, cascade=False, burst_limit=False
    )


def model_usage(workspace) -> str:  # type: ignore[no-untyped-def]
    """What the model cost on this set, for the RESULT line."""
    from django.db.models import Sum

    from workspaces.models import ModelUsage

    if not MODEL:
        return ""
    totals = ModelUsage.objects.filter(workspace=workspace).aggregate(
        calls=Sum("calls"), tin=Sum("input_tokens"), tout=Sum("output_tokens"),
        cost=Sum("cost_usd"), unpriced=Sum("unpriced_calls"),
    )  # fmt: skip
    cost = "unknown" if totals["unpriced"] else f"{totals['cost'] or 0:.4f}"
    return (f" model_calls={totals['calls'] or 0} tokens_in={totals['tin'] or 0} "
            f"tokens_out={totals['tout'] or 0} cost_usd={cost}")  # fmt: skip


def who_and_when(workspace, folder: Path = WHO) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The measures on one Who&When folder, per half (`held out` for every run of
    a folder nothing was chosen on)."""
    from failures.diagnosis.evidence import evidence_kind
    from failures.models import Incident
    from traces.importing import traces_import_file
    from traces.models import Step, Trace

    held_out = folder != WHO

    def half_of(task_id: str) -> str:
        return "held out" if held_out else half(task_id)

    labels: dict[str, tuple[int, str]] = {}
    for path in sorted(folder.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
        result = traces_import_file(workspace=workspace, fmt="ag2-chat", path=path)
        if not result.ok:
            raise SystemExit(f"{path}: {result.error}")
        raw = json.loads(path.read_text())
        task_id = str(raw.get("question_ID") or path.stem)
        labels[f"ag2-{path.stem}-{task_id}"[:200]] = (int(raw["mistake_step"]), task_id)
    traces = dict(Trace.objects.filter(workspace=workspace).values_list("external_id", "pk"))
    diagnose(workspace, list(traces.values()))
    named: dict[int, int] = {}
    for trace_id, step, _confidence in (
        Incident.objects.filter(workspace=workspace).exclude(kind__in=NOT_SHOWN_AS_CAUSE)
        .exclude(step_index__lt=0).order_by("trace_id", "-confidence", "step_index")
        .values_list("trace_id", "step_index", "confidence")
    ):  # fmt: skip
        named.setdefault(trace_id, step)
    # Per kind of evidence, on each half: how often its incident is within one step
    # (weak leads included: this measures the evidence, not what the product shows).
    by_trace = {traces[e]: (label, task) for e, (label, task) in labels.items()}
    for trace_id, step, stats in (
        Incident.objects.filter(workspace=workspace).exclude(kind__in=["recovered", "symptom"])
        .exclude(step_index__lt=0).values_list("trace_id", "step_index", "stats")
    ):  # fmt: skip
        label, task = by_trace[trace_id]
        if not held_out:
            KINDS[("who_and_when", half(task), evidence_kind(stats))].append(abs(step - label) <= 1)
    steps: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for trace_id, index, error, kind in Step.objects.filter(trace__workspace=workspace).values_list(
        "trace_id", "index", "error", "kind"
    ):
        steps[trace_id].append((index, bool(error) or kind == "error"))
    halves: dict[str, dict[str, Any]] = {}
    for external_id, (label, task_id) in labels.items():
        trace_id = traces[external_id]
        score(halves.setdefault(half_of(task_id), defaultdict(float)), named.get(trace_id),
              {label}, steps[trace_id])  # fmt: skip
    return halves


def score(
    h: dict[str, Any], guess: int | None, labels: set[int], steps: list[tuple[int, bool]]
) -> None:
    """Add one labelled run to a half's counts: the product's named step (None when
    it names none) and each trivial reference, right when equal to (`exact`) or
    within one step of (`pm1`) a labelled step."""
    indices = sorted(i for i, _ in steps)
    n = len(indices)
    first_error = next((i for i, e in sorted(steps) if e), None)

    def near(step: int) -> bool:
        return any(abs(step - label) <= 1 for label in labels)

    h["runs"] += 1
    if guess is not None:
        h["covered"] += 1
        h["exact"] += guess in labels
        h["pm1"] += near(guess)
    for ref, step in (("first", indices[0] if n else None), ("last", indices[-1] if n else None),
                      ("first_error", first_error)):  # fmt: skip
        if step is not None:
            h[f"{ref}_covered"] += 1
            h[f"{ref}_exact"] += step in labels
            h[f"{ref}_pm1"] += near(step)
    # A random step: the expected value over a uniform choice of the run's steps.
    if n:
        h["random_exact"] += sum(i in labels for i in indices) / n
        h["random_pm1"] += sum(near(i) for i in indices) / n
        h["random_covered"] += 1


# --- TRAIL (held out when present) ---------------------------------------------------------


def trail_pairs(root: Path = TRAIL) -> list[tuple[Path, Path]]:
    """(run, annotations) files of a TRAIL checkout or download: `processed_annotations_gaia/`
    and `processed_annotations_swe_bench/` beside the runs' folders (`GAIA/`, `SWE Bench/`),
    or beside a `data/` folder that holds them (the GitHub repository's `benchmarking/`)."""
    folders = {"gaia": ("GAIA",), "swe_bench": ("SWE Bench", "SWE_Bench", "swe_bench")}
    pairs = []
    for notes in sorted(p for p in root.rglob("processed_annotations_*") if p.is_dir()):
        split = notes.name.removeprefix("processed_annotations_")
        for base in (notes.parent, notes.parent / "data"):
            for name in folders.get(split, (split,)):
                runs = base / name
                if runs.is_dir():
                    pairs += [(runs / a.name, a) for a in sorted(notes.glob("*.json"))
                              if (runs / a.name).is_file()]  # fmt: skip
    return pairs


def trail(workspace, pairs: list[tuple[Path, Path]]) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """TRAIL's runs (OpenInference span trees of smolagents runs on GAIA and SWE-bench),
    imported with the product's `openinference-json` importer, each with the spans
    people located its errors at (`errors[].location`). Only runs with at least one
    located error are read, given the outcome failed at import (the files name none;
    the bench may read labels, the product does not). A named step is right when
    within one of any located error's step. Held out: nothing is chosen on it."""
    from failures.models import Incident
    from hivemind_client.formats import _span_steps
    from traces.importing import traces_import_file
    from traces.models import Step, Trace

    labels: dict[str, set[int]] = {}
    for run_path, notes_path in pairs:
        run = json.loads(run_path.read_text(encoding="utf-8"))
        spans = run.get("spans") if isinstance(run, dict) else None
        located = {str(e.get("location")) for e in json.loads(notes_path.read_text()).get("errors", [])
                   if isinstance(e, dict) and e.get("location")}  # fmt: skip
        if not isinstance(spans, list) or not located:
            continue
        index_of = {row["_span"]: row["index"] for row in _span_steps(spans, run_path, "run")}
        steps = {index_of[span] for span in located if span in index_of}
        if not steps:  # located only on spans the importer leaves out (a harness's own)
            continue
        result = traces_import_file(workspace=workspace, fmt="openinference-json", path=run_path,
                                    status="failed")  # fmt: skip
        if not result.ok:
            raise SystemExit(f"{run_path}: {result.error}")
        labels[str(run.get("trace_id") or run_path.stem)[:200]] = steps
    traces = dict(Trace.objects.filter(workspace=workspace).values_list("external_id", "pk"))
    diagnose(workspace, list(traces.values()))
    named: dict[int, int] = {}
    for trace_id, step in (
        Incident.objects.filter(workspace=workspace).exclude(kind__in=NOT_SHOWN_AS_CAUSE)
        .exclude(step_index__lt=0).order_by("trace_id", "-confidence", "step_index")
        .values_list("trace_id", "step_index")
    ):  # fmt: skip
        named.setdefault(trace_id, step)
    steps: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for trace_id, index, error, kind in Step.objects.filter(trace__workspace=workspace).values_list(
        "trace_id", "index", "error", "kind"
    ):
        steps[trace_id].append((index, bool(error) or kind == "error"))
    halves: dict[str, dict[str, Any]] = {}
    for external_id, located_steps in labels.items():
        trace_id = traces[external_id]
        score(halves.setdefault("held out", defaultdict(float)), named.get(trace_id),
              located_steps, steps[trace_id])  # fmt: skip
    return halves


TITLES = {
    "who_and_when": "Who&When ({runs} failed AG2 group chats; failing step labelled by people)",
    "who_and_when_hand_crafted": "Who&When hand-crafted ({runs} failed Magentic-One runs, held "
                                 "out; failing step labelled by people)",
    "trail": "TRAIL ({runs} smolagents runs with located errors, held out; a named step is "
             "right within one of any step people located an error at)",
}  # fmt: skip


def print_who(halves: dict[str, dict[str, Any]], dataset: str = "who_and_when") -> str:
    held_out = dataset != "who_and_when"
    runs_in_all = sum(h.get("runs", 0) for h in halves.values())
    print("\n== " + TITLES[dataset].format(runs=f"{runs_in_all:.0f}"))
    print(f"{'half':8s} {'runs':>5s} {'coverage':>9s} {'exact':>7s} {'±1':>7s} {'±1 when named':>14s}"
          f" {'best reference':>15s}   references (exact / ±1): first, last, first error, random")  # fmt: skip
    line = ""
    for name in ("held out",) if held_out else ("tune", "measure"):
        h = halves.get(name, {})
        runs = h.get("runs", 0)
        refs = []
        best_pm1 = 0.0
        for ref in ("first", "last", "first_error", "random"):
            refs.append(
                f"{_pct(h.get(f'{ref}_exact', 0), runs)}/{_pct(h.get(f'{ref}_pm1', 0), runs)}"
            )
            # A reference's precision when it names a step (first error names none in some runs).
            covered = h.get(f"{ref}_covered", 0)
            if covered:
                best_pm1 = max(best_pm1, h.get(f"{ref}_pm1", 0) / covered)
        print(f"{name:8s} {runs:5.0f} {_pct(h.get('covered', 0), runs):>9s} "
              f"{_pct(h.get('exact', 0), runs):>7s} {_pct(h.get('pm1', 0), runs):>7s} "
              f"{_pct(h.get('pm1', 0), h.get('covered', 0)):>14s} {best_pm1:15.3f}   {', '.join(refs)}")  # fmt: skip
        if name != "tune":
            line = (
                f"RESULT dataset={dataset} half={name.replace(' ', '_')} runs={runs:.0f} named=n/a "
                f"false_incident_share=n/a step_exact={_pct(h.get('exact', 0), runs)} "
                f"step_pm1={_pct(h.get('pm1', 0), runs)} coverage={_pct(h.get('covered', 0), runs)} "
                f"precision_pm1={_pct(h.get('pm1', 0), h.get('covered', 0))} "
                f"best_trivial_pm1={best_pm1:.3f} discrimination=n/a"
            )
    return line


# --- tau2-bench ---------------------------------------------------------------------------


def _writes(name: str) -> bool:
    return not name.startswith("user.") and not READ_LIKE.match(name)


def _numbers(value: Any) -> Any:
    """2.0 as 2: tau2's own check matches `gb_amount` 2 against an expected 2.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _norm(value: Any, keys: list[str] | None = None) -> str:
    """The arguments as tau2 compares them: only its `compare_args` when it names
    them (an expected `transfer_to_human_agents` compares none), numbers by value."""
    if keys is not None and isinstance(value, dict):
        value = {k: value.get(k) for k in keys}
    return json.dumps(_numbers(value), sort_keys=True, default=str)


def compared(action_checks: list[dict[str, Any]]) -> dict[str, list[str] | None]:
    """Per tool, the arguments tau2's action check compares (None: all)."""
    return {
        c["action"]["name"]: c["action"].get("compare_args")
        for c in action_checks
        if (c.get("action") or {}).get("requestor", "assistant") == "assistant"
    }


def as_model_calls(
    sim: dict[str, Any], domain: str, agent: str, tool_spans: bool = False
) -> tuple[dict[str, Any], list[tuple[int, str, Any]]]:
    """A tau2 simulation as an application instrumented at its model client alone
    records it (OpenLLMetry's or OpenTelemetry's OpenAI instrumentation, no span for
    the tools it runs): one model call per agent turn, sent the conversation so far
    in OpenAI chat messages, answering with its text and tool calls; no tool step,
    no user step. The simulated user's own tool calls (its phone) are not the
    agent's model's and are left out, with their results. Also returned: the
    agent's calls as (the step index, tool, arguments), this bench's own record of
    where each call is (the product derives them itself).

    `tool_spans`: the application also wraps each tool run in a span of its own that
    carries nothing but the tool's name, and the exception when the tool failed (as
    OpenLLMetry's and OpenTelemetry's OpenAI examples do): a tool step with no
    arguments and no result after the model call; the call is that step."""
    from hivemind_client.formats import tau2_checks

    history: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    calls: list[tuple[int, str, Any]] = []
    users: set[str] = set()
    spans: dict[str, dict[str, Any]] = {}
    task = ""
    for message in sim["messages"]:
        role, content = message.get("role"), message.get("content")
        if role == "user":
            users |= {str(c.get("id")) for c in message.get("tool_calls") or []}
            if content:
                history.append({"role": "user", "content": content})
                task = task or content
        elif role == "tool":
            if str(message.get("id")) not in users:
                history.append(
                    {"role": "tool", "tool_call_id": message.get("id"), "content": content or ""}
                )
                if message.get("error") and str(message.get("id")) in spans:
                    spans[str(message.get("id"))]["error"] = content or "tool raised"
        elif role == "assistant":
            said: dict[str, Any] = {"role": "assistant", "content": content}
            asked = message.get("tool_calls") or []
            if asked:
                said["tool_calls"] = [
                    {"id": c.get("id"), "type": "function",
                     "function": {"name": c.get("name"), "arguments": json.dumps(c.get("arguments") or {})}}
                    for c in asked
                ]  # fmt: skip
            steps.append(
                {"kind": "llm_call", "name": agent, "input": list(history), "output": said}
            )
            history.append(said)
            for c in asked:
                if tool_spans:
                    spans[str(c.get("id"))] = {"kind": "tool_call", "name": c.get("name")}
                    steps.append(spans[str(c.get("id"))])
                calls.append((len(steps) - 1, c.get("name"), c.get("arguments") or {}))
    reward = (sim.get("reward_info") or {}).get("reward")
    trace = {
        "external_id": f"tau2-{sim.get('id')}"[:200], "agent": agent, "model": agent,
        "task": task, "task_key": f"{domain}:{sim.get('task_id')}"[:200],
        "status": "succeeded" if reward == 1.0 else "failed", "reward": reward, "steps": steps,
        # The run's named checks, as an application posts them with its outcome (the
        # expected actions among them are withheld below, as for the imported runs).
        "checks": tau2_checks(sim.get("reward_info") or {}),
    }  # fmt: skip
    return trace, calls


def _genai(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat message as the OpenTelemetry GenAI conventions record it
    (`parts` of type text, tool_call, tool_call_response)."""
    if message["role"] == "tool":
        return {"role": "tool", "parts": [{"type": "tool_call_response",
                "id": message["tool_call_id"], "response": message["content"]}]}  # fmt: skip
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        parts.append({"type": "text", "content": message["content"]})
    for call in message.get("tool_calls") or []:
        parts.append({"type": "tool_call", "id": call["id"], "name": call["function"]["name"],
                      "arguments": json.loads(call["function"]["arguments"])})  # fmt: skip
    return {"role": message["role"], "parts": parts}


def as_otlp_export(item: dict[str, Any]) -> tuple[bytes, str]:
    """A run as `as_model_calls` records it, sent as an OTLP/JSON export of GenAI
    spans (as the OTLP/HTTP JSON exporter sends them: hex ids): a root span of the
    application's holding its agent, task key and checks, its status the outcome,
    and a `chat` span per model call with its messages. Returns the body and the
    trace id (the run's external id once stored)."""
    trace_id = hashlib.sha256(item["external_id"].encode()).hexdigest()[:32]

    def value(v: Any) -> dict[str, Any]:
        return {"boolValue": v} if isinstance(v, bool) else {"stringValue": str(v)}

    def attributes(pairs: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"key": k, "value": value(v)} for k, v in pairs.items()]

    start = 1_790_000_000_000_000_000
    root = {"traceId": trace_id, "spanId": f"{1:016x}", "name": "handle_request",
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + (len(item["steps"]) + 1) * 10**9),
            "status": {"code": 2 if item["status"] == "failed" else 1},
            "attributes": attributes({"gen_ai.agent.name": item["agent"], "hivemind.task.key": item["task_key"],
                                      **{f"hivemind.check.{c['name']}": c["passed"] for c in item["checks"]}})}  # fmt: skip
    spans = [root]
    for turn, step in enumerate(item["steps"]):
        begin = start + (turn + 1) * 10**9
        spans.append({"traceId": trace_id, "spanId": f"{turn + 2:016x}", "parentSpanId": f"{1:016x}",
                      "name": f"chat {item['model']}", "startTimeUnixNano": str(begin),
                      "endTimeUnixNano": str(begin + 5 * 10**8),
                      "attributes": attributes({
                          "gen_ai.operation.name": "chat", "gen_ai.request.model": item["model"],
                          "gen_ai.input.messages": json.dumps([_genai(m) for m in step["input"]]),
                          "gen_ai.output.messages": json.dumps([_genai(step["output"])])})})  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": attributes({"service.name": item["agent"]})},
                               "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}  # fmt: skip
    return json.dumps(body).encode(), trace_id


def tau2(
    workspace, quick: bool, withhold_actions: bool = True, recorded: str = "steps"
) -> tuple[dict[str, dict[str, Any]], float | None]:  # type: ignore[no-untyped-def]
    """`recorded`: "steps" (the product's tau2 importer), "model-calls" (each run
    as `as_model_calls` records it, sent as the API takes it) or
    "model-calls+spans" (the same with a bare span around each tool run) or "otlp"
    (the model calls as GenAI spans, through the OTLP receiver, `as_otlp_export`)."""
    from diagnosis import measure

    from failures.diagnosis.evidence import evidence_kind
    from failures.models import Incident
    from traces.importing import traces_import_file
    from traces.models import Step, Trace
    from traces.otlp import decode, to_traces
    from traces.otlp_store import otlp_ingest
    from traces.services import trace_ingest_batch

    truth: dict[str, dict[str, Any]] = {}
    succeeded_tasks: set[tuple[str, str]] = set()
    model_calls: dict[str, list[tuple[int, str, Any]]] = {}
    aliases: dict[str, str] = {}  # a run's bench name → its OTLP trace id
    for path in sorted(TAU2.rglob("*.json")):
        data = json.loads(path.read_text())
        domain = (data.get("info", {}).get("environment_info") or {}).get("domain_name", "")
        if recorded == "steps":
            result = traces_import_file(workspace=workspace, fmt="tau2-bench", path=path)
            if not result.ok:
                raise SystemExit(f"{path}: {result.error}")
        else:
            agent = str((data.get("info", {}).get("agent_info") or {}).get("llm") or "agent")
            items = []
            for sim in data["simulations"]:
                item, calls = as_model_calls(sim, domain, agent, recorded == "model-calls+spans")
                item["model"] = agent
                items.append(item)
                model_calls[item["external_id"]] = calls
            if recorded == "otlp":
                for item in items:
                    body, trace_id = as_otlp_export(item)
                    sent, _ = to_traces(decode(body, "application/json"))
                    batch = otlp_ingest(workspace=workspace, traces=sent)
                    if batch.count("rejected"):
                        raise SystemExit(f"{path}: {batch.results}")
                    aliases[item["external_id"]] = trace_id
                    # The root span is step 0: each model call's step is one later.
                    calls = model_calls[item["external_id"]]
                    model_calls[item["external_id"]] = [(i + 1, n, a) for i, n, a in calls]
            for start in range(0, len(items) if recorded != "otlp" else 0, 50):
                batch = trace_ingest_batch(workspace=workspace, items=items[start : start + 50])
                rejected = [r for r in batch.results if r.status == "rejected"]
                if rejected:
                    raise SystemExit(f"{path}: {rejected[0]}")
        for sim in data["simulations"]:
            reward_info = sim.get("reward_info") or {}
            task = f"{domain}:{sim.get('task_id')}"
            if reward_info.get("reward") == 1.0:
                succeeded_tasks.add((domain, str(sim.get("task_id"))))
            keys = compared(reward_info.get("action_checks") or [])
            checks = [
                (c["action"]["name"], _norm(c["action"].get("arguments") or {}, keys[c["action"]["name"]]),
                 bool(c.get("action_match")))
                for c in reward_info.get("action_checks") or []
                if (c.get("action") or {}).get("requestor", "assistant") == "assistant"
            ]  # fmt: skip
            truth[f"tau2-{sim.get('id')}"[:200]] = {
                "task": task, "domain": domain, "task_id": str(sim.get("task_id")),
                "failed": reward_info.get("reward") != 1.0, "checks": checks, "keys": keys,
            }  # fmt: skip
    traces = dict(Trace.objects.filter(workspace=workspace).values_list("external_id", "pk"))
    traces |= {name: traces[trace_id] for name, trace_id in aliases.items()}
    if withhold_actions:
        # The expected actions are this bench's labels: the product does not see them.
        for trace in Trace.objects.filter(workspace=workspace):
            trace.checks = [c for c in trace.checks if not c["name"].startswith("action:")]
            trace.save(update_fields=["checks"])
    diagnose(workspace, list(traces.values()))
    incidents: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    evidence: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)
    for trace_id, step, tool, description, stats, kind in (
        Incident.objects.filter(workspace=workspace).exclude(kind__in=["recovered", "symptom"])
        .values_list("trace_id", "step_index", "tool", "description", "stats", "kind")
    ):  # fmt: skip
        if kind not in NOT_SHOWN_AS_CAUSE:
            incidents[trace_id].append((step, tool, description))
        evidence[trace_id].append((step, tool, description, evidence_kind(stats)))
    raw: dict[int, list[tuple[int, str, Any]]] = defaultdict(list)
    for trace_id, index, _kind, name, data in (
        Step.objects.filter(trace__workspace=workspace, kind="tool_call")
        .order_by("trace_id", "index").values_list("trace_id", "index", "kind", "name", "input")
    ):  # fmt: skip
        raw[trace_id].append((index, name, data or {}))
    for external_id, calls in model_calls.items():
        raw[traces[external_id]] = calls
    halves: dict[str, dict[str, Any]] = {}
    for external_id, t in truth.items():
        if not t["failed"]:
            continue
        trace_id = traces[external_id]
        calls = {trace_id: [(i, n, _norm(d, t["keys"].get(n))) for i, n, d in raw[trace_id]]}
        h = halves.setdefault(half(t["task"]), defaultdict(float))
        h["failed"] += 1
        with_success = (t["domain"], t["task_id"]) in succeeded_tasks
        expected = {(name, args) for name, args, _ in t["checks"]}
        agent_calls = [(i, n, a) for i, n, a in calls[trace_id] if not n.startswith("user.")]
        writes = [(i, n, a) for i, n, a in agent_calls if _writes(n)]
        culprit = next((i for i, n, a in writes if (n, a) not in expected), None)
        done = {(n, a) for _, n, a in agent_calls}
        missing = {n for n, a, _ in t["checks"] if _writes(n) and (n, a) not in done}
        has_truth = culprit is not None or bool(missing)
        h["with_truth"] += has_truth
        h["with_success"] += with_success
        found = incidents.get(trace_id, [])
        h["incidents"] += len(found)
        # A step where the run did what was expected: every call made there was
        # expected (a model call that asked for two tools at once is one step).
        unexpected = {i for i, n, a in agent_calls if (n, a) not in expected}
        matched_steps = {i for i, n, a in agent_calls if (n, a) in expected} - unexpected
        user_steps = {i for i, n, _ in calls[trace_id] if n.startswith("user.")}
        h["false_incidents"] += sum(s in matched_steps or s in user_steps for s, _, _ in found)
        hit = any(s == culprit for s, _, _ in found if culprit is not None) or any(
            tool in missing or any(m in description for m in missing)
            for _, tool, description in found
        )
        h["named"] += hit
        if (
            withhold_actions and recorded == "steps"
        ):  # per kind once, on the evidence the product sees
            for s, tool, description, kind in evidence[trace_id]:
                if s < 0 and kind == "check":
                    continue  # a failed check is a verdict on the run, not a step
                KINDS[("tau2-bench", half(t["task"]), kind)].append(
                    (culprit is not None and s == culprit)
                    or tool in missing
                    or any(m in description for m in missing)
                )
        h["named_with_success"] += hit and with_success
        h["with_incident"] += bool(found)
        for ref, step in (
            ("first_write", writes[0][0] if writes else None),
            ("last_write", writes[-1][0] if writes else None),
            ("last_call", agent_calls[-1][0] if agent_calls else None),
        ):
            h[f"{ref}_named"] += step is not None and step == culprit
            h[f"{ref}_named_with_success"] += step is not None and step == culprit and with_success
    figures = measure(workspace.pk)
    discrimination = (
        figures["failed_with_incident"] - figures["flagged_if_diagnosed"]
        if figures["failed_with_incident"] is not None and figures["flagged_if_diagnosed"] is not None
        else None
    )  # fmt: skip
    print(f"\n   (tau2, whole set: failed runs with a cause={figures['failed_with_incident']:.3f}, "
          f"successful runs that would get one if judged as failed={figures['flagged_if_diagnosed']:.3f})")  # fmt: skip
    return halves, discrimination


def print_tau2(
    halves: dict[str, dict[str, Any]],
    discrimination: float | None,
    title: str = "",
    dataset: str = "tau2-bench",
) -> str:
    print(f"== tau2-bench dev (failed runs; truth from reward_info.action_checks){title}")
    print(f"{'half':8s} {'failed':>6s} {'w/ truth':>8s} {'named':>7s} {'named|succ':>10s} "
          f"{'false inc':>9s}   references named: first write, last write, last call")  # fmt: skip
    line = ""
    for name in ("tune", "measure"):
        h = halves.get(name, {})
        failed, succ = h.get("failed", 0), h.get("with_success", 0)
        refs = [
            f"{_pct(h.get(f'{r}_named', 0), failed)}"
            for r in ("first_write", "last_write", "last_call")
        ]
        best = max(
            (h.get(f"{r}_named", 0) for r in ("first_write", "last_write", "last_call")), default=0
        )
        best_succ = max(
            (
                h.get(f"{r}_named_with_success", 0)
                for r in ("first_write", "last_write", "last_call")
            ),
            default=0,
        )
        print(f"{name:8s} {failed:6.0f} {h.get('with_truth', 0):8.0f} {_pct(h.get('named', 0), failed):>7s} "
              f"{_pct(h.get('named_with_success', 0), succ):>10s} "
              f"{_pct(h.get('false_incidents', 0), h.get('incidents', 0)):>9s}   {', '.join(refs)}"
              f"   (best of them on runs with a same-task success: {_pct(best_succ, succ)})")  # fmt: skip
        if name == "measure":
            line = (
                f"RESULT dataset={dataset} half=measure failed={failed:.0f} "
                f"named={_pct(h.get('named', 0), failed)} "
                f"named_with_success={_pct(h.get('named_with_success', 0), succ)} "
                f"false_incident_share={_pct(h.get('false_incidents', 0), h.get('incidents', 0))} "
                f"step_exact=n/a step_pm1=n/a coverage={_pct(h.get('with_incident', 0), failed)} "
                f"best_trivial_named={_pct(best, failed)} "
                f"best_trivial_named_with_success={_pct(best_succ, succ)} "
                f"discrimination={'n/a' if discrimination is None else f'{discrimination:.3f}'}"
            )
    return line


def print_kinds(write: bool) -> None:
    """Precision per kind of evidence, per set and half; pooled over the sets on the
    tune half (what the product's gate reads, `--write-precision`)."""
    print("\n== Precision per kind of evidence (incidents right / incidents; weak leads included)")
    kinds = sorted({k for _, _, k in KINDS})
    pooled: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        cells = []
        for name in ("tune", "measure"):
            for dataset in ("who_and_when", "tau2-bench"):
                hits = KINDS.get((dataset, name, kind), [])
                cells.append(f"{dataset}/{name} {sum(hits):3d}/{len(hits):3d}")
        tune = [h for d in ("who_and_when", "tau2-bench") for h in KINDS.get((d, "tune", kind), [])]
        measure = [
            h for d in ("who_and_when", "tau2-bench") for h in KINDS.get((d, "measure", kind), [])
        ]
        print(f"   {kind:20s} tune {_pct(sum(tune), len(tune)):>5s} (n={len(tune):3d})  "
              f"measure {_pct(sum(measure), len(measure)):>5s} (n={len(measure):3d})   "
              + ", ".join(cells))  # fmt: skip
        pooled[kind] = {
            "hits": sum(tune), "incidents": len(tune),
            "sets": {d: {"hits": sum(KINDS.get((d, "tune", kind), [])),
                         "incidents": len(KINDS.get((d, "tune", kind), []))}
                     for d in ("who_and_when", "tau2-bench")},
        }  # fmt: skip
    if write:
        PRECISION_FILE.write_text(json.dumps({
            "written_by": "bench/truth.py --write-precision",
            "half": "tune",
            "date": time.strftime("%Y-%m-%d"),
            "kinds": pooled,
        }, indent=2) + "\n")  # fmt: skip
        print(f"   written to {PRECISION_FILE.relative_to(ROOT)} (tune half only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="the same runs; kept for the bench convention"
    )
    parser.add_argument(
        "--write-precision", action="store_true",
        help="write the tune half's precision per kind of evidence for the product's gate",
    )  # fmt: skip
    parser.add_argument(
        "--model", action="store_true",
        help="diagnose with the model the environment configures (HIVEMIND_LLM_PROVIDER, "
             "ANTHROPIC_API_KEY or OPENAI_BASE_URL, HIVEMIND_LLM_MODEL); prints tokens and cost",
    )  # fmt: skip
    args = parser.parse_args()
    if not WHO.exists() or not TAU2.exists():
        raise SystemExit(f"{DEVDATA} lacks the labelled sets: set HIVEMIND_DEVDATA")
    import django

    django.setup()
    global MODEL
    MODEL = args.model
    if not MODEL:  # the offline figure, whatever model the environment configures
        from django.conf import settings

        settings.HIVEMIND_LLM_PROVIDER = "offline"
    else:
        from workspaces.llm import environment_model

        config, reason = environment_model()
        if config is None:
            raise SystemExit(f"--model: {reason} Set HIVEMIND_LLM_PROVIDER=openai with "
                             "OPENAI_BASE_URL and HIVEMIND_LLM_MODEL, or ANTHROPIC_API_KEY.")  # fmt: skip
        print(f"Model: {config.label} (prices: "
              f"{'unknown' if config.price_in is None else f'{config.price_in}/{config.price_out} USD per M'})")  # fmt: skip
    from traces import services as trace_services
    from workspaces.models import Workspace

    trace_services._after_commit_analyse = lambda workspace_id, trace_ids: None  # type: ignore[assignment]
    started = time.perf_counter()
    lines = []
    # (A third run with the expected actions as checks is gone: since 5/8 the
    # tau2 importer never imports them, so it would repeat the second.)
    pairs = trail_pairs() if TRAIL.is_dir() else []
    sets = (["who", "tau2", "tau2-model-calls", "tau2-model-calls+spans", "tau2-otlp"] + (["who-hand"] if WHO_HAND.is_dir() else [])
            + (["trail"] if pairs else []))  # fmt: skip
    for name in sets:
        workspace = Workspace.objects.create(
            name=f"truth {name}", slug=f"bench-truth-{name.replace('+', '-')}-{os.getpid()}"
        )
        try:
            if name == "who":
                lines.append(print_who(who_and_when(workspace)) + model_usage(workspace))
            elif name == "trail":
                lines.append(print_who(trail(workspace, pairs), "trail") + model_usage(workspace))
            elif name == "who-hand":
                lines.append(print_who(who_and_when(workspace, WHO_HAND),
                                       "who_and_when_hand_crafted") + model_usage(workspace))  # fmt: skip
            elif name == "tau2-otlp":
                halves, discrimination = tau2(workspace, args.quick, recorded="otlp")
                lines.append(print_tau2(halves, discrimination,
                                        ", the same runs as GenAI spans over OTLP",
                                        "tau2-bench_otlp_genai") + model_usage(workspace))  # fmt: skip
            elif name.startswith("tau2-model-calls"):
                spans = name.endswith("+spans")
                halves, discrimination = tau2(
                    workspace, args.quick, recorded="model-calls+spans" if spans else "model-calls"
                )
                lines.append(print_tau2(
                    halves, discrimination,
                    ", the same runs recorded as model calls and bare tool spans" if spans
                    else ", the same runs recorded as model calls only",
                    "tau2-bench_model_calls_bare_tool_spans" if spans else "tau2-bench_model_calls",
                ) + model_usage(workspace))  # fmt: skip
            else:
                halves, discrimination = tau2(workspace, args.quick)
                lines.append(print_tau2(halves, discrimination, ": expected actions withheld")
                             + model_usage(workspace))  # fmt: skip
        finally:
            workspace.delete()
    print_kinds(args.write_precision)
    print(f"\n{time.perf_counter() - started:.0f} s")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
