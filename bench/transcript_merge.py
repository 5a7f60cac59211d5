"""A Claude Code session's transcript merged into the run its hooks built, at each
turn's end, as the session grows (the capture hook imports the whole transcript
every time): what one merge costs, against writing the same session from scratch.

    python bench/transcript_merge.py            # the session repeated 16 times
    python bench/transcript_merge.py --quick    # 4 times

The session is the dev set's applab-nl_dmux transcript
(`../shared/devdata/claude_code/applab-nl_dmux/logs/chat.json`, a real Claude
Code 2.0.42 session), repeated with fresh ids into one long session. Its tool
calls are sent as the hooks send them (PreToolUse, PostToolUse, through
`claude_code.hook_ingest`), then its transcript is merged as it grows
(`transcripts.trace_ingest_merging`, what the client's import reaches): once with
all but its last 20 lines (the first merge, where every hook step gains what the
transcript knows), then 10 lines longer, twice (a turn's end each). In-process,
on the app's database, in a throw-away workspace.

Same-run baseline: the same session's transcript written as a new run (no hooks,
the bulk writer's COPY path), what a merge that rewrote every step would at least
cost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
SOURCE = (
    ROOT.parent / "shared" / "devdata" / "claude_code" / "applab-nl_dmux" / "logs" / "chat.json"
)
_IDS = re.compile(
    r"toolu_[A-Za-z0-9]+|msg_[A-Za-z0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def session_lines(repeats: int, session: str) -> list[str]:
    """The dev transcript's entries, repeated with ids made unique per repetition,
    as one session's JSON lines."""
    entries = [e for e in json.loads(SOURCE.read_text()) if e.get("sessionId")]
    lines = []
    for n in range(repeats):
        for entry in entries:
            text = _IDS.sub(lambda m, n=n: f"{m.group(0)}r{n}", json.dumps(entry))
            lines.append(json.dumps({**json.loads(text), "sessionId": session}))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, help="how many times the dev session repeats")
    args = parser.parse_args()
    repeats = args.repeats or (4 if args.quick else 16)
    if not SOURCE.is_file():
        raise SystemExit(f"needs the dev set: {SOURCE}")

    import django

    django.setup()
    from ingest import bench_workspace

    from hivemind_client.formats import parse
    from traces.claude_code import hook_ingest
    from traces.models import Trace
    from traces.services import trace_ingest_batch
    from traces.transcripts import trace_ingest_merging

    workspace, _ = bench_workspace()
    folder = Path(tempfile.mkdtemp(prefix="hm-bench-"))
    session = str(uuid.uuid4())
    lines = session_lines(repeats, session)
    path = folder / f"{session}.jsonl"

    def transcript(count: int) -> dict:
        path.write_text("\n".join(lines[:count]) + "\n")
        return parse("claude-transcript", path).traces[0]

    try:
        full = transcript(len(lines))
        ids = full["metadata"].get("tool_use_ids", {})
        started = time.perf_counter()
        hook_ingest(workspace=workspace, payload={
            "session_id": session, "hook_event_name": "UserPromptSubmit", "cwd": "/w",
            "prompt": full.get("task") or "go"})  # fmt: skip
        calls = 0
        for position, step in enumerate(full["steps"]):
            if step.get("kind") != "tool_call" or not ids.get(str(position)):
                continue
            call = {"session_id": session, "cwd": "/w", "tool_name": step.get("name"),
                    "tool_input": step.get("input"), "tool_use_id": ids[str(position)]}  # fmt: skip
            hook_ingest(workspace=workspace, payload={**call, "hook_event_name": "PreToolUse"})
            hook_ingest(workspace=workspace, payload={
                **call, "hook_event_name": "PostToolUse",
                "tool_response": {"stdout": str(step.get("output"))[:2000]}})  # fmt: skip
            calls += 1
        hooks_seconds = time.perf_counter() - started
        merges = []
        for count in (len(lines) - 20, len(lines) - 10, len(lines)):
            trace = transcript(count)
            started = time.perf_counter()
            result = trace_ingest_merging(workspace=workspace, items=[trace])
            merges.append(time.perf_counter() - started)
            if result.results[0].status not in ("created", "updated"):
                raise SystemExit(f"the merge answered {result.results[0]}")
        merged = Trace.objects.get(workspace=workspace, session_id=session)
        # Baseline: the same transcript as a run of its own, written from scratch.
        fresh = {**full, "external_id": f"fresh-{session}", "metadata": {}}
        started = time.perf_counter()
        trace_ingest_batch(workspace=workspace, items=[fresh])
        from_scratch = time.perf_counter() - started
    finally:
        workspace.delete()
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    size = sum(len(line) + 1 for line in lines) / 1e6
    grown = statistics.median(merges[1:])
    print(f"session: the dev transcript {repeats} times, {len(lines)} lines, {size:.1f} MB; "
          f"{calls} calls sent as hook events in {hooks_seconds:.1f} s; "
          f"{merged.step_count} steps after the merge")  # fmt: skip
    print(f"merge: the first {merges[0]:.2f} s; grown by 10 lines, twice: "
          f"{merges[1]:.2f} s, {merges[2]:.2f} s")  # fmt: skip
    print(f"baseline, the same transcript written as a new run: {from_scratch:.2f} s")
    print(
        f"RESULT transcript_merge_grown_s={grown:.2f} transcript_merge_first_s={merges[0]:.2f} "
        f"baseline_new_run_s={from_scratch:.2f} steps={merged.step_count} mb={size:.1f} "
        f"calls={calls} repeats={repeats}"
    )


if __name__ == "__main__":
    main()
