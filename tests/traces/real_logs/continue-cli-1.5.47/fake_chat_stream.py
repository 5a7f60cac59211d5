"""The Continue CLI's scripts for the streaming server beside this folder
(`../chat_stream_server.py`, an `openai` model in its config). Script `failed` refuses
every request.

    python fake_chat_stream.py PORT SCRIPT"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat_stream_server import call, main  # noqa: E402

SCRIPTS = {
    # A command that exits 1, a read of a missing file, a command that works; the answer.
    "finished": [
        call(1, "Bash", {"command": "cat notes/todo.txt"}),
        call(2, "Read", {"filepath": "notes/plan.txt"}),
        call(3, "Bash", {"command": "ls"}),
        {"content": "There is no notes/todo.txt or notes/plan.txt here; nothing is left to do."},
    ],
}


if __name__ == "__main__":
    main(SCRIPTS)
