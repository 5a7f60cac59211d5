#!/bin/sh
# How otel_logs.json was made: Claude Code 2.1.332 (`npm install
# @anthropic-ai/claude-code@2.1.332`, its `claude` on PATH), run headless on the
# same request as make_logs.sh against fake_anthropic.py, with its standard
# OpenTelemetry events on (CLAUDE_CODE_ENABLE_TELEMETRY, OTEL_LOGS_EXPORTER=otlp,
# prompts and tool details logged) and exported as OTLP/JSON to otlp_capture.py, a
# local receiver that keeps each export. otel_logs.json holds the logs exports'
# records, in the order they were sent.
# Writes otel_logs.json in the working directory.
set -e
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
HOME="$work/home" ANTHROPIC_BASE_URL=http://127.0.0.1:8799 ANTHROPIC_API_KEY=sk-ant-fake \
  DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
  CLAUDE_CODE_ENABLE_TELEMETRY=1 OTEL_LOGS_EXPORTER=otlp OTEL_LOGS_EXPORT_INTERVAL=500 \
  OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none \
  OTEL_EXPORTER_OTLP_PROTOCOL=http/json OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8797 \
  OTEL_LOG_USER_PROMPTS=1 OTEL_LOG_TOOL_DETAILS=1 OTEL_LOG_TOOL_CONTENT=1 \
  claude -p "Where is order B2? The orders are in orders/." --allowedTools Bash > /dev/null
sleep 2
kill $server $receiver
python3 - "$work/exports" "$here/otel_logs.json" <<'PY'
import json, sys
from pathlib import Path
exports = sorted(Path(sys.argv[1]).glob("export-*-v1_logs.json"),
                 key=lambda p: int(p.name.split("-")[1]))
logs = [rl for p in exports for rl in json.loads(p.read_text())["resourceLogs"]]
Path(sys.argv[2]).write_text(json.dumps({"resourceLogs": logs}))
PY
echo "wrote otel_logs.json"
