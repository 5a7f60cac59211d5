#!/bin/sh
# How the files here were made: Codex CLI 0.171.0 (`npm install @openai/codex@0.171.0`,
# its `codex` on PATH), `codex exec --json` on one request against
# fake_responses.py, a local Responses API streaming a script's turns (this machine
# reaches no model), configured as a model provider in $CODEX_HOME/config.toml: an
# `exec_command` call that reads a missing file, then an answer. The project has a
# hooks file for the events `install-codex-hooks` installs, whose command appends
# each payload to a file. Codex runs a project's hooks only in a trusted project
# and only trusted hooks (an untrusted one is skipped without a word): `--trust`
# trusts the project, `--dangerously-bypass-hook-trust` runs the hooks without
# their review. exec.jsonl is what `codex exec --json` printed; rollout.jsonl the
# session rollout Codex wrote under $CODEX_HOME/sessions; hooks.jsonl the hook
# payloads of the same session, one a line. Writes the three files in the working
# directory.
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
  "Where is order B2? The orders are in orders/." > "$here/exec.jsonl" < /dev/null
kill $server
cp "$(find "$work/codex/sessions" -name 'rollout-*.jsonl' | head -1)" "$here/rollout.jsonl"
grep -v '^$' "$work/hooks.raw" > "$here/hooks.jsonl"
echo "wrote exec.jsonl, rollout.jsonl, hooks.jsonl"
