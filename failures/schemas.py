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


class ModeHitOut(Schema):
    failure_mode: ModeRefOut | None
    hits: int


class IncidentSearchOut(Schema):
    query: str
    understood: list[str] = Field(..., description="Filters read out of the question.")
    incidents: list[IncidentHitOut]
    modes: list[ModeHitOut]
