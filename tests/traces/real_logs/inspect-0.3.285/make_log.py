"""How the log here was made: Inspect 0.3.285 (`pip install inspect-ai==0.3.285`),
its mock model (`mockllm/model`) answering with set outputs, one tool that fails
on one sample, and its `includes` scorer. tiktoken is replaced by a word count
because it downloads its encodings, which this machine cannot. Writes under
/tmp/insplogs."""

import tiktoken
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, get_model
from inspect_ai.scorer import includes
from inspect_ai.solver import generate, use_tools
from inspect_ai.tool import ToolError, tool


class _Words:
    name = "words"

    def encode(self, text, *args, **kwargs):
        return text.split()


tiktoken.get_encoding = lambda *a, **k: _Words()
tiktoken.encoding_for_model = lambda *a, **k: _Words()


@tool
def lookup():
    async def execute(order_id: str):
        """Look up an order.

        Args:
          order_id: the order's id
        """
        if order_id == "missing":
            raise ToolError("order not found: missing")
        return f"order {order_id}: 2 items, shipped"

    return execute


M = "mockllm/model"
outputs = [
    ModelOutput.for_tool_call(model=M, tool_name="lookup", tool_arguments={"order_id": "A1"}),
    ModelOutput.from_content(model=M, content="Your order A1 has shipped."),
    ModelOutput.for_tool_call(model=M, tool_name="lookup", tool_arguments={"order_id": "missing"}),
    ModelOutput.from_content(model=M, content="I could not find it."),
]
task = Task(
    dataset=[
        Sample(input="Where is order A1?", target="shipped", id="s1"),
        Sample(input="Where is order B2?", target="shipped", id="s2"),
    ],
    solver=[use_tools(lookup()), generate()],
    scorer=includes(),
)
eval(task, model=get_model(M, custom_outputs=outputs), log_dir="/tmp/insplogs", max_samples=1,
     display="none")  # fmt: skip
