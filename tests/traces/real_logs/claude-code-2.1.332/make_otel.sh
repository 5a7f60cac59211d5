#!/bin/sh
# How otel_traces.json and otel_logs.json were made: Claude Code 2.1.332 (`npm
# install @anthropic-ai/claude-code@2.1.332`, its `claude` on PATH), run headless on
# the same request as make_logs.sh against fake_anthropic.py, exporting OTLP/JSON to
# otlp_capture.py, a local receiver that keeps each export, with prompts and tool
# details logged:
#   sh make_otel.sh traces   its own OpenTelemetry tracing (beta:
#                            CLAUDE_CODE_ENHANCED_TELEMETRY_BETA); otel_traces.json
#                            holds the traces exports' spans, in the order sent
#   sh make_otel.sh logs     its standard telemetry's events (OTEL_LOGS_EXPORTER=otlp);
#                            otel_logs.json holds the logs exports' records, in order
# Writes the file in the working directory.
set -e
signal=${1:-traces}
case "$signal" in
  traces) exporters="CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 OTEL_TRACES_EXPORTER=otlp OTEL_LOGS_EXPORTER=none"
          field=resourceSpans ;;
  logs)   exporters="OTEL_TRACES_EXPORTER=none OTEL_LOGS_EXPORTER=otlp OTEL_LOGS_EXPORT_INTERVAL=500"
          field=resourceLogs ;;
  *) echo "usage: sh make_otel.sh traces|logs" >&2; exit 2 ;;
esac
here=$(pwd)
work=$(mktemp -d)
mkdir -p "$work/orders" "$work/home" "$work/exports"
echo '{"id": "A1", "items": 2, "status": "shipped"}' > "$work/orders/A1.json"
script='[{"tool": "Bash", "id": "toolu_01", "input": {"command": "cat orders/B2.json", "description": "Read order B2"}}, {"text": "I could not find order B2: orders/B2.json does not exist."}]'
python3 "$here/fake_anthropic.py" 8799 "$script" "$work/requests.log" &
server=$!
python3 "$here/otlp_capture.py" 8797 "$work/exports" &
receiver=$!
sleep 1
cd "$work"
env HOME="$work/home" ANTHROPIC_BASE_URL=http://127.0.0.1:8799 ANTHROPIC_API_KEY=sk-ant-fake \
  DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
  CLAUDE_CODE_ENABLE_TELEMETRY=1 $exporters OTEL_METRICS_EXPORTER=none \
  OTEL_EXPORTER_OTLP_PROTOCOL=http/json OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8797 \
  OTEL_LOG_USER_PROMPTS=1 OTEL_LOG_TOOL_DETAILS=1 OTEL_LOG_TOOL_CONTENT=1 \
  claude -p "Where is order B2? The orders are in orders/." --allowedTools Bash > /dev/null
sleep 2
kill $server $receiver
python3 - "$work/exports" "$here/otel_$signal.json" "$signal" "$field" <<'PY'
import json, sys
from pathlib import Path
folder, out, signal, field = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
exports = sorted(folder.glob(f"export-*-v1_{signal}.json"), key=lambda p: int(p.name.split("-")[1]))
items = [item for p in exports for item in json.loads(p.read_text())[field]]
out.write_text(json.dumps({field: items}))
PY
echo "wrote otel_$signal.json"
