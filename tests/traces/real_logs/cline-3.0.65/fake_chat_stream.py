"""The Cline CLI's scripts for the streaming server beside this folder
(`../chat_stream_server.py`, its `openai` provider). Script `failed` refuses every request.

    python fake_chat_stream.py PORT SCRIPT"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat_stream_server import call, main  # noqa: E402

SCRIPTS = {
    # Two commands in one call, the first exiting 1; a read of a missing file; the answer.
    "finished": [
        call(1, "run_commands", {"commands": ["cat notes/todo.txt", "ls"]}),
        call(2, "read_files", {"files": [{"path": "/tmp/cline-logs/project/notes/plan.txt"}]}),
        {"content": "There is no notes/todo.txt or notes/plan.txt here; nothing is left to do."},
    ],
    # A subagent (Cline's `spawn_agent`, its own messages file) that lists a missing
    # folder and answers; then the main agent's answer.
    "subagent": [
        call(
            1,
            "spawn_agent",
            {
                "systemPrompt": "You find files.",
                "task": "Find notes/plan.txt and say what it holds.",
            },
        ),
        call(2, "run_commands", {"commands": ["ls notes"]}),
        {"content": "There is no notes folder."},
        {"content": "The subagent found no notes folder, so there is no plan."},
    ],
}


if __name__ == "__main__":
    main(SCRIPTS)
