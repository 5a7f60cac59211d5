"""Qwen Code's scripts for the streaming server beside this folder
(`../chat_stream_server.py`, its `openai` auth type). Script `failed` refuses every request.

    python fake_chat_stream.py PORT SCRIPT"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat_stream_server import call, main  # noqa: E402

SCRIPTS = {
    # A command that exits 1, a read of a missing file, a command that works; the answer.
    "finished": [
        call(1, "run_shell_command", {"command": "cat notes/todo.txt"}),
        call(2, "read_file", {"file_path": "/tmp/qwen-logs/project/notes/plan.txt"}),
        call(3, "run_shell_command", {"command": "ls"}),
        {"content": "There is no notes/todo.txt or notes/plan.txt here; nothing is left to do."},
    ],
}


if __name__ == "__main__":
    main(SCRIPTS)
