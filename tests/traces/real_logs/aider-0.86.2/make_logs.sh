#!/bin/sh
# How the logs here were made: Aider 0.86.2 (`aider-chat` from PyPI, in a virtualenv
# of its own whose bin is AIDER_BIN), its `openai/` model against a local server
# streaming chat completions from a script (fake_chat_stream.py; this machine
# reaches no model), its diff edit format, its lint and a test command. Two sessions
# in one project, their input typed in (stdin): two requests, the first ended by
# Aider after three failed fixes, the second fixed; then a /run command and a
# question the model API refuses (context window). .aider.chat.history.md is the chat history
# Aider keeps in the project (`.aider.chat.history.md`), as it wrote it. notify.log
# records each time Aider ran its notifications command and the folder it ran in.
# formats.aider.chat.history.md: a request in each of Aider's whole and udiff edit
# formats, the udiff one failing to apply.
# Run in an empty folder: AIDER_BIN=/path/to/venv/bin sh make_logs.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(pwd)
rm -rf /tmp/aider-logs && mkdir -p /tmp/aider-logs/project && cd /tmp/aider-logs/project
git init -q && git config user.email dev@example.com && git config user.name Dev
printf 'def add(a, b):\n    return a - b\n' > calc.py
printf 'from calc import add, sub\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n' > test_calc.py
printf '.aider*\n' > .gitignore
git add . && git commit -qm init
printf '#!/bin/sh\necho "turn end in $(pwd)" >> "%s/notify.log"\n' "$work" > ../notify
chmod +x ../notify
rm -f "$work/notify.log"
port=18802
aider() {
  "$AIDER_BIN/aider" --model openai/scripted-gpt --openai-api-base "http://127.0.0.1:$port/v1" \
    --openai-api-key unused --edit-format diff --yes-always --no-check-update --no-analytics \
    --no-show-release-notes --no-show-model-warnings --no-fancy-input \
    --test-cmd "python3 -m pytest -q" --auto-test \
    --notifications --notifications-command /tmp/aider-logs/notify "$@" > /dev/null 2>&1 || true
}
python3 "$here/fake_chat_stream.py" $port finished & server=$!
sleep 1
printf 'Fix the add function in calc.py so the tests pass.\nMake sub return a - b, as test_sub expects.\n' |
  aider calc.py test_calc.py
kill $server
python3 "$here/fake_chat_stream.py" $port failed & server=$!
sleep 1
printf '/run python3 -c "import calc; print(calc.mul(2, 3))"\nWhat does calc.py do?\n' | aider calc.py
kill $server
cp .aider.chat.history.md "$work/.aider.chat.history.md"
# Aider's other edit formats, a one-shot request each (--message) in a project of
# their own: formats.aider.chat.history.md.
mkdir ../formats && cd ../formats
git init -q && git config user.email dev@example.com && git config user.name Dev
printf 'def add(a, b):\n    return a - b\n' > calc.py && printf '.aider*\n' > .gitignore
git add . && git commit -qm init
for format in whole udiff; do
  python3 "$here/fake_chat_stream.py" $port $format & server=$!
  sleep 1
  aider --edit-format $format --no-auto-test --message "Fix add in calc.py" calc.py
  kill $server
done
cp .aider.chat.history.md "$work/formats.aider.chat.history.md"
