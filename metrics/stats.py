"""Small, exact statistics for honest charts: Wilson intervals and comparisons."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    successes: int
    n: int

    @property
    def value(self) -> float | None:
        return self.successes / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.successes, self.n)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval for a binomial proportion (None when n = 0)."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def verdict(
    before: Rate, after: Rate, *, what: str = "success rate", higher_is_better: bool = True
) -> str:
    """Plain words. Overlapping intervals always read "no measurable change"."""
    a, b = before.interval, after.interval
    if a is None or b is None:
        return f"Not enough data to compare the {what}."
    if a[1] >= b[0] and b[1] >= a[0]:
        return f"No measurable change in {what} (the 95% intervals overlap)."
    assert after.value is not None and before.value is not None  # both have intervals
    up = after.value > before.value
    change = abs(after.value - before.value) * 100
    better = up == higher_is_better
    return f"{what.capitalize()} {'rose' if up else 'fell'} by {change:.0f} points ({'better' if better else 'worse'})."


def difference_within(strata: list[tuple[Rate, Rate]]) -> tuple[float, float, float] | None:
    """Mantel–Haenszel difference of two rates (each stratum's second minus its
    first), with Greenland and Robins' 95% interval, which holds in sparse strata:
    each stratum (an agent, say) is compared with itself only. A stratum without
    both rates weighs nothing; None when none has both."""
    weight = numerator = variance = 0.0
    for first, second in strata:
        n0, n1 = first.n, second.n
        if not n0 or not n1:
            continue
        c, a = first.successes, second.successes
        n = n0 + n1
        weight += n1 * n0 / n
        numerator += (a * n0 - c * n1) / n
        variance += (a * (n1 - a) * n0**3 + c * (n0 - c) * n1**3) / (n1 * n0 * n * n)
    if not weight:
        return None
    difference = numerator / weight
    half = Z95 * math.sqrt(variance) / weight
    return difference, difference - half, difference + half


def verdict_within_agents(
    strata: list[tuple[Rate, Rate]],
    *,
    what: str = "success rate",
    mix: str = "which agents ran it",
    higher_is_better: bool = True,
) -> str:
    """`verdict` of the strata's pooled rates (first vs second), which a difference
    in their mix cannot make: with more than one stratum, a change is named only if
    comparing each stratum with itself (`difference_within`) finds it too."""
    strata = [(first, second) for first, second in strata if first.n and second.n]
    before = Rate(sum(f.successes for f, _ in strata), sum(f.n for f, _ in strata))
    after = Rate(sum(s.successes for _, s in strata), sum(s.n for _, s in strata))
    pooled = verdict(before, after, what=what, higher_is_better=higher_is_better)
    if len(strata) < 2 or pooled.startswith(("No measurable", "Not enough")):
        return pooled
    within = difference_within(strata)
    assert within is not None  # every stratum has both rates
    difference, low, high = within
    span = f"{difference * 100:+.0f} points [{low * 100:+.0f}, {high * 100:+.0f}]".replace("-", "−")
    assert after.value is not None and before.value is not None
    if (low > 0 or high < 0) and (difference > 0) == (after.value > before.value):
        return f"{pooled[:-1]}; each agent against itself, {span}."
    return (
        f"No measurable change in {what} when each agent is compared with itself ({span}, "
        f"95% interval): the pooled difference comes at least in part from {mix}."
    )
