"""Chat messages as a person reads them on the trace page."""

from __future__ import annotations

from tests.factories import LANGCHAIN_LLM_RESULT
from traces.messages import chat_text


def test_a_langchain_llm_result_reads_as_the_models_answer():
    assert chat_text(LANGCHAIN_LLM_RESULT) == 'assistant: → lookup({"id": 1})'


def test_the_ai_sdks_recorded_calls_read_as_the_models_answer():
    calls = [{"toolCallId": "c1", "toolName": "lookupOrder", "input": '{"orderId":"A1"}'}]
    assert chat_text(calls) == 'assistant: → lookupOrder({"orderId":"A1"})'


def test_a_tools_text_blocks_are_no_transcript():
    assert chat_text([{"text": "order A1: shipped"}]) == ""
    assert chat_text({"order": 12}) == ""


HUMAN = {"type": "human", "data": {"type": "human", "content": "Where is order B2?", "id": "d2"}}
AI = {
    "type": "ai",
    "data": {
        "type": "ai",
        "content": "",
        "tool_calls": [{"id": "call_1", "name": "lookup_order", "args": {"order_id": "B2"}}],
        "usage_metadata": {"input_tokens": 120},
    },
}


def test_a_langgraph_state_reads_as_its_messages_then_its_other_fields():
    state = {"messages": [HUMAN, AI], "remaining_steps": 10006}
    assert chat_text(state) == (
        "user: Where is order B2?\n"
        'assistant: → lookup_order({"order_id": "B2"})\n'
        "remaining_steps: 10006"
    )
    assert chat_text({"messages": [["user", "Where is order B2?"]]}) == "user: Where is order B2?"
    assert chat_text(AI) == 'assistant: → lookup_order({"order_id": "B2"})'


def test_pairs_of_strings_that_name_no_role_are_no_messages():
    assert chat_text([["Alice", "Bob"]]) == ""
    assert chat_text({"messages": [["Alice", "Bob"]]}) == ""


def test_langgraphs_tool_node_input_reads_as_the_call_it_runs_in_its_state():
    given = {
        "__type": "tool_call_with_context",
        "tool_call": {"id": "call_1", "name": "lookup_order", "args": {"order_id": "B2"},
                      "type": "tool_call"},
        "state": {"messages": [HUMAN, AI], "remaining_steps": 10006},
    }  # fmt: skip
    assert chat_text(given) == (
        '→ lookup_order({"order_id": "B2"})  (call_1)\n'
        "in the state:\n"
        "    user: Where is order B2?\n"
        '    assistant: → lookup_order({"order_id": "B2"})\n'
        "    remaining_steps: 10006"
    )
    assert chat_text({**given, "__type": "something_else"}) == ""
