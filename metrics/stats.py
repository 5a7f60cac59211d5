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
