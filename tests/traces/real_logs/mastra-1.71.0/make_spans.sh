#!/bin/sh
# How the spans here were made: run.mjs (a Mastra 1.71.0 agent, @mastra/otel-exporter
# 1.4.0 sending OTLP/JSON) against a local streaming chat server (fake_chat_stream.py;
# this machine reaches no model) and a local OTLP receiver (otlp_capture.py), which
# writes each trace export's body as a line of spans.jsonl.
# Run in an empty folder with Node.js and npm: sh make_spans.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
npm init -y > /dev/null
npm install --silent @mastra/core@1.71.0 @mastra/observability@1.17.9 @mastra/otel-exporter@1.4.0 \
  @opentelemetry/exporter-trace-otlp-http @ai-sdk/openai-compatible zod
cp "$here/run.mjs" .
rm -f spans.jsonl
python3 "$here/fake_chat_stream.py" 18781 orders & model=$!
python3 "$here/otlp_capture.py" 18782 & otlp=$!
sleep 1
node run.mjs 18781 18782
sleep 1
kill $model $otlp
