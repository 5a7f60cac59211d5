"""Schemas of the failures API (incident search)."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field


class ModeRefOut(Schema):
    id: int
    label: str
    status: str


class IncidentHitOut(Schema):
    id: int
    trace_external_id: str
    agent: str
    tool: str
    error: str
    signature: str
    occurred_at: datetime
    score: float = Field(..., description="Fused rank score (higher is better).")
    similarity: float | None = Field(None, description="Cosine similarity to the query.")
    failure_mode: ModeRefOut | None = Field(None, description="None: noise, not in any mode.")
    standing: str = Field(
        ...,
        description='"cause"; "weak lead" (a lead to check: evidence of its kind is usually '
        'wrong, or the run\'s outcome is unknown; never in a mode); "symptom"; or '
        '"recovered" (the run succeeded after it).',
    )
    run_status: str = Field(..., description="The run's status: succeeded, failed, unknown…")


class ModeHitOut(Schema):
    failure_mode: ModeRefOut | None
    hits: int


class IncidentSearchOut(Schema):
    query: str
    understood: list[str] = Field(..., description="Filters read out of the question.")
    incidents: list[IncidentHitOut]
    modes: list[ModeHitOut]


class LabelIn(Schema):
    """A judgement of one failed run: the step that went wrong (-1: the run as a
    whole), a category of the workspace's taxonomy, one sentence, optionally the fix."""

    model_config = {"extra": "forbid"}

    step: int = Field(..., ge=-1, description="The step's index; -1 labels the run as a whole.")
    category: str = Field(..., min_length=1, max_length=80, examples=["process.policy_violation"])
    sentence: str = Field(..., min_length=1, max_length=300,
                          examples=["Cancelled a basic-economy reservation the policy keeps"])  # fmt: skip
    fix: str = Field("", max_length=300)


class LabelOut(Schema):
    id: int
    trace_external_id: str
    step: int
    category: str
    sentence: str
    fix: str
    by: str
    failure_mode: ModeRefOut | None
    incident_id: int | None
    created_at: datetime
    updated_at: datetime
