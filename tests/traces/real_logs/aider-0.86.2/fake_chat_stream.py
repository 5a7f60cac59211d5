"""Aider's scripts for the streaming server beside this folder
(`../chat_stream_server.py`, as an `openai/` model). Aider's requests outside the
chat (a commit's message, a summary) get answers of their own, outside the script.

    python fake_chat_stream.py PORT SCRIPT"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat_stream_server import main  # noqa: E402


def edit(say: str, path: str, search: str, replace: str) -> dict:
    """A turn answering with one SEARCH/REPLACE block, as Aider's diff format asks."""
    block = f"{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"
    return {"content": f"{say}\n\n{block}"}


ADD = "def add(a, b):\n    return a - b\n"
SCRIPTS = {
    # The first request: a block that matches nothing, one that leaves an undefined
    # name (Aider's lint), the fix (the tests then fail: test_sub needs sub), a sub
    # whose test fails (Aider stops after three reflections). The second request: the
    # fix, and the tests pass.
    "finished": [
        edit(
            "The sign is wrong.",
            "calc.py",
            "def add(a, b):\n    return a - b  # wrong\n",
            "def add(a, b):\n    return a + b\n",
        ),  # fmt: skip
        edit(
            "Here is the block as the file has it.",
            "calc.py",
            ADD,
            "def add(a, b):\n    return a + bb\n",
        ),  # fmt: skip
        edit("Fixing the name.", "calc.py", "    return a + bb\n", "    return a + b\n"),
        edit(
            "test_sub needs sub; adding it.",
            "calc.py",
            "    return a + b\n",
            "    return a + b\n\n\ndef sub(a, b):\n    return b - a\n",
        ),  # fmt: skip
        edit("The operands were swapped.", "calc.py", "    return b - a\n", "    return a - b\n"),
    ],
    # Aider's other edit formats, one request each: a whole file (whole), a unified
    # diff whose lines the file does not hold (udiff).
    "whole": [
        {"content": "Rewriting add.\n\ncalc.py\n```\ndef add(a, b):\n    return a + b\n```\n"}
    ],
    "udiff": [
        {
            "content": "Fixing it.\n\n```diff\n--- calc.py\n+++ calc.py\n@@ ... @@\n def add(a, b):\n"
            "-    return a - b  # nope\n+    return a + b\n```\n"
        },
        {"content": "The file does not hold those lines; I cannot fix it this way."},
    ],
}


def aside(request: dict) -> str | None:
    """Aider's requests outside the chat: a commit's message, a summary of the chat so
    far (its weak model's, run in the background when the chat grows)."""
    system = str(request["messages"][0].get("content", ""))
    if "commit message" in system:
        return "fix: calc functions"
    if "summarize" in system:
        return "The user asked to fix calc.py; add was fixed, sub is still wrong."
    return None


if __name__ == "__main__":
    main(SCRIPTS, aside=aside)
