"""Tool calls a run recorded only in its model calls.

An application instrumented at its model client alone (OpenLLMetry's or the
OpenTelemetry project's OpenAI instrumentation around a loop of its own, an
SDK's chat spans) records each model call's messages, and no step for the tools
it ran: the calls are in the model's answers (`tool_calls`, `tool_use` blocks,
GenAI `tool_call` parts…), their results in the next model call's input. Read
as it is stored, such a run made no tool call, so the diagnosis had nothing to
weigh but its model turns, and a same-task comparison saw a successful run that
"called nothing".

`with_model_calls` adds, for such a run only, a `tool_call` view per call the
model asked for, at the index of the model call that asked for it (the step a
lead opens), with the arguments the model gave and the result the next model
call was sent. A run that recorded any tool step of the agent's keeps its
tool steps as the calls (the same calls are in its model answers too, and would
be counted twice); a tool step that recorded no arguments (an application's own
span around each tool run, carrying nothing, as in OpenLLMetry's and
OpenTelemetry's OpenAI examples) gets those the model asked that tool with, so
that two lookups of different orders are not one call made twice and a
same-task comparison has arguments to compare.

The result text is what the tool answered; whether it failed is read from it as
from any unflagged tool output (`facts.silent_error`), since an OpenAI chat message
carries no error flag; a result the model was sent flagged as an error (Anthropic's
`is_error`, Bedrock's `status: error`) failed whatever its text. Nothing is stored:
the views exist for the diagnosis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from traces.openai_chat import openai_messages

from .facts import StepView, silent_error

MODEL_KIND = "llm_call"


def _value(stored: Any) -> Any:
    """A step's value as the diagnosis loads it: outputs come as their JSON text
    (cut to a length, `mining.OUTPUT_CHARS`); a text that is no longer whole JSON
    is kept as text."""
    if isinstance(stored, str) and stored[:1] in ("{", "[", '"'):
        try:
            return json.loads(stored)
        except ValueError:
            return stored
    return stored


def records_calls(steps: list[StepView]) -> bool:
    """Whether the run recorded its agent's tool calls as steps (a simulated
    user's `user.*` calls are not the agent's)."""
    return any(
        s.kind in ("tool_call", "tool_result") and s.name and not s.name.startswith("user.")
        for s in steps
    )


def _arguments(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


@dataclass
class _Call:
    index: int  # the model call's step
    id: str
    name: str
    arguments: Any
    result: str | None = None
    flagged: bool = False  # the result came flagged as an error (Anthropic's is_error)

    def view(self) -> StepView:
        failed = silent_error(self.result) if self.result else None
        error = failed[1] or failed[0] if failed else ""
        if self.flagged and not error:
            error = (self.result or "").strip()[:2000] or "the tool's result was flagged an error"
        return StepView(self.index, "tool_call", self.name, self.arguments, self.result, error)


def _results(step: StepView) -> list[dict[str, Any]]:
    """The tool messages at the end of a model call's input: the results of the
    calls the previous answer asked for (the history before them was read at
    earlier calls). Only the end is read: a call sent the whole conversation would
    otherwise be read whole at every call."""
    sent = _value(step.input)
    if not isinstance(sent, list):
        sent = openai_messages(sent, role="user") or []
    trailing: list[dict[str, Any]] = []
    for raw in reversed(sent):
        read = openai_messages([raw], role="user") if raw is not None else None
        if not read or any(m["role"] != "tool" for m in read):
            break
        trailing[:0] = read
    return trailing


def _asked(step: StepView) -> list[dict[str, Any]]:
    """The tool calls a model call's answer asked for, as OpenAI tool calls."""
    said = openai_messages(_value(step.output)) or []
    return [c for m in said if m["role"] == "assistant" for c in m.get("tool_calls") or []]


def _asked_calls(steps: list[StepView]) -> list[tuple[StepView, list[_Call]]]:
    """Each step with the calls its model answer asked for (none for other steps),
    each call with the result a later model call was sent for it."""
    out: list[tuple[StepView, list[_Call]]] = []
    pending: list[_Call] = []  # asked for, no result seen yet; oldest first
    for step in steps:
        asked: list[_Call] = []
        if step.kind == MODEL_KIND:
            for message in _results(step):
                ref = message["tool_call_id"]
                call = next((c for c in pending if ref and c.id == ref), None)
                if call is None and not ref and pending:
                    call = pending[0]  # a result naming no call answers the oldest
                if call is not None:
                    pending.remove(call)
                    call.result, call.flagged = message["content"], bool(message.get("is_error"))
            for raw in _asked(step):
                function = raw["function"]
                asked.append(
                    _Call(
                        step.index, raw["id"], function["name"], _arguments(function["arguments"])
                    )
                )
            pending += asked
        out.append((step, asked))
    return out


def _empty(value: Any) -> bool:
    return value in (None, "", "null")


def _absent(value: Any) -> bool:
    """No arguments recorded at all (a call with none records `{}`)."""
    return value is None or value == "null"


def _agent_call(step: StepView) -> bool:
    return step.kind == "tool_call" and bool(step.name) and not step.name.startswith("user.")


def with_user_turns(steps: list[StepView]) -> list[StepView]:
    """`steps` with a `user_prompt` view before each model call for each user turn
    first sent to it, when the run recorded no user step: the user's words exist
    only in what its model calls were sent. Read from the messages added to each
    call's input since the previous call's; a history that does not grow that way
    (a framework trimming it) adds none rather than count a turn twice."""
    if any(s.kind == "user_prompt" for s in steps):
        return steps
    out: list[StepView] = []
    previous: list[Any] = []
    for step in steps:
        sent = _value(step.input) if step.kind == MODEL_KIND else None
        if isinstance(sent, list):
            grown = len(sent) >= len(previous) and sent[: len(previous)] == previous
            for raw in sent[len(previous) :] if grown else []:
                for message in openai_messages([raw], role="user") or []:
                    if message["role"] == "user" and message["content"]:
                        out.append(StepView(step.index, "user_prompt", "", message["content"],
                                            None, ""))  # fmt: skip
            previous = sent
        out.append(step)
    return out


def with_model_calls(steps: list[StepView]) -> list[StepView]:
    """`steps` as the diagnosis reads them. A run that recorded no tool step of the
    agent's gets a `tool_call` view after each model call for each tool call its
    answer asked for. A run whose tool steps recorded no arguments (an
    application's own span around each tool, carrying nothing) gets, on each, the
    arguments the model asked that tool with (the oldest such call not yet
    matched), and the result it was sent when the step recorded none."""
    if not any(s.kind == MODEL_KIND for s in steps):
        return steps
    if records_calls(steps):
        if not any(_agent_call(s) and _absent(s.input) for s in steps):
            return steps
        waiting: list[_Call] = []
        filled: list[StepView] = []
        for step, asked in _asked_calls(steps):
            waiting += asked
            call = next((c for c in waiting if c.name == step.name), None)
            if _agent_call(step) and call is not None:
                waiting.remove(call)
                if _absent(step.input):
                    output = call.result if _empty(step.output) else step.output
                    step = StepView(step.index, step.kind, step.name, call.arguments, output,
                                    step.error)  # fmt: skip
            filled.append(step)
        return filled
    return [
        view for step, asked in _asked_calls(steps) for view in (step, *(c.view() for c in asked))
    ]


# A tuple, not a set: a recorded role may be any JSON value, and a list is no key.
_ANSWERING = ("assistant", "model", "ai")


def sent_since_previous(steps: list[StepView]) -> list[StepView]:
    """Each model call's input as what was new to it: a call sent the whole
    conversation so far (as model-client instrumentations record it) shows the
    messages after those the previous call was sent, less the previous call's
    answer, which that step shows as its output, and less a user message a user
    step shows already. Shown whole, every call repeated the system prompt and the
    request from the top, and the tool results it was sent fell past the step's
    cut."""
    out: list[StepView] = []
    previous: list[Any] | None = None
    users = set()  # what user steps said
    for step in steps:
        sent = step.input
        if step.kind == "user_prompt" and isinstance(sent, str):
            users.add(sent)
        if step.kind == "llm_call" and isinstance(sent, list):
            new = sent
            if previous and len(sent) > len(previous) and sent[: len(previous)] == previous:
                new = sent[len(previous) :]
                while new and isinstance(new[0], dict) and new[0].get("role") in _ANSWERING:
                    new = new[1:]
            new = [m for m in new if not (isinstance(m, dict) and m.get("role") == "user"
                                          and isinstance(m.get("content"), str)
                                          and m["content"] in users)]  # fmt: skip
            if new != sent:
                step = replace(step, input=new)
            previous = sent
        out.append(step)
    return out
