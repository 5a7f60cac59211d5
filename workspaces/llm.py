"""The model a workspace uses, and one way to ask it for a tool-forced answer.

Diagnosis (failures/diagnosis/claude.py), mode names (failures/naming.py) and
drafts (skills/distill.py) ask for structured answers the same way on every
provider: one tool whose input schema is the answer, forced with `tool_choice`.

- Anthropic: the `anthropic` SDK, Messages API, `tool_use` blocks.
- An OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, LM Studio, a
  gateway): the `openai` SDK, chat completions, `tools` with one function forced.
  A server that answers without a tool call is reported as not supporting tool
  calling, in words an admin can act on.
- Offline: no model; callers use their offline methods.

A workspace chooses in Settings (`ModelSettings`); "as the server is configured"
follows the environment (`HIVEMIND_LLM_PROVIDER`, `ANTHROPIC_API_KEY`,
`OPENAI_BASE_URL`, `HIVEMIND_LLM_MODEL`). Both SDKs retry 429, 5xx and timeouts
(`HIVEMIND_LLM_MAX_RETRIES`, honouring retry-after). Every call is counted per
workspace, day and purpose (`ModelUsage`), with its cost when the model has a
price (else "unknown"); a workspace over its monthly budget gets no model until
the month ends, and callers say so.

What is sent is what ingest stored (already redacted); callers fence step
contents as untrusted data.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import ModelSettings, Provider

CHECK_TOOL = {
    "name": "report_ready",
    "description": "Say that you can answer through this tool.",
    "input_schema": {
        "type": "object",
        "properties": {"ready": {"type": "boolean"}},
        "required": ["ready"],
    },
}


class ModelError(Exception):
    """A model call failed; the message says why, in words shown to people."""


@dataclass(frozen=True)
class ModelConfig:
    provider: str  # "anthropic" or "openai"
    model: str
    base_url: str | None
    api_key: str
    price_in: float | None  # USD per million tokens; None: unknown
    price_out: float | None
    source: str  # "workspace" or "environment"

    @property
    def label(self) -> str:
        """How pages name it: "Claude (claude-haiku-4-5)", "llama3.1 at localhost:11434"."""
        if self.provider == Provider.ANTHROPIC:
            return f"Claude ({self.model})"
        host = (self.base_url or "").split("://", 1)[-1].split("/", 1)[0]
        return f"{self.model} at {host}" if host else self.model

    @property
    def diagnoser(self) -> str:
        """What TraceAnalysis.diagnoser and Incident.source record."""
        return "claude" if self.provider == Provider.ANTHROPIC else "model"

    def cost(self, tokens_in: int, tokens_out: int, discount: float = 1.0) -> float | None:
        if self.price_in is None or self.price_out is None:
            return None
        return discount * (tokens_in * self.price_in + tokens_out * self.price_out) / 1_000_000


@dataclass
class ToolAnswer:
    arguments: dict[str, Any] | None  # None: no (parsable) tool call in the answer
    problem: str  # why arguments is None, for the caller's retry message
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


# --- the stored key ---------------------------------------------------------------


def _fernet() -> Any:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(("hivemind-model-key:" + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def key_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def key_decrypt(token: str) -> str | None:
    """The stored key, or None when it cannot be read (SECRET_KEY changed)."""
    if not token:
        return ""
    from cryptography.fernet import InvalidToken

    try:
        return str(_fernet().decrypt(token.encode()).decode())
    except InvalidToken:
        return None


# --- which model ------------------------------------------------------------------


def environment_model() -> tuple[ModelConfig | None, str]:
    chosen = settings.HIVEMIND_LLM_PROVIDER.strip().lower()
    if chosen == Provider.OPENAI:
        if not settings.OPENAI_BASE_URL or not settings.OPENAI_MODEL:
            return None, ("HIVEMIND_LLM_PROVIDER is openai but OPENAI_BASE_URL or "
                          "HIVEMIND_LLM_MODEL is not set.")  # fmt: skip
        return ModelConfig(
            provider=Provider.OPENAI, model=settings.OPENAI_MODEL,
            base_url=settings.OPENAI_BASE_URL, api_key=settings.OPENAI_API_KEY,
            price_in=None, price_out=None, source="environment",
        ), ""  # fmt: skip
    if chosen == Provider.OFFLINE or not settings.ANTHROPIC_API_KEY:
        return None, "No model is configured (offline)."
    return ModelConfig(
        provider=Provider.ANTHROPIC, model=settings.ANTHROPIC_MODEL,
        base_url=settings.ANTHROPIC_BASE_URL, api_key=settings.ANTHROPIC_API_KEY,
        price_in=settings.HIVEMIND_LLM_PRICE_IN, price_out=settings.HIVEMIND_LLM_PRICE_OUT,
        source="environment",
    ), ""  # fmt: skip


def configured_model(workspace_id: int) -> tuple[ModelConfig | None, str]:
    """The model this workspace's settings choose, budget aside; or None and why."""
    found = ModelSettings.objects.filter(workspace_id=workspace_id).first()
    if found is None or found.provider == Provider.DEFAULT:
        return environment_model()
    if found.provider == Provider.OFFLINE:
        return None, "This workspace chose no model (Settings → Model)."
    key = key_decrypt(found.api_key_encrypted)
    if key is None:
        return None, ("The stored model API key cannot be read (the server's SECRET_KEY "
                      "changed): enter it again in Settings → Model.")  # fmt: skip
    if found.provider == Provider.ANTHROPIC:
        return ModelConfig(
            provider=Provider.ANTHROPIC, model=found.model or settings.ANTHROPIC_MODEL,
            base_url=found.base_url or settings.ANTHROPIC_BASE_URL,
            api_key=key or settings.ANTHROPIC_API_KEY,
            price_in=found.price_in, price_out=found.price_out, source="workspace",
        ), ""  # fmt: skip
    return ModelConfig(
        provider=Provider.OPENAI, model=found.model, base_url=found.base_url, api_key=key,
        price_in=found.price_in, price_out=found.price_out, source="workspace",
    ), ""  # fmt: skip


def model_for(workspace_id: int) -> tuple[ModelConfig | None, str]:
    """The model to use now, or None with the reason in words (offline, over budget)."""
    config, reason = configured_model(workspace_id)
    if config is None:
        return None, reason
    over = over_budget(workspace_id)
    if over:
        return None, over
    return config, ""


# --- the budget -------------------------------------------------------------------


def month_spent(workspace_id: int, today: date | None = None) -> tuple[float, int, int]:
    """This calendar month (UTC): cost in USD, calls, calls with no known price."""
    from django.db.models import Sum

    from .models import ModelUsage

    today = today or timezone.now().date()
    totals = ModelUsage.objects.filter(
        workspace_id=workspace_id, day__gte=today.replace(day=1), day__lte=today
    ).aggregate(cost=Sum("cost_usd"), calls=Sum("calls"), unpriced=Sum("unpriced_calls"))
    return float(totals["cost"] or 0), int(totals["calls"] or 0), int(totals["unpriced"] or 0)


def over_budget(workspace_id: int) -> str:
    """Why this workspace gets no model this month, or ""."""
    budget = (
        ModelSettings.objects.filter(workspace_id=workspace_id)
        .values_list("monthly_budget_usd", flat=True)
        .first()
    )
    if budget is None:
        return ""
    spent = month_spent(workspace_id)[0]
    if spent < budget:
        return ""
    return (f"This month's model budget is used (${spent:.2f} of ${budget:.2f}): diagnosed "
            "offline until the month ends or an admin raises it in Settings → Model.")  # fmt: skip


def usage_record(
    workspace_id: int, purpose: str, tokens_in: int, tokens_out: int, cost: float | None
) -> None:
    """Count one call on the workspace's meter (an upsert: concurrent calls add up)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO workspaces_modelusage (workspace_id, day, purpose, calls, input_tokens,
                                               output_tokens, cost_usd, unpriced_calls)
            VALUES (%s, %s, %s, 1, %s, %s, %s, %s)
            ON CONFLICT (workspace_id, day, purpose) DO UPDATE SET
                calls = workspaces_modelusage.calls + 1,
                input_tokens = workspaces_modelusage.input_tokens + EXCLUDED.input_tokens,
                output_tokens = workspaces_modelusage.output_tokens + EXCLUDED.output_tokens,
                cost_usd = workspaces_modelusage.cost_usd + EXCLUDED.cost_usd,
                unpriced_calls = workspaces_modelusage.unpriced_calls + EXCLUDED.unpriced_calls
            """,
            [workspace_id, timezone.now().date(), purpose[:20], tokens_in, tokens_out,
             cost or 0.0, 1 if cost is None else 0],
        )  # fmt: skip


# --- asking -----------------------------------------------------------------------


def client_for(config: ModelConfig) -> Any:
    if config.provider == Provider.ANTHROPIC:
        import anthropic

        return anthropic.Anthropic(
            api_key=config.api_key, base_url=config.base_url,
            max_retries=settings.HIVEMIND_LLM_MAX_RETRIES, timeout=settings.HIVEMIND_LLM_TIMEOUT,
        )  # fmt: skip
    import openai

    return openai.OpenAI(
        # Local servers take any key; the SDK insists on one.
        api_key=config.api_key or "no-key", base_url=config.base_url,
        max_retries=settings.HIVEMIND_LLM_MAX_RETRIES, timeout=settings.HIVEMIND_LLM_TIMEOUT,
    )  # fmt: skip


def ask_tool(
    config: ModelConfig,
    *,
    system: str,
    messages: list[dict[str, str]],
    tool: dict[str, Any],
    max_tokens: int | None = None,
    workspace_id: int | None = None,
    purpose: str = "",
    client: Any = None,
) -> ToolAnswer:
    """One request forcing `tool` (Anthropic's shape: name, description,
    input_schema); `messages` are {"role": "user"|"assistant", "content": text}.
    Raises ModelError on a failure the retries did not cure. With `workspace_id`,
    the call is counted on the workspace's meter."""
    client = client or client_for(config)
    max_tokens = max_tokens or settings.HIVEMIND_LLM_MAX_TOKENS
    if config.provider == Provider.ANTHROPIC:
        answer = _ask_anthropic(config, client, system, messages, tool, max_tokens)
    else:
        answer = _ask_openai(config, client, system, messages, tool, max_tokens)
    if workspace_id is not None:
        usage_record(workspace_id, purpose or "other", answer.input_tokens, answer.output_tokens,
                     answer.cost_usd)  # fmt: skip
    return answer


def _failure(config: ModelConfig, sdk: Any, exc: Exception) -> ModelError:
    who = config.label
    if isinstance(exc, sdk.APITimeoutError):
        return ModelError(f"{who} did not answer in time (after retries).")
    if isinstance(exc, sdk.RateLimitError):
        return ModelError(f"{who} kept answering 429 (rate limited) after retries.")
    if isinstance(exc, sdk.APIStatusError):
        message = _status_message(exc)
        return ModelError(f"{who} answered HTTP {exc.status_code}{message}.")
    if isinstance(exc, sdk.APIConnectionError):
        return ModelError(f"Could not reach {who} at {config.base_url or 'its API'}.")
    return ModelError(f"{who}: {exc}")


def _status_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        text = error.get("message") if isinstance(error, dict) else error
        if isinstance(text, str) and text.strip():
            return ": " + " ".join(text.split())[:300]
    return ""


def _ask_anthropic(
    config: ModelConfig, client: Any, system: str, messages: list[dict[str, str]],
    tool: dict[str, Any], max_tokens: int,
) -> ToolAnswer:  # fmt: skip
    import anthropic

    try:
        response = client.messages.create(
            model=config.model, max_tokens=max_tokens, system=system, tools=[tool],
            tool_choice={"type": "tool", "name": tool["name"]}, messages=messages,
        )  # fmt: skip
    except anthropic.APIError as exc:
        raise _failure(config, anthropic, exc) from None
    tokens = (response.usage.input_tokens, response.usage.output_tokens)
    arguments = next(
        (dict(b.input) for b in response.content
         if b.type == "tool_use" and b.name == tool["name"]),
        None,
    )  # fmt: skip
    return ToolAnswer(arguments, "" if arguments is not None else f"no {tool['name']} call",
                      tokens[0], tokens[1], config.cost(*tokens))  # fmt: skip


def _ask_openai(
    config: ModelConfig, client: Any, system: str, messages: list[dict[str, str]],
    tool: dict[str, Any], max_tokens: int,
) -> ToolAnswer:  # fmt: skip
    import openai

    try:
        response = client.chat.completions.create(
            model=config.model, max_tokens=max_tokens,
            messages=[{"role": "system", "content": system}, *messages],
            tools=[{"type": "function", "function": {
                "name": tool["name"], "description": tool.get("description", ""),
                "parameters": tool["input_schema"]}}],
            tool_choice={"type": "function", "function": {"name": tool["name"]}},
        )  # fmt: skip
    except openai.APIError as exc:
        if (
            isinstance(exc, openai.APIStatusError)
            and exc.status_code in (400, 422)
            and ("tool" in _status_message(exc).lower())
        ):
            raise ModelError(_no_tools(config, _status_message(exc))) from None
        raise _failure(config, openai, exc) from None
    usage = getattr(response, "usage", None)
    tokens = (int(getattr(usage, "prompt_tokens", 0) or 0),
              int(getattr(usage, "completion_tokens", 0) or 0))  # fmt: skip
    cost = config.cost(*tokens)
    choices = getattr(response, "choices", None) or []
    message = choices[0].message if choices else None
    calls = [c for c in (getattr(message, "tool_calls", None) or [])
             if getattr(getattr(c, "function", None), "name", "") == tool["name"]]  # fmt: skip
    if not calls:
        if message is not None and not getattr(message, "tool_calls", None):
            raise ModelError(_no_tools(config, ""))
        return ToolAnswer(None, f"no {tool['name']} call", tokens[0], tokens[1], cost)
    raw = calls[0].function.arguments or ""
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return ToolAnswer(None, f"the {tool['name']} arguments were not valid JSON", tokens[0],
                          tokens[1], cost)  # fmt: skip
    if not isinstance(arguments, dict):
        return ToolAnswer(None, f"the {tool['name']} arguments were not a JSON object",
                          tokens[0], tokens[1], cost)  # fmt: skip
    return ToolAnswer(arguments, "", tokens[0], tokens[1], cost)


def _no_tools(config: ModelConfig, detail: str) -> str:
    return (
        f"{config.label} answered without calling the tool it was asked to use{detail}: the "
        "server or model does not seem to support tool calling. Use a model with tool support "
        "(vLLM: start it with --enable-auto-tool-choice and a --tool-call-parser; Ollama: a "
        "model tagged 'tools'; llama.cpp: --jinja)."
    )


def connection_check(config: ModelConfig, workspace_id: int | None = None) -> tuple[bool, str]:
    """One small tool-forced request: does this provider answer, with tool calls?"""
    try:
        answer = ask_tool(
            config, system="Answer only by calling report_ready.",
            messages=[{"role": "user", "content": "Are you ready? Call report_ready."}],
            tool=CHECK_TOOL, max_tokens=50, workspace_id=workspace_id, purpose="check",
        )  # fmt: skip
    except ModelError as exc:
        return False, str(exc)
    if answer.arguments is None:
        return False, f"{config.label} answered, but {answer.problem}."
    cost = "cost unknown (no price set)" if answer.cost_usd is None else (
        f"${answer.cost_usd:.5f}")  # fmt: skip
    return True, (f"{config.label} answered with a tool call "
                  f"({answer.input_tokens} tokens in, {answer.output_tokens} out, {cost}).")  # fmt: skip
