"""The one helper behind every list filter (traces, incidents, audit log, snapshots)."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)

UNSET = (None, "")


def filter_given(qs: QuerySet[M], **lookups: object) -> QuerySet[M]:
    """Apply each lookup whose value was given; None and "" mean "no filter".

    So every list reads its filter form the same way: leaving a field empty never
    narrows the list, and a given value (0 and False included) always does.
    """
    given = {lookup: value for lookup, value in lookups.items() if value not in UNSET}
    return qs.filter(**given) if given else qs
