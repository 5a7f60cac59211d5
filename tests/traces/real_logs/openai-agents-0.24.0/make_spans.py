"""How the spans here were made: the OpenAI Agents SDK 0.24.0 (`openai-agents`)
running an agent with one function tool, its model a scripted `Model` (this
machine reaches no model) that records its generation span as the SDK's chat
completions model does (the messages it was sent, its usage, its reply), traced by OpenInference's instrumentation
(openinference-instrumentation-openai-agents 2.6.0) and the OpenTelemetry SDK
1.45.2 in place of the SDK's own trace upload. The tool raises on one order. The
spans are encoded by the SDK's OTLP encoder and written with protobuf's JSON
mapping, one run a line. Writes spans.jsonl in the working directory."""

import json

from agents import Agent, Runner, function_tool
from agents.items import ModelResponse
from agents.models.chatcmpl_converter import Converter
from agents.models.interface import Model, ModelProvider
from agents.run import RunConfig
from agents.tracing import generation_span, set_trace_processors
from agents.usage import Usage
from google.protobuf.json_format import MessageToJson
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "orders-agent"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
set_trace_processors([])  # no upload to OpenAI's trace store
OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)


@function_tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


class Scripted(Model):
    def __init__(self, order_id: str) -> None:
        self.order_id, self.turn = order_id, 0

    async def get_response(
        self,
        system_instructions,
        input,
        model_settings,
        tools,
        output_schema,
        handoffs,
        tracing,
        **kwargs,
    ):
        self.turn += 1
        messages = [
            {"content": system_instructions, "role": "system"},
            *Converter.items_to_messages(input),
        ]
        with generation_span(model="scripted-gpt", model_config={}) as span:
            span.span_data.input = messages
            span.span_data.usage = {
                "requests": 1,
                "input_tokens": 100,
                "output_tokens": 20,
                "total_tokens": 120,
            }
            usage = Usage(requests=1, input_tokens=100, output_tokens=20, total_tokens=120)
            if self.turn == 1:
                arguments = json.dumps({"order_id": self.order_id})
                call = ResponseFunctionToolCall(
                    type="function_call",
                    id="fc_1",
                    call_id="call_1",
                    name="lookup_order",
                    arguments=arguments,
                    status="completed",
                )
                span.span_data.output = [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "lookup_order", "arguments": arguments},
                            }
                        ],
                    }
                ]
                return ModelResponse(output=[call], usage=usage, response_id=None)
            reply = f"I checked order {self.order_id}."
            span.span_data.output = [{"role": "assistant", "content": reply}]
            text = ResponseOutputText(type="output_text", text=reply, annotations=[])
            message = ResponseOutputMessage(
                type="message", id="msg_1", role="assistant", status="completed", content=[text]
            )
            return ModelResponse(output=[message], usage=usage, response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


class Provider(ModelProvider):
    def __init__(self, order_id: str) -> None:
        self.model = Scripted(order_id)

    def get_model(self, model_name):
        return self.model


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    agent = Agent(
        name="Orders",
        instructions="Answer questions about orders.",
        tools=[lookup_order],
        model="scripted-gpt",
    )
    Runner.run_sync(
        agent, f"Where is order {order}?", run_config=RunConfig(model_provider=Provider(order))
    )
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
