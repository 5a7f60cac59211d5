// How the spans here were made: the AI SDK 6.0.333 (`ai`) `generateText` with one
// tool and up to three steps, its telemetry on, run on two requests, with the
// SDK's own `MockLanguageModelV3` scripted to call the tool and then answer (this
// machine reaches no model), traced by the OpenTelemetry JS SDK 2.12.1 and
// its async-hooks context manager, serialised by its OTLP/JSON serialiser (@opentelemetry/otlp-transformer
// 0.223.1), as the OTLP/HTTP JSON exporter sends them, one run a line. The tool
// throws on one order; the SDK hands the error to the model, which gives up.
// Writes spans.jsonl in the working directory.
import { writeFileSync } from "node:fs";
import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import { context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";

// What a Node app's OpenTelemetry setup registers, so spans nest.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": "order-ai-sdk" }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer("ai");

const usage = {
  inputTokens: { total: 120, noCache: 120, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 15, text: 15, reasoning: undefined },
};

const lines = [];
for (const order of ["A1", "B2"]) {
  exporter.reset();
  const replies = [
    {
      content: [{ type: "tool-call", toolCallId: "call_1", toolName: "lookupOrder",
                  input: JSON.stringify({ orderId: order }) }],
      finishReason: { unified: "tool-calls", raw: "tool_calls" },
      usage, warnings: [],
    },
    {
      content: [{ type: "text", text: order === "B2" ? "I could not find order B2." : `Order ${order} has shipped.` }],
      finishReason: { unified: "stop", raw: "stop" },
      usage, warnings: [],
    },
  ];
  const model = new MockLanguageModelV3({
    provider: "scripted", modelId: "scripted-model",
    doGenerate: async () => replies.shift(),
  });
  await generateText({
    model,
    prompt: `Where is order ${order}?`,
    tools: {
      lookupOrder: tool({
        description: "Look up an order by its id.",
        inputSchema: z.object({ orderId: z.string() }),
        execute: async ({ orderId }) => {
          if (orderId === "B2") throw new Error("order not found: B2");
          return `order ${orderId}: 2 items, shipped`;
        },
      }),
    },
    stopWhen: stepCountIs(3),
    experimental_telemetry: { isEnabled: true, functionId: "order-desk", tracer },
  });
  const body = JsonTraceSerializer.serializeRequest(exporter.getFinishedSpans());
  lines.push(new TextDecoder().decode(body));
}
writeFileSync("spans.jsonl", lines.join("\n") + "\n");
console.log(lines.length, "exports");
