#!/bin/sh
# How hooks.jsonl was made: Codex CLI 0.171.0 (`npm install @openai/codex@0.171.0`,
# its `codex` on PATH), `codex exec` on the same request as make_logs.sh against
# fake_responses.py, with a project hooks file for the events
# `install-codex-hooks` installs, whose command appends each payload to a file.
# Codex runs a project's hooks only in a trusted project and only trusted hooks
# (an untrusted one is skipped without a word): `--trust` trusts the project and
# `--dangerously-bypass-hook-trust` runs the hooks without their review. Writes
# hooks.jsonl (one payload a line) and hooks_rollout.jsonl (the same session's
# rollout) in the working directory.
set -e
here=$(pwd)
work=$(mktemp -d)
mkdir -p "$work/project/orders" "$work/project/.codex" "$work/codex"
echo '{"id": "A1"}' > "$work/project/orders/A1.json"
cat > "$work/codex/config.toml" <<'TOML'
model = "scripted-codex"
model_provider = "scripted"

[model_providers.scripted]
name = "scripted"
base_url = "http://127.0.0.1:8797/v1"
env_key = "SCRIPTED_API_KEY"
wire_api = "responses"
TOML
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
hook = {"type": "command", "command": f"cat >> {work}/hooks.raw; echo >> {work}/hooks.raw",
        "timeout": 5}
events = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"]
hooks = {e: [{**({"matcher": "*"} if e.endswith("ToolUse") else {}), "hooks": [hook]}]
         for e in events}
json.dump({"hooks": hooks}, open(f"{work}/project/.codex/hooks.json", "w"))
PY
script='[{"tool": "exec_command", "id": "call_1", "args": {"cmd": "cat orders/B2.json"}}, {"text": "I could not find order B2: orders/B2.json does not exist."}]'
python3 "$here/fake_responses.py" 8797 "$script" "$work/requests.log" &
server=$!
sleep 1
cd "$work/project"
HOME="$work" CODEX_HOME="$work/codex" SCRIPTED_API_KEY=fake codex exec --json \
  --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox --trust \
  --dangerously-bypass-hook-trust \
  "Where is order B2? The orders are in orders/." > /dev/null < /dev/null
kill $server
grep -v '^$' "$work/hooks.raw" > "$here/hooks.jsonl"
cp "$(find "$work/codex/sessions" -name 'rollout-*.jsonl' | head -1)" "$here/hooks_rollout.jsonl"
echo "wrote hooks.jsonl, hooks_rollout.jsonl"
