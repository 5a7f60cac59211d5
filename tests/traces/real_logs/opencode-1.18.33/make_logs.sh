#!/bin/sh
# How the sessions here were made: OpenCode 1.18.33 (`opencode-ai` from npm), headless
# (`opencode run`), its model a local server streaming chat completions from a script
# (fake_chat_stream.py, through a provider of OpenCode's `@ai-sdk/openai-compatible`
# in the project's opencode.json; this machine reaches no model). Two sessions: a
# command that exits 1, another, then the answer (finished); a read of a missing file,
# which the tool fails, then the answer (failed); a subagent (the `task` tool) that
# lists a missing folder, then the answer (subagent.json, its subagent's session
# beside it as <its session id>.json). Each exported as OpenCode writes it
# (`opencode export <session>`: the session's info and every message with its parts;
# OpenCode 1.18 keeps sessions in a SQLite database, not as files).
# Run in an empty folder with Node.js and npm: sh make_logs.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(pwd)
npm install --silent opencode-ai@1.18.33
export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share"
mkdir -p "$HOME" project
cd project
echo "Notes live in notes/." > README.md
port=18777
cat > opencode.json <<JSON
{"\$schema": "https://opencode.ai/config.json", "autoupdate": false, "share": "disabled",
 "model": "scripted/scripted-gpt", "small_model": "scripted/scripted-gpt",
 "provider": {"scripted": {"npm": "@ai-sdk/openai-compatible", "name": "Scripted",
   "options": {"baseURL": "http://127.0.0.1:$port/v1", "apiKey": "unused"},
   "models": {"scripted-gpt": {"name": "Scripted GPT", "tool_call": true}}}}}
JSON
for script in finished failed subagent; do
  python3 "$here/fake_chat_stream.py" $port $script & server=$!
  sleep 1
  case $script in
    finished) "$work/node_modules/.bin/opencode" run "Read notes/todo.txt and tell me what is left to do." ;;
    failed) "$work/node_modules/.bin/opencode" run What does notes/plan.txt say ;;
    subagent) "$work/node_modules/.bin/opencode" run Use a subagent to find the plan ;;
  esac
  kill $server
  session=$("$work/node_modules/.bin/opencode" session list | sed -n 3p | cut -d' ' -f1)
  "$work/node_modules/.bin/opencode" export "$session" > "$work/$script.json"
done
# The subagent's session, named by its id, as the parent's task call names it.
child=$(python3 -c "import json, sys; print(next(p['state']['metadata']['sessionId'] for m in json.load(open(sys.argv[1]))['messages'] for p in m['parts'] if p.get('tool') == 'task'))" "$work/subagent.json")
"$work/node_modules/.bin/opencode" export "$child" > "$work/$child.json"
