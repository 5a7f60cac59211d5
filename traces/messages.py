"""Chat messages as a person reads them: what a model call was sent and answered,
a role a line."""

from __future__ import annotations

import json
from typing import Any

from .openai_chat import langchain_message, openai_messages


def chat_text(value: Any) -> str:
    """Chat messages (a list of them, or one) as a transcript, "" when `value` is
    not messages. Each message's role, then its text; a call of a tool as
    `→ name(arguments)`, a tool's result as `← (call id) result`; read from the
    shapes model calls are recorded in: OpenAI's (`content`, `tool_calls`,
    `tool_call_id`), GenAI's (`parts` of type text, tool_call, tool_call_response)
    and Anthropic's (`content` blocks text, tool_use, tool_result); and a model's
    answer that a framework records in its own shape (LangChain's LLMResult, the AI
    SDK's calls) as `openai_chat` reads it."""
    messages = [value] if isinstance(value, dict) else value
    if not isinstance(messages, list) or not messages or not all(map(_is_message, messages)):
        recorded = _recorded_answer(value)
        return chat_text(recorded) if recorded else _graph_state(value) or _tool_node_call(value)
    lines = []
    for message in messages:
        said = [_part_text(part) for part in _parts(message)]
        said += [
            _call_text(call) for call in message.get("tool_calls") or [] if isinstance(call, dict)
        ]
        ref = message.get("tool_call_id") or (
            message.get("id") if message["role"] == "tool" else None
        )
        if ref and said and not said[0].startswith("←"):
            said[0] = f"← ({ref}) {said[0]}"
        text = "\n".join(s for s in said if s).replace("\n", "\n    ")
        lines.append(f"{message['role']}: {text}".rstrip())
    return "\n".join(lines)


def _recorded_answer(value: Any) -> list[dict[str, Any]] | None:
    """Messages in a framework's own record rather than as chat messages: LangChain's
    LLMResult and its serialised messages, the AI SDK's list of the calls it made, a
    chat completion response (OpenInference's OpenAI instrumentation)."""
    made_calls = isinstance(value, list) and bool(value) and all(map(_ai_sdk_call, value))
    recorded = isinstance(value, dict) and (
        isinstance(value.get("generations"), list) or isinstance(value.get("choices"), list)
    )  # LangChain's LLMResult; a chat completion response recorded whole
    if made_calls or recorded:
        return openai_messages(value)
    listed = [value] if isinstance(value, dict) else value
    if isinstance(listed, list) and listed and all(map(langchain_message, listed)):
        return openai_messages(listed)
    return None


def _graph_state(value: Any) -> str:
    """A graph's state holding its messages (LangGraph's `{"messages": [...], …}`):
    the messages as a transcript, then the state's other fields, a line each."""
    if not isinstance(value, dict) or not isinstance(value.get("messages"), list):
        return ""
    said = chat_text(value["messages"])
    if not said:
        return ""
    rest = [
        f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items() if k != "messages"
    ]
    return "\n".join([said, *rest])


def _tool_node_call(value: Any) -> str:
    """What LangGraph's tool node is given for one call (1.x, `__type`
    "tool_call_with_context"): the call it runs, then the graph's state it runs in."""
    if not isinstance(value, dict) or value.get("__type") != "tool_call_with_context":
        return ""
    call = value.get("tool_call")
    if not isinstance(call, dict):
        return ""
    ref = call.get("id")
    lines = [f"{_call_text(call)}{f'  ({ref})' if isinstance(ref, str) and ref else ''}"]
    state = _graph_state(value.get("state"))
    if state:
        lines += ["in the state:", "    " + state.replace("\n", "\n    ")]
    return "\n".join(lines)


def _ai_sdk_call(value: Any) -> bool:
    return isinstance(value, dict) and "toolCallId" in value and "toolName" in value


# What a chat message holds besides its role and what it says, in the shapes above.
_MESSAGE_KEYS = frozenset({"role", "content", "parts", "tool_calls", "tool_call_id", "name", "id",
                           "finish_reason", "index", "refusal", "annotations", "function_call",
                           "reasoning_content", "audio", "type"})  # fmt: skip


def _is_message(value: Any) -> bool:
    """A role, something said (content, parts, tool calls), and nothing else: a
    tool's arguments that name a role are not a message."""
    return (
        isinstance(value, dict) and isinstance(value.get("role"), str) and bool(value["role"])
        and any(k in value for k in ("content", "parts", "tool_calls"))
        and value.keys() <= _MESSAGE_KEYS
    )  # fmt: skip


def _parts(message: dict[str, Any]) -> list[Any]:
    content = message.get("parts", message.get("content"))
    if content is None:
        return []
    return content if isinstance(content, list) else [content]


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return part if isinstance(part, str) else json.dumps(part, ensure_ascii=False)
    kind = part.get("type")
    if kind in ("tool_call", "tool_use", "function_call"):
        return _call_text(part)
    if kind in ("tool_call_response", "tool_result", "function_call_output"):
        result = next(
            (part[k] for k in ("response", "content", "output", "result") if k in part), ""
        )
        ref = part.get("id") or part.get("tool_use_id") or part.get("call_id")
        return f"← {f'({ref}) ' if ref else ''}{_as_text(result)}"
    for key in ("content", "text"):
        if isinstance(part.get(key), str):
            return part[key]
    return json.dumps(part, ensure_ascii=False)


def _call_text(call: dict[str, Any]) -> str:
    nested = call.get("function")
    function: dict[str, Any] = nested if isinstance(nested, dict) else call
    name = function.get("name") or "tool"
    arguments: Any = next(
        (function[k] for k in ("arguments", "input", "args") if k in function), {}
    )
    return f"→ {name}({_as_text(arguments)})"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return "\n".join(_part_text(p) for p in value)
    return json.dumps(value, ensure_ascii=False)
