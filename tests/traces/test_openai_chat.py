"""A model call's recorded messages in each framework's shape, as OpenAI chat messages."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.factories import LANGCHAIN_LLM_RESULT
from traces.messages import chat_text
from traces.openai_chat import openai_messages, tool_result_text

CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"id": 1}'}}


def test_openai_messages_stay_as_they_are():
    said = [{"role": "assistant", "content": None, "tool_calls": [CALL]}]
    assert openai_messages(said) == [{"role": "assistant", "content": None, "tool_calls": [CALL]}]
    assert openai_messages({"role": "tool", "tool_call_id": "c1", "content": "ok"}) == [
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    ]


ANSWERS_AND_RESULTS = {
    "genai": (
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Looking."},
                {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"id": 1}},
            ],
        },
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "c1", "result": "ok"}]},
    ),
    "anthropic": (
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "c1", "name": "lookup", "input": {"id": 1}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "ok"}],
        },
    ),
}


@pytest.mark.parametrize("shape", ANSWERS_AND_RESULTS)
def test_an_answers_text_and_calls_and_a_user_turns_tool_results(shape):
    """GenAI's parts and Anthropic's blocks: tool results ride in a user turn."""
    answer, results = ANSWERS_AND_RESULTS[shape]
    said = [{"role": "assistant", "content": "Looking.", "tool_calls": [CALL]}]
    assert openai_messages(answer) == said
    assert openai_messages(results) == [{"role": "tool", "tool_call_id": "c1", "content": "ok"}]


def test_bedrock_blocks_with_no_role_are_the_answer():
    answer = [{"toolUse": {"toolUseId": "c1", "name": "lookup", "input": {"id": 1}}}]
    assert openai_messages(answer) == [{"role": "assistant", "content": None, "tool_calls": [CALL]}]
    assert openai_messages([{"text": "Done."}]) == [{"role": "assistant", "content": "Done."}]
    result = {
        "role": "tool",
        "content": [
            {"toolResult": {"toolUseId": "c1", "status": "success", "content": [{"text": "ok"}]}}
        ],
    }
    assert openai_messages(result) == [{"role": "tool", "tool_call_id": "c1", "content": "ok"}]


def test_a_langchain_llm_result_is_its_ai_message():
    assert openai_messages(LANGCHAIN_LLM_RESULT) == [
        {"role": "assistant", "content": None, "tool_calls": [CALL]}
    ]


def test_what_is_no_messages_is_none():
    assert openai_messages({"type": "constructor", "kwargs": {}, "id": 7}) is None
    assert openai_messages({"order": 12}) is None
    assert openai_messages([{"order": 12}]) is None
    assert openai_messages(42) is None
    assert openai_messages("Done.") == [{"role": "assistant", "content": "Done."}]


def test_a_tools_answer_as_text():
    tool_message = {"type": "tool", "data": {"content": "ok", "tool_call_id": "c1"}}
    assert tool_result_text(tool_message) == "ok"
    assert tool_result_text([{"text": "a"}, {"text": "b"}]) == "a\nb"
    assert tool_result_text({"rows": 2}) == '{"rows": 2}'
    assert tool_result_text(None) == ""


def test_the_ai_sdks_recorded_calls_and_parts():
    answer = [{"toolCallId": "c1", "toolName": "lookup", "input": '{"id": 1}'}]
    assert openai_messages(answer) == [{"role": "assistant", "content": None, "tool_calls": [CALL]}]
    part = {"type": "tool-call", "toolCallId": "c1", "toolName": "lookup", "input": {"id": 1}}
    assert openai_messages({"role": "assistant", "content": [part]})[0]["tool_calls"] == [CALL]


def test_llama_indexs_tool_output_is_its_text():
    output = {
        "blocks": [{"text": "ok"}],
        "is_error": False,
        "tool_name": "lookup",
        "raw_output": "ok",
    }
    assert tool_result_text(output) == "ok"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "constructor",
            "human",
            "ai",
            "tool",
            "user",
            "assistant",
            "system",
            "tool_call",
            "tool_use",
            "tool-call",
            "tool_result",
            "text",
            "AIMessage",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "parts",
                    "type",
                    "tool_calls",
                    "id",
                    "kwargs",
                    "data",
                    "generations",
                    "message",
                    "function",
                    "arguments",
                    "toolUse",
                    "text",
                    "name",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(JSON)
# Found by this test on a fresh clone: a name that is a list or an object where a
# LangChain type or a role belongs raised TypeError (unhashable), a 500 on the page.
@example({"type": [], "data": {}})
@example([{"type": {"a": 1}, "data": {"content": "x"}}])
@example({"type": "constructor", "kwargs": {}, "id": [["HumanMessage"]]})
@example({"choices": [{"message": {"role": [], "content": "x"}}]})
@example({"role": "", "tool_calls": 1})  # not iterable: TypeError, found by a longer run
def test_any_recorded_value_is_read_without_an_error(value):
    """Whatever a framework sent: messages or None, never an exception."""
    messages = openai_messages(value)
    assert messages is None or all(isinstance(m.get("role"), str) for m in messages)
    assert isinstance(tool_result_text(value), str)
    assert isinstance(chat_text(value), str)


def test_a_chat_completion_response_recorded_whole_is_its_first_choices_message():
    """OpenInference's OpenAI instrumentation records a call's answer as the whole
    response: read as the message it holds, on the trace page as elsewhere."""
    response = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt",
                "choices": [{"index": 0, "finish_reason": "tool_calls",
                             "message": {"role": "assistant", "content": None, "tool_calls": [CALL]}}],
                "usage": {"total_tokens": 9}}  # fmt: skip
    assert openai_messages(response) == [
        {"role": "assistant", "content": None, "tool_calls": [CALL]}
    ]
    assert chat_text(response) == 'assistant: → lookup({"id": 1})'
    assert openai_messages({"choices": [{"text": "a completion"}]}) is None


@pytest.mark.django_db
def test_a_run_recording_a_list_where_a_name_belongs_is_shown_and_diagnosed(tenant):
    """Sent to the API as it was, this run's page answered 500 and the diagnosis of
    its whole batch failed (TypeError: unhashable type: 'list', from a LangChain
    message type that was a list, and from a role that was one in a model call's
    conversation); now such values are read as no messages or no role, and both work."""
    from failures.models import TraceAnalysis
    from tests.factories import ingest, trace_payload
    from traces.models import Trace

    first = [{"role": "user", "content": "hi"}]
    odd = trace_payload("odd", steps=[
        {"kind": "llm_call", "name": "m", "input": [{"type": [], "data": {}}],
         "output": {"choices": [{"message": {"role": [], "content": "x"}}]}},
        {"kind": "llm_call", "name": "m", "input": first, "output": "ok"},
        # The conversation so far, then an answer whose role is a list.
        {"kind": "llm_call", "name": "m", "input": [*first, {"role": ["assistant"]}], "output": ""},
        {"kind": "tool_call", "name": "lookup", "input": {"id": 1}, "error": "HTTP 500"},
    ])  # fmt: skip
    ingest(tenant.workspace, [odd, trace_payload("plain")])
    assert TraceAnalysis.objects.filter(trace__workspace=tenant.workspace).count() == 2
    trace = Trace.objects.get(workspace=tenant.workspace, external_id="odd")
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/traces/{trace.pk}/")
    assert page.status_code == 200
