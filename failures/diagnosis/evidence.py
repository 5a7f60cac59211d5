"""The kinds of evidence an offline incident rests on, and how often each kind was
right on labelled runs: a diagnosis shows a cause only where its kind of evidence
has earned it.

`evidence_precision.json` (next to this file) is written by `bench/truth.py
--write-precision` from the *tune* half of the labelled dev sets (Who&When: the
incident's step within one of the step people labelled; tau2-bench: the incident
at the first state-changing call that differs from the expected ones, or naming an
expected call that never came). The product never reads labels; it reads this
table of what the bench measured, like any other shipped data.

An incident whose kind was measured (at least `MIN_MEASURED` incidents) and did not
reach the workspace's minimum precision (Diagnosis settings, 0.5 by default: right
at least as often as wrong) on the labelled tune half is kept as a *weak lead*:
shown on the trace with its measured precision, never a cause, a mode or a skill.
(Until 2026-12-04 a kind was gated only when the upper end of its 95% interval was
below the minimum, which kept kinds right 46% of the time as causes.) A kind with too few labelled
incidents to measure is kept as a cause and says it is unmeasured. A failed
outcome check is the harness's own verdict on the run, not a guess at a step: it
is not gated.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

# HIVEMIND_EVIDENCE_PRECISION names another table of the same form: a team that
# labelled its own runs can gate on what it measured.
logger = logging.getLogger(__name__)
PRECISION_FILE = Path(
    os.environ.get("HIVEMIND_EVIDENCE_PRECISION")
    or Path(__file__).with_name("evidence_precision.json")
)
MIN_MEASURED = 5
DEFAULT_MIN_PRECISION = 0.5
NOT_GATED = frozenset({"check"})

LABELS = {
    "same_task": "a call that differs from the successful runs of the same task",
    "same_task_missing": "a call the successful runs of the same task made and this run did not",
    "check": "a failed check of the outcome",
    "error.ended": "a tool error the run ended on",
    "error.midway": "a tool error the run went on after",
    "assumed": "the agent saying it went on with assumed or made-up data",
    "divergence": "a difference from this agent's successful runs of similar tasks",
}


def evidence_kind(stats: dict[str, Any]) -> str:
    """The kind of evidence behind a finding, from its stats."""
    evidence = stats.get("evidence")
    if evidence:
        return str(evidence)
    method = str(stats.get("method") or "")
    if method == "error":
        return "error.ended" if stats.get("ended") else "error.midway"
    if method == "signal":
        return f"signal.{str(stats.get('signal') or '').split(':', 1)[0]}"
    return method or "unknown"


def describe(kind: str) -> str:
    if kind.startswith("signal."):
        return f"the signal `{kind.removeprefix('signal.')}`"
    return LABELS.get(kind, kind)


@dataclass(frozen=True)
class Measured:
    kind: str
    hits: int
    incidents: int

    @property
    def precision(self) -> float:
        return self.hits / self.incidents if self.incidents else 0.0

    def _wilson(self, sign: int) -> float:
        if not self.incidents:
            return 1.0 if sign > 0 else 0.0
        n, p, z = self.incidents, self.precision, 1.96
        centre = p + z * z / (2 * n)
        spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return min(1.0, max(0.0, (centre + sign * spread) / (1 + z * z / n)))

    @property
    def upper(self) -> float:
        """The upper end of the precision's 95% Wilson interval."""
        return self._wilson(1)

    @property
    def lower(self) -> float:
        """The lower end of the precision's 95% Wilson interval."""
        return self._wilson(-1)


@lru_cache(maxsize=1)
def measured() -> dict[str, Measured]:
    """The shipped table: kind → hits and incidents on the labelled tune half."""
    try:
        data = json.loads(PRECISION_FILE.read_text())
    except (OSError, ValueError) as exc:
        # Every kind is then unmeasured: shown as a cause, and said to be unmeasured.
        logger.warning("evidence precision table %s not read (%s): no kind is gated",
                       PRECISION_FILE, exc)  # fmt: skip
        return {}
    return {
        kind: Measured(kind, int(row.get("hits", 0)), int(row.get("incidents", 0)))
        for kind, row in (data.get("kinds") or {}).items()
    }


def too_weak(stats: dict[str, Any], min_precision: float) -> Measured | None:
    """The measurement that makes this evidence too weak to show as a cause, else None."""
    kind = evidence_kind(stats)
    if kind in NOT_GATED:
        return None
    found = measured().get(kind)
    if found is None or found.incidents < MIN_MEASURED:
        return None
    return found if found.precision < min_precision else None


def precision_note(stats: dict[str, Any]) -> dict[str, Any]:
    """What the stats record about the evidence's measured precision."""
    kind = evidence_kind(stats)
    found = measured().get(kind)
    if kind in NOT_GATED:
        return {"evidence_kind": kind}
    if found is None or found.incidents < MIN_MEASURED:
        return {"evidence_kind": kind, "precision": None}
    return {
        "evidence_kind": kind,
        "precision": round(found.precision, 3),
        "precision_n": found.incidents,
        "precision_low": round(found.lower, 3),
        "precision_high": round(found.upper, 3),
    }


def precision_words(stats: dict[str, Any]) -> str:
    """How often evidence of this kind was right, in words, with its 95% interval
    ("right in 88% (95% interval 53–98%) of 8 findings on public runs people
    labelled"); "" when it was not measured. The table is measured on public labelled
    runs (bench/truth.py), never on this workspace's. The figures come from the
    recorded share and count, computed and rounded as the Diagnosis settings page
    shows the same measurement (the stored ends, rounded to 3 places, read 50% where
    that page said 51%)."""
    precision, n = stats.get("precision"), stats.get("precision_n")
    if not isinstance(precision, int | float) or not isinstance(n, int) or n <= 0:
        return ""
    found = Measured("", min(n, max(0, round(precision * n))), n)
    return (
        f"right in {round(100 * found.precision)}% (95% interval {round(100 * found.lower)}–"
        f"{round(100 * found.upper)}%) of {n} finding{'s' * (n != 1)} on public runs people "
        "labelled"
    )


def table(min_precision: float) -> list[dict[str, Any]]:
    """The shipped precision of each kind of evidence, and whether a workspace asking
    for `min_precision` shows it as a cause (the Diagnosis settings page)."""
    rows = []
    for kind, found in sorted(measured().items(), key=lambda kv: -kv[1].precision):
        enough = found.incidents >= MIN_MEASURED
        rows.append({
            "kind": describe(kind), "hits": found.hits, "incidents": found.incidents,
            "precision": found.precision, "lower": found.lower, "upper": found.upper,
            "measured": enough,
            "weak": enough and found.precision < min_precision,
        })  # fmt: skip
    return rows
