// A Mastra 1.71 agent with one tool, its model `@ai-sdk/openai-compatible` against the
// local streaming server (fake_chat_stream.py); Mastra's observability with its
// OpenTelemetry exporter (`@mastra/otel-exporter`, provider `custom`) sending OTLP/JSON
// to the local receiver (otlp_capture.py). Two requests; the tool throws on B2.
import { Mastra } from '@mastra/core/mastra';
import { Agent } from '@mastra/core/agent';
import { createTool } from '@mastra/core/tools';
import { Observability } from '@mastra/observability';
import { OtelExporter } from '@mastra/otel-exporter';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { z } from 'zod';

const [modelPort, otlpPort] = process.argv.slice(2);
const provider = createOpenAICompatible({
  name: 'scripted', baseURL: `http://127.0.0.1:${modelPort}/v1`, apiKey: 'unused' });
const lookupOrder = createTool({
  id: 'lookupOrder', description: 'Look up an order by its id.',
  inputSchema: z.object({ orderId: z.string() }),
  execute: async ({ orderId }) => {
    if (orderId === 'B2') throw new Error('order not found: B2');
    return { order: orderId, status: 'shipped' };
  },
});
const mastra = new Mastra({
  agents: { orders: new Agent({ id: 'orders', name: 'orders', model: provider('scripted-gpt'),
    instructions: 'Answer questions about orders.', tools: { lookupOrder } }) },
  observability: new Observability({ configs: { otel: { serviceName: 'order-mastra',
    sampling: { type: 'always' },
    exporters: [new OtelExporter({ provider: { custom: {
      endpoint: `http://127.0.0.1:${otlpPort}/v1/traces`, protocol: 'http/json' } } })] } } }),
});
for (const order of ['A1', 'B2']) {
  const run = await mastra.getAgent('orders').stream(`Where is order ${order}?`);
  console.log(await run.text);
}
await mastra.shutdown();
process.exit(0);
