"""Skill trials: who is held out, how many traces a trial needs, and what its
result says (pure functions; docs/TRIALS.md explains the statistics).

A trial serves a skill to a random share of sessions and holds it out from the
rest. The arm of a session is a hash of (skill id, session id): the same session
always gets the same answer, on every endpoint and every process, with nothing
to look up. Effects are estimated on the traces of assigned sessions, treated
minus holdout, with a 95% *confidence sequence*: an interval that stays valid
however often someone looks, so reading the page every day cannot manufacture a
verdict. A fixed-sample Newcombe interval is reported beside it for the
benchmark export and for readers who compare with textbook figures.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

# The verdict reads two intervals (recurrence and success); each is at 97.5% so
# that, together and at every look, they are wrong at most 5% of the time.
ALPHA = 0.025
Z95 = 1.959963984540054
Z_POWER = 0.8416212335729143  # one-sided 80% power
TREATED, HOLDOUT = "treated", "holdout"
MIN_PER_ARM = 50  # below this no trial is planned: too few traces say nothing
MAX_PER_ARM = 100_000


def arm_for(*, skill_id: int, session_id: str, holdout_share: float) -> str:
    """The arm of a session in a skill's trial: deterministic, uniform in [0, 1)."""
    digest = hashlib.sha256(f"{skill_id}:{session_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return HOLDOUT if u < holdout_share else TREATED


# --- the always-valid interval ---------------------------------------------------------

# Mixture width tuned so the interval is narrowest at the planned size (Waudby-Smith
# et al. 2021, "Time-uniform central limit theory and asymptotic confidence
# sequences", the Gaussian-mixture boundary).
_K = -2 * math.log(ALPHA) + math.log(-2 * math.log(ALPHA) + 1)


def cs_multiplier(t: int, t_star: int) -> float:
    """Half-width / (sigma / sqrt(t)) of the asymptotic confidence sequence (level
    1 - ALPHA) at t units, tuned for t_star. At t = t_star it is about 3.3 (a
    fixed-sample 95% interval's is 1.96): the price of looking at any time, at
    two outcomes at once."""
    rho2 = _K / max(t_star, 1)
    return math.sqrt(2 * (t * rho2 + 1) / (t * rho2) * math.log(math.sqrt(t * rho2 + 1) / ALPHA))


@dataclass(frozen=True)
class ArmDay:
    """One day's traces of one arm: how many, and how many had the outcome."""

    day: object  # any orderable key (a date)
    arm: str
    n: int
    hits: int


@dataclass(frozen=True)
class Effect:
    """Treated minus holdout, on one outcome (a share of traces)."""

    treated: tuple[int, int]  # (hits, n)
    holdout: tuple[int, int]
    difference: float | None  # treated rate - holdout rate (plain, for display)
    interval: tuple[float, float] | None  # 97.5% always-valid (95% jointly with the other)
    newcombe: tuple[float, float] | None  # 95% fixed-sample (Newcombe hybrid score)

    @property
    def below_zero(self) -> bool:
        return self.interval is not None and self.interval[1] < 0

    @property
    def above_zero(self) -> bool:
        return self.interval is not None and self.interval[0] > 0


def effect(
    days: Iterable[ArmDay], *, holdout_share: float, t_star: int, prior: float | None = None
) -> Effect:
    """The treated-minus-holdout difference in the rate of an outcome.

    The always-valid interval is the asymptotic confidence sequence for the
    average treatment effect in a randomised experiment: each trace contributes
    an augmented inverse-propensity score, centred on each arm's rate over the
    days *before* its own (so the centring is predictable and the sequence valid);
    the scores' mean estimates the effect and their spread sets the width.
    Before any day of data, both arms are centred on `prior` (a rate known before
    the trial started, so still predictable), or 0.5 without one.
    """
    rows = sorted(days, key=lambda r: (str(r.day), r.arm))
    p = 1 - holdout_share  # probability of the treated arm
    hits = {TREATED: 0, HOLDOUT: 0}
    ns = {TREATED: 0, HOLDOUT: 0}
    total = total_sq = 0.0
    t = 0
    by_day: dict[object, list[ArmDay]] = {}
    for row in rows:
        by_day.setdefault(row.day, []).append(row)
    for day_rows in by_day.values():
        # Centring from earlier days only (the prior before any data).
        start = 0.5 if prior is None else prior
        m_t = hits[TREATED] / ns[TREATED] if ns[TREATED] else start
        m_h = hits[HOLDOUT] / ns[HOLDOUT] if ns[HOLDOUT] else start
        for row in day_rows:
            if row.n <= 0:
                continue
            if row.arm == TREATED:
                # psi = (y - m_t)/p + m_t - m_h, for y in {1 (hits), 0}
                one, zero = (1 - m_t) / p + m_t - m_h, -m_t / p + m_t - m_h
            else:
                one, zero = -(1 - m_h) / (1 - p) + m_t - m_h, m_h / (1 - p) + m_t - m_h
            total += row.hits * one + (row.n - row.hits) * zero
            total_sq += row.hits * one * one + (row.n - row.hits) * zero * zero
            t += row.n
        for row in day_rows:
            hits[row.arm] += row.hits
            ns[row.arm] += row.n
    treated, holdout = (hits[TREATED], ns[TREATED]), (hits[HOLDOUT], ns[HOLDOUT])
    if not ns[TREATED] or not ns[HOLDOUT]:
        return Effect(treated, holdout, None, None, None)
    difference = hits[TREATED] / ns[TREATED] - hits[HOLDOUT] / ns[HOLDOUT]
    mean = total / t
    variance = max(total_sq / t - mean * mean, 0.0)
    # A floor on the spread: with few traces every one may be alike.
    sigma = math.sqrt(max(variance, 1.0 / t))
    half = sigma / math.sqrt(t) * cs_multiplier(t, t_star)
    interval = (max(-1.0, mean - half), min(1.0, mean + half))
    return Effect(treated, holdout, difference, interval, newcombe(treated, holdout))


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float] | None:
    """95% Newcombe hybrid score interval for rate(a) - rate(b) (method 10 of
    Newcombe 1998): valid for one look at a sample size fixed in advance."""
    (x1, n1), (x2, n2) = a, b
    if not n1 or not n2:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1)
    l2, u2 = wilson(x2, n2)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


# --- planning --------------------------------------------------------------------------


def planned_per_arm(*, baseline: float, min_change: float, holdout_share: float) -> int:
    """Traces per arm (of the larger arm's share) for an 80% chance that the
    always-valid interval excludes zero at the planned size when the skill cuts
    the failure mode's rate from `baseline` by the fraction `min_change`.

    Solves  delta = (c + z_power) * sigma / sqrt(t)  where c is the confidence
    sequence's multiplier at its tuning point and sigma^2 the variance of one
    trace's score (p1 q1 / p_treated + p0 q0 / p_holdout).
    """
    p0 = min(max(baseline, 1e-6), 1 - 1e-6)
    p1 = p0 * (1 - min_change)
    delta = p0 - p1
    if delta <= 0:
        return MAX_PER_ARM
    treated = 1 - holdout_share
    sigma2 = p1 * (1 - p1) / treated + p0 * (1 - p0) / holdout_share
    c = math.sqrt(2 * (_K + 1) / _K * math.log(math.sqrt(_K + 1) / ALPHA))
    total = (c + Z_POWER) ** 2 * sigma2 / (delta * delta)
    per_arm = math.ceil(total * max(treated, holdout_share))
    return min(max(per_arm, MIN_PER_ARM), MAX_PER_ARM)


def t_star(*, planned: int, holdout_share: float) -> int:
    """The planned number of traces over both arms (the interval's tuning point)."""
    return max(2, round(planned / max(1 - holdout_share, holdout_share)))


# --- verdicts --------------------------------------------------------------------------

HELPS, HURTS, NO_CHANGE, TOO_FEW = "helps", "hurts", "no measurable change", "too few traces"
MIN_FOR_VERDICT = 10  # traces per arm before any verdict is read


def verdict(*, recurrence: Effect, success: Effect, recurrence_measured: bool = True) -> str:
    """Plain words: hurts if the skill makes its failure mode more frequent or
    success rarer; helps if it makes the mode rarer or success more frequent (and
    does not hurt); otherwise no measurable change. Where the mode's recurrence
    is not measured (its runs are known only from people's labels), success alone."""
    if min(recurrence.treated[1], recurrence.holdout[1]) < MIN_FOR_VERDICT:
        return TOO_FEW
    more = recurrence_measured and recurrence.above_zero
    less = recurrence_measured and recurrence.below_zero
    if more or success.below_zero:
        return HURTS
    if less or success.above_zero:
        return HELPS
    return NO_CHANGE
