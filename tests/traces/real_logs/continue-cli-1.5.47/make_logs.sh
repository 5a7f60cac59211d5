#!/bin/sh
# How the sessions here were made: the Continue CLI 1.5.47 (`@continuedev/cli` from
# npm), headless (`cn --auto -p "<prompt>"`), its model an `openai` provider in a
# config file pointed at a local server streaming chat completions from a script
# (fake_chat_stream.py; this machine reaches no model). One session: a command that
# exits 1, a read of a missing file, a command that works, then the answer
# (sessions/<session id>.json as Continue saves it under ~/.continue/sessions/, with
# the list it keeps beside it, sessions.json). A model API that refuses every request
# leaves no session file (checked with `failed`), so none is here for it.
# Run in an empty folder with Node.js and npm: sh make_logs.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(pwd)
npm install --silent @continuedev/cli@1.5.47
export HOME=/tmp/continue-logs/home
rm -rf /tmp/continue-logs && mkdir -p "$HOME" /tmp/continue-logs/project
cd /tmp/continue-logs/project
echo "Notes live in notes/." > README.md
port=18780
cat > ../config.yaml <<YAML
name: scripted
version: 0.0.1
schema: v1
models:
  - name: scripted
    provider: openai
    model: scripted-gpt
    apiBase: http://127.0.0.1:$port/v1
    apiKey: unused
    roles: [chat, edit, apply]
YAML
python3 "$here/fake_chat_stream.py" $port finished & server=$!
sleep 1
"$work/node_modules/.bin/cn" --config ../config.yaml --auto -p "Read notes/todo.txt and tell me what is left to do." > /dev/null
kill $server
mkdir -p "$work/sessions"
cp "$HOME/.continue/sessions/"*.json "$work/sessions/"
