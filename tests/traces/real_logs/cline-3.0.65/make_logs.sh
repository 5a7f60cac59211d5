#!/bin/sh
# How the sessions here were made: the Cline CLI 3.0.65 (`cline` from npm), headless
# (`cline --json "<prompt>"`, act mode, tools auto-approved), its model a local
# server streaming chat completions from a script (fake_chat_stream.py, through
# Cline's `openai` provider with a base URL; this machine reaches no model). Three
# sessions: two commands in one call, the first exiting 1, a read of a missing file,
# then the answer (finished); a subagent (`spawn_agent`) that lists a missing
# folder, then the answer (subagent, its own agent_<id>.messages.json beside the
# session's); a model API that refuses every request (failed: the session ends on
# an error). Each session's folder is copied as Cline wrote it under
# ~/.cline/data/sessions/<id>/: its messages (<id>.messages.json) and its record
# (<id>.json), in a folder named for the script.
# Run in an empty folder with Node.js and npm: sh make_logs.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(pwd)
npm install --silent cline@3.0.65
export HOME=/tmp/cline-logs/home
rm -rf /tmp/cline-logs && mkdir -p "$HOME" /tmp/cline-logs/project
cd /tmp/cline-logs/project
echo "Notes live in notes/." > README.md
port=18778
"$work/node_modules/.bin/cline" auth -p openai -k unused -m scripted-gpt -b "http://127.0.0.1:$port/v1"
for script in finished subagent failed; do
  python3 "$here/fake_chat_stream.py" $port $script & server=$!
  sleep 1
  case $script in
    finished) prompt="Read notes/todo.txt and tell me what is left to do." ;;
    subagent) prompt="Use a subagent to find the plan" ;;
    failed) prompt="Say what notes/todo.txt holds" ;;
  esac
  "$work/node_modules/.bin/cline" --json "$prompt" > /dev/null 2>&1 || true
  kill $server
  session=$(ls -t "$HOME/.cline/data/sessions" | head -1)
  cp -r "$HOME/.cline/data/sessions/$session" "$work/$script"
done
