"""Mastra's scripts for the streaming server beside this folder
(`../chat_stream_server.py`, through `@ai-sdk/openai-compatible`): for each of two
requests a call of the tool, then an answer.

    python fake_chat_stream.py PORT SCRIPT"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chat_stream_server import call, main  # noqa: E402

SCRIPTS = {
    "orders": [
        call(1, "lookupOrder", {"orderId": "A1"}),
        {"content": "Order A1 has shipped."},
        call(1, "lookupOrder", {"orderId": "B2"}),
        {"content": "I could not find order B2."},
    ],
}


if __name__ == "__main__":
    main(SCRIPTS)
