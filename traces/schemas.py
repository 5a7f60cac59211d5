"""Request and response schemas for the traces API.

StepIn and TraceIn are plain pydantic models, not ninja Schemas: ninja's Schema
runs a Django-aware root validator on every nested object, which tripled the
cost of validating a large batch; nothing here reads from Django models.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

StepKindIn = Literal[
    "user_prompt", "llm_call", "tool_call", "tool_result", "assistant_message", "error", "span"
]
TraceStatusIn = Literal["running", "succeeded", "failed", "unknown"]


def utc(value: datetime | None) -> datetime | None:
    """Times are stored in UTC. Naive times are taken as UTC; an offset PostgreSQL
    cannot represent (beyond ±15:59) is converted away here, not refused later."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range once converted to UTC") from None


def _iso_only(value: Any) -> Any:
    """Times are ISO 8601 strings, as the schema says; a bare number (which pydantic
    would read as Unix seconds) is refused rather than guessed."""
    if isinstance(value, int | float) or (isinstance(value, str) and _numeric(value)):
        raise ValueError("expected an ISO 8601 date-time such as 2026-11-22T10:00:00Z")
    return value


def _numeric(text: str) -> bool:
    """A number written as text, in any form pydantic would read as Unix seconds
    ("1700000000", "-3.8e-295", " 1e9 ")."""
    try:
        float(text)
    except ValueError:
        return False
    return True


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


# Times outside this window are mistakes (a zero timestamp, nanoseconds read as
# seconds), not runs. They are dropped, never stored: a trace without a start
# time gets the time it was received, and every chart and retention rule reads
# these fields. (Dropped rather than refused, so the rest of the trace is kept.)
# The future is allowed a day of clock skew.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
SKEW = timedelta(days=1)


def plausible(value: datetime | None) -> datetime | None:
    value = utc(value)
    if value is not None and not EARLIEST <= value <= datetime.now(UTC) + SKEW:
        return None
    return value


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    index: int | None = Field(
        None,
        ge=0,
        le=2_147_483_647,
        description="Position in the trace; defaults to list order. Two steps of one trace may "
        "not share an index (a step without one takes its place in the list).",
    )
    kind: StepKindIn
    name: str = Field("", max_length=200, description="Tool or model name.")
    input: Any = None
    output: Any = None
    error: str = Field("", max_length=100_000)
    started_at: datetime | None = None
    duration_ms: float | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0, le=100_000_000)
    parent_index: int | None = Field(
        None,
        ge=0,
        le=2_147_483_647,
        description="The index of the step this one ran inside (a subagent, a parent span).",
    )

    _finite_duration = field_validator("duration_ms")(classmethod(lambda cls, v: _finite(v)))
    _utc_started = field_validator("started_at")(classmethod(lambda cls, v: plausible(v)))


class CheckIn(BaseModel):
    """A named check of the outcome: passed or not, and what it found."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, examples=["db_match"])
    passed: bool
    detail: str = Field("", max_length=2000)


class TraceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "example": {
                "external_id": "run-2026-11-21-0001",
                "agent": "checkout-agent",
                "session_id": "sess-42",
                "task": "Refund order 8812",
                "status": "failed",
                "reward": 0.0,
                "started_at": "2026-11-21T10:00:00Z",
                "ended_at": "2026-11-21T10:00:09Z",
                "model": "claude-haiku-4-5",
                "skills_in_scope": ["refund-policy@3"],
                "metadata": {"env": "prod"},
                "steps": [
                    {"kind": "user_prompt", "input": "Refund order 8812"},
                    {
                        "kind": "tool_call",
                        "name": "payments.refund",
                        "input": {"order_id": "8812", "amount": 25.0},
                        "error": "429 Too Many Requests: retry after 2s",
                        "duration_ms": 412,
                    },
                ],
            }
        },
    )

    external_id: str = Field(
        ..., min_length=1, max_length=200, description="Your id; re-sending it updates the trace."
    )
    agent: str = Field("", max_length=200)
    session_id: str = Field("", max_length=200)
    task: str = Field("", max_length=100_000, description="What the agent was asked to do.")
    task_key: str = Field(
        "", max_length=200,
        description="Runs of the same task share it (a benchmark's task id, a ticket type): a "
        "failed run is compared with successful runs of its task. Omitted: the task text, "
        "normalised, stands in.",
    )  # fmt: skip
    checks: list[CheckIn] = Field(
        default_factory=list, max_length=500,
        description="Named checks of the outcome; omitted: keep the stored ones.",
    )  # fmt: skip
    status: TraceStatusIn | None = Field(None, description="Omitted: keep the current status.")
    reward: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    model: str = Field("", max_length=200)
    skills_in_scope: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=200, description='"name@version" or "name".'
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    cost_usd: float | None = Field(None, ge=0)
    steps: list[StepIn] = Field(default_factory=list)

    _finite_reward = field_validator("reward", "cost_usd")(classmethod(lambda cls, v: _finite(v)))
    _utc_times = field_validator("started_at", "ended_at")(classmethod(lambda cls, v: plausible(v)))

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> TraceIn:
        # An end before the start says one of them is wrong; the start is kept.
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            self.ended_at = None
        return self

    @field_validator("skills_in_scope")
    @classmethod
    def _skill_refs(cls, value: list[str]) -> list[str]:
        for ref in value:
            if not ref or len(ref) > 200:
                raise ValueError("each skill must be 1-200 characters, 'name' or 'name@version'")
        return value


class TraceBatchIn(BaseModel):
    traces: list[TraceIn] = Field(..., description="Traces to create or update (upsert).")


class TraceResultOut(Schema):
    index: int = Field(..., description="Position of the trace in the request.")
    external_id: str | None
    status: Literal["created", "updated", "unchanged", "rejected", "skipped", "valid"]
    detail: str = ""
    errors: list[dict[str, Any]] = Field(default_factory=list)


class TraceBatchOut(Schema):
    created: int
    updated: int
    unchanged: int = Field(
        0, description="Traces sent again exactly as they were last stored: nothing was "
        "written and nothing is analysed again."
    )  # fmt: skip
    rejected: int
    dry_run: bool = Field(False, description="True when nothing was stored (?dry_run=true).")
    results: list[TraceResultOut]


class ScoreIn(Schema):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(..., min_length=1, max_length=100)
    value: float
    comment: str = Field("", max_length=5000)

    _finite_value = field_validator("value")(classmethod(lambda cls, v: _finite(v)))


class OutcomeIn(Schema):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "example": {
                "status": "failed",
                "reward": 0.0,
                "scores": [{"name": "helpfulness", "value": 0.2, "comment": "refund never issued"}],
                "comment": "customer escalated",
            }
        },
    )

    status: Literal["succeeded", "failed", "unknown"] | None = None
    reward: float | None = None
    scores: list[ScoreIn] = Field(default_factory=list, max_length=100)
    checks: list[CheckIn] = Field(
        default_factory=list, max_length=500,
        description="Named checks of the outcome (a harness's assertions, tests): the failed "
        "ones are the diagnosis's first evidence and are shown on the trace.",
    )  # fmt: skip
    comment: str = Field("", max_length=10_000)

    _finite_reward = field_validator("reward")(classmethod(lambda cls, v: _finite(v)))


class OutcomeOut(Schema):
    external_id: str
    applied: bool = Field(..., description="False: kept until the trace arrives.")
    trace_status: str | None
    detail: str
