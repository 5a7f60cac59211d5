"""How the conversations here were made: the OpenHands Software Agent SDK 1.58.2
(`openhands-sdk` and `openhands-tools`, Python 3.12), an `Agent` with its terminal
tool in a `LocalWorkspace`, each `Conversation` persisted where the SDK keeps them
(`persistence_dir`: a folder per conversation, `base_state.json` and
`events/event-NNNNN-<id>.json`, as the OpenHands CLI keeps its own under
~/.openhands/conversations). The model is a local HTTP server answering the chat
completions API from a script (`scripted_chat_server`; this machine reaches no
model), through the SDK's LiteLLM client. Two requests:

- `finished`: the agent reads a file that is not there (`cat` exits 1), lists the
  folder and finishes with an answer;
- `stuck`: the agent runs the same failing command again and again until the SDK's
  stuck detection stops the conversation (`execution_status` "stuck").

Each conversation also runs the project's hooks (`.openhands/hooks.json` in its
workspace, loaded with `HookConfig.load` as the CLI loads them, then closed, which
runs `SessionEnd`): a command hook for every event that appends the payload the
SDK gives it on stdin to `hooks.jsonl`, one payload a line.

Run in a folder of its own: `python make_conversations.py` writes
`conversations/` and `hooks.jsonl` (and a scratch `work/` folder, not kept)."""

import json
import shutil
import sys
import uuid
from pathlib import Path

from openhands.sdk import LLM, Agent, Conversation
from openhands.sdk.hooks import HookConfig
from openhands.sdk.tool import Tool
from openhands.tools.terminal import TerminalTool
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import _serve  # noqa: E402

REPLIES: list[dict] = []
CALLS = [0]


def answer() -> dict:
    """The next scripted turn, with an id and usage of its own per call."""
    CALLS[0] += 1
    message = REPLIES.pop(0)
    return {
        "id": f"chatcmpl-{CALLS[0]}", "object": "chat.completion", "created": 1_780_000_000,
        "model": "scripted-gpt",
        "choices": [{"index": 0, "message": message,
                     "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
        "usage": {"prompt_tokens": 100 + 20 * CALLS[0], "completion_tokens": 15,
                  "total_tokens": 115 + 20 * CALLS[0]},
    }  # fmt: skip


def call(n: int, name: str, arguments: dict) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [{
        "id": f"call_{n}", "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)}}]}  # fmt: skip


HERE = Path.cwd()
BASE = f"http://127.0.0.1:{_serve(answer)}/v1"


def converse(name: str, number: int, request: str, replies: list[dict]) -> None:
    REPLIES[:] = replies
    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "README.md").write_text("Notes live in notes/.\n")
    (work / ".openhands").mkdir()
    log = HERE / "hooks.jsonl"
    record = {"type": "command", "command": f"cat >> {log} && echo >> {log}"}
    events = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "SessionStart", "SessionEnd", "Stop")
    (work / ".openhands" / "hooks.json").write_text(json.dumps(
        {"hooks": {event: [{"matcher": "*", "hooks": [record]}] for event in events}}))  # fmt: skip
    llm = LLM(usage_id="agent", model="openai/scripted-gpt", base_url=BASE,
              api_key=SecretStr("unused"), num_retries=0)  # fmt: skip
    agent = Agent(llm=llm, tools=[Tool(name=TerminalTool.name)])
    conversation = Conversation(
        agent=agent, workspace=str(work), persistence_dir=str(HERE / "conversations"),
        conversation_id=uuid.UUID(f"7d0c5a52-0000-4000-8000-{number:012d}"),
        hook_config=HookConfig.load(working_dir=work),
    )  # fmt: skip
    conversation.send_message(request)
    conversation.run()
    print(name, conversation.state.execution_status, "replies left:", len(REPLIES))
    conversation.close()
    shutil.rmtree(work)


shutil.rmtree(HERE / "conversations", ignore_errors=True)
(HERE / "hooks.jsonl").unlink(missing_ok=True)
converse("finished", 1, "Read notes/todo.txt and tell me what is left to do.", [
    call(1, "terminal", {"command": "cat notes/todo.txt", "is_input": False}),
    call(2, "terminal", {"command": "ls", "is_input": False}),
    call(3, "finish", {"message": "There is no notes/todo.txt in this folder: nothing is listed."}),
])  # fmt: skip
converse(
    "stuck",
    2,
    "What does notes/plan.txt say?",
    [
        call(n, "terminal", {"command": "cat notes/plan.txt", "is_input": False})
        for n in range(1, 9)
    ],
)
