"""How the spans here were made: the loop of `../openllmetry-anthropic-0.62.4/`
(`scripted_chat_server.write_anthropic_runs`: the Anthropic Python SDK 2.17.0, the
tool untraced, a scripted Messages API server, two requests, the tool failing on
one), instrumented instead by OpenInference's Anthropic instrumentation
(openinference-instrumentation-anthropic 3.1.0, Arize Phoenix's) and the
OpenTelemetry SDK 1.45.2. Writes spans.jsonl in the working directory."""

import sys
from pathlib import Path

from openinference.instrumentation.anthropic import AnthropicInstrumentor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import write_anthropic_runs  # noqa: E402

write_anthropic_runs(AnthropicInstrumentor)
