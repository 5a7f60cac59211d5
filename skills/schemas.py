"""Shapes of the agents' skills API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SkillOut(BaseModel):
    name: str
    version: int
    description: str
    updated_at: datetime
    url: str = Field(..., description="GET this for the SKILL.md text.")
    score: float | None = Field(None, description="Relevance to ?task= (cosine), when given.")
