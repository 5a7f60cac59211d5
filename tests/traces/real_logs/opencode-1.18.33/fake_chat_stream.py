"""OpenCode's scripts for the streaming server beside this folder
(`../chat_stream_server.py`, through `@ai-sdk/openai-compatible`); a request without
tools (OpenCode's title of the session) gets a title.

    python fake_chat_stream.py PORT SCRIPT"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat_stream_server import call, main  # noqa: E402

SCRIPTS = {
    # A command that exits 1, another that works, then the answer.
    "finished": [
        call(1, "bash", {"command": "cat notes/todo.txt", "description": "Read the todo list"}),
        call(2, "bash", {"command": "ls", "description": "List files"}),
        {"content": "There is no notes/todo.txt here; nothing is listed."},
    ],
    # A read of a file that is not there (the tool fails), then the answer.
    "failed": [
        call(1, "read", {"filePath": "notes/plan.txt"}),
        {"content": "I could not read notes/plan.txt: it does not exist."},
    ],
    # A subagent (OpenCode's `task` tool, its own session) that lists a missing folder
    # and answers; then the main agent's answer.
    "subagent": [
        call(
            1,
            "task",
            {
                "description": "Find the plan",
                "subagent_type": "general",
                "prompt": "Find notes/plan.txt and say what it holds.",
            },
        ),
        call(2, "bash", {"command": "ls notes", "description": "List the notes"}),
        {"content": "There is no notes folder."},
        {"content": "The subagent found no notes folder, so there is no plan."},
    ],
}


if __name__ == "__main__":
    main(SCRIPTS, untooled="Reading the notes")
