#!/bin/sh
# How the files here were made: Claude Code 2.1.332 (`npm install
# @anthropic-ai/claude-code@2.1.332`, its `claude` on PATH), run headless on one
# request against fake_anthropic.py, a local Messages API streaming a script's turns
# (this machine reaches no model): a Bash call that reads a missing file, then an
# answer. Command hooks for every event append their JSON to hooks.jsonl;
# stream.jsonl is what `claude -p --output-format stream-json` printed;
# transcript.jsonl is the session transcript Claude Code wrote under ~/.claude (not
# committed: it holds Claude Code's own prompt text; its merge was checked by hand).
# Writes the three files in the working directory.
set -e
here=$(pwd)
work=$(mktemp -d)
mkdir -p "$work/orders" "$work/home"
echo '{"id": "A1", "items": 2, "status": "shipped"}' > "$work/orders/A1.json"
printf '#!/bin/sh\ncat >> %s/hooks.raw\necho >> %s/hooks.raw\n' "$work" "$work" > "$work/hook.sh"
chmod +x "$work/hook.sh"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
events = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
          "Notification", "Stop", "StopFailure", "SubagentStop", "SessionEnd"]
hooks = {e: [{"hooks": [{"type": "command", "command": f"{work}/hook.sh"}]}] for e in events}
for e in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
    hooks[e][0]["matcher"] = "*"
json.dump({"hooks": hooks}, open(f"{work}/settings.json", "w"))
PY
script='[{"tool": "Bash", "id": "toolu_01", "input": {"command": "cat orders/B2.json", "description": "Read order B2"}}, {"text": "I could not find order B2: orders/B2.json does not exist."}]'
python3 "$here/fake_anthropic.py" 8799 "$script" "$work/requests.log" &
server=$!
sleep 1
cd "$work"
HOME="$work/home" ANTHROPIC_BASE_URL=http://127.0.0.1:8799 ANTHROPIC_API_KEY=sk-ant-fake \
  DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  DISABLE_AUTOUPDATER=1 claude -p "Where is order B2? The orders are in orders/." \
  --output-format stream-json --verbose --allowedTools Bash --settings settings.json \
  > "$here/stream.jsonl"
kill $server
grep -v '^$' hooks.raw > "$here/hooks.jsonl"
cp "$(find "$work/home/.claude/projects" -name '*.jsonl' | head -1)" "$here/transcript.jsonl"
echo "wrote stream.jsonl, hooks.jsonl, transcript.jsonl"
