#!/bin/sh
# How the logs here were made: Qwen Code 0.24.4 (`@qwen-code/qwen-code` from npm),
# headless (`qwen --yolo -o stream-json "<prompt>"`), its `openai` auth type against
# a local server streaming chat completions from a script (fake_chat_stream.py; this
# machine reaches no model). Two sessions: a command that exits 1, a read of a
# missing file, a command that works, then the answer (finished.jsonl, the chat
# record Qwen Code keeps at ~/.qwen/projects/<project>/chats/<session id>.jsonl, and
# stream.jsonl, what the headless run printed); a model API that refuses every
# request (failed.jsonl, its chat record). The hook payloads Qwen Code sent for the
# first session (a command hook for every event Hivemind's installer hooks, in
# ~/.qwen/settings.json, appending each payload to hooks.jsonl).
# Run in an empty folder with Node.js and npm: sh make_logs.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(pwd)
npm install --silent @qwen-code/qwen-code@0.24.4
export HOME=/tmp/qwen-logs/home
rm -rf /tmp/qwen-logs && mkdir -p "$HOME" /tmp/qwen-logs/project
cd /tmp/qwen-logs/project
echo "Notes live in notes/." > README.md
port=18779
qwen() {
  "$work/node_modules/.bin/qwen" --auth-type openai --openai-base-url "http://127.0.0.1:$port/v1" \
    --openai-api-key unused -m scripted-gpt --yolo -o stream-json "$@"
}
chats="$HOME/.qwen/projects/-tmp-qwen-logs-project/chats"
mkdir -p "$HOME/.qwen"
printf '#!/bin/sh\ncat >> "%s/hooks.jsonl"\necho >> "%s/hooks.jsonl"\n' "$work" "$work" > ../record-hook
chmod +x ../record-hook
python3 - "$HOME/.qwen/settings.json" /tmp/qwen-logs/record-hook <<'PY'
import json, sys
hook = {"type": "command", "command": sys.argv[2], "timeout": 5}
events = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
          "Notification", "Stop", "StopFailure", "SubagentStop", "SessionEnd"]
hooks = {e: [{"matcher": "*", "hooks": [hook]} if "Tool" in e else {"hooks": [hook]}] for e in events}
json.dump({"hooks": hooks}, open(sys.argv[1], "w"))
PY
for script in finished failed; do
  python3 "$here/fake_chat_stream.py" $port $script & server=$!
  sleep 1
  case $script in
    finished) qwen "Read notes/todo.txt and tell me what is left to do." > "$work/stream.jsonl" 2>/dev/null || true ;;
    failed) rm "$HOME/.qwen/settings.json"; qwen "Say what notes/todo.txt holds" > /dev/null 2>&1 || true ;;
  esac
  kill $server
  cp "$chats/$(ls -t "$chats" | head -1)" "$work/$script.jsonl"
done
