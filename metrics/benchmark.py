"""A trial's result as the Agent Skills `benchmark.json` (the skill-creator schema:
metadata, runs with `configuration` "with_skill" / "without_skill" and a nested
`result`, `run_summary` with per-configuration means and a `delta`, `notes`)."""

from __future__ import annotations

import math
from typing import Any

from django.utils import timezone

from skills.trials import HOLDOUT, TREATED

from .selectors import Arm, TrialResult


def _run(arm: Arm, configuration: str, eval_name: str) -> dict[str, Any]:
    decided = arm.decided
    return {
        "eval_id": 1,
        "eval_name": eval_name,
        "configuration": configuration,
        "run_number": 1,
        "result": {
            "pass_rate": round(arm.succeeded / decided, 4) if decided else None,
            "passed": arm.succeeded,
            "failed": arm.failed,
            "total": decided,
            "time_seconds": round(arm.seconds / arm.traces, 2) if arm.traces else None,
            "tokens": round(arm.tokens / arm.traces) if arm.traces else None,
            "tool_calls": round(arm.steps / arm.traces, 2) if arm.traces else None,
            "errors": arm.errors,
        },
        "expectations": [],
        "notes": [f"{arm.traces} traces, {arm.mode_traces} hit the skill's failure mode"],
    }


def _stat(value: float | None, spread: float | None = None) -> dict[str, Any]:
    return {"mean": value, "stddev": spread, "min": value, "max": value}


def _signed(value: float | None, digits: int) -> str | None:
    return None if value is None else f"{value:+.{digits}f}"


def benchmark_json(result: TrialResult, *, skill_name: str) -> dict[str, Any]:
    trial = result.trial
    treated, holdout = result.arms[TREATED], result.arms[HOLDOUT]
    eval_name = "production traces of " + (", ".join(trial.agents) or "no agent")

    def rate(arm: Arm) -> float | None:
        return arm.succeeded / arm.decided if arm.decided else None

    def spread(arm: Arm) -> float | None:
        p = rate(arm)
        return None if p is None else round(math.sqrt(p * (1 - p)), 4)

    def mean(total: float, arm: Arm, digits: int) -> float | None:
        return round(total / arm.traces, digits) if arm.traces else None

    summary: dict[str, Any] = {}
    for name, arm in (("with_skill", treated), ("without_skill", holdout)):
        summary[name] = {
            "pass_rate": _stat(None if rate(arm) is None else round(rate(arm), 4), spread(arm)),  # type: ignore[arg-type]
            "time_seconds": _stat(mean(arm.seconds, arm, 2)),
            "tokens": _stat(mean(arm.tokens, arm, 0)),
        }
    d_time = (None if treated.traces == 0 or holdout.traces == 0
              else treated.seconds / treated.traces - holdout.seconds / holdout.traces)  # fmt: skip
    d_tokens = (None if treated.traces == 0 or holdout.traces == 0
                else treated.tokens / treated.traces - holdout.tokens / holdout.traces)  # fmt: skip
    summary["delta"] = {
        "pass_rate": _signed(result.success.difference, 2),
        "time_seconds": _signed(d_time, 1),
        "tokens": _signed(d_tokens, 0),
    }
    notes = [
        f"Randomised trial: {round(trial.holdout_share * 100)}% of sessions held out by a hash of "
        "(skill, session id); with_skill is the treated arm, without_skill the holdout.",
        f"Verdict: {result.verdict_words}.",
    ]
    if result.success.interval:
        low, high = result.success.interval
        notes.append(f"Pass-rate difference {result.success.difference:+.3f}, 95% always-valid "
                     f"interval [{low:+.3f}, {high:+.3f}].")  # fmt: skip
    if not result.recurrence_measured:
        notes.append("Failure-mode recurrence not measured: the skill was drafted from no "
                     "failure mode.")  # fmt: skip
    elif result.recurrence.interval:
        low, high = result.recurrence.interval
        notes.append(f"Failure-mode recurrence difference {result.recurrence.difference:+.3f} per "
                     f"trace, 95% always-valid interval [{low:+.3f}, {high:+.3f}].")  # fmt: skip
    if result.recurrence_by_likeness:
        notes.append("Every run in the skill's failure mode is one a person labelled: its "
                     "recurrence counts the failed runs like those labelled ones (the rules "
                     "'same failure?' candidates are offered by), not confirmed by a person.")  # fmt: skip
    notes.append("pass_rate stddev is the per-trace standard deviation sqrt(p(1-p)); each "
                 "configuration is one run over all of its traces.")  # fmt: skip
    return {
        "metadata": {
            "skill_name": skill_name,
            "skill_path": f"{skill_name}/SKILL.md",
            "skill_version": trial.version.number,
            "executor_model": "production agents: " + (", ".join(trial.agents) or "none"),
            "analyzer_model": "hivemind trial statistics (docs/TRIALS.md)",
            "timestamp": timezone.now().isoformat(),
            "evals_run": [1],
            "runs_per_configuration": 1,
            "trial": {
                "started_at": trial.started_at.isoformat(),
                "ended_at": trial.ended_at.isoformat() if trial.ended_at else None,
                "holdout_share": trial.holdout_share,
                "planned_traces_per_arm": trial.planned_per_arm,
            },
        },
        "runs": [_run(treated, "with_skill", eval_name), _run(holdout, "without_skill", eval_name)],
        "run_summary": summary,
        "notes": notes,
    }
