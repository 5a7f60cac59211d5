"""How the spans here were made: a LlamaIndex 0.14.25 `ReActAgent` (its workflow
agent) with one function tool, run on two requests, with a scripted `CustomLLM`
writing the ReAct text a model would (this machine reaches no model), traced by
OpenInference's LlamaIndex instrumentation (openinference-instrumentation-llama-index
4.6.1) and the OpenTelemetry SDK 1.45.2. The tool raises on one order; the agent
hands the error back to the model, which gives up. Encoded by the SDK's OTLP
encoder and written with protobuf's JSON mapping, one run a line. Writes
spans.jsonl in the working directory."""

import asyncio
from typing import Any

from google.protobuf.json_format import MessageToJson
from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.tools import FunctionTool
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-desk"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
LlamaIndexInstrumentor().instrument(tracer_provider=provider)


def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


class Scripted(CustomLLM):
    replies: list[str]

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted-react", is_chat_model=False)

    def _next(self) -> CompletionResponse:
        usage = {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}
        return CompletionResponse(text=self.replies.pop(0), raw={"usage": usage})

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._next()

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        response = self._next()

        def gen():
            yield CompletionResponse(text=response.text, delta=response.text, raw=response.raw)

        return gen()


async def main() -> None:
    lines = []
    for order, answer in (
        ("A1", "Order A1 has 2 items and has shipped."),
        ("B2", "I could not find order B2."),
    ):
        exporter.clear()
        llm = Scripted(
            replies=[
                "Thought: I need to look the order up.\nAction: lookup_order\n"
                f'Action Input: {{"order_id": "{order}"}}',
                f"Thought: I can answer without using any more tools.\nAnswer: {answer}",
            ]
        )
        agent = ReActAgent(tools=[FunctionTool.from_defaults(lookup_order)], llm=llm)
        await agent.run(user_msg=f"Where is order {order}?")
        lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
    with open("spans.jsonl", "w") as out:
        out.write("\n".join(lines) + "\n")
    print(len(lines), "exports")


asyncio.run(main())
