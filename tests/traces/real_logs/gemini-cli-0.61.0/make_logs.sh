#!/bin/sh
# How the file here was made: Gemini CLI 0.61.0 (`npm install @google/gemini-cli@0.61.0`,
# its `gemini` on PATH), run headless (`gemini -p … --yolo`) on one request against
# fake_gemini.py, a local Gemini API (`GOOGLE_GEMINI_BASE_URL`) answering from a
# script (this machine reaches no model): a shell command that reads a missing
# file, then an answer. session.jsonl is the chat recording Gemini CLI wrote under
# ~/.gemini/tmp/<project>/chats/ (a record log, as this version writes it);
# stream.jsonl what the run printed (`--output-format stream-json`); hooks.jsonl
# the payloads of the same session's hooks, for the events install-gemini-hooks
# installs. Writes the three files in the working directory.
set -e
here=$(pwd)
work=$(mktemp -d)
mkdir -p "$work/project/orders" "$work/home/.gemini"
echo '{"id": "A1"}' > "$work/project/orders/A1.json"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
# Hooks for the events install-gemini-hooks installs, each payload appended to a file.
hook = {"type": "command", "command": f"cat >> {work}/hooks.raw; echo >> {work}/hooks.raw"}
events = ["SessionStart", "BeforeAgent", "AfterTool", "AfterAgent", "SessionEnd"]
json.dump({"security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
           "general": {"disableAutoUpdate": True}, "privacy": {"usageStatisticsEnabled": False},
           "hooks": {e: [{**({"matcher": "*"} if e == "AfterTool" else {}), "hooks": [hook]}]
                     for e in events}},
          open(f"{work}/home/.gemini/settings.json", "w"))
PY
script='[{"tool": "run_shell_command", "args": {"command": "cat orders/B2.json", "description": "Read order B2"}}, {"text": "I could not find order B2: orders/B2.json does not exist."}]'
python3 "$here/fake_gemini.py" 8798 "$script" "$work/requests.log" &
server=$!
sleep 1
cd "$work/project"
HOME="$work/home" GEMINI_API_KEY=fake GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8798 \
  gemini -p "Where is order B2? The orders are in orders/." --yolo --output-format stream-json \
  > "$here/stream.jsonl"
kill $server
cp "$(find "$work/home/.gemini/tmp" -name 'session-*.jsonl' | head -1)" "$here/session.jsonl"
grep -v '^$' "$work/hooks.raw" > "$here/hooks.jsonl"
echo "wrote session.jsonl, stream.jsonl and hooks.jsonl"
