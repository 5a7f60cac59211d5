#!/bin/sh
# How otel_logs.json was made: Codex CLI 0.171.0 (`npm install @openai/codex@0.171.0`,
# its `codex` on PATH), `codex exec --json` on the request make_logs.sh sends, against
# the same scripted Responses API (fake_responses.py), with Codex's OpenTelemetry
# events on: an [otel] table in $CODEX_HOME/config.toml (`log_user_prompt = true`,
# the `otlp-http` exporter with `protocol = "json"`) pointed at a local OTLP receiver
# (../claude-code-2.1.332/otlp_capture.py) that keeps each export. Codex sent the
# session's events in one export (`/v1/logs`). Writes otel_logs.json in the working
# directory.
set -e
here=$(pwd)
work=$(mktemp -d)
mkdir -p "$work/project/orders" "$work/codex" "$work/exports"
echo '{"id": "A1"}' > "$work/project/orders/A1.json"
cat > "$work/codex/config.toml" <<'TOML'
model = "scripted-codex"
model_provider = "scripted"

[model_providers.scripted]
name = "scripted"
base_url = "http://127.0.0.1:8797/v1"
env_key = "SCRIPTED_API_KEY"
wire_api = "responses"

[otel]
environment = "dev"
log_user_prompt = true
exporter = { otlp-http = { endpoint = "http://127.0.0.1:8796/v1/logs", protocol = "json" } }
TOML
script='[{"tool": "exec_command", "id": "call_1", "args": {"cmd": "cat orders/B2.json"}}, {"text": "I could not find order B2: orders/B2.json does not exist."}]'
python3 "$here/fake_responses.py" 8797 "$script" "$work/requests.log" &
server=$!
python3 "$here/../claude-code-2.1.332/otlp_capture.py" 8796 "$work/exports" &
receiver=$!
sleep 1
cd "$work/project"
HOME="$work" CODEX_HOME="$work/codex" SCRIPTED_API_KEY=fake codex exec --json \
  --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox \
  "Where is order B2? The orders are in orders/." > /dev/null < /dev/null
sleep 2
kill $server $receiver
cp "$work/exports/export-1-v1_logs.json" "$here/otel_logs.json"
echo "wrote otel_logs.json"
