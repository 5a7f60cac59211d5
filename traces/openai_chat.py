"""A model call's recorded messages as OpenAI chat messages, the shape fine-tuning
data is written in (`metrics.snapshots`).

Frameworks record what a model was sent and answered in their own shapes:
OpenAI's (`content`, `tool_calls`, a tool's `tool_call_id`), OpenTelemetry GenAI's
(`parts` of type text, tool_call, tool_call_response), Anthropic's (`content`
blocks text, tool_use, tool_result), Bedrock Converse's (Strands: blocks `text`,
`toolUse`, `toolResult`, an answer recorded as its blocks alone), the AI SDK's
(`tool-call` parts; an answer's calls recorded as `toolCallId`, `toolName` and
`input`) and LangChain's (messages as its instrumentations serialise them; an
`LLMResult` whose generations hold an `AIMessage`); a chat completion response
recorded whole is its first choice's message. Each becomes
`{"role", "content", "tool_calls"?}` or `{"role": "tool", "tool_call_id",
"content"}`, with a call's arguments as a JSON string. Anything else is not
messages (None): the caller keeps it as text.
"""

from __future__ import annotations

import json
from typing import Any

# Where a tool result names the call it answers, by shape.
_REFS = ("id", "tool_use_id", "call_id", "toolCallId")
_ROLES = {"ai": "assistant", "human": "user", "model": "assistant"}
_CALLS = ("tool_call", "tool_use", "function_call", "tool-call")
_RESULTS = ("tool_call_response", "tool_result", "function_call_output", "tool-result")


def openai_messages(value: Any, *, role: str = "assistant") -> list[dict[str, Any]] | None:
    """`value` as OpenAI chat messages, or None when it is no messages. A list of
    content blocks with no role (an answer recorded as its blocks) is one message
    of `role`."""
    if isinstance(value, str):
        return [{"role": role, "content": value}] if value.strip() else []
    if isinstance(value, dict) and isinstance(value.get("generations"), list):
        return _langchain(value["generations"])
    if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        # A chat completion response as recorded whole (OpenInference's output.value):
        # its first choice's message.
        choice = value["choices"][0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("role"), str):
            return _message(message)
        return None
    listed = [value] if isinstance(value, dict) else value
    if not isinstance(listed, list) or not listed:
        return None
    langchain = [langchain_message(m) for m in listed]
    if all(langchain):
        return [said for m in langchain if m for said in _message(m)]
    if not all(isinstance(m, dict) for m in listed):
        return None
    if all(isinstance(m.get("role"), str) for m in listed):
        out: list[dict[str, Any]] = []
        for message in listed:
            out += _message(message)
        return out
    if all(_block(b) is not None for b in listed):
        return _message({"role": role, "content": listed})
    return None


# LangChain's message types, as message_to_dict names them and as dumpd's ids end.
_LANGCHAIN = {
    "human": "user",
    "ai": "assistant",
    "tool": "tool",
    "system": "system",
    "HumanMessage": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "ToolMessage": "tool",
    "SystemMessage": "system",
}


def _text_key(value: Any) -> str:
    """`value` when it is text, else "": a key a lookup can take (a recorded list or
    object where a name belongs is no name, and cannot be looked up)."""
    return value if isinstance(value, str) else ""


def langchain_message(value: Any) -> dict[str, Any] | None:
    """A LangChain message as instrumentations serialise it, as a message with a
    role: message_to_dict's `{"type", "data"}`, dumpd's constructor (`kwargs`), or
    LangGraph's `("user", text)` pair; None for anything else."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        role = _LANGCHAIN.get(value[0]) or (value[0] if value[0] in _LANGCHAIN.values() else None)
        return {"role": role, "content": value[1]} if role else None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("data"), dict) and _LANGCHAIN.get(_text_key(value.get("type"))):
        fields, kind = value["data"], value["type"]
    elif value.get("type") == "constructor" and isinstance(value.get("kwargs"), dict):
        ids = value.get("id")
        fields, kind = value["kwargs"], _text_key(ids[-1]) if isinstance(ids, list) and ids else ""
    else:
        return None
    role = _LANGCHAIN.get(kind)
    if role is None:
        return None
    message = {
        "role": role,
        "content": fields.get("content"),
        "tool_calls": fields.get("tool_calls") or [],
    }
    if role == "tool":
        message["tool_call_id"] = fields.get("tool_call_id") or ""
    return message


def tool_result_text(value: Any) -> str:
    """What a tool answered, as text: a string as it is; Bedrock's text blocks and a
    LangChain ToolMessage by their text; anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        data: dict[str, Any] = value["data"] if isinstance(value.get("data"), dict) else value
        if value.get("type") == "tool" and isinstance(data.get("content"), str):
            return str(data["content"])
        if "tool_name" in value and isinstance(value.get("blocks"), list):
            return tool_result_text(value["blocks"])  # LlamaIndex's ToolOutput
    if isinstance(value, list) and value and all(isinstance(b, dict) for b in value):
        texts = [b.get("text") for b in value]
        if all(isinstance(t, str) for t in texts):
            return "\n".join(str(t) for t in texts)
    return json.dumps(value, ensure_ascii=False)


def _message(message: dict[str, Any]) -> list[dict[str, Any]]:
    role = _ROLES.get(message["role"], message["role"])
    content = message.get("parts", message.get("content"))
    blocks = content if isinstance(content, list) else [] if content is None else [content]
    texts: list[str] = []
    listed = message.get("tool_calls")
    calls: list[dict[str, Any]] = [_call(c) for c in listed] if isinstance(listed, list) else []
    results: list[dict[str, Any]] = []
    for block in blocks:
        read = _block(block)
        if read is None:
            texts.append(json.dumps(block, ensure_ascii=False))
        elif read[0] == "call":
            calls.append(read[1])
        elif read[0] == "result":
            results.append(read[1])
        else:
            texts.append(str(read[1]))
    text = "\n".join(t for t in texts if t)
    if role == "tool":
        ref = message.get("tool_call_id") or message.get("id")
        if results:
            return results
        return [{"role": "tool", "tool_call_id": str(ref or ""), "content": text}]
    out: list[dict[str, Any]] = results  # a user turn that carries tool results (GenAI)
    if text or calls:
        said: dict[str, Any] = {"role": role, "content": text or None}
        if calls:
            said["tool_calls"] = calls
        out.append(said)
    return out


def _block(block: Any) -> tuple[str, Any] | None:
    """One content block: ("text", str), ("call", an OpenAI tool call) or ("result",
    a tool message); None when it is none of these."""
    if isinstance(block, str):
        return ("text", block)
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind in _CALLS:
        return ("call", _call(block))
    if kind in _RESULTS:
        ref = next((block[k] for k in _REFS if block.get(k)), "")
        answer = next(
            (block[k] for k in ("response", "content", "output", "result") if k in block), ""
        )
        result: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": str(ref),
            "content": tool_result_text(answer),
        }
        if block.get("is_error") is True:  # Anthropic's flag on a result that failed
            result["is_error"] = True
        return ("result", result)
    if "toolCallId" in block and "toolName" in block:  # the AI SDK's answer, as recorded
        return ("call", _call(block))
    if isinstance(block.get("toolUse"), dict):
        use = block["toolUse"]
        return (
            "call",
            _call({"id": use.get("toolUseId"), "name": use.get("name"), "input": use.get("input")}),
        )
    if isinstance(block.get("toolResult"), dict):
        result = block["toolResult"]
        text = tool_result_text(result.get("content"))
        read: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": str(result.get("toolUseId") or ""),
            "content": text,
        }
        if result.get("status") == "error":  # Bedrock Converse's flag
            read["is_error"] = True
        return ("result", read)
    for key in ("text", "content"):
        if isinstance(block.get(key), str) and kind in (None, "text"):
            return ("text", block[key])
    return None


def _call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict):
        call = {}
    nested = call.get("function")
    function: dict[str, Any] = nested if isinstance(nested, dict) else call
    arguments: Any = next(
        (function[k] for k in ("arguments", "input", "args") if k in function), {}
    )
    return {
        "id": str(call.get("id") or call.get("call_id") or call.get("toolCallId") or ""),
        "type": "function",
        "function": {
            "name": str(function.get("name") or function.get("toolName") or "tool"),
            "arguments": arguments
            if isinstance(arguments, str)
            else json.dumps(arguments, ensure_ascii=False),
        },
    }


def _langchain(generations: list[Any]) -> list[dict[str, Any]] | None:
    """An LLMResult's first prompt's generations: each an AIMessage (its constructor
    form keeps the fields under `kwargs`)."""
    first = generations[0] if generations and isinstance(generations[0], list) else []
    out: list[dict[str, Any]] = []
    for generation in first:
        message = generation.get("message") if isinstance(generation, dict) else None
        if not isinstance(message, dict):
            return None
        fields: dict[str, Any] = (
            message["kwargs"] if isinstance(message.get("kwargs"), dict) else message
        )
        calls = fields.get("tool_calls") or []
        out += _message(
            {"role": "assistant", "content": fields.get("content"), "tool_calls": calls}
        )
    return out
