"""Real agent logs → Hivemind traces (the JSON that POST /api/traces takes).

Standard library only: the same parsers run on the server (`manage.py
import_traces`) and on an agent's machine (`python -m hivemind_client import`).
Two kinds of file need a package the server has and an agent's machine may not,
and say so when it is missing: Zstandard-compressed Inspect logs (`zstandard`),
and Parquet tables (`pyarrow`), which the formats whose records are rows
(`PARQUET_FORMATS`) read one record a row, as Hugging Face ships datasets.

Formats (`FORMATS`):

- `native`: Hivemind's own trace JSON: `{"traces": [...]}`, a list, or JSONL.
- `chat-jsonl`: one conversation per line, OpenAI chat messages (`tool_calls`,
  role `tool`) or Anthropic messages (`tool_use` / `tool_result` blocks with
  `is_error`): `{"messages": [...], "id"?, "status"?, "reward"?, "agent"?, ...}`
  or a bare list of messages; a file that is one JSON array of messages (Cline's
  `api_conversation_history.json`) is one conversation. Public trajectory datasets exported as JSON lines
  read the same: the messages under `trajectory` (SWE-rebench's and SWE-Zero's
  OpenHands runs, nebius's SWE-agent runs) or `conversations` (ShareGPT), roles
  named `ai`, `gpt`, `human`, `observation` or `function_call`, text under
  `text` or `value`, or the messages as JSON text (CoderForge, SWE-smith); an
  agent that acts in text (no structured call anywhere, turns ending on a command
  block or on a call written as `<function=NAME><parameter=KEY>…</parameter>
  </function>`, as OpenHands' and SWE-agent's prompt-based function calling write
  it) has each such command or call as a tool call whose output is the next turn. The outcome is `status`, else `resolved` (true or 1;
  a SWE dataset's verdict, as in SWE-Gym's OpenHands trajectories) or `target`,
  else `reward`; the task key is `task_key`, `task_id` or `instance_id`, so
  several runs of one task are compared with each other.
- `tau-bench`: tau-bench result files (a list of `{task_id, reward, info, traj}`,
  `traj` in OpenAI chat format); reward 1 is success. The task is the user's
  first turn (what the agent saw); `info.task` (the simulated user's script) is
  not imported. The agent is `info.model`, else the file's name (tau-bench's
  own results name no model); `task_key` is `<domain>:<task id>`, the domain
  read from the heading of the system prompt (its policy, kept as
  `metadata.policy`), since task ids restart in each domain.
- `tau2-bench`: tau2-bench result files (`{info, tasks, simulations}`), tau2's
  results directories (`results.json` and `simulations/<id>.json`) or one of
  their simulation files; success when `reward_info.reward` is 1; user-side tool
  calls (telecom) are named `user.<tool>`. A run tau2 stopped (its
  `termination_reason`: the step limit, too many tool errors, a timeout) ends on
  an error step saying so; one stopped by the harness's own error (the simulated
  user's, the infrastructure's) is imported with no outcome and why. The task is the user's first turn and `task_key` is
  `<domain>:<task id>`; the user scenario and the expected actions
  (`action_checks`) are not imported; the other checks of `reward_info` are.
- `intercode`: InterCode result files (`{task_id: episode}`), one tool call per
  action, `valid_action: false` as the step error; success when `max_reward` is 1.
  The environment's score becomes one named check (`result rows`, `files and
  output`, `unit tests`, `flag`) saying how close the best scored action came.
- `swe-agent`: SWE-agent `.traj` files (`trajectory` of action/observation; a
  command SWE-agent refused or cut off, by its own templates, failed) and
  mini-swe-agent `.traj.json` files (`messages`; early versions saved the list of
  messages alone): v1's ```bash / ```mswea_bash_command block per reply, its
  output the next user message; v2's bash tool calls, each output the tool
  message of its call id. A command failed when the message's `extra` says so
  (a non-zero `returncode`, an `exception_info`), else when its text does
  (`<returncode>1</returncode>`, `[exit code 1]`, `Exception:`, a timeout); a
  reply the harness rejected (`extra.interrupt_type` FormatError) is an error
  step, and so is v2's closing `exit` message when the run did not end by
  submitting. The outcome is read where the
  SWE-bench harness writes it, beside the trajectories (this folder and up to
  three above it): a summary report (`results_summary.json`, the harness's
  `<model>.<run>.json`, an sb-cli report: any JSON with `resolved_ids`; the
  SWE-bench/experiments leaderboard's `results/results.json`, which lists the
  resolved ids and leaves every other instance of the submission unresolved)
  says resolved or not; a per-instance `report.json` (`logs/**/<instance>/report.json`)
  says it too and gives each FAIL_TO_PASS test, and each PASS_TO_PASS test that
  broke, as a check of the outcome. Without either, `info.resolved` if present;
  else failed when the agent stopped without submitting, and otherwise unknown
  (the import summary counts and names those runs). The external id is
  `swe-<run folder>-<instance id>` (the run folder of `<submission>/trajs/` is
  the submission's), so an outcome can be posted for it later.
- `claude-transcript`: Claude Code session transcripts (`~/.claude/projects/
  **/*.jsonl`, or the same entries as one JSON array), and a headless run's
  `claude -p --output-format stream-json` lines (the model from its `init`
  line, subagent messages inside the call named by `parent_tool_use_id`, the
  cost from its closing `result` line, and a last error step when that line
  says the run did not finish, e.g. `error_max_turns`); `is_error` tool results
  are errors, API error turns are error steps, no outcome (status unknown).
- `claude-hooks`: hook-log files (a JSON array or JSONL of hook payloads); these
  are replayed through the hook endpoint, not converted here. A folder's files
  are merged by time first (`hooklog.py`), and a transcript among them
  (`chat.json`) completes the trace the hooks built.
- `ag2-chat`: an AG2 (AutoGen) group chat saved as `{"question", "history":
  [{"content", "role", "name"}], "is_correct"?}` (the Who&When logs): one step
  per message, in order (step i is message i); the code executor's replies
  (`Computer_terminal`) are tool calls whose error is a non-zero `exitcode`; a
  message that reports a browser's page (the text browser's "Address: …
  Viewport position: …" header, WebSurfer's "Here is a screenshot of …") is a
  call of `<speaker>.browse`, the page its output;
  success when `is_correct` is true, failed when false. A Magentic-One team's
  log in the same shape (Who&When's hand-crafted runs: messages with a `role`
  and no `name`, an Orchestrator's "thought" turns, `is_corrected` for the
  outcome) is read the same way: its `human` turn is the user's prompt, its
  `ComputerTerminal` replies are tool calls whose error is "exited with an
  error (POSIX exit code: N)", and its agent is `magentic-one`. Any other
  fields of the file (labels a benchmark keeps beside a run) are not read.
- `openinference-json`: OpenInference spans of one run per file (or per line):
  `{"trace_id", "spans": [...]}`, the spans a tree by `child_spans` (TRAIL's
  files, Patronus' export of smolagents runs: `span_attributes` with dotted keys,
  `timestamp` and an ISO 8601 `duration`) or a flat list with parent ids (`context.span_id`,
  `parent_id`, nested `attributes`, `start_time`/`end_time`); or a span table, one
  span a row (Phoenix's spans dataframe saved to JSON: `context.trace_id`,
  `span_kind`, `attributes.<key>` columns, epoch-millisecond times), grouped
  into a run per trace id. Each span is a step as
  the server's OTLP receiver makes one (`traces/otlp.py`), in start-time order, its
  parent the nearest kept ancestor: a TOOL span a tool call named by `tool.name`,
  an LLM span an LLM call named by its model, any other span a call named by the
  span (an agent loop's numbered turn, smolagents' "Step 3", is an "agent
  step"); input and output from `input.value`/`output.value` (JSON text read as
  JSON); an `exception` or `agent.step_recovery` event or an error status its error, left to the deepest
  failing span (the others' in `metadata.propagated_errors`). Spans with no
  OpenInference kind, input, output or error (a benchmark harness's own spans,
  whose logs can hold the expected answer) are left out. The task is the AGENT
  span's input (its `task` when the input is JSON); the outcome the root span's
  status (TRAIL's leave it unset: unknown unless `--status` gives one); the agent
  `service.name`, else the AGENT span's class (`CodeAgent` for smolagents'
  `CodeAgent.run`; TRAIL's files are named by trace id), else the file's name.

- `gemini-session`: Gemini CLI sessions (`~/.gemini/tmp/<project>/chats/
  session-*.json`, a folder's `session-*.json` files): the user's prompts, the
  agent's text and tool calls (args; the function response's output or error;
  status error, a shell command's non-zero "Exit Code", or a cancelled call its
  error), the CLI's error messages error steps; no outcome (`--status`). Also a
  headless run's `--output-format stream-json` lines: a run of their own,
  `gemini-stream-<session id>`.

- `langsmith`: LangSmith runs as its SDK and API give them (`Run`), one a line or
  a list, flat with parent ids or nested in `child_runs`: the runs of each trace
  one run here, each a step by the span reader's rule (`run_type` llm a model
  call, tool a tool call, `error` an error); the root's name the agent; a root
  that raised failed, else no outcome; `feedback_stats` are checks.

- `langfuse`: Langfuse traces with their observations (`GET /api/public/traces/
  {id}`), one a file, a list, one a line, or a `{"data": [...]}` page of them:
  each observation a step by the span reader's rule (GENERATION a model call,
  TOOL a tool call, level ERROR an error), the trace's name the agent, its
  session the session, BOOLEAN scores checks; no outcome (`--status` gives one).

- `otlp-json`: OTLP/JSON span exports, one `ExportTraceServiceRequest` per line
  as the OpenTelemetry Collector's file exporter writes them (or one document):
  each trace id is a run named by the hex trace id, as the OTLP endpoint names
  it (ids protobuf's generic JSON mapping wrote in base64 are read as hex), its
  spans steps by the endpoint's rule (`span_role`; a tool span whose input is
  the Python call smolagents' instrumentation records has its keyword arguments
  as its input), `service.name` the agent, the root span's status the outcome
  (an instrumentation's OK read as UNSET, `root_outcome`; left UNSET, the run's `hivemind.check.<name>` checks decide: any failed,
  failed; all passed, succeeded) and its input the task. Logs lines (`resourceLogs`) beside them are read as
  `/v1/logs` reads them: a model call's GenAI events (its messages) joined to its
  span by span id, a call whose span is not in the file a step of its own.

- `atif`: Agent Trajectory Interchange Format (ATIF-v1.x) trajectories, what
  Harbor writes for every agent it runs (Terminal-Bench): `<trial>/agent/
  trajectory.json`, a folder's `trajectory.json` files. Each agent step's message
  is an assistant message and each tool call a call, its result joined by
  `source_call_id`; an embedded subagent trajectory's steps are inside the call
  that delegated to it; continuation files (`continued_trajectory_ref`) are
  followed. The outcome is the verifier's reward in the Harbor trial's
  `result.json` beside it (its other rewards as checks), else
  `verifier/reward.txt`; a trial exception after which the verifier ran is the
  last step, an error; one before it leaves the run without an outcome, saying
  why. The agent is `<agent name>/<model>`, the task key Harbor's task name, the
  task the first user turn (Terminus' "Task Description:" section of it).

- `openhands`: OpenHands evaluation output (`output.jsonl`: one instance per
  line, `{"instance_id", "instruction", "history", "metadata", "test_result",
  "metrics", "error"?}`; a folder's `output.jsonl` files), or one saved event
  stream (a JSON array of events; a submission's `trajs/<instance id>.json`,
  named by the submission and its task by the instance). Both event schemas: the classic one
  (`action` with `args`, `observation` with `content`, `extras` and `cause`, the
  id of the action it answers; older output's `[action, observation]` pairs) and the software-agent SDK's (`kind`:
  MessageEvent, ActionEvent, ObservationEvent, AgentErrorEvent). Each action is
  a tool call named by its function (`tool_call_metadata.function_name`,
  `tool_name`, else the action: `run`, `edit`, …), its thought an assistant
  message before it; its observation is its output, an error observation or a
  non-zero exit code its error; the system prompt, state changes and recalls are
  left out. The outcome is `test_result.report.resolved` (what OpenHands'
  SWE-bench evaluation writes), else the `<output>.swebench_eval.jsonl` beside
  the file, else `resolved`, else the SWE-bench harness's reports beside it (as
  for `swe-agent`); otherwise unknown. The agent is `<agent_class>/<model>`; the
  external id `openhands-<run folder>-<instance id>` (`#2`, `#3` for an
  instance run again in the same file); a run that ended on an error keeps it
  in `metadata.error` and as its last step, an error step. Also a conversation
  the software-agent SDK saved (`persistence_dir`, and the OpenHands CLI's
  ~/.openhands/conversations): a folder's `base_state.json` files, each read with
  the `events/event-NNNNN-*.json` beside it as one run, `openhands-<conversation
  id>`; the agent `OpenHands/<model>`, each model answer's tokens (from the
  state's usage) on the step it made, the cost when the SDK priced the model. Its
  outcome is unknown, but failed when the state says the SDK's stuck detection
  stopped it or it ended on an error (`execution_status` `stuck`, `error`). Its
  events' times, which the SDK writes in the machine's zone without saying which,
  are read in the importing machine's zone (the capture hook imports it on the
  machine that ran it). A ConversationErrorEvent is the run's error step; an
  ACPToolCallEvent (an agent the SDK drives over ACP) one call however often it
  is updated.

- `opencode`: an OpenCode session as `opencode export <session>` writes it (OpenCode
  1.18 keeps its sessions in a SQLite database; the export is the session's
  `info` and its `messages`, each an `info` and its `parts`), one run per file,
  `opencode-<session id>`, agent `opencode`, model `<provider>/<model>`. A user's
  text is the prompt (text OpenCode added itself, `synthetic`, left out); an
  assistant's text and reasoning are what it said; a tool part is a call with its
  input and output, failed when the tool failed (`state.error`) or a command's
  exit code is not 0, or when it had not finished; each model call's tokens
  (`step-finish`: input, output, reasoning, cache read and written) go on the
  first step it made; a message that ended on an error (the model's API, an
  abort) adds an error step. A subagent's session (the `task` tool's), exported
  beside its parent's as `<its session id>.json`, is read into the call that
  started it, and a folder import leaves it to the parent. The outcome is unknown:
  nothing in the file says it.

- `codex-rollout`: a Codex CLI session, one run per file
  (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`; a folder's `rollout-*.jsonl`).
  Each line is `{"timestamp", "type", "payload"}` (older rollouts: the item with
  no envelope). Of `response_item` lines: a user message is a prompt (the first
  the task; the AGENTS.md, environment and permission notes Codex adds are left
  out), an assistant message a message, `function_call`, `custom_tool_call`
  (`apply_patch`), `local_shell_call` and `web_search_call` tool calls named by
  the tool, their `*_output` the output (`{"output", "metadata": {"exit_code"}}`,
  or text whose "Exit code: N" / "Process exited with code N" header gives the
  code), a non-zero exit code the error. Of `event_msg` lines: the shell's own
  result (`exec_command_end`: its output and exit code win over the output's
  copy), a patch that did not apply, an `error` (an error step), and an aborted
  turn (its calls with no result fail with that reason). In code mode the model
  writes a script (`exec`) that calls the tools, and each call's result is an
  event with an id of its own (`exec-<uuid>`): each `exec_command_end`,
  `patch_apply_end` and `mcp_tool_call_end` that arrives while a script runs is
  a call inside the script's step (its command, files or MCP arguments, its
  output, a non-zero exit code, a patch that did not apply or an MCP `Err` its
  error). Reasoning, token counts
  and the display copies of messages are not read. The model is the turn's; the
  external id `codex-<session id>`, the one Codex hooks give the session, so a
  rollout of a session its hooks captured completes that trace. A session has
  no outcome: unknown unless `--status` gives one.

- `inspect-log`: an Inspect (UK AISI) eval log, one run per sample and epoch: a
  `.eval` archive (`header.json` or `_journal/start.json`, `samples/*.json`;
  refused past 2 GiB unpacked; its members deflated or, as current Inspect
  writes them, Zstandard-compressed, which needs the `zstandard` package: the
  server has it, an agent's machine is told how to get it) or a `.json` log
  (`{"eval", "samples"}`). A user
  message is a prompt, an assistant message a message (its text, not its
  reasoning) and each of its `tool_calls` a tool call named by its `function`
  (a `parse_error` its error), a tool message the call's output (an `error` its
  error). `attachment://` references are replaced by the text the sample keeps
  for them. A sample's `limit` (the run hit a token, message or time limit) and
  `error` are error steps. Each scorer with a pass/fail value (C/I/P/N, a
  boolean, a number: 1 or more passes) is a check, and the run succeeded when
  every such check passed; with none, a sample that ended on an error failed,
  any other is unknown. The agent is `<solver>/<model>` (or the model), the task
  the sample's input, its key `<task>/<sample id>`, the external id
  `inspect-<run id>-<sample id>-e<epoch>`.

Every parser raises `FormatError` naming the file and the line (or the element)
that is wrong; a caller imports a file whole or not at all.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import glob
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

MAX_TEXT = 20_000


class FormatError(ValueError):
    def __init__(self, path: Path | str, where: str, message: str) -> None:
        self.path, self.where, self.message = str(path), where, message
        super().__init__(f"{path}: {where}: {message}")


@dataclass
class Parsed:
    """What one file holds: traces (native JSON dicts) or raw hook payloads."""

    traces: list[dict[str, Any]] = field(default_factory=list)
    hook_payloads: list[dict[str, Any]] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"byte {exc.start}", "not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"line {exc.lineno}", f"not valid JSON ({exc.msg})") from None


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"byte {exc.start}", "not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(path, f"line {number}", f"not valid JSON ({exc.msg})") from None


def _json_or_jsonl(path: Path) -> list[tuple[str, Any]]:
    """A JSON array (elements named `[i]`), JSON lines (named `line N`), or a
    Parquet table's rows (named `row N`: Hugging Face's datasets ship as Parquet)."""
    if _is_parquet(path):
        return _parquet_rows(path)
    text_start = path.read_bytes()[:4096].lstrip()
    if text_start.startswith(b"[") or (text_start.startswith(b"{") and _single_json(path)):
        data = _read_json(path)
        items = data if isinstance(data, list) else [data]
        return [(f"element [{i}]", item) for i, item in enumerate(items)]
    return [(f"line {n}", item) for n, item in _read_jsonl(path)]


# --- Parquet ---------------------------------------------------------------------

# The formats whose records may come as a Parquet table's rows, one record a row
# (each reads its records through `_json_or_jsonl`): the shapes public datasets and
# span tables are published in.
PARQUET_FORMATS = ("native", "chat-jsonl", "openhands", "openinference-json", "langfuse",
                   "langsmith")  # fmt: skip
# What one Parquet file may hold, unpacked (its row groups' stated sizes): past it the
# file is refused, not read into memory.
_PARQUET_MAX_BYTES = 2 << 30
_PARQUET_BATCH = 512


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as head:
        return head.read(4) == b"PAR1"


def _parquet_rows(path: Path) -> list[tuple[str, Any]]:
    """A Parquet table's rows as JSON values, each named `row N`. Needs `pyarrow`,
    which the server has and an agent's machine may not."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise FormatError(
            path, "file", "a Parquet file, which needs pyarrow to read: install it here "
            "(pip install pyarrow), or import the file on the server (manage.py import_traces)",
        ) from None  # fmt: skip
    try:
        table = pyarrow.parquet.ParquetFile(path)
        meta = table.metadata
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if unpacked > _PARQUET_MAX_BYTES:
            raise FormatError(
                path, "file", f"its rows unpack to {unpacked / (1 << 30):.1f} GiB, more than "
                f"the {_PARQUET_MAX_BYTES >> 30} GiB one file may hold: split it into smaller "
                "files (e.g. one per row group)",
            )  # fmt: skip
        # Python's times stop at microseconds; pandas writes nanoseconds.
        schema = pyarrow.schema([f.with_type(_microseconds(pyarrow, f.type))
                                 for f in table.schema_arrow])  # fmt: skip
        rows: list[tuple[str, Any]] = []
        for batch in table.iter_batches(batch_size=_PARQUET_BATCH):
            batch = pyarrow.Table.from_batches([batch]).cast(schema, safe=False)
            for row in batch.to_pylist(maps_as_pydicts="lossy"):
                rows.append((f"row {len(rows) + 1}", _json_value(row)))
    except (pyarrow.ArrowException, OSError) as exc:
        raise FormatError(path, "file", f"not a Parquet file this can read ({exc})") from None
    return rows


def _microseconds(pyarrow: Any, kind: Any) -> Any:
    """`kind` with every nanosecond time and duration in it, nested ones too, in
    microseconds."""
    types = pyarrow.types
    if types.is_timestamp(kind) and kind.unit == "ns":
        return pyarrow.timestamp("us", tz=kind.tz)
    if types.is_duration(kind) and kind.unit == "ns":
        return pyarrow.duration("us")
    if types.is_time64(kind) and kind.unit == "ns":
        return pyarrow.time64("us")
    if types.is_struct(kind):
        return pyarrow.struct([f.with_type(_microseconds(pyarrow, f.type)) for f in kind])
    if types.is_map(kind):
        return pyarrow.map_(_microseconds(pyarrow, kind.key_type),
                            _microseconds(pyarrow, kind.item_type))  # fmt: skip
    if types.is_large_list(kind):
        return pyarrow.large_list(_microseconds(pyarrow, kind.value_type))
    if types.is_fixed_size_list(kind):
        return pyarrow.list_(_microseconds(pyarrow, kind.value_type), kind.list_size)
    if types.is_list(kind):
        return pyarrow.list_(_microseconds(pyarrow, kind.value_type))
    return kind


def _json_value(value: Any) -> Any:
    """A Parquet value as the JSON a record would carry: times in ISO 8601 (a time
    with no zone is UTC, as everywhere else), durations in seconds, decimals as
    numbers, bytes as text, a missing number (pandas writes NaN) as null. A field
    that is null is left out, as is pandas' saved index (`__index_level_0__`): a
    table has every column in every row, so null there means the record has no
    such field (a ShareGPT row of a table whose other rows hold `trajectory`)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, _json_value(v)) for k, v in value.items())
                if v is not None and not str(k).startswith("__index_level_")}  # fmt: skip
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _single_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


_obj = obj


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, list):  # content blocks
        parts = []
        for block in value:
            if isinstance(block, dict):
                parts.append(str(block.get("text") or block.get("content") or ""))
            else:
                parts.append(str(block))
        return "\n".join(p for p in parts if p)[:limit]
    return json.dumps(value, ensure_ascii=False, default=str)[:limit]


def _args(value: Any) -> Any:
    """Tool arguments: OpenAI sends a JSON string, others an object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _digest(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _status(reward: Any) -> str:
    if isinstance(reward, int | float) and not isinstance(reward, bool):
        return "succeeded" if reward >= 1.0 else "failed"
    return "unknown"


def _need(path: Path, where: str, value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise FormatError(path, where, f"expected {what}, found {type(value).__name__}")
    return value


def _items(path: Path, where: str, value: Any, what: str) -> list[Any]:
    """An optional list: absent (None) is empty; any other value that is no list is
    refused, naming the field."""
    return [] if value is None else _need(path, where, value, list, f"{what}, a list")


def _list(value: Any) -> list[Any]:
    """An optional extra (checks, events) that is a list, else none: such fields
    never decide whether a file is of its format."""
    return value if isinstance(value, list) else []


def _id(value: Any) -> str | int | tuple[Any, ...] | None:
    """An id that joins one event to another: a string or a number (or a pair's own
    id, a tuple, which no JSON holds), else none."""
    ok = isinstance(value, str | int | tuple) and not isinstance(value, bool)
    return value if ok else None


# --- chat messages (OpenAI and Anthropic shapes) ------------------------------


def chat_steps(messages: list[Any], *, path: Path, where: str) -> list[dict[str, Any]]:
    """Steps from a list of chat messages; tool results join their call by id."""
    steps: list[dict[str, Any]] = []
    by_call: dict[str, dict[str, Any]] = {}
    for position, message in enumerate(messages):
        here = f"{where}, message {position}"
        _need(path, here, message, dict, "a message object")
        role = message.get("role")
        content = message.get("content")
        if role == "system":
            continue
        if role == "tool":  # OpenAI tool result
            call_id = message.get("tool_call_id") or message.get("id")
            call = by_call.get(str(call_id or ""))
            if call is None and not call_id:
                # A result naming no call (ShareGPT's observation turns): the oldest
                # call still waiting for one, of its tool when it names one.
                name = message.get("name")
                call = next((c for c in steps if c["kind"] == "tool_call" and "output" not in c
                             and (not name or c.get("name") == name)), None)  # fmt: skip
            output = _text(content)
            failed = message.get("error") is True or message.get("is_error") is True
            if call is None:
                call = {"kind": "tool_result", "name": str(message.get("name") or "")[:200]}
                steps.append(call)
            call["output"] = output
            if failed:
                call["error"] = output or "tool reported an error"
            continue
        blocks = content if isinstance(content, list) else None
        if role == "user":
            results = [
                b for b in blocks or [] if isinstance(b, dict) and b.get("type") == "tool_result"
            ]
            for block in results:  # Anthropic tool results ride on user turns
                call = by_call.get(str(block.get("tool_use_id") or ""))
                output = _text(block.get("content"))
                if call is None:
                    call = {"kind": "tool_result", "name": ""}
                    steps.append(call)
                call["output"] = output
                if block.get("is_error"):
                    call["error"] = output or "tool reported an error"
            text = (
                _text([b for b in blocks if b not in results])
                if blocks is not None
                else _text(content)
            )
            if text:
                steps.append({"kind": "user_prompt", "input": text})
            # A simulated user's own tool calls (tau2 telecom: the phone) are user.<tool>.
            for call in _items(path, here, message.get("tool_calls"), '"tool_calls"'):
                _need(path, here, call, dict, "a tool call object")
                step = {"kind": "tool_call", "name": f"user.{call.get('name') or ''}"[:200],
                        "input": _args(call.get("arguments"))}  # fmt: skip
                steps.append(step)
                if call.get("id"):
                    by_call[str(call["id"])] = step
            continue
        if role != "assistant":
            raise FormatError(path, here, f"unknown role {role!r}")
        # tau2's `errors` are the harness's refusals of this turn's earlier attempts
        # ("You sent a message with both text content and tool calls"): they came
        # before the turn that was kept, and are the agent's, not a tool's.
        for error in _items(path, here, message.get("errors"), '"errors"'):
            steps.append({"kind": "error", "error": _text(error, 10_000)})
        text = (
            _text([b for b in blocks if isinstance(b, dict) and b.get("type") == "text"])
            if blocks is not None
            else _text(content)
        )
        if text:
            steps.append({"kind": "assistant_message", "output": text})
        calls = [
            (b.get("id"), b.get("name"), b.get("input"))
            for b in blocks or []
            if isinstance(b, dict) and b.get("type") == "tool_use"
        ]
        for call in _items(path, here, message.get("tool_calls"), '"tool_calls"'):
            _need(path, here, call, dict, "a tool call object")
            function = call.get("function") if isinstance(call.get("function"), dict) else call
            calls.append((call.get("id"), function.get("name"), _args(function.get("arguments"))))
        for call_id, name, arguments in calls:
            step = {"kind": "tool_call", "name": str(name or "")[:200], "input": arguments}
            steps.append(step)
            if call_id:
                by_call[str(call_id)] = step
    return steps


# Where a conversation is in a record, and the names other tools give its roles: SWE
# trajectory datasets keep OpenAI messages under `trajectory` (SWE-rebench's and
# SWE-Zero's OpenHands runs) or `{role: "ai", text}` (nebius's SWE-agent runs);
# ShareGPT-style sets keep `conversations` of `{from: human | gpt, value}`.
_CHAT_KEYS = ("messages", "trajectory", "conversations", "conversation")
_CHAT_ROLES = {"human": "user", "gpt": "assistant", "ai": "assistant", "model": "assistant",
               "bot": "assistant", "observation": "tool", "function": "tool", "ipython": "tool"}  # fmt: skip


def _chat_message(message: Any) -> Any:
    """A message in the OpenAI shape: its role by the names above, its text from
    `content`, else `text` or `value`; a ShareGPT `function_call` turn (its value
    the call's JSON) an assistant tool call."""
    if not isinstance(message, dict):
        return message
    # First of the names given a value: a dataset exported with every column
    # (`Dataset.to_json`, pandas) has `"role": null` beside a ShareGPT `from`.
    role = _first(message, "role", "from")
    role = _CHAT_ROLES.get(role, role) if isinstance(role, str) else role
    content = _first(message, "content", "text", "value")
    if role == "function_call":
        call = _args(content)
        call = call if isinstance(call, dict) else {"name": "", "arguments": content}
        return {"role": "assistant", "tool_calls": [
            {"function": {"name": call.get("name"), "arguments": call.get("arguments")}}]}  # fmt: skip
    if role == message.get("role") and content is message.get("content"):
        return message
    return {**message, "role": role, "content": content}


_ENDS_ON_COMMAND = re.compile(r"```(?:bash|sh|mswea_bash_command)?[ \t]*\n.*?```\s*\Z", re.S)
# A call written as text, as OpenHands' prompt-based function calling (its and
# SWE-Gym's training trajectories), SWE-agent's xml_function_calling and R2E-Gym
# write it: `<function=execute_bash>\n<parameter=command>ls</parameter>\n</function>`.
_FUNCTION_CALL = re.compile(r"<function=([^>\s]{1,200})>(.*?)</function>", re.S)
_FUNCTION_PARAMETER = re.compile(r"<parameter=([^>\s]{1,200})>(.*?)</parameter>", re.S)
_ENDS_ON_FUNCTION = re.compile(r"</function>\s*\Z")
# What the harness wraps a call's result in when it hands it back as a user turn
# (OpenHands' "EXECUTION RESULT of [execute_bash]:", SWE-agent's "OBSERVATION:"):
# not the tool's output.
_RESULT_WRAPPER = re.compile(
    r"\A\s*(?:EXECUTION RESULT of \[[^\]\n]{1,200}\]:|OBSERVATION:)[ \t]*\n?"
)


def _text_actions(messages: list[Any]) -> bool:
    """An agent that acts in text (SWE-agent's and mini-swe-agent's text mode, a
    call written as `<function=...>` text): no structured tool call anywhere, and
    at least two assistant turns, and 80% of them, end on a command block or such
    a call. A chat assistant that ends an answer on a code block now and then is
    not one: its user's reply is no command's output."""
    structured = any(isinstance(m, dict) and (m.get("tool_calls") or m.get("role") == "tool"
                     or (isinstance(m.get("content"), list) and any(
                         isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
                         for b in m["content"]))) for m in messages)  # fmt: skip
    if structured:
        return False
    turns = [_text(m.get("content")) for m in messages
             if isinstance(m, dict) and m.get("role") == "assistant"]  # fmt: skip
    acting = sum(1 for text in turns
                 if _ENDS_ON_COMMAND.search(text) or _ENDS_ON_FUNCTION.search(text))  # fmt: skip
    return acting >= 2 and acting >= 0.8 * len(turns)


def _messages_decoded(path: Path, where: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record with its messages read from JSON text, when a dataset stores them
    as a string column (CoderForge's `messages`) rather than as a list."""
    for key in _CHAT_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                return {**record, key: json.loads(value)}
            except json.JSONDecodeError as exc:
                raise FormatError(path, where, f'"{key}" is text that is not a JSON list of '
                                  f"messages ({exc.msg})") from None  # fmt: skip
    return record


def _chat_jsonl(path: Path) -> Parsed:
    parsed = Parsed()
    items = _json_or_jsonl(path)
    if len(items) > 1 and all(isinstance(item, dict) and ("role" in item or "from" in item)
                              and not any(k in item for k in _CHAT_KEYS) for _, item in items):  # fmt: skip
        # One conversation saved as a JSON array of its messages (Cline's
        # api_conversation_history.json, a message dump), not a record per line.
        items = [("file", [item for _, item in items])]
    # A run with no id of its own is named by its messages, so that importing the
    # file again finds it; a later row of the file with the same messages (a run
    # repeated word for word, another model's identical attempt) is another run.
    unnamed: Counter[str] = Counter()
    for where, item in items:
        record = {"messages": item} if isinstance(item, list) else item
        _need(path, where, record, dict, "a conversation object or a list of messages")
        record = _messages_decoded(path, where, record)
        key = next((k for k in _CHAT_KEYS if isinstance(record.get(k), list)), "messages")
        messages = [_chat_message(m) for m in _need(
            path, where, record.get(key), list, '"messages" (or "trajectory"), a list')]  # fmt: skip
        # A text-acting agent's command is the tool call, the next turn its output.
        steps = (_mini_steps(messages, path) if _text_actions(messages)
                 else chat_steps(messages, path=path, where=where))  # fmt: skip
        task = next((s["input"] for s in steps if s["kind"] == "user_prompt"), "")
        reward = record.get("reward")
        # A dataset's table has both columns, null where a row has no such verdict.
        resolved = _first(record, "resolved", "target")
        if resolved in (0, 1) and not isinstance(resolved, float):
            resolved = bool(resolved)  # a dataset's 0/1 column
        status = record.get("status") or (
            ("succeeded" if resolved else "failed")
            if isinstance(resolved, bool)
            else _status(reward)
        )
        if not isinstance(status, str) or status not in {"succeeded", "failed", "unknown",
                                                        "running"}:  # fmt: skip
            raise FormatError(path, where, f"unknown status {status!r}")
        task_key = next((str(record[k]) for k in ("task_key", "task_id", "instance_id")
                         if isinstance(record.get(k), str | int)
                         and not isinstance(record[k], bool) and str(record[k])), "")  # fmt: skip
        model = record.get("model") or record.get("model_name")
        exit_status = record.get("exit_status")
        external_id = str(record.get("id") or record.get("trajectory_id")
                          or record.get("traj_id") or "")[:200]  # fmt: skip
        if not external_id:
            external_id = f"chat-{_digest(messages)}"
            unnamed[external_id] += 1
            if unnamed[external_id] > 1:
                external_id += f"-{unnamed[external_id]}"
        parsed.traces.append({
            "external_id": external_id,
            "agent": str(record.get("agent") or model or "chat")[:200],
            "model": str(model or "")[:200],
            "task_key": task_key[:200],
            "task": str(record.get("task") or task)[:100_000],
            "status": status, "reward": reward if isinstance(reward, int | float) else None,
            **({"metadata": {"exit_status": exit_status[:200]}}
               if isinstance(exit_status, str) and exit_status else {}),
            "steps": steps,
        })  # fmt: skip
    return parsed


# --- tau-bench and tau2-bench -------------------------------------------------


def _tau_bench(path: Path) -> Parsed:
    data = _need(path, "top level", _read_json(path), list, "a list of results")
    parsed = Parsed()
    for position, result in enumerate(data):
        where = f"result [{position}]"
        _need(path, where, result, dict, "a result object")
        traj = _need(path, where, result.get("traj"), list, '"traj", a list of messages')
        steps = chat_steps(traj, path=path, where=where)
        reward = result.get("reward")
        # The agent's system prompt is its domain's policy: what policy checks draft
        # rules from, and what tells airline task 0 from retail task 0.
        policy = next((_text(m.get("content"), 40_000) for m in traj
                       if isinstance(m, dict) and m.get("role") == "system"), "")  # fmt: skip
        task_id = result.get("task_id")
        parsed.traces.append({
            "external_id": f"tau-bench-{path.stem}-{task_id}-{result.get('trial', 0)}"[:200],
            # The model when the data names it (an airline and a retail file of one
            # model are one agent, each the other's contrast); tau-bench's own results
            # do not, and then the file's name (as InterCode's), never one name for
            # every model. --agent overrides.
            "agent": str(_obj(result.get("info")).get("model") or path.stem)[:200],
            "task_key": f"{_policy_key(policy)}{task_id}"[:200] if task_id is not None else "",
            # What the agent saw: the user's first turn. `info.task.instruction` is the
            # simulated user's private script (its ids, its "if the agent says…").
            "task": _first_user_turn(steps),
            "status": _status(reward), "reward": reward if isinstance(reward, int | float) else None,
            "metadata": {"task_id": str(task_id), "trial": result.get("trial", 0),
                         **({"policy": policy} if policy else {})},
            "steps": steps,
        })  # fmt: skip
    return parsed


_HEADING = re.compile(r"\s*#+\s*([^\n]{1,80})")


def _policy_key(policy: str) -> str:
    """The domain part of a tau-bench task key: task ids restart in each domain, whose
    policy (the system prompt) names it in its heading ("# Airline Agent Policy"),
    else a digest of the policy; nothing without one."""
    if not policy:
        return ""
    heading = _HEADING.match(policy)
    name = re.sub(r"[^a-z0-9]+", "-", heading.group(1).lower()).strip("-") if heading else ""
    return f"{name or _digest(policy)[:8]}:"


def _first_user_turn(steps: list[dict[str, Any]]) -> str:
    return next((_text(s.get("input"), 100_000) for s in steps if s["kind"] == "user_prompt"), "")


# How a tau2 run ended when neither side ended it (tau2's TerminationReason): the
# harness stopped it, and tau2 scores such a run 0 without running its checks. The
# stop is the run's last step, an error step, so the page and the diagnosis see
# it; the user's and the agent's own ends (`user_stop`, `agent_stop`) add nothing.
_TAU2_STOPS = {
    "max_steps": "it reached tau2's step limit (max_steps) before either side ended it",
    "too_many_errors": "too many of its tool calls failed (tau2's max_errors)",
    "timeout": "it ran out of time",
    "agent_error": "the agent raised an error",
    "user_error": "the simulated user raised an error (the harness's side, not the agent's)",
    "infrastructure_error": "the harness's infrastructure failed (not the agent)",
    "context_window_exceeded": "the conversation no longer fitted the model's context window",
    "unexpected_error": "an unexpected error in the harness",
}
_TAU2_ENDS = {"user_stop", "agent_stop"}
# Stops on the harness's side: tau2's 0 for such a run says nothing of the agent, so
# its outcome is imported as unknown (not counted in success rates, not diagnosed),
# with why beside it on the run's page, and no step says the agent failed.
_TAU2_NOT_THE_AGENT = {"user_error", "infrastructure_error"}


def _tau2_simulations(path: Path) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The simulations a tau2 file holds (each with where it is) and the run's info."""
    data = _need(path, "top level", _read_json(path), dict, "an object with simulations")
    if "simulations" not in data and ("messages" in data or "ticks" in data):
        # One simulation of a results directory; its info is in the results.json above.
        results = path.parent.parent / "results.json"
        info = _obj(_obj(_read_json(results)).get("info")) if results.is_file() else {}
        return [("simulation", data)], info
    info = _obj(data.get("info"))
    if "simulations" not in data and data.get("simulation_index") is not None:
        folder = path.parent / "simulations"
        if not folder.is_dir():
            raise FormatError(path, "simulations", "a tau2 results directory's results.json, "
                              "but no simulations/ folder beside it holds its runs")  # fmt: skip
        return [
            (f"simulations/{p.name}", _read_json(p)) for p in sorted(folder.glob("*.json"))
        ], info
    sims = _need(path, "simulations", data.get("simulations"), list, '"simulations", a list')
    return [(f"simulations[{i}]", sim) for i, sim in enumerate(sims)], info


def _tau2_bench(path: Path) -> Parsed:
    """A results file (`{info, tasks, simulations}`); tau2's directory format (a
    `results.json` without simulations, each in `simulations/<id>.json` beside it);
    or one of those simulation files on its own (its `info` from the results.json
    of the folder above, when there is one)."""
    sims, info = _tau2_simulations(path)
    agent_llm = _obj(info.get("agent_info")).get("llm") or "agent"
    domain = _obj(info.get("environment_info")).get("domain_name") or "tau2"
    # The written policy the agent was given (part of its system prompt): what policy
    # checks draft rules from (failures/policy.py).
    policy = _obj(info.get("environment_info")).get("policy")
    parsed = Parsed()
    for where, sim in sims:
        _need(path, where, sim, dict, "a simulation object")
        if sim.get("messages") is None and sim.get("ticks") is not None:
            raise FormatError(path, where, "a full-duplex (voice) simulation: its ticks are "
                              "not read; import text (half-duplex) runs, whose messages are")  # fmt: skip
        messages = _need(path, where, sim.get("messages"), list, '"messages", a list')
        steps = chat_steps(messages, path=path, where=where)
        reason = sim.get("termination_reason")
        if isinstance(reason, str) and reason and reason not in _TAU2_ENDS | _TAU2_NOT_THE_AGENT:
            steps.append({"kind": "error", "started_at": sim.get("end_time"),
                          "error": f"The run was stopped: {_TAU2_STOPS.get(reason, reason)}."})  # fmt: skip
        reward_info = _obj(sim.get("reward_info"))
        reward = reward_info.get("reward")
        status, outcome_from = _status(reward), {}
        if reason in _TAU2_NOT_THE_AGENT:
            status = "unknown"
            outcome_from = {"outcome_from": f"none (tau2 scored the run {reward}, but "
                            f"{_TAU2_STOPS[reason]}: the score is not the agent's)"}  # fmt: skip
        parsed.traces.append({
            "external_id": f"tau2-{sim.get('id') or _digest(messages)}"[:200],
            # The agent is its model, whatever the domain (the domain is in the task key).
            "agent": str(agent_llm)[:200], "model": str(agent_llm)[:200],
            "session_id": str(sim.get("task_id") or "")[:200],
            "task_key": f"{domain}:{sim.get('task_id')}"[:200] if sim.get("task_id") is not None else "",
            "checks": tau2_checks(reward_info),
            # What the agent saw (the user's first turn), never the simulated user's
            # private scenario; the task id is the key that groups a task's runs.
            "task": _first_user_turn(steps),
            "status": status, "reward": reward if isinstance(reward, int | float) else None,
            "started_at": sim.get("start_time"), "ended_at": sim.get("end_time"),
            "cost_usd": sim.get("agent_cost") if isinstance(sim.get("agent_cost"), int | float) else None,
            "metadata": {"task_id": str(sim.get("task_id")), "domain": domain,
                         "termination_reason": reason, **outcome_from,
                         "trial": sim.get("trial"),
                         **({"policy": policy[:40_000]} if isinstance(policy, str) else {})},
            "steps": steps,
        })  # fmt: skip
    return parsed


# --- AG2 group chats ------------------------------------------------------------

_EXITCODE = re.compile(
    r"^\s*(?:exitcode:\s*|The script ran, then exited with an error \(POSIX exit code:\s*)(-?\d+)"
)
_CODE_BLOCK = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)```", re.S)
EXECUTOR = "Computer_terminal"
# The code executors of AG2's CaptainAgent and of Magentic-One (autogen_magentic_one).
_EXECUTORS = {EXECUTOR, "ComputerTerminal"}
# Who speaks for the person in a Magentic-One log.
_HUMAN = {"human", "user"}
# Magentic-One's planner names its turns "Orchestrator (thought)", "Orchestrator
# (-> WebSurfer)", "Orchestrator (termination condition)".
_ORCHESTRATOR = re.compile(r"^Orchestrator \(")
# What a browsing agent's message reports of the page it is on, not words of its
# own: Magentic-One's WebSurfer ("I clicked 'X'.\n\nHere is a screenshot of
# [title](url)… Automatic OCR…") and the text browser of AG2's web agents and
# Magentic-One's FileSurfer ("Address: …\nTitle: …\nViewport position: Showing
# page 1 of 3.\n=====\n<the page>").
_SCREENSHOT = "Here is a screenshot of ["
_VIEWPORT = re.compile(
    r"\s*((?:Address|Path):? [^\n]*)\n(?:Title:? [^\n]*\n)?(?:You previously visited[^\n]*\n)?"
    r"Viewport position: Showing page \d+ of \d+\.\n=+\n"
)


def _browser_action(content: str) -> str | None:
    """The action of a message that reports a browser's page (the page is its
    output), or None for any other message."""
    at = content.find(_SCREENSHOT)
    if at == 0 or (at > 0 and content[:at].endswith("\n\n")):
        return content[:at].strip() or "screenshot"
    viewport = _VIEWPORT.match(content)
    return viewport.group(1).strip() if viewport else None


def _ag2_chat(path: Path) -> Parsed:
    data = _need(path, "top level", _read_json(path), dict, 'an object with "history"')
    history = _need(path, "history", data.get("history"), list, '"history", a list of messages')
    steps: list[dict[str, Any]] = []
    previous = ""
    magentic = False
    for position, message in enumerate(history):
        where = f"history[{position}]"
        _need(path, where, message, dict, "a message object")
        named = message.get("name")
        name = str(named or message.get("role") or "")[:200]
        content = _text(message.get("content"))
        magentic = magentic or (not named and bool(_ORCHESTRATOR.match(name)))
        if name in _EXECUTORS:
            code = "\n".join(_CODE_BLOCK.findall(previous))
            step: dict[str, Any] = {"kind": "tool_call", "name": name,
                                    "input": {"code": _text(code)} if code else {},
                                    "output": content}  # fmt: skip
            exit_code = _EXITCODE.match(content)
            if exit_code and exit_code.group(1) != "0":
                step["error"] = content
            steps.append(step)
        elif not named and name in _HUMAN:
            # AG2 names every speaker, and its agents speak as role "user" too; a
            # message with only a role of human or user is the person's.
            steps.append({"kind": "user_prompt", "input": content})
        elif (action := _browser_action(content)) is not None:
            # The page a browsing agent is on: what it saw (a tool's result), never
            # read as what it said (a page about simulations is no agent saying it
            # simulated data).
            steps.append({"kind": "tool_call", "name": f"{name}.browse"[:200],
                          "input": {"action": _text(action, 2_000)}, "output": content})  # fmt: skip
        else:
            steps.append({"kind": "assistant_message", "name": name, "output": content})
        previous = content
    # Who&When's hand-crafted logs spell the outcome `is_corrected`.
    correct = data["is_correct"] if "is_correct" in data else data.get("is_corrected")
    question = _text(data.get("question"), 100_000)
    key = str(data.get("question_ID") or _digest(question))
    return Parsed(traces=[{
        "external_id": f"ag2-{path.stem}-{key}"[:200],
        "agent": "magentic-one" if magentic else "ag2-group-chat",
        "task": question, "session_id": key[:200], "task_key": key[:200],
        "status": "succeeded" if correct is True else "failed" if correct is False else "unknown",
        "metadata": {"question_id": key, "level": str(data.get("level") or "")},
        "steps": steps,
    }] if steps else [])  # fmt: skip


# Which of tau2's checks each part of a task's `reward_basis` is.
_TAU2_BASIS = {"DB": "db_check", "ENV_ASSERTION": "env_assertions",
               "COMMUNICATE": "communicate_checks", "NL_ASSERTION": "nl_assertions"}  # fmt: skip


def tau2_checks(reward_info: dict[str, Any]) -> list[dict[str, Any]]:
    """tau2's named checks of a run: the database state, environment assertions,
    what had to be communicated and natural-language assertions, each passed or
    not. Only those the task's reward counts (`reward_basis`, when the run names
    one): a telecom task is scored on its environment assertions, and its
    `db_match`, reported false in runs that succeeded, is no verdict on the run.
    The expected actions are left out (see below)."""
    checks: list[dict[str, Any]] = []
    basis = reward_info.get("reward_basis")
    counted = (
        {_TAU2_BASIS[b] for b in basis if b in _TAU2_BASIS}
        if isinstance(basis, list) and basis else set(_TAU2_BASIS.values())
    )  # fmt: skip
    reward_info = {k: v for k, v in reward_info.items() if k in counted}
    db = reward_info.get("db_check")
    if isinstance(db, dict) and isinstance(db.get("db_match"), bool):
        checks.append({"name": "db_match", "passed": db["db_match"],
                       "detail": "" if db["db_match"] else "the database did not end as expected"})  # fmt: skip
    for item in _list(reward_info.get("env_assertions")):
        if isinstance(item, dict) and isinstance(item.get("met"), bool):
            spec = _obj(item.get("env_assertion"))
            name = f"env_assertion: {spec.get('func_name') or '?'}"
            checks.append({"name": name[:200], "passed": item["met"],
                           "detail": _text(spec.get("arguments"), 2000)})  # fmt: skip
    for item in _list(reward_info.get("communicate_checks")):
        if isinstance(item, dict) and isinstance(item.get("met"), bool):
            checks.append({"name": f"communicate: {_text(item.get('info'), 150)}"[:200],
                           "passed": item["met"], "detail": ""})  # fmt: skip
    for item in _list(reward_info.get("nl_assertions")):
        if isinstance(item, dict) and isinstance(item.get("met"), bool):
            checks.append({"name": f"nl_assertion: {_text(item.get('nl_assertion'), 150)}"[:200],
                           "passed": item["met"], "detail": _text(item.get("justification"), 2000)})  # fmt: skip
    # `action_checks` are the benchmark's answer key (the calls it expected): never
    # imported, so nothing the product concludes can lean on them.
    return checks[:500]


# --- InterCode ----------------------------------------------------------------

_TURNS = re.compile(r"_\d+_turns(?:_fs_\d+)?$")


def _intercode(path: Path) -> Parsed:
    data = _need(path, "top level", _read_json(path), dict, "an object keyed by task id")
    agent = _TURNS.sub("", path.stem) or path.stem
    parsed = Parsed()
    for key, episode in data.items():
        where = f"episode {key!r}"
        _need(path, where, episode, dict, "an episode object")
        history = _need(path, where, episode.get("turn_history"), dict, '"turn_history"')
        actions = _need(path, where, history.get("actions"), list, '"turn_history.actions"')
        observations = _items(path, where, history.get("observations"), '"observations"')
        valid = _items(path, where, history.get("valid_action"), '"valid_action"')
        thoughts = _items(path, where, history.get("thoughts"), '"thoughts"')
        tool = str(episode.get("environment") or "ic").removeprefix("ic_")
        steps: list[dict[str, Any]] = [
            {"kind": "user_prompt", "input": _text(episode.get("query"))}
        ]
        for i, action in enumerate(actions):
            if i < len(thoughts) and thoughts[i]:
                steps.append({"kind": "assistant_message", "output": _text(thoughts[i])})
            text = _text(action)
            name = "submit" if text.strip().startswith("submit") else tool
            step: dict[str, Any] = {"kind": "tool_call", "name": name, "input": {"command": text}}
            if i < len(observations):
                step["output"] = _text(observations[i])
            if i < len(valid) and valid[i] is False:
                step["error"] = step.get("output") or "invalid action"
            steps.append(step)
        summary = _obj(episode.get("summary"))
        reward = summary.get("max_reward")
        parsed.traces.append({
            "external_id": f"intercode-{path.stem}-{key}"[:200], "agent": agent[:200],
            "task_key": _intercode_task_key(episode, tool, key),
            "task": _text(episode.get("query"), 100_000),
            "status": _status(reward), "reward": reward if isinstance(reward, int | float) else None,
            "metadata": {"task_id": str(key), "environment": episode.get("environment"),
                         "hardness": episode.get("hardness")},
            "checks": intercode_checks(tool, actions, history.get("rewards"), reward),
            "steps": steps,
        })  # fmt: skip
    return parsed


# What InterCode's reward measures in each environment (intercode/envs/*): the
# check's name, and what its failing says at no score and at a partial one.
_INTERCODE_CHECKS = {
    "sql": ("result rows", "none of the expected rows were returned",
            "the rows returned only partly matched the expected rows"),
    "bash": ("files and output",
             "neither the files nor the output matched the expected command's",
             "the files or the output only partly matched the expected command's"),
    "python": ("unit tests", "the function passed none of the task's unit tests",
               "the function passed some of the task's unit tests, not all"),
    "ctf": ("flag", "no correct flag was submitted", "no correct flag was submitted"),
}  # fmt: skip
# Bash scores 0.01 for an answer that matches nothing (0.01 + 0.33 per part matched).
_NO_SCORE = 0.01


def intercode_checks(
    tool: str, actions: list[Any], rewards: Any, best: Any
) -> list[dict[str, Any]]:
    """InterCode's verdict on an episode as one named check: what the environment
    compares (the rows a query returned, a command's files and output, a function's
    unit tests, a flag) and how close the best scored action came. The harness
    scores every action of a multi-turn episode (only `submit` in ReAct files), so
    the detail also says when the last answer scored lower than an earlier one."""
    if not isinstance(best, int | float) or isinstance(best, bool):
        return []
    name, none, partly = _INTERCODE_CHECKS.get(
        tool, ("reward", "the answer scored nothing", "the answer scored partly")
    )
    if best >= 1.0:
        return [{"name": name, "passed": True, "detail": ""}]
    scores = [
        float(r) for r in (rewards if isinstance(rewards, list) else [])
        if isinstance(r, int | float) and not isinstance(r, bool)
    ]  # fmt: skip
    submitted = any(_text(a).strip().startswith("submit") for a in actions)
    if tool == "bash" and not submitted and all(r == 0 for r in scores) and actions:
        # ReAct episodes are scored only on `submit`.
        said = "no answer was submitted"
    else:
        said = none if best <= (_NO_SCORE if tool == "bash" else 0.0) else partly
    where = ""
    if scores and max(scores) <= 0:
        where = f"{len(scores)} action{'s' if len(scores) > 1 else ''} scored, none above 0"
    elif scores:
        at = scores.index(max(scores)) + 1
        where = f"best score {best:.2f} at action {at} of {len(scores)}"
        if scores[-1] < max(scores) and len(scores) > 1:
            said += "; its last answer scored lower than an earlier one"
            where += f", last {scores[-1]:.2f}"
    return [{"name": name, "passed": False, "detail": f"{said} ({where})" if where else said}]


def _intercode_task_key(episode: dict[str, Any], tool: str, key: str) -> str:
    """The environment, the dataset file and the task id: task ids restart at 0 in
    each dataset file (nl2bash has one per file system), so "bash:0" of fs_1 and
    of fs_2 are different tasks; the same dataset run by two models is one task."""
    dataset = Path(str(episode.get("dataset") or "")).stem
    parts = [str(episode.get("environment") or tool), dataset, str(key)]
    return ":".join(p for p in parts if p)[:200]


# --- SWE-agent and mini-swe-agent ---------------------------------------------


# What SWE-agent itself answers when a command did not run or did not finish (its
# templates; the command's own output says nothing of an exit code): an edit its
# linter refused, a command cut off by its timeout, bash that would not parse.
_SWE_REFUSED = re.compile(
    r"\s*(?:Your proposed edit has introduced new syntax error"
    r"|The command '.*?' was cancelled because it took more than \d+ seconds"
    r"|Your bash command contained syntax errors and was NOT executed"
    r"|EXECUTION TIMED OUT)",
    re.S,
)


def _swe_agent(path: Path) -> Parsed:
    data = _read_json(path)
    if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m for m in data):
        data = {"messages": data}  # early mini-swe-agent: the messages alone
    data = _need(path, "top level", data, dict, "a trajectory object")
    info = _obj(data.get("info"))
    stats = _obj(info.get("model_stats"))
    instance = path.name.removesuffix(".json").removesuffix(".traj")
    steps: list[dict[str, Any]] = []
    if isinstance(data.get("trajectory"), list):  # SWE-agent
        history = _items(path, "history", data.get("history"), '"history"')
        task = next(
            (_text(m.get("content")) for m in history
             if isinstance(m, dict) and m.get("role") == "user"), "")  # fmt: skip
        for i, entry in enumerate(data["trajectory"]):
            _need(path, f"trajectory[{i}]", entry, dict, "an object")
            if entry.get("thought"):
                steps.append({"kind": "assistant_message", "output": _text(entry["thought"])})
            action = _text(entry.get("action")).strip()
            observation = _text(entry.get("observation"))
            step = {"kind": "tool_call", "name": (action.split() or ["action"])[0][:200],
                    "input": {"command": action}, "output": observation,
                    "duration_ms": _ms(entry.get("execution_time"))}  # fmt: skip
            if _SWE_REFUSED.match(observation):
                step["error"] = observation  # the harness refused or stopped the command
            steps.append(step)
    elif isinstance(data.get("messages"), list):  # mini-swe-agent
        steps = _mini_steps(data["messages"], path)
        task = next((s["input"] for s in steps if s["kind"] == "user_prompt"), "")
    else:
        raise FormatError(
            path, "top level", 'neither "trajectory" (SWE-agent) nor "messages" (mini-swe-agent)'
        )
    exit_status = str(info.get("exit_status") or "")
    submitted = exit_status.lower() in {"submitted", ""} or exit_status.lower().startswith(
        "submitted"
    )
    outcome = swe_outcome(path, instance)
    resolved = outcome.resolved if outcome.resolved is not None else info.get("resolved")
    status = ("succeeded" if resolved else "failed") if isinstance(resolved, bool) else (
        "unknown" if submitted else "failed")  # fmt: skip
    # The run's folder: <run>/<instance>/<instance>.traj.json (mini-swe-agent),
    # <submission>/trajs/<instance>.traj (SWE-bench/experiments), <run>/<instance>.traj.
    run = (path.parent.parent.name if path.parent.name in (instance, "trajs")
           else path.parent.name)  # fmt: skip
    model = _obj(_obj(_obj(info.get("config")).get("model"))).get("model_name")
    return Parsed(traces=[{
        "external_id": f"swe-{run or 'run'}-{instance}"[:200],
        "agent": str(info.get("agent") or model or "swe-agent")[:200],
        "task_key": f"swe:{instance}"[:200], "checks": outcome.checks,
        "task": task[:100_000], "status": status,
        "cost_usd": stats.get("instance_cost") if isinstance(stats.get("instance_cost"), int | float) else None,
        "metadata": {"instance_id": instance, "exit_status": exit_status,
                     "outcome_from": outcome.source or ("info.resolved" if isinstance(resolved, bool) else "")},
        "steps": steps,
    }])  # fmt: skip


@dataclass
class SweOutcome:
    resolved: bool | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""


_MAX_REPORT_BYTES = 50_000_000


# The lists of SWE-bench/experiments' `results/results.json` beside `resolved`
# (older submissions have all of them, newer ones the first two).
_LEADERBOARD_KEYS = ("no_generation", "no_logs", "generated", "applied", "install_fail")


@dataclass(frozen=True)
class _Summary:
    """A summary report: the ids it says were resolved, and which others it says were
    not (`every_other`: each instance it does not list as resolved)."""

    name: str
    resolved: frozenset[str]
    not_resolved: frozenset[str] = frozenset()
    every_other: bool = False

    def says(self, instance: str) -> bool | None:
        if instance in self.resolved:
            return True
        return False if self.every_other or instance in self.not_resolved else None


def _summary(name: str, data: Any) -> _Summary | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("resolved_ids"), list):
        not_resolved: set[str] = set()
        for key in ("unresolved_ids", "error_ids", "empty_patch_ids", "incomplete_ids"):
            not_resolved |= {str(i) for i in data.get(key) or [] if isinstance(i, str)}
        return _Summary(name, frozenset(str(i) for i in data["resolved_ids"]),
                        frozenset(not_resolved))  # fmt: skip
    resolved = data.get("resolved")
    if isinstance(resolved, list) and any(isinstance(data.get(k), list) for k in _LEADERBOARD_KEYS):
        return _Summary(name, frozenset(str(i) for i in resolved), every_other=True)
    return None


@functools.lru_cache(maxsize=64)
def _summaries(folder: Path) -> tuple[_Summary, ...]:
    """Summary reports in a folder (and its `results/results.json`)."""
    found = []
    for candidate in sorted([*folder.glob("*.json"), *folder.glob("results/results.json")]):
        if candidate.name.endswith(".traj.json") or candidate.stat().st_size > _MAX_REPORT_BYTES:
            continue
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (summary := _summary(str(candidate), data)) is not None:
            found.append(summary)
    return tuple(found)


def swe_outcome_in(report: Path, instance: str) -> SweOutcome:
    """The outcome of one instance in a given report file (`--results`): a summary
    with resolved_ids, or a report keyed by instance id."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(report, "top level", f"not a readable JSON report ({exc})") from None
    if not isinstance(data, dict):
        raise FormatError(report, "top level", "expected an object (a SWE-bench report)")
    item = _obj(data.get(instance))
    if isinstance(item.get("resolved"), bool):
        return SweOutcome(item["resolved"], _test_checks(item), str(report))
    summary = _summary(str(report), data)
    said = summary.says(instance) if summary is not None else None
    return SweOutcome(said, [], str(report)) if said is not None else SweOutcome()


# The formats whose runs are SWE-bench instances, so a harness report given apart
# (`--results`) can say how each went.
SWE_RESULT_FORMATS = ("swe-agent", "openhands")


def apply_swe_results(traces: list[Any], report: Path) -> None:
    """Give each run the outcome the report (`--results`) says of its instance, with
    its tests as checks; a run the report does not name keeps what it had."""
    for trace in traces:
        if not isinstance(trace, dict):
            continue
        metadata = _obj(trace.get("metadata"))
        outcome = swe_outcome_in(report, str(metadata.get("instance_id") or ""))
        if outcome.resolved is not None:
            trace["status"] = "succeeded" if outcome.resolved else "failed"
            trace["checks"] = outcome.checks or trace.get("checks") or []
            trace["metadata"] = {**metadata, "outcome_from": outcome.source}


def swe_outcome(path: Path, instance: str) -> SweOutcome:
    """What the SWE-bench harness said of one instance, from files beside the run."""
    folders = [path.parent, *list(path.parents)[1:4]]
    for folder in folders:
        for report in sorted(folder.glob(f"logs/**/{glob.escape(instance)}/report.json"))[:1]:
            try:
                data = _obj(_obj(json.loads(report.read_text(encoding="utf-8"))).get(instance))
            except (OSError, ValueError):
                continue
            if isinstance(data.get("resolved"), bool):
                return SweOutcome(data["resolved"], _test_checks(data), str(report))
    for folder in folders:
        for summary in _summaries(folder):
            if (said := summary.says(instance)) is not None:
                return SweOutcome(said, [], summary.name)
    return SweOutcome()


def _test_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each FAIL_TO_PASS test, and each PASS_TO_PASS test that broke, as a check."""
    status = _obj(report.get("tests_status"))
    checks: list[dict[str, Any]] = []
    for group, every in (("FAIL_TO_PASS", True), ("PASS_TO_PASS", False)):
        results = _obj(status.get(group))
        for passed, key in ((True, "success"), (False, "failure")):
            if passed and not every:
                continue  # thousands of tests that kept passing say nothing
            for test in _list(results.get(key)):
                checks.append({"name": f"{group}: {_text(test, 180)}"[:200], "passed": passed,
                               "detail": ""})  # fmt: skip
    return checks[:500]


def _ms(seconds: Any) -> float | None:
    return seconds * 1000 if isinstance(seconds, int | float) and seconds >= 0 else None


# The action's block: ```bash (early mini-swe-agent), ```mswea_bash_command (its
# default action fence since), ```sh, or a bare fence.
_BASH_BLOCK = re.compile(r"```(?:bash|sh|mswea_bash_command)?[ \t]*\n(.*?)```", re.S)


# What mini-swe-agent's templates say of a command that did not succeed: its exit
# code (`<returncode>1</returncode>`, v1's text mode; `[exit code 1]`, v2's tool
# calls), an exception (`Exception: ...`, v2), or a timeout (v1).
_MINI_EXIT = re.compile(
    r"<returncode>(-?\d+)</returncode>|\[exit code (-?\d+)\]\s*$"
    # OpenHands' command observations, current and earlier wording.
    r"|\[(?:The command completed|Command finished) with exit code (-?\d+)\.?\]"
)
_MINI_REASON = re.compile(r"<error>\s*(.{1,2000}?)\s*</error>", re.S)
_MINI_FAILED = re.compile(r"^Exception: |^The last command <command>.*</command> timed out", re.S)


def _mini_error(message: dict[str, Any], text: str) -> str:
    """The error of a command's observation, or "": v2 keeps the exit code and any
    exception in the message's `extra`; v1 only in the text its templates wrote."""
    extra = _obj(message.get("extra"))
    code, exception = extra.get("returncode"), extra.get("exception_info")
    if exception or (isinstance(code, int) and not isinstance(code, bool) and code != 0):
        return text or _text(exception) or f"exit code {code}"
    if "returncode" in extra:
        return ""
    found = _MINI_EXIT.search(text)
    if found and next(code for code in found.groups() if code is not None) != "0":
        return text
    return text if _MINI_FAILED.match(text) else ""


def _mini_steps(messages: list[Any], path: Path) -> list[dict[str, Any]]:
    """mini-swe-agent: an assistant turn holds one bash block (v1) or bash tool
    calls (v2); the next user (v1) or tool (v2, by call id) messages are their
    outputs. A reply the harness rejected (`extra.interrupt_type` FormatError) is
    an error step; v2's closing `exit` message is an error step when the run did
    not end by submitting."""
    steps: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # the last turn's calls, in order
    by_id: dict[str, dict[str, Any]] = {}
    for i, message in enumerate(messages):
        _need(path, f"messages[{i}]", message, dict, "a message object")
        role, text = message.get("role"), _text(message.get("content"))
        extra = _obj(message.get("extra"))
        if role == "system":
            continue
        if role == "assistant":
            pending = []
            if message.get("tool_calls"):
                start = len(steps)
                steps += chat_steps([message], path=path, where=f"messages[{i}]")
                calls = _list(message.get("tool_calls"))
                pending = [st for st in steps[start:] if st["kind"] == "tool_call"]
                for call, step in zip(calls, pending, strict=False):
                    if isinstance(call, dict) and call.get("id") is not None:
                        by_id[str(call["id"])] = step
                continue
            block = _BASH_BLOCK.search(text)
            steps.append({"kind": "assistant_message", "output": text})
            if functions := _FUNCTION_CALL.findall(text):
                # Calls written as text, each with its parameters; the next user
                # turns ("EXECUTION RESULT of [execute_bash]: ...") their outputs.
                pending = [{"kind": "tool_call", "name": name[:200], "input": {
                    key[:200]: value.strip("\n") for key, value in _FUNCTION_PARAMETER.findall(body)
                }} for name, body in functions]  # fmt: skip
                steps += pending
            elif block:
                command = block.group(1).strip()
                pending = [{"kind": "tool_call", "name": (command.split() or ["bash"])[0][:200],
                            "input": {"command": command}}]  # fmt: skip
                steps.append(pending[0])
            continue
        if role == "exit":
            status = str(extra.get("exit_status") or "")
            if status and not status.lower().startswith("submitted"):
                steps.append({"kind": "error", "error": f"The run ended: {status}"
                              + (f"\n{text}" if text else "")})  # fmt: skip
            pending = []
            continue
        if extra.get("interrupt_type") == "FormatError":
            # v2's template wraps the reason ("Tool call error:\n<error>...</error>"):
            # the reason is the error (the page and the diagnosis lead with its
            # decisive line, which would be "Tool call error:" in the whole text);
            # the harness's whole message, its guidance too, is the step's output.
            reason = _MINI_REASON.search(text)
            error = (f"The reply was rejected: {' '.join(reason.group(1).split())}" if reason
                     else text or "The reply was rejected: not in the format asked.")  # fmt: skip
            steps.append({"kind": "error", "error": error, "output": text})
            continue
        call = by_id.pop(str(message.get("tool_call_id")), None) if role == "tool" else None
        if call is None and pending and isinstance(role, str) and role in {"user", "tool"}:
            call = pending[0]
        if call is not None:
            pending = [c for c in pending if c is not call]
            text = _RESULT_WRAPPER.sub("", text, count=1)
            call["output"] = text
            if error := _mini_error(message, text):
                call["error"] = error
            continue
        steps.append({"kind": "user_prompt", "input": text})
    return steps


# --- Claude Code transcripts --------------------------------------------------


# How a headless Claude Code run (`claude -p --output-format stream-json`) ended,
# when it did not end by finishing (its closing `result` line's subtype).
_CLAUDE_ENDS = {"error_max_turns": "it reached its turn limit (--max-turns)",
                "error_during_execution": "an error during execution",
                "error_max_budget_usd": "it reached its budget"}  # fmt: skip


def _claude_transcript(path: Path) -> Parsed:
    """Claude Code transcripts (`~/.claude/projects/**/*.jsonl`), and the JSON lines
    of a headless run (`claude -p --output-format stream-json`): its `init` line's
    model, its subagents' messages (`parent_tool_use_id`) inside the call that
    started them, and its closing `result` line: the cost, and, when the run did
    not end by finishing (`error_max_turns`, `error_during_execution`), a last
    error step saying so."""
    sessions: dict[tuple[str, str], dict[str, Any]] = {}
    calls: dict[str, dict[str, Any]] = {}
    ends: dict[str, dict[str, Any]] = {}
    models: dict[str, str] = {}
    # Each run's model response being read: its id and the step holding its tokens.
    responses: dict[tuple[str, str], list[Any]] = {}
    qwen: set[str] = set()
    for where, entry in _json_or_jsonl(path):
        _need(path, where, entry, dict, "a transcript entry")
        kind = entry.get("type")
        session_id = str(entry.get("sessionId") or entry.get("session_id") or path.stem)
        if kind == "result":
            ends[session_id] = entry
            continue
        if (
            kind == "system"
            and entry.get("subtype") == "init"
            and isinstance(entry.get("model"), str)
        ):
            models[session_id] = entry["model"]
            if entry.get("qwen_code_version"):
                qwen.add(session_id)  # Qwen Code's headless stream, in Claude Code's shape
            continue
        if not isinstance(kind, str) or kind not in {"user", "assistant"}:
            continue  # hook notices, snapshots, summaries
        # A subagent's entries (its own file, or inline in older versions) carry
        # the parent's sessionId: they nest under the call that started it. In a
        # headless run's stream they name that call (`parent_tool_use_id`).
        spawned_by = entry.get("parent_tool_use_id")
        agent = (str(entry.get("agentId") or "sidechain")[:100] if entry.get("isSidechain")
                 else f"tool:{spawned_by}"[:100] if isinstance(spawned_by, str) and spawned_by else "")  # fmt: skip
        trace = sessions.setdefault((session_id, agent), {
            "external_id": f"claude-code-{session_id}"[:200], "agent": "claude-code",
            "session_id": session_id[:200], "task": "", "status": "unknown", "steps": [],
            "started_at": entry.get("timestamp"), "model": "",
            "metadata": {"transcript": True, "tool_use_ids": {},
                         **({"subagent": agent} if agent else {})},
        })  # fmt: skip
        trace["ended_at"] = entry.get("timestamp")
        message = _obj(entry.get("message"))
        content = message.get("content")
        stamp = entry.get("timestamp")
        if kind == "assistant":
            if entry.get("isApiErrorMessage"):
                trace["steps"].append(
                    {
                        "kind": "error",
                        "error": _text(content, 10_000) or "API error",
                        "started_at": stamp,
                    }
                )
                continue
            if message.get("model") and message.get("model") != "<synthetic>":
                trace["model"] = str(message["model"])[:200]
            before = len(trace["steps"])
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text" and block.get("text"):
                    trace["steps"].append(
                        {
                            "kind": "assistant_message",
                            "output": _text(block["text"]),
                            "started_at": stamp,
                        }
                    )
                elif block.get("type") == "tool_use":
                    step = {"kind": "tool_call", "name": str(block.get("name") or "")[:200],
                            "input": block.get("input"), "started_at": stamp}  # fmt: skip
                    trace["steps"].append(step)
                    calls[str(block.get("id"))] = step
                    if block.get("id"):
                        # Lets a trace its hooks built take this transcript in (merge).
                        trace["metadata"]["tool_use_ids"][str(len(trace["steps"]) - 1)] = str(
                            block["id"]
                        )[:200]
            _claude_usage(responses, (session_id, agent), message, trace["steps"][before:])
            continue
        responses.pop((session_id, agent), None)  # the next assistant entry is a new response
        if entry.get("isCompactSummary") or entry.get("isMeta"):
            continue
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                result_of = calls.get(str(block.get("tool_use_id")))
                output = _text(block.get("content"))
                if result_of is None:
                    continue
                result_of["output"] = output
                if block.get("is_error"):
                    result_of["error"] = output or "tool reported an error"
        text = _text(content) if isinstance(content, str) else _text(
            [b for b in _items(path, where, content, '"content"')
             if isinstance(b, dict) and b.get("type") == "text"])  # fmt: skip
        if text:
            trace["steps"].append({"kind": "user_prompt", "input": text, "started_at": stamp})
            if not trace["task"] and not text.startswith(("<", "[Request interrupted")):
                trace["task"] = text[:100_000]
    traces = []
    for (session_id, agent), trace in sessions.items():
        trace["model"] = trace["model"] or models.get(session_id, "")[:200]
        parent = sessions.get((session_id, "")) if agent else None
        if parent is None:
            traces.append(trace)  # a session; or a subagent whose parent is stored already
            continue
        ids = parent["metadata"]["tool_use_ids"]
        at = (next((int(i) for i, tid in ids.items() if f"tool:{tid}" == agent), None)
              if agent.startswith("tool:") else spawning_call(parent["steps"], agent, trace["started_at"]))  # fmt: skip
        for step in trace["steps"]:
            parent["steps"].append({**step, "parent_index": at} if at is not None else step)
    for trace in traces:  # after its subagents' steps: how the run ended is its last
        if end := ends.get(trace["session_id"]):
            _claude_end(trace, end)
        if trace["session_id"] in qwen:
            trace["agent"] = "qwen-code"
            trace["external_id"] = f"qwen-code-stream-{trace['session_id']}"[:200]
    return Parsed(traces=traces)


def _claude_usage(
    responses: dict[tuple[str, str], list[Any]],
    run: tuple[str, str],
    message: dict[str, Any],
    new_steps: list[dict[str, Any]],
) -> None:
    """A model response's tokens, once, on the first step it made. Claude Code
    writes an entry per content block of a response (a thought, a text, each tool
    call), each with the response's id and usage; the usage is the response's (its
    output count grows as it streams), so it is read once per response, not once
    per block. Its tokens are every token the model read and wrote: the input, the
    cache written and read, and the output (what a run's other readers count)."""
    usage = _obj(message.get("usage"))
    tokens = min(2_147_483_647, sum(_count(usage.get(key)) for key in (
        "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
        "output_tokens")))  # fmt: skip
    response_id = message.get("id")
    current = responses.get(run)
    if current is None or not response_id or current[0] != response_id:
        current = [response_id, None, 0]
        responses[run] = current
    current[2] = max(current[2], tokens)
    if current[1] is None and new_steps:
        current[1] = new_steps[0]
    if current[1] is not None and current[2]:
        current[1]["tokens"] = current[2]


def _claude_end(trace: dict[str, Any], end: dict[str, Any]) -> None:
    """A headless run's closing `result` line: its cost, its turns, and how it
    ended when it did not end by finishing (a last error step)."""
    cost = end.get("total_cost_usd")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        trace["cost_usd"] = cost
    if isinstance(end.get("num_turns"), int):
        trace["metadata"]["num_turns"] = end["num_turns"]
    subtype = str(end.get("subtype") or "")
    if subtype and subtype != "success":
        said = _text(end.get("result"), 2_000) if isinstance(end.get("result"), str) else ""
        trace["steps"].append({"kind": "error", "started_at": trace.get("ended_at"),
                               "error": f"The run ended: {_CLAUDE_ENDS.get(subtype, subtype)}."
                               + (f"\n{said}" if said else "")})  # fmt: skip


# --- Codex rollouts ------------------------------------------------------------

# What Codex puts in a user message that the person did not type: the project's
# AGENTS.md, the environment and permission notes.
_CODEX_SCAFFOLD = re.compile(
    r"\s*(<environment_context>|<user_instructions>|<permissions instructions>|<INSTRUCTIONS>"
    r"|# AGENTS\.md instructions)"
)
# A shell result as Codex words it for the model: "Exit code: 1" (shell_command),
# "Process exited with code 1" (exec_command).
_CODEX_EXIT = re.compile(r"^(?:Exit code:|Process exited with code) (-?\d+)\s*$", re.M)
_CODEX_CALLS = {"function_call", "custom_tool_call", "local_shell_call", "web_search_call"}
_CODEX_RESULTS = {"function_call_output", "custom_tool_call_output"}


# Code mode: the model writes a script (`exec`, a custom tool call) that calls
# the tools (`tools.exec_command(...)`, `tools.apply_patch(...)`); each of those
# calls' results is an event with an id of its own (`exec-<uuid>`), which no
# response item names. Each is a call inside the script's step.
_CODEX_SCRIPT = "exec"
_CODEX_INNER = {"exec_command_end", "patch_apply_end", "mcp_tool_call_end"}


def _codex_inner_call(
    item: str, payload: dict[str, Any], parent: int, stamp: Any
) -> dict[str, Any]:
    """A call a code-mode script made, from its result event: a command (its
    output and exit code), a patch (the files it changed, whether it applied) or an
    MCP tool (`<server>.<tool>`, its arguments, its result's content; an `Err`, an
    `error` or `isError` its error)."""
    if item == "mcp_tool_call_end":
        invocation = _obj(payload.get("invocation"))
        result = payload.get("result")
        ok = _obj(result).get("Ok", result)
        err = _obj(result).get("Err") or payload.get("error")
        output = _text(_obj(ok).get("content")) or (
            _text(_obj(ok).get("structuredContent")) if _obj(ok).get("structuredContent") else "")  # fmt: skip
        flagged = _obj(ok).get("isError") is True or _obj(ok).get("is_error") is True
        error = (
            _text(err, 10_000)
            if err
            else (output or "the tool reported an error")
            if flagged
            else ""
        )
        name = ".".join(str(invocation[k]) for k in ("server", "tool") if invocation.get(k))
        step: dict[str, Any] = {"name": (name or "mcp")[:200], "input": invocation.get("arguments"),
                                "output": output, "error": error}  # fmt: skip
    elif item == "exec_command_end":
        command = payload.get("command")
        if isinstance(command, list):
            command = " ".join(str(part) for part in command)
        output = _text(payload.get("aggregated_output") or payload.get("formatted_output")
                       or payload.get("stdout"))  # fmt: skip
        code = payload.get("exit_code")
        failed = isinstance(code, int) and not isinstance(code, bool) and code != 0
        error = (_text(payload.get("stderr")) or output or f"exit code {code}") if failed else ""
        step = {"name": "exec_command", "input": {"command": _text(command)},
                "output": output, "error": error}  # fmt: skip
    else:
        changes = payload.get("changes")
        output = _text(payload.get("stdout"))
        error = (_text(payload.get("stderr")) or "the patch did not apply"
                 if payload.get("success") is False else "")  # fmt: skip
        step = {"name": "apply_patch", "output": output, "error": error,
                "input": {"files": sorted(str(k) for k in changes)} if isinstance(changes, dict) else None}  # fmt: skip
    return {"kind": "tool_call", "parent_index": parent, "started_at": stamp, **step}


def codex_result(output: Any) -> tuple[str, int | None]:
    """A call's result text and exit code: a JSON text `{"output", "metadata":
    {"exit_code"}}` (older shells, apply_patch), or the text Codex gives the model,
    whose header may state the exit code."""
    if isinstance(output, dict):  # {"content", "success"}, as some versions store it
        if output.get("success") is False:
            return _text(output.get("content", output)), 1
        output = output.get("content", output)
    parsed = _args(output) if isinstance(output, str) and output.startswith("{") else None
    if isinstance(parsed, dict) and "output" in parsed:
        code = _obj(parsed.get("metadata")).get("exit_code")
        return _text(parsed.get("output")), code if type(code) is int else None
    text = _text(output)
    found = _CODEX_EXIT.search(text[:2_000])
    return text, int(found.group(1)) if found else None


_CODEX_EXEC_EVENTS = {"thread.started", "turn.started", "turn.completed", "turn.failed",
                      "item.started", "item.updated", "item.completed"}  # fmt: skip


def _codex_exec_stream(path: Path, lines: list[tuple[str, Any]]) -> Parsed:
    """`codex exec --json` output: one run from its completed items (the agent's
    messages; commands with their output, a non-zero exit code, a failed or
    declined command their error; file changes, a failed one an error; MCP tool
    calls, an error result their error; web searches), `turn.failed` and `error`
    lines error steps, `turn.completed` usage as tokens: each turn's on the first
    step it made (the run's total also in `metadata.codex_exec_tokens`). Named
    `codex-exec-<thread id>`, apart from the session's rollout and hooks, whose call
    ids it lacks."""
    thread, tokens, turn_start = path.stem, 0, 0
    steps: list[dict[str, Any]] = []
    for where, line in lines:
        _need(path, where, line, dict, "an exec event (an object)")
        kind = line.get("type")
        if kind == "thread.started":
            thread = str(line.get("thread_id") or thread)
        elif kind == "turn.started":
            turn_start = len(steps)
        elif kind == "turn.completed":
            usage = obj(line.get("usage"))
            turn = _count(usage.get("input_tokens")) + _count(usage.get("output_tokens"))
            tokens += turn
            # The turn's tokens on the first step it made, past its user message.
            made = [s for s in steps[turn_start:] if s["kind"] != "user_prompt"]
            if turn and made:
                made[0]["tokens"] = min(2_147_483_647, _count(made[0].get("tokens")) + turn)
        elif kind in ("turn.failed", "error"):
            message = obj(line.get("error")).get("message") or line.get("message")
            steps.append({"kind": "error", "error": _text(message, 10_000) or str(kind)})
        elif kind == "item.completed":
            item = obj(line.get("item"))
            item_type, status = (
                item.get("type") or item.get("item_type"),
                str(item.get("status") or ""),
            )
            if item_type in ("agent_message", "assistant_message") and item.get("text"):
                steps.append({"kind": "assistant_message", "output": _text(item["text"])})
            elif item_type == "user_message":
                steps.append(
                    {"kind": "user_prompt", "input": _text(item.get("text") or item.get("content"))}
                )
            elif item_type == "command_execution":
                code, output = item.get("exit_code"), _text(item.get("aggregated_output"))
                failed = status in ("failed", "declined") or (type(code) is int and code != 0)
                steps.append({"kind": "tool_call", "name": "exec_command",
                              "input": {"command": _text(item.get("command"))}, "output": output,
                              "error": (output or f"{status} (exit code {code})") if failed else ""})  # fmt: skip
            elif item_type == "file_change":
                files = sorted(str(obj(c).get("path")) for c in _list(item.get("changes")))
                steps.append({"kind": "tool_call", "name": "apply_patch", "input": {"files": files},
                              "error": "the patch did not apply" if status == "failed" else ""})  # fmt: skip
            elif item_type == "mcp_tool_call":
                result, error = obj(item.get("result")), obj(item.get("error")).get("message")
                name = ".".join(str(item[k]) for k in ("server", "tool") if item.get(k)) or "mcp"
                steps.append({"kind": "tool_call", "name": name[:200], "input": item.get("arguments"),
                              "output": _text(result.get("content")),
                              "error": _text(error, 10_000) or ("the tool call failed" if status == "failed" else "")})  # fmt: skip
            elif item_type == "web_search":
                steps.append(
                    {
                        "kind": "tool_call",
                        "name": "web_search",
                        "input": {"query": item.get("query")},
                    }
                )
            elif item_type == "error" and item.get("message"):
                steps.append({"kind": "error", "error": _text(item["message"], 10_000)})
    for step in steps:  # a step with no error text carries none
        if not step.get("error"):
            step.pop("error", None)
    parsed = Parsed()
    parsed.traces.append({
        "external_id": f"codex-exec-{thread}"[:200], "agent": "codex", "session_id": thread[:200],
        "task": _first_user_turn(steps), "status": "unknown", "steps": steps,
        "metadata": {"codex_exec_tokens": tokens} if tokens else {},
    })  # fmt: skip
    return parsed


def _codex_rollout(path: Path) -> Parsed:
    """A Codex CLI session (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`): one run.
    Its `response_item` lines are what the model saw (messages, calls, results);
    of its `event_msg` lines only the shell's own result (`exec_command_end`), a
    patch's, an error, an aborted turn and each response's tokens (`token_count`)
    are read. A session has no outcome.
    `codex exec --json` output is read too (`_codex_exec_stream`)."""
    lines = _json_or_jsonl(path)
    if any(isinstance(line, dict) and isinstance(line.get("type"), str)
           and line["type"] in _CODEX_EXEC_EVENTS for _, line in lines[:20]):  # fmt: skip
        return _codex_exec_stream(path, lines)
    session = path.stem.removeprefix("rollout-")
    trace: dict[str, Any] = {
        "agent": "codex", "task": "", "status": "unknown", "steps": [], "model": "",
        "started_at": None, "metadata": {"transcript": True, "tool_use_ids": {}},
    }  # fmt: skip
    steps: list[dict[str, Any]] = trace["steps"]
    calls: dict[str, dict[str, Any]] = {}
    pending: list[dict[str, Any]] = []  # calls of this turn with no result yet
    call_index: dict[int, int] = {}  # a call's step (by identity) -> its index
    counted = 0  # the steps before it are the responses whose tokens are counted
    seen = False
    for where, line in lines:
        _need(path, where, line, dict, "a rollout line (an object)")
        kind, payload = line.get("type"), line.get("payload")
        if not isinstance(payload, dict):  # older rollouts: the item itself, no envelope
            kind, payload = ("session_meta" if "id" in line and "type" not in line else
                             "response_item"), line  # fmt: skip
        stamp = line.get("timestamp") or payload.get("timestamp")
        if kind == "session_meta":
            seen = True
            session = str(payload.get("id") or session)
            trace["started_at"] = trace["started_at"] or payload.get("timestamp") or stamp
            meta = {k: payload[k] for k in ("cwd", "cli_version", "originator", "model_provider")
                    if isinstance(payload.get(k), str)}  # fmt: skip
            if branch := _obj(payload.get("git")).get("branch"):
                meta["git_branch"] = str(branch)[:200]
            trace["metadata"].update(meta)
            if isinstance(payload.get("model"), str):
                trace["model"] = payload["model"][:200]
            continue
        if kind == "turn_context":
            seen = True
            if isinstance(payload.get("model"), str) and payload["model"]:
                trace["model"] = payload["model"][:200]
            continue
        item = str(payload.get("type") or "")
        if kind == "event_msg":
            seen = True
            call_id = _id(payload.get("call_id"))
            call = calls.get(str(call_id))
            script = next((c for c in reversed(pending) if c.get("name") == _CODEX_SCRIPT), None)
            if call is None and script is not None and item in _CODEX_INNER:
                # A call the model's script made (code mode): the event has its own id.
                steps.append(_codex_inner_call(item, payload, call_index[id(script)], stamp))
                if call_id is not None:
                    trace["metadata"]["tool_use_ids"][str(len(steps) - 1)] = str(call_id)[:200]
            elif item == "exec_command_end" and call is not None:  # the shell's own result
                code = payload.get("exit_code")
                call["output"] = _text(
                    payload.get("aggregated_output")
                    or payload.get("formatted_output")
                    or payload.get("stdout")
                )
                call.pop("error", None)
                pending = [c for c in pending if c is not call]
                if isinstance(code, int) and code != 0:
                    call["error"] = (
                        _text(payload.get("stderr")) or call["output"] or f"exit code {code}"
                    )
            elif item == "token_count" and steps:
                # One model response's usage, after its items: on the first step it
                # made (a response that made none: on the step before).
                usage = obj(obj(payload.get("info")).get("last_token_usage"))
                tokens = _count(usage.get("total_tokens")) or (
                    _count(usage.get("input_tokens")) + _count(usage.get("output_tokens"))
                )
                made = [step for step in steps[counted:] if step["kind"] != "user_prompt"]
                target = made[0] if made else steps[-1]
                if tokens:
                    target["tokens"] = (target.get("tokens") or 0) + tokens
                counted = len(steps)
            elif item == "patch_apply_end" and call is not None and payload.get("success") is False:
                call["error"] = _text(payload.get("stderr")) or "the patch did not apply"
            elif item in ("error", "stream_error"):
                steps.append({"kind": "error", "error": _text(payload.get("message"), 10_000)
                              or "Codex reported an error", "started_at": stamp})  # fmt: skip
            elif item == "turn_aborted":
                reason = str(payload.get("reason") or "aborted")
                for open_call in pending:
                    open_call["error"] = (
                        f"No result: the turn was {reason} before the call returned."
                    )
                pending = []
            elif item == "task_complete":
                pending = []
            continue
        if kind != "response_item":
            continue  # compacted history, world state, and kinds newer than this reader
        seen = seen or item in _CODEX_CALLS | _CODEX_RESULTS | {"message"}
        if item == "message":
            role = payload.get("role")
            blocks = [b for b in _items(path, where, payload.get("content"), '"content"')
                      if isinstance(b, dict) and b.get("type") in ("input_text", "output_text")]  # fmt: skip
            text = _text(blocks)
            if not text or role not in ("user", "assistant"):
                continue  # developer and system notes
            if role == "assistant":
                steps.append({"kind": "assistant_message", "output": text, "started_at": stamp})
            elif not _CODEX_SCAFFOLD.match(text):
                steps.append({"kind": "user_prompt", "input": text, "started_at": stamp})
                trace["task"] = trace["task"] or text[:100_000]
        elif item in _CODEX_CALLS:
            if item == "custom_tool_call":
                arguments: Any = {"input": _text(payload.get("input"))}
            elif item in ("local_shell_call", "web_search_call"):
                arguments = _obj(payload.get("action"))
            else:
                arguments = _args(payload.get("arguments"))
            name = str(payload.get("name") or item.removesuffix("_call"))[:200]
            step = {"kind": "tool_call", "name": name, "input": arguments, "started_at": stamp}
            steps.append(step)
            call_id = _id(payload.get("call_id"))
            call_index[id(step)] = len(steps) - 1
            if call_id is not None:
                calls[str(call_id)] = step
                pending.append(step)
                # Lets a trace its hooks built take this rollout in (merge).
                trace["metadata"]["tool_use_ids"][str(len(steps) - 1)] = str(call_id)[:200]
        elif item in _CODEX_RESULTS:
            call = calls.get(str(_id(payload.get("call_id"))))
            if call is None:
                continue
            pending = [c for c in pending if c is not call]
            if "output" in call:
                continue  # the shell's own result (exec_command_end) came first
            output, code = codex_result(payload.get("output"))
            call["output"] = output
            if code is not None and code != 0:
                call["error"] = output or f"exit code {code}"
        trace["ended_at"] = stamp
    if not seen:
        return Parsed()
    trace["external_id"] = f"codex-{session}"[:200]
    trace["session_id"] = session[:200]
    trace["started_at"] = trace["started_at"] or next(
        (s.get("started_at") for s in steps if s.get("started_at")), None)  # fmt: skip
    return Parsed(traces=[trace] if steps else [])


# --- Inspect eval logs ----------------------------------------------------------

# Inspect's score values: correct, incorrect, partly correct, no answer.
_INSPECT_VALUES = {"C": True, "I": False, "P": False, "N": False}
# What one .eval archive may hold, unpacked: past it the file is refused, not read.
_INSPECT_MAX_BYTES = 2 << 30


_ZIP_ZSTANDARD = 93


def _zip_member(path: Path, archive: Any, info: Any) -> bytes:
    """One member of a zip archive, unpacked: deflated or stored by the standard
    library; Zstandard-compressed (what current Inspect writes, method 93) with
    the `zstandard` package, which the server has and an agent's machine may not."""
    if info.compress_type != _ZIP_ZSTANDARD:
        return bytes(archive.read(info))
    try:
        import zstandard
    except ImportError:
        raise FormatError(
            path, info.filename, "Zstandard-compressed, as current Inspect writes .eval logs: "
            "install it here (pip install zstandard), import the file on the server "
            "(manage.py import_traces), or convert it (inspect log convert --to json)",
        ) from None  # fmt: skip
    with path.open("rb") as stream:
        stream.seek(info.header_offset)
        header = stream.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise FormatError(path, info.filename, "its local header is missing or damaged")
        name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(
            header[28:30], "little")  # fmt: skip
        stream.seek(info.header_offset + 30 + name_length + extra_length)
        packed = stream.read(info.compress_size)
    # Read at most one byte past the size the archive states: a member that unpacks
    # to more than it says is refused, not unpacked without bound.
    reader = zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=True)
    try:
        data = reader.read(info.file_size + 1)
    except zstandard.ZstdError as exc:
        raise FormatError(path, info.filename, f"does not unpack ({exc})") from None
    if len(data) != info.file_size:
        raise FormatError(path, info.filename, "unpacks to another size than the archive says")
    return bytes(data)


def _inspect_entries(path: Path) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The log's header and its samples (each named for errors): a `.eval` archive
    (`_journal/start.json` or `header.json`, `samples/*.json`) or a `.json` log."""
    import zipfile

    if path.read_bytes()[:4] != b"PK\x03\x04":
        data = _need(path, "top level", _read_json(path), dict, "an Inspect eval log object")
        samples = _items(path, "samples", data.get("samples"), '"samples"')
        return data, [(f"samples[{i}]", sample) for i, sample in enumerate(samples)]
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if sum(info.file_size for info in infos) > _INSPECT_MAX_BYTES:
                raise FormatError(path, "archive", "unpacks to more than 2 GiB; not read")
            by_name = {info.filename: info for info in infos}
            header_name = next((n for n in ("header.json", "_journal/start.json", "start.json")
                                if n in by_name), None)  # fmt: skip
            if header_name is None:
                raise FormatError(path, "archive", "no header.json: is it an Inspect .eval log?")

            def load(name: str) -> Any:
                try:
                    return json.loads(_zip_member(path, archive, by_name[name]).decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise FormatError(path, name, f"not valid JSON ({exc})") from None

            header = _need(path, header_name, load(header_name), dict, "an object")
            samples = [(name, load(name)) for name in sorted(by_name)
                       if name.startswith("samples/") and name.endswith(".json")]  # fmt: skip
    except (zipfile.BadZipFile, NotImplementedError) as exc:
        raise FormatError(path, "archive", f"not a readable .eval archive ({exc})") from None
    return header, samples


def _inspect_text(value: Any, attachments: dict[str, Any]) -> Any:
    """`value` with Inspect's `attachment://<hash>` references replaced by the text
    the sample keeps for them."""
    if isinstance(value, str):
        if value.startswith("attachment://"):
            return attachments.get(value.removeprefix("attachment://"), value)
        return value
    if isinstance(value, list):
        return [_inspect_text(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: _inspect_text(v, attachments) for k, v in value.items()}
    return value


def _inspect_content(content: Any) -> str:
    """A message's text: a string, or its text content items (reasoning left out)."""
    if isinstance(content, list):
        content = [c for c in content if isinstance(c, dict) and c.get("type") == "text"]
    return _text(content)


def _inspect_checks(scores: Any) -> list[dict[str, Any]]:
    """Each scorer's verdict as a named check, when its value says pass or fail:
    C/I/P/N, a boolean, or a number (1 or more passes)."""
    checks = []
    for name, score in obj(scores).items():
        value = obj(score).get("value")
        if isinstance(value, str) and value in _INSPECT_VALUES:
            passed = _INSPECT_VALUES[value]
        elif isinstance(value, bool):
            passed = value
        elif isinstance(value, int | float):
            passed = value >= 1
        else:
            continue  # several values, or a label: no verdict of its own
        detail = "" if passed else _text(obj(score).get("explanation"), 500)
        checks.append({"name": str(name)[:100], "passed": passed, "detail": detail})
    return checks


def _inspect_log(path: Path) -> Parsed:
    """An Inspect eval log (`.eval` archive or `.json`): one run per sample and epoch."""
    header, samples = _inspect_entries(path)
    spec = obj(header.get("eval"))
    task = str(spec.get("task") or path.stem)[:100]
    model = str(spec.get("model") or "")[:200]
    solver = spec.get("solver")
    agent = f"{solver}/{model}" if isinstance(solver, str) and solver else model or task
    run = str(spec.get("run_id") or spec.get("eval_id") or path.stem)
    traces: list[dict[str, Any]] = []
    for where, raw in samples:
        sample = _need(path, where, raw, dict, "an Inspect sample object")
        attachments = obj(sample.get("attachments"))
        messages = _inspect_text(
            _items(path, where, sample.get("messages"), '"messages"'), attachments
        )
        steps: list[dict[str, Any]] = []
        calls: dict[str, dict[str, Any]] = {}
        for position, message in enumerate(messages):
            _need(path, f"{where}, messages[{position}]", message, dict, "a message object")
            role, text = message.get("role"), _inspect_content(message.get("content"))
            if role == "user" and text:
                steps.append({"kind": "user_prompt", "input": text})
            elif role == "assistant":
                if text:
                    steps.append({"kind": "assistant_message", "output": text})
                for call in _items(path, where, message.get("tool_calls"), '"tool_calls"'):
                    call = obj(call)
                    step: dict[str, Any] = {"kind": "tool_call", "input": call.get("arguments"),
                                            "name": str(call.get("function") or "")[:200]}  # fmt: skip
                    if call.get("parse_error"):
                        step["error"] = _text(call["parse_error"], 10_000)
                    steps.append(step)
                    if (call_id := _id(call.get("id"))) is not None:
                        calls[str(call_id)] = step
            elif role == "tool":
                answered = calls.get(str(_id(message.get("tool_call_id"))))
                if answered is None:
                    answered = {"kind": "tool_result",
                                "name": str(message.get("function") or "")[:200]}  # fmt: skip
                    steps.append(answered)
                answered["output"] = text
                error = obj(message.get("error"))
                if error:
                    answered["error"] = _text(error.get("message"), 10_000) or str(
                        error.get("type") or "tool error")  # fmt: skip
        checks = _inspect_checks(sample.get("scores"))
        # An object in a sample, a string in a sample's summary.
        failure, limit = sample.get("error"), sample.get("limit")
        failure = obj(failure) or ({"message": failure} if isinstance(failure, str) else {})
        limit = obj(limit) or ({"type": limit} if isinstance(limit, str) else {})
        if limit.get("type"):
            steps.append({"kind": "error", "error": f"The run hit its {limit['type']} limit"
                          + (f" ({limit['limit']})." if limit.get("limit") is not None else ".")})  # fmt: skip
        if failure:
            steps.append({"kind": "error", "error": _text(failure.get("message"), 10_000)
                          or "The sample ended on an error."})  # fmt: skip
        if checks:
            status = "succeeded" if all(c["passed"] for c in checks) else "failed"
        else:
            status = "failed" if failure else "unknown"
        sample_id = str(sample.get("id", len(traces)))[:100]
        epoch = sample.get("epoch")
        inputs = _inspect_text(sample.get("input"), attachments)
        question = inputs if isinstance(inputs, str) else next(
            (s["input"] for s in steps if s["kind"] == "user_prompt"), "")  # fmt: skip
        traces.append({
            "external_id": f"inspect-{run}-{sample_id}" + (f"-e{epoch}" if epoch else ""),
            "agent": agent, "model": model, "task": _text(question, 100_000),
            "task_key": f"{task}/{sample_id}", "status": status, "checks": checks,
            "started_at": sample.get("started_at") or spec.get("created"),
            "ended_at": sample.get("completed_at"),
            "metadata": {"inspect_task": task, "sample_id": sample_id, "epoch": epoch,
                         **({"error": _text(failure.get("message"), 2_000)} if failure else {})},
            "steps": steps,
        })  # fmt: skip
    return Parsed(traces=[t for t in traces if t["steps"]])


def spawning_call(steps: list[dict[str, Any]], agent: str, started: Any) -> int | None:
    """The position of the Task/Agent call that started a subagent: the one whose
    result names its agentId, else the last one before the subagent's first entry."""
    spawns = [(n, s) for n, s in enumerate(steps)
              if s.get("kind") == "tool_call" and s.get("name") in ("Task", "Agent")]  # fmt: skip
    for n, step in spawns:
        if agent and agent in str(step.get("output") or ""):
            return n
    before = [n for n, s in spawns if str(s.get("started_at") or "") <= str(started or "")]
    return before[-1] if before else None


def _claude_hooks(path: Path) -> Parsed:
    parsed = Parsed()
    for where, payload in _json_or_jsonl(path):
        _need(path, where, payload, dict, "a hook payload object")
        if not payload.get("session_id") or not payload.get("hook_event_name"):
            raise FormatError(
                path, where, 'a hook payload needs "session_id" and "hook_event_name"'
            )
        parsed.hook_payloads.append(payload)
    return parsed


# --- OpenInference span trees (TRAIL, span exports) ---------------------------


_DURATION = re.compile(
    r"P(?:(\d+(?:\.\d+)?)D)?T?(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?"
)


def _iso_seconds(value: Any) -> float | None:
    """Seconds in an ISO 8601 duration ("PT24.688187S"), or None."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) and value.startswith("P") else None
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


# Seconds since the epoch of 0001-01-02 and 9999-12-30: a time outside is no time
# (a datetime cannot hold it, in any zone).
_EPOCH_RANGE = (-62135510400.0, 253402128000.0)


def _epoch(value: Any) -> float | None:
    """A timestamp (ISO 8601, or nanoseconds/seconds since the epoch) as seconds;
    None for anything else, or for a time no calendar date holds."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Seconds, milliseconds (pandas' JSON), microseconds or nanoseconds (OTLP),
        # told apart by size: each is a date between 1973 and 5138 in its own unit.
        size = abs(value)
        seconds = value / (
            1 if size < 1e11 else 1e3 if size < 1e14 else 1e6 if size < 1e17 else 1e9
        )
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        # A time without a zone is UTC, as the server reads one (not this machine's zone).
        seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if seconds is None or not _EPOCH_RANGE[0] < seconds < _EPOCH_RANGE[1]:
        return None
    return seconds


def _local_epoch(value: Any) -> float | None:
    """`_epoch`, but a time without a zone is in this machine's zone: for a record its
    tool writes in local time without saying so (an OpenHands SDK conversation's
    events), read on the machine that ran it (the capture hook imports it there)."""
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            try:
                return _epoch(moment.astimezone().isoformat())
            except (OverflowError, OSError, ValueError):
                return None
    return _epoch(value)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _flat_attributes(value: Any, prefix: str = "") -> dict[str, Any]:
    """Span attributes with dotted keys (`input.value`), whether the export keeps
    them flat (TRAIL) or nested (`{"input": {"value": …}}`)."""
    out: dict[str, Any] = {}
    for key, item in obj(value).items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(_flat_attributes(item, f"{name}."))
        else:
            out[name] = item
    return out


# A span an agent framework opens around each of its loop's turns ("Step 3" in
# smolagents, OpenInference kind CHAIN): its number is its place in the run, not
# what it did.
_LOOP_SPAN = re.compile(r"(?i)^\s*(step|turn|iteration|round)[\s_#-]*\d+\s*$")


def span_step_name(name: str) -> str:
    """The step name for a span that is no tool or model call: its own name, or,
    for an agent loop's numbered turn ("Step 3"), "agent step" whatever its
    number. Numbered names would make every turn a different "tool": modes and
    same-task comparisons would read "Step 12" as a call of its own. Used by the
    file importer and the OTLP receiver alike."""
    found = _LOOP_SPAN.match(name)
    return f"agent {found.group(1).lower()}" if found else name


# GenAI operations that are a model call (`gen_ai.operation.name`), and those
# that are an agent's own span, which a model name on it does not make a call.
# (Semantic Kernel names its text completions "text_completions".)
_LLM_OPERATIONS = {"chat", "text_completion", "text_completions", "generate_content", "completion",
                   "embeddings"}  # fmt: skip
_AGENT_OPERATIONS = {"invoke_agent", "create_agent", "invoke_workflow"}
# The AI SDK's (Vercel's `ai` package) telemetry names each span by `ai.operationId`:
# a function such as `ai.generateText` runs the agent's loop (a framework step); its
# `.doGenerate`, `.doStream` and `.doEmbed` spans are the model calls, `ai.toolCall`
# the tool calls.
_AI_SDK_LOOPS = {"ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject",
                 "ai.embed", "ai.embedMany"}  # fmt: skip
_AI_SDK_MODEL_CALLS = (".doGenerate", ".doStream", ".doEmbed")


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    return next((attrs[key] for key in keys if attrs.get(key) is not None), None)


# Claude Code's own spans (its OpenTelemetry tracing, `span.type`): an interaction
# (the user's prompt and all it led to), a model request, a tool call, and inside a
# tool call its execution (which fails when the tool did) and the wait for the
# user's permission. The last two are the call's own structure.
_CLAUDE_CODE_SPANS = {
    "interaction",
    "llm_request",
    "tool",
    "tool.execution",
    "tool.blocked_on_user",
}
# The span that records a tool's execution inside its call: its error is the call's
# (moved onto the call by file and over OTLP, traces/otlp_store.py).
TOOL_EXECUTION_SPANS = ("claude_code.tool.execution",)


def claude_code_span(attrs: dict[str, Any]) -> str:
    """The kind of Claude Code span (`span.type`) these attributes are, or ""."""
    kind = attrs.get("span.type")
    return kind if isinstance(kind, str) and kind in _CLAUDE_CODE_SPANS else ""


def _claude_code_prompt(attrs: dict[str, Any]) -> str:
    """A Claude Code interaction's prompt (`user_prompt`), which it records only with
    OTEL_LOG_USER_PROMPTS=1; without, it writes `<REDACTED>`, which is no prompt."""
    prompt = attrs.get("user_prompt")
    return prompt if isinstance(prompt, str) and prompt != "<REDACTED>" else ""


def _claude_code_tool_input(attrs: dict[str, Any]) -> Any:
    """A Claude Code tool span's input: its `tool_input` (JSON text) where it records
    one, else the command a Bash call ran (`full_command`, with its description)."""
    raw = attrs.get("tool_input")
    if isinstance(raw, str) and raw:
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            return json.loads(raw)
        return raw
    if isinstance(attrs.get("full_command"), str):
        return {"command": attrs["full_command"],
                **({"description": attrs["description"]} if attrs.get("description") else {})}  # fmt: skip
    # Without OTEL_LOG_TOOL_DETAILS: what the span still says of the call (the
    # program a command ran, its class, the call's id), so it stays a call.
    said = {key: attrs[key] for key in ("bash_argv0", "bash_command_class", "tool_use_id")
            if isinstance(attrs.get(key), str) and attrs[key]}  # fmt: skip
    return said or None


def mastra_value(attrs: dict[str, Any], which: str) -> Any:
    """A Mastra span's own input or output (`mastra.<span type>.input`, `.output`,
    seen on Mastra 1.71's OpenTelemetry exporter: an agent run's request and answer,
    a model step's messages), where no convention's attribute holds it."""
    kind = attrs.get("mastra.span.type")
    return attrs.get(f"mastra.{kind}.{which}") if isinstance(kind, str) and kind else None


# MLflow Tracing's spans (`@mlflow.trace`, its autologging; exported over OTLP when
# OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set): their type, inputs and outputs as JSON
# text in `mlflow.*` attributes.
_MLFLOW_MODEL_SPANS = ("LLM", "CHAT_MODEL")
_MLFLOW_STRUCTURE = ("AGENT", "CHAIN", "WORKFLOW")


def _mlflow_json(value: Any) -> Any:
    """An `mlflow.*` attribute's value: MLflow writes each as JSON text (a string
    too: `"CHAT_MODEL"`); a value that is not JSON as it is."""
    if isinstance(value, str) and value[:1] in '"[{':
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            return json.loads(value)
    return value


def mlflow_span(attrs: dict[str, Any]) -> str:
    """The MLflow span type of a span (`mlflow.spanType`: "LLM", "CHAT_MODEL", "TOOL",
    "AGENT", "CHAIN", "RETRIEVER", "UNKNOWN"...), or ""."""
    kind = _mlflow_json(attrs.get("mlflow.spanType"))
    return kind.upper() if isinstance(kind, str) else ""


def mlflow_value(attrs: dict[str, Any], which: str) -> Any:
    """An MLflow span's inputs or outputs (`which`: "input" or "output"), decoded; a
    model call's as the messages sent and the reply's messages (OpenAI's chat
    completion, as MLflow's OpenAI autologging records it)."""
    if not mlflow_span(attrs):
        return None
    value = _mlflow_json(
        attrs.get("mlflow.spanInputs" if which == "input" else "mlflow.spanOutputs")
    )
    if mlflow_span(attrs) not in _MLFLOW_MODEL_SPANS or not isinstance(value, dict):
        return value
    if which == "input" and isinstance(value.get("messages"), list):
        return value["messages"]
    choices = [obj(c).get("message") for c in _list(value.get("choices"))]
    said = [{k: v for k, v in m.items() if v is not None} for m in choices if isinstance(m, dict)]
    return said or value


def _mlflow_model_and_tokens(attrs: dict[str, Any]) -> tuple[str, int]:
    model = _mlflow_json(_first(attrs, "mlflow.llm.model", "model"))
    usage = obj(_mlflow_json(attrs.get("mlflow.chat.tokenUsage")))
    return (model if isinstance(model, str) else ""), _count(usage.get("total_tokens")) or (
        _count(usage.get("input_tokens")) + _count(usage.get("output_tokens")))  # fmt: skip


# The Langfuse SDK's spans (its Python SDK, built on OpenTelemetry: `@observe`, its
# OpenAI client and integrations), by `langfuse.observation.type`, with their input
# and output as JSON text.
_LANGFUSE_MODEL_SPANS = ("generation",)
_LANGFUSE_STRUCTURE = ("agent", "chain")


def langfuse_span(attrs: dict[str, Any]) -> str:
    """A Langfuse observation's type ("generation", "tool", "agent", "chain", "span",
    "retriever", "embedding", "evaluator", "guardrail", "event"), or ""."""
    kind = attrs.get("langfuse.observation.type")
    return kind.lower() if isinstance(kind, str) else ""


def langfuse_value(attrs: dict[str, Any], which: str) -> Any:
    """A Langfuse observation's input or output (`which`: "input" or "output"),
    decoded: a traced function's arguments (`{"args": [...], "kwargs": {...}}`) as its
    keyword arguments, or its one argument when it took one; a generation's messages
    sent and its reply as a list of messages."""
    if not langfuse_span(attrs):
        return None
    value = _mlflow_json(attrs.get(f"langfuse.observation.{which}"))
    if isinstance(value, dict) and set(value) == {"args", "kwargs"}:
        args, kwargs = _list(value["args"]), obj(value["kwargs"])
        if not args and kwargs:
            return kwargs
        if len(args) == 1 and not kwargs:
            return args[0]
        return value
    if langfuse_span(attrs) in _LANGFUSE_MODEL_SPANS:
        if which == "input" and isinstance(value, dict) and isinstance(value.get("messages"), list):
            return value["messages"]
        if which == "output" and isinstance(value, dict) and "role" in value:
            return [{k: v for k, v in value.items() if v is not None}]
    return value


def _langfuse_model_and_tokens(attrs: dict[str, Any]) -> tuple[str, int]:
    model = attrs.get("langfuse.observation.model.name")
    usage = obj(_mlflow_json(attrs.get("langfuse.observation.usage_details")))
    tokens = _count(usage.get("total_tokens")) or _count(usage.get("total")) or (
        _count(usage.get("prompt_tokens") or usage.get("input"))
        + _count(usage.get("completion_tokens") or usage.get("output")))  # fmt: skip
    return (model if isinstance(model, str) else ""), tokens


# Attributes only a workflow runtime's own spans carry: Microsoft Agent Framework's
# build of a workflow (`workflow.build`, a trace of its own), which no agent did.
_WORKFLOW_STRUCTURE = ("workflow_builder.name", "workflow.definition")


def span_role(
    attrs: dict[str, Any], span_name: str, events: list[tuple[str, dict[str, Any]]] | None = None
) -> tuple[str, str, Any, Any, int]:
    """What a span is as a step, (kind, name, input, output, tokens), by the
    conventions instrumentations write: OpenInference (`openinference.span.kind`,
    `input.value`), OpenTelemetry GenAI (`gen_ai.operation.name`, `gen_ai.tool.*`,
    `gen_ai.*.messages`), OpenLLMetry/Traceloop (`traceloop.span.kind`,
    `traceloop.entity.*`, `llm.request.type`) and the AI SDK's (`ai.operationId`,
    `ai.prompt*`, `ai.response.*`, `ai.toolCall.*`). A tool span is a tool call named by
    its tool; a model span an LLM call named by its model; a span of the
    framework's own structure (an agent, a chain, a graph node, a workflow) a
    framework step ("span"), which the diagnosis does not count as a call; any
    other span a call named by the span. A model or tool span that keeps its
    content in GenAI events rather than attributes (`gen_ai.user.message`,
    `gen_ai.tool.message`, `gen_ai.choice`, as Strands writes them) has its input
    and output read from them. Used by the file importer and the OTLP receiver
    alike."""
    operation = str(attrs.get("gen_ai.operation.name") or "").lower()
    ai_sdk = str(attrs.get("ai.operationId") or "")
    tokens_said = 0  # a model call's tokens its replies state (Haystack's)
    oi_kind = str(attrs.get("openinference.span.kind") or "").upper()
    loop_kind = str(attrs.get("traceloop.span.kind") or "").lower()
    entity_in, entity_out = (
        attrs.get("traceloop.entity.input"),
        attrs.get("traceloop.entity.output"),
    )
    if (
        operation == "execute_tool"
        or oi_kind == "TOOL"
        or loop_kind == "tool"
        or "gen_ai.tool.name" in attrs
        or ai_sdk == "ai.toolCall"
        or haystack_span(attrs) == "tool"
        or mlflow_span(attrs) == "TOOL"
        or langfuse_span(attrs) == "tool"
    ):
        kind = "tool_call"
        # DSPy's instrumentation names a tool's span by the tool and the method
        # called ("lookup_order.__call__", "lookup_order.acall"), with no tool name.
        name = _first(attrs, "gen_ai.tool.name", "tool.name", "traceloop.entity.name",
                      "ai.toolCall.name", "haystack.tool.name") or _python_call_removed(span_name)  # fmt: skip
        step_input = _python_call_arguments(_first(
            attrs, "gen_ai.tool.call.arguments", "input.value", "traceloop.entity.input",
            "ai.toolCall.args", "haystack.agent.step.tool.input",
        ))  # fmt: skip
        output = _first(attrs, "gen_ai.tool.call.result", "output.value", "traceloop.entity.output",
                        "ai.toolCall.result", "haystack.agent.step.tool.output")  # fmt: skip
        if mlflow_span(attrs) == "TOOL":
            step_input, output = mlflow_value(attrs, "input"), mlflow_value(attrs, "output")
        elif langfuse_span(attrs) == "tool":
            step_input, output = langfuse_value(attrs, "input"), langfuse_value(attrs, "output")
        if ai_sdk and isinstance(output, str) and output[:1] == '"':  # the AI SDK's JSON text
            with contextlib.suppress(json.JSONDecodeError, RecursionError):
                output = json.loads(output)
        if step_input is None and claude_code_span(attrs):
            step_input = _claude_code_tool_input(attrs)
        if output is None and events and claude_code_span(attrs):
            # Claude Code's `tool.output` event (with OTEL_LOG_TOOL_CONTENT).
            output = next((a.get("output") or a.get("content") or a.get("diff")
                           for n, a in events if n == "tool.output"), None)  # fmt: skip
    elif (operation in _LLM_OPERATIONS or oi_kind == "LLM" or ai_sdk.endswith(_AI_SDK_MODEL_CALLS)
          or str(attrs.get("llm.request.type") or "").lower() in ("chat", "completion")
          or (not operation and not oi_kind and not loop_kind and "gen_ai.request.model" in attrs)
          or haystack_span(attrs) == "llm" or mlflow_span(attrs) in _MLFLOW_MODEL_SPANS
          or langfuse_span(attrs) in _LANGFUSE_MODEL_SPANS):  # fmt: skip
        kind = "llm_call"
        name = (
            _first(attrs, "gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
            or span_name
        )
        # OpenInference's messages, where it lists them, over its raw input: LlamaIndex
        # records `input.value` as the Python reprs of its message objects.
        step_input = _first(attrs, "gen_ai.input.messages") or _indexed_messages(
            attrs, "llm.input_messages") or _first(attrs, "input.value", "ai.prompt.messages")  # fmt: skip
        output = _first(attrs, "gen_ai.output.messages", "output.value", "ai.response.text",
                        "ai.response.toolCalls", "ai.response.object")  # fmt: skip
        if logfire_agents_span(attrs) == "model":  # the messages sent and the reply, as fields
            step_input = step_input if step_input is not None else attrs.get("input")
            output = output if output is not None else attrs.get("output")
        if haystack_span(attrs) == "llm":
            model, step_input, output, tokens_said = _haystack_llm(attrs)
            name = model or str(attrs.get("haystack.component.name") or span_name)
        elif mlflow_span(attrs) in _MLFLOW_MODEL_SPANS:
            model, tokens_said = _mlflow_model_and_tokens(attrs)
            name = model or span_name
            step_input, output = mlflow_value(attrs, "input"), mlflow_value(attrs, "output")
        elif langfuse_span(attrs) in _LANGFUSE_MODEL_SPANS:
            model, tokens_said = _langfuse_model_and_tokens(attrs)
            name = model or span_name
            step_input, output = langfuse_value(attrs, "input"), langfuse_value(attrs, "output")
        if _texts_only(output):
            # DSPy records a model call's output as its completions' texts; the
            # messages OpenInference lists beside them say who said each.
            output = _indexed_messages(attrs, "llm.output_messages") or output
    else:
        # A span that says it is the framework's own structure (an agent run, a
        # chain or graph node, a workflow) holds the agent's calls and is not one;
        # a span that says nothing of itself (plain OpenTelemetry) may be the only
        # record of an action, and stays a call named by the span.
        # Any GenAI operation that is neither a model call nor a tool's execution
        # (invoke_agent, Strands' execute_event_loop_cycle) is the framework's own.
        structure = (oi_kind in ("CHAIN", "AGENT") or bool(operation)
                     or loop_kind in ("workflow", "agent") or ai_sdk in _AI_SDK_LOOPS
                     or bool(claude_code_span(attrs))
                     or logfire_agents_span(attrs) == "structure"
                     or haystack_span(attrs) == "structure"
                     or mlflow_span(attrs) in _MLFLOW_STRUCTURE
                     or langfuse_span(attrs) in _LANGFUSE_STRUCTURE
                     or any(k in attrs for k in _WORKFLOW_STRUCTURE))  # fmt: skip
        kind = "span" if structure else "tool_call"
        name = span_step_name(
            str(attrs.get("traceloop.entity.name") or attrs.get("haystack.component.name")
                or logfire_message(span_name, attrs))
        )  # fmt: skip
        step_input = _first(attrs, "input.value", "ai.prompt") if entity_in is None else entity_in
        if step_input is None and claude_code_span(attrs) == "interaction":
            step_input = _claude_code_prompt(attrs) or None
        output = (_first(attrs, "output.value", "ai.response.text", "ai.response.object")
                  if entity_out is None else entity_out)  # fmt: skip
        if logfire_agents_span(attrs) == "function":  # its arguments and result, as fields
            step_input, output = attrs.get("input"), attrs.get("output")
        elif haystack_span(attrs):  # an Agent's run or step, a pipeline's, a component's
            step_input = haystack_value(_first(attrs, "haystack.agent.input",
                                               "haystack.pipeline.input_data",
                                               "haystack.component.input"))  # fmt: skip
            output = haystack_value(_first(attrs, "haystack.agent.output",
                                           "haystack.pipeline.output_data",
                                           "haystack.component.output"))  # fmt: skip
        elif step_input is None:
            step_input = logfire_fields(attrs)
        if step_input is None:
            step_input = mastra_value(attrs, "input")
        if output is None:
            output = mastra_value(attrs, "output")
        if mlflow_span(attrs):  # an agent's, a chain's or a traced function's
            step_input, output = mlflow_value(attrs, "input"), mlflow_value(attrs, "output")
        elif langfuse_span(attrs):
            step_input, output = langfuse_value(attrs, "input"), langfuse_value(attrs, "output")
    if events and kind == "tool_call" and step_input is None:
        step_input = next((a.get("content") for n, a in events
                           if n == "gen_ai.tool.message" and a.get("content")), None)  # fmt: skip
    elif events and kind == "llm_call" and step_input is None:
        sent = [
            {"role": n.split(".")[1], "content": _span_value(a.get("content"))}
            for n, a in events
            if n in _GENAI_MESSAGE_EVENTS and a.get("content") is not None
        ]
        step_input = json.dumps(sent, ensure_ascii=False) if sent else None
    if events and output is None:
        output = next((a.get("message") for n, a in events
                       if n == "gen_ai.choice" and a.get("message") is not None), None)  # fmt: skip
    if kind == "span":
        output = _langgraph_sends(output)
    if kind != "llm_call" and (entity_in is not None or entity_out is not None):
        step_input, output = (
            _langchain_callback_value(step_input),
            _langchain_callback_value(output),
        )
    tokens = (_count(attrs.get("llm.token_count.total"))
              or _count(attrs.get("llm.token_count.prompt")) + _count(attrs.get("llm.token_count.completion"))
              or _count(attrs.get("gen_ai.usage.input_tokens")) + _count(attrs.get("gen_ai.usage.output_tokens"))
              or _count(attrs.get("gen_ai.usage.prompt_tokens")) + _count(attrs.get("gen_ai.usage.completion_tokens"))
              or _count(attrs.get("llm.usage.total_tokens"))
              or _count(attrs.get("ai.usage.inputTokens")) + _count(attrs.get("ai.usage.outputTokens"))
              or (tokens_said if kind == "llm_call" else 0))  # fmt: skip
    return kind, str(name)[:200], step_input, output, tokens


def _texts_only(value: Any) -> bool:
    """JSON text of a list of strings (`["...", "..."]`)?"""
    if not (isinstance(value, str) and value[:2] == '["'):
        return False
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(parsed, list) and all(isinstance(item, str) for item in parsed)


def _indexed_messages(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """OpenInference's indexed messages (`llm.input_messages.N.message.role` and
    `.content`, or the text parts of `.contents.K.message_content`) as a list of
    `{"role", "content"}`, with the tool calls an assistant
    message made (`.message.tool_calls.K.tool_call.id`, `.function.name`,
    `.function.arguments`) as OpenAI's `tool_calls` and the call a tool message
    answers (`.message.tool_call_id`); None when there are none."""
    messages: list[dict[str, Any]] = []
    for i in range(1000):
        at = f"{prefix}.{i}.message"
        role, content = attrs.get(f"{at}.role"), attrs.get(f"{at}.content")
        calls = []
        for k in range(1000):
            call = f"{at}.tool_calls.{k}.tool_call"
            name = attrs.get(f"{call}.function.name")
            if name is None:
                break
            calls.append({"id": str(attrs.get(f"{call}.id") or ""), "type": "function",
                          "function": {"name": str(name),
                                       "arguments": _text(attrs.get(f"{call}.function.arguments") or "{}")}})  # fmt: skip
        if content is None:  # text given as content parts (`.message.contents.K.*`)
            texts = []
            for k in range(1000):
                part = f"{at}.contents.{k}"
                if not any(
                    key.startswith(part + ".")
                    for key in (f"{part}.message_content.type", f"{part}.tool_call.id")  # fmt: skip
                    if key in attrs
                ):
                    break
                if attrs.get(f"{part}.message_content.type") == "text":
                    texts.append(_text(attrs.get(f"{part}.message_content.text")))
            content = "\n".join(t for t in texts if t) if texts else None
        if role is None and content is None and not calls:
            break
        message: dict[str, Any] = {"role": str(role or ""), "content": _text(content)}
        if calls:
            message["tool_calls"] = calls
        if attrs.get(f"{at}.tool_call_id"):
            message["tool_call_id"] = str(attrs[f"{at}.tool_call_id"])
        messages.append(message)
    return messages or None


def attributes_user_prompt(attrs: dict[str, Any]) -> str:
    """The first user message a span's attributes carry, in any of the conventions
    in use: `gen_ai.input.messages`, the AI SDK's `ai.prompt.messages`, a Logfire
    model call's `input` (`logfire_agents_span`), indexed `gen_ai.prompt.N.*` and `llm.input_messages.N.message.*`. Used by the file importer and the OTLP
    receiver alike (which also reads a `gen_ai.user.message` event)."""
    found = _first_user_message(
        attrs.get("gen_ai.input.messages") or attrs.get("ai.prompt.messages")
        or (attrs.get("input") if logfire_agents_span(attrs) == "model" else None)
        or _haystack_sent(attrs)
        or (mlflow_value(attrs, "input") if mlflow_span(attrs) in _MLFLOW_MODEL_SPANS else None)
        or (langfuse_value(attrs, "input") if langfuse_span(attrs) in _LANGFUSE_MODEL_SPANS
            else None)
    )  # fmt: skip
    if found:
        return found
    if claude_code_span(attrs) == "interaction":
        return _claude_code_prompt(attrs)
    for prefix, role, content in (("gen_ai.prompt", "role", "content"),
                                  ("llm.input_messages", "message.role", "message.content")):  # fmt: skip
        for i in range(50):
            if f"{prefix}.{i}.{content}" not in attrs:
                break
            if str(attrs.get(f"{prefix}.{i}.{role}", "user")) == "user":
                return str(attrs[f"{prefix}.{i}.{content}"])
    return ""


# The GenAI convention's message events (before messages moved to attributes).
_GENAI_MESSAGE_EVENTS = ("gen_ai.system.message", "gen_ai.user.message",
                         "gen_ai.assistant.message", "gen_ai.tool.message")  # fmt: skip

# GenAI events that carry a model call's messages as log records with the call's
# span ids: the current conventions' one event a call (its attributes the span's),
# and the earlier ones' one event a message (the role by the event's name) and one
# a choice.
GENAI_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
GENAI_CHOICE_EVENT = "gen_ai.choice"
GENAI_LOG_EVENTS = frozenset({GENAI_DETAILS_EVENT, GENAI_CHOICE_EVENT, *_GENAI_MESSAGE_EVENTS})


def genai_call_attributes(events: list[tuple[str, dict[str, Any], Any]]) -> dict[str, Any]:
    """A model call's GenAI log events, (name, attributes, body) in the order they
    were recorded, as the attributes of a span that carried the same: the last
    details event's attributes; else the messages, each with its role, as
    `gen_ai.input.messages`, the choices' messages as `gen_ai.output.messages` (one
    choice: its message), the provider, and the operation "chat". Used by the file
    importer (`otlp-json`) and the OTLP receiver (`/v1/logs`) alike."""
    details = [attrs for name, attrs, _ in events if name == GENAI_DETAILS_EVENT]
    if details:
        return dict(details[-1])
    call: dict[str, Any] = {"gen_ai.operation.name": "chat"}
    sent: list[Any] = []
    choices: list[Any] = []
    for name, attrs, body in events:
        for key in ("gen_ai.system", "gen_ai.provider.name"):
            if attrs.get(key) and key not in call:
                call[key] = attrs[key]
        if name == GENAI_CHOICE_EVENT:
            message = body.get("message") if isinstance(body, dict) else None
            choices.append(message if message is not None else body)
        elif name in _GENAI_MESSAGE_EVENTS:
            fields = body if isinstance(body, dict) else {"content": body}
            sent.append({"role": fields.get("role") or name.split(".")[1], **fields})
    if sent:
        call["gen_ai.input.messages"] = sent
    if choices:
        call["gen_ai.output.messages"] = choices[0] if len(choices) == 1 else choices
    return call


def events_user_prompt(events: list[tuple[str, dict[str, Any]]]) -> str:
    """The first `gen_ai.user.message` event's text: plain, or its content parts'
    text (`[{"text": ...}]`, as Strands writes it). Used by the file importer and
    the OTLP receiver alike."""
    for name, attrs in events:
        if name != "gen_ai.user.message":
            continue
        raw = attrs.get("content") or attrs.get("gen_ai.event.content")
        parsed = _span_value(raw)
        if isinstance(parsed, dict):
            parsed = parsed.get("content", parsed)
        if isinstance(parsed, list):
            parsed = "\n".join(str(p.get("text")) for p in parsed
                               if isinstance(p, dict) and p.get("text"))  # fmt: skip
        text = parsed if isinstance(parsed, str) else _text(raw)
        if text:
            return text
    return ""


def _first_user_message(messages: Any) -> str:
    messages = _span_value(messages)
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                parts = message.get("parts") or message.get("content")
                if isinstance(parts, list):
                    return " ".join(
                        str(p.get("content", p.get("text", "")))
                        for p in parts
                        if isinstance(p, dict)
                    )
                return str(parts or "")
    return ""


_ENVELOPE_TASK_KEYS = ("task", "input", "question", "query", "prompt")


def input_task(value: Any) -> str:
    """The task an agent or root span's input states: its text, or, when the input
    is a framework's envelope, the request in it: `task` (smolagents), `input` or
    `question` (LangChain's agents), else the first user message of `messages`
    (LangGraph's `{"messages": [["user", "..."]]}`, OpenAI's role and content,
    LangChain's serialized messages), also one level down in a call's keyword
    arguments gathered under one name (DSPy's `{"input_args": {...}}`). An envelope that states no request and holds
    a framework's state (LlamaIndex's workflow agents record `{"init_state": {...},
    "start_event": ...}`) gives "": the first user message of the run's model
    calls says what was asked. A flat object (a function's arguments) is its
    JSON. Used by the file importer and the OTLP receiver alike."""
    parsed = value
    if isinstance(value, str) and value[:1] == "{":
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value[:100_000]
    if not isinstance(parsed, dict):
        return _text(value, 100_000)
    request = _envelope_request(parsed)
    # A call's keyword arguments gathered under one name (DSPy's modules record
    # `forward(**input_args)` as `{"input_args": {"question": "..."}}`): the request
    # in them.
    if not request and len(parsed) == 1 and isinstance(inner := next(iter(parsed.values())), dict):
        request = _envelope_request(inner)
    if request:
        return request[:100_000]
    if any(isinstance(v, dict | list) and v for v in parsed.values()):
        return ""
    return _text(value, 100_000)


# LangGraph's conditional edge returns `Send` objects, which instrumentations record
# as their Python reprs, each holding the whole graph state: `Send(node='tools',
# arg={'__type': 'tool_call_with_context', 'tool_call': {'name': 'lookup_order',
# 'args': {...}, ...}, 'state': {...}})`.
_SEND = re.compile(r"Send\(node='([^']{1,200})', arg=")
_SEND_TOOL_CALL = re.compile(
    r"^\{'__type': 'tool_call_with_context', 'tool_call': \{'name': '([^']{1,200})', 'args': (\{[^{}]{0,2000}\})"
)


def _langgraph_sends(value: Any) -> Any:
    """A framework step's output that is LangGraph's `Send`s (JSON text of a list of
    their reprs, or one inside `{"outputs": [...]}`) as where each goes, a line each:
    `→ tools: lookup_order({'order_id': 'A1'})` for a tool call, `→ node` otherwise;
    the graph state each repeats is left out. Anything else as it is."""
    if not (isinstance(value, str) and "Send(node='" in value[:200]):
        return value
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return value
    wrapped = isinstance(parsed, dict) and set(parsed) <= _LANGCHAIN_OUTPUT and "outputs" in parsed
    sends = parsed["outputs"] if wrapped else parsed
    if not (
        isinstance(sends, list)
        and sends
        and all(isinstance(x, str) and _SEND.match(x) for x in sends)
    ):
        return value
    routes = []
    for send in sends:
        node = _SEND.match(send)
        call = _SEND_TOOL_CALL.match(send[node.end() :]) if node else None
        if node is None:
            return value
        routes.append(
            f"→ {node.group(1)}: {call.group(1)}({call.group(2)})" if call else f"→ {node.group(1)}"
        )
    return "\n".join(routes)


def _python_call_removed(span_name: str) -> str:
    """A span's name without the Python call method it ends in (`.__call__`, `.acall`),
    where what is left names something."""
    for suffix in (".__call__", ".acall"):
        if span_name.endswith(suffix) and len(span_name) > len(suffix):
            return span_name[: -len(suffix)]
    return span_name


def _envelope_request(parsed: dict[str, Any]) -> str:
    """The request a framework's input envelope states (`input_task`), or ""."""
    for key in _ENVELOPE_TASK_KEYS:
        if isinstance(parsed.get(key), str) and parsed[key].strip():
            return str(parsed[key])
    for message in _list(parsed.get("messages")):
        role, text = _envelope_message(message)
        if role in ("user", "human") and text:
            return str(text)
    return ""


CHECK_PREFIX = "hivemind.check."
_PASSED = {"true", "pass", "passed", "ok", "1", "yes"}
# OpenTelemetry's GenAI evaluation event (`gen_ai.evaluation.result`): an evaluator's
# verdict on a model's output, a span event of the call or a log record with its
# span's ids. Read as a named check, `evaluation: <gen_ai.evaluation.name>`, where
# its label says pass or fail; a score alone has no scale to read a verdict from.
GENAI_EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_CHECK = "evaluation: "
_EVALUATION_PASSED = {
    "pass", "passed", "correct", "relevant", "true", "yes", "good", "grounded", "faithful",
    "accurate", "safe", "success", "succeeded", "ok", "acceptable", "compliant",
}  # fmt: skip
_EVALUATION_FAILED = {
    "fail", "failed", "incorrect", "not_relevant", "irrelevant", "false", "no", "bad",
    "ungrounded", "not_grounded", "unfaithful", "not_faithful", "inaccurate", "unsafe",
    "hallucinated", "hallucination", "failure", "unacceptable", "non_compliant",
    "not_compliant",
}  # fmt: skip


def evaluation_check(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """A `gen_ai.evaluation.result` event's attributes as a named check, or None when
    it names no evaluation or its label is not a verdict (a score, "3 stars"). Its
    detail: the label, score and explanation. Used by the file importer and the OTLP
    receiver alike, for span events and log records."""
    name = str(attributes.get("gen_ai.evaluation.name") or "").strip()
    label = str(attributes.get("gen_ai.evaluation.score.label") or "").strip()
    verdict = re.sub(r"[\s-]+", "_", label.lower())
    if not name or verdict not in _EVALUATION_PASSED | _EVALUATION_FAILED:
        return None
    score = attributes.get("gen_ai.evaluation.score.value")
    explanation = _text(attributes.get("gen_ai.evaluation.explanation"), 1000)
    detail = ", ".join(
        part for part in (label, f"score {score}" if isinstance(score, int | float) else "")
        if part
    )  # fmt: skip
    return {
        "name": f"{EVALUATION_CHECK}{name}"[:200],
        "passed": verdict in _EVALUATION_PASSED,
        "detail": f"{detail}: {explanation}"[:2000] if explanation else detail,
    }


def add_check(run: dict[str, Any], check: dict[str, Any]) -> None:
    """A check added to a run's, replacing one of the same name (sent again)."""
    checks = run.setdefault("checks", [])
    checks[:] = [c for c in checks if c.get("name") != check["name"]] + [check]


def status_from_checks(checks: Any) -> str:
    """A run's outcome read from its harness's named checks of the outcome
    (`hivemind.check.<name>`) where its root span left the status unset: failed if
    any failed, succeeded if every one passed; "" with none. An evaluation of a
    model's output (`evaluation_check`) is evidence, not the run's outcome: it is
    left out. Used by the file importer and the OTLP receiver alike."""
    checks = [
        c for c in checks or []
        if isinstance(c, dict) and not str(c.get("name", "")).startswith(EVALUATION_CHECK)
    ]  # fmt: skip
    if not checks:
        return ""
    return "failed" if any(c.get("passed") is not True for c in checks) else "succeeded"


def service_name(resource: dict[str, Any]) -> str:
    """A resource's `service.name`, unless it is the SDK's default for an unnamed
    service ("unknown_service", "unknown_service:node"): then the spans' own agent
    name stands. Used by the file importer and the OTLP receiver alike."""
    name = str(resource.get("service.name") or "")
    return "" if name.startswith("unknown_service") else name[:200]


def span_run_fields(run: dict[str, Any], attrs: dict[str, Any]) -> None:
    """What one span's attributes say of its run, added to `run` where it says
    nothing yet: its agent (`gen_ai.agent.name`, the AI SDK's `ai.telemetry.functionId`),
    session (`gen_ai.conversation.id`, `session.id`, the AI SDK's metadata `sessionId`), task key (`hivemind.task.key`), model, the harness's named
    checks of the outcome (`hivemind.check.<name>` = true/false) and the skills in
    scope (`gen_ai.skill.name`). Used by the file importer and the OTLP receiver
    alike."""
    for key, name in (("gen_ai.agent.name", "agent"), ("ai.telemetry.functionId", "agent"),
                      ("gen_ai.conversation.id", "session_id"), ("session.id", "session_id"),
                      ("ai.telemetry.metadata.sessionId", "session_id"),
                      ("hivemind.task.key", "task_key")):  # fmt: skip
        if attrs.get(key) and not run.get(name):
            run[name] = str(attrs[key])[:200]
    for key, value in attrs.items():
        if key.startswith(CHECK_PREFIX) and len(key) > len(CHECK_PREFIX):
            passed = value if isinstance(value, bool) else str(value).lower() in _PASSED
            name = key[len(CHECK_PREFIX) :][:200]
            checks = run.setdefault("checks", [])
            if not any(c["name"] == name for c in checks):
                checks.append({"name": name, "passed": passed, "detail": ""})
    model = _first(attrs, "gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
    if not model and haystack_span(attrs) == "llm":  # in its replies' meta
        model = _haystack_llm(attrs)[0]
    if not model and mlflow_span(attrs) in _MLFLOW_MODEL_SPANS:
        model = _mlflow_model_and_tokens(attrs)[0]
    if not model and langfuse_span(attrs) in _LANGFUSE_MODEL_SPANS:
        model = _langfuse_model_and_tokens(attrs)[0]
    if model and not run.get("model"):
        run["model"] = str(model)[:200]
    skill = attrs.get("gen_ai.skill.name")
    skills = run.setdefault("skills_in_scope", [])
    for name in skill if isinstance(skill, list) else [skill] if skill else []:
        if str(name)[:200] not in skills:
            skills.append(str(name)[:200])


def crew_task(attrs: dict[str, Any]) -> str:
    """A CrewAI crew's task, as OpenInference's CrewAI instrumentation records it on
    the crew's span (`crew_tasks`: its tasks as JSON): the first task's
    description. Used by the file importer and the OTLP receiver alike."""
    tasks = _span_value(attrs.get("crew_tasks"))
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, dict) and isinstance(task.get("description"), str):
            return task["description"][:100_000]
    return ""


def _envelope_message(message: Any) -> tuple[str, str]:
    """(role, text) of a message in a framework's input: `["user", text]`,
    `{"role", "content"}`, LangChain's `{"type": "human", "data": {"content"}}` or
    its serialized `{"id": [..., "HumanMessage"], "kwargs": {"content"}}`."""
    if isinstance(message, list | tuple) and len(message) == 2 and isinstance(message[0], str):
        return message[0].lower(), _text(message[1])
    if not isinstance(message, dict):
        return "", ""
    data, kwargs = _obj(message.get("data")), _obj(message.get("kwargs"))
    ids = message.get("id") if isinstance(message.get("id"), list) else []
    role = (message.get("role") or data.get("type")
            or (str(ids[-1]).removesuffix("Message") if ids else message.get("type")))  # fmt: skip
    content = _first(message, "content") or _first(data, "content") or _first(kwargs, "content")
    if isinstance(content, list):  # content parts: their text
        content = " ".join(_text(part.get("text")) for part in content
                           if isinstance(part, dict) and part.get("type") == "text")  # fmt: skip
    return str(role or "").lower(), _text(content)


# smolagents' OpenInference instrumentation records a tool span's input as the
# Python call it wrapped: `{"args": [], "sanitize_inputs_outputs": true, "kwargs":
# {"order_id": "B2"}}`. The call's arguments are its keyword arguments.
_PYTHON_CALL = {"args", "kwargs", "sanitize_inputs_outputs"}


# OpenLLMetry's LangChain instrumentation records what LangChain's callbacks were
# given: a chain's or tool's input as `{"inputs": ..., "tags", "metadata", "kwargs"}`
# (a tool's also as `input_str`), its output as `{"outputs": ...}` or `{"output": ...}`
# with the callback's `kwargs`.
_LANGCHAIN_INPUT = {"inputs", "input_str", "tags", "metadata", "kwargs", "serialized"}
_LANGCHAIN_OUTPUT = {"outputs", "output", "kwargs"}


def _langchain_callback_value(value: Any) -> Any:
    """A span's input or output as OpenLLMetry's LangChain instrumentation records it,
    without the callback's envelope: the inputs (a tool's arguments, else the text it
    was called with) or the outputs; a LangChain message serialised there that says
    only its text (a tool's `ToolMessage`) that text. JSON text in, JSON text (or the
    text) out; anything else as it is."""
    if not (isinstance(value, str) and value[:1] == "{" and ('"inputs"' in value
            or '"input_str"' in value or '"output' in value)):  # fmt: skip
        return value
    try:
        record = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return value
    if not isinstance(record, dict):
        return value
    # The callback's own keys (`tags`, `metadata`; `kwargs` on the way out) tell its
    # envelope from a function's value of the same shape.
    if (set(record) <= _LANGCHAIN_INPUT and ("inputs" in record or "input_str" in record)
            and ("tags" in record or "metadata" in record)):  # fmt: skip
        inner = record.get("inputs")
        if inner in (None, {}, "") and isinstance(record.get("input_str"), str):
            return record["input_str"]
    elif (set(record) <= _LANGCHAIN_OUTPUT and ("outputs" in record or "output" in record)
            and "kwargs" in record):  # fmt: skip
        inner = record.get("outputs", record.get("output"))
    else:
        return value
    said = obj(inner.get("kwargs")) if isinstance(inner, dict) and inner.get("lc") == 1 else {}
    if isinstance(said.get("content"), str) and said["content"] and not said.get("tool_calls"):
        return said["content"]  # a serialised message that says only its text
    return inner if isinstance(inner, str) else json.dumps(inner, ensure_ascii=False)


def _python_call_arguments(value: Any) -> Any:
    """A tool span's input, with a recorded Python call (no positional arguments)
    read as its keyword arguments, as JSON text (the callers parse and bound it)."""
    if not (isinstance(value, str) and value[:1] == "{" and '"kwargs"' in value):
        return value
    try:
        call = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return value
    if (isinstance(call, dict) and "kwargs" in call and set(call) <= _PYTHON_CALL
            and isinstance(call["kwargs"], dict) and not call.get("args")):  # fmt: skip
        return json.dumps(call["kwargs"], ensure_ascii=False)
    return value


def span_event_error(name: str, attributes: dict[str, Any]) -> str | None:
    """The error an OpenTelemetry span event reports, or None: an `exception`
    event's type and message, or smolagents' `agent.step_recovery` (a tool call
    that failed and that the agent went on from: the step's status stays OK)."""
    name = name.lower()
    if name == "exception":
        keys: tuple[str, ...] = ("exception.type", "exception.message")
        fallback = "exception"
    elif name == "agent.step_recovery":
        keys, fallback = ("type", "message"), "a tool call failed (agent.step_recovery)"
    else:
        return None
    return ": ".join(str(attributes[k]) for k in keys if attributes.get(k)) or fallback


def _span_evaluations(span: dict[str, Any]) -> list[dict[str, Any]]:
    """The span's `gen_ai.evaluation.result` events as checks (`evaluation_check`)."""
    checks = []
    for event in [*_list(span.get("events")), *_list(span.get("logs"))]:
        event = obj(event)
        name = str(event.get("name") or event.get("Name") or event.get("event_name") or "")
        if name != GENAI_EVALUATION_EVENT:
            continue
        check = evaluation_check(_flat_attributes(
            event.get("attributes") or event.get("Attributes") or event.get("body")))  # fmt: skip
        if check is not None:
            checks.append(check)
    return checks


def _span_error(span: dict[str, Any]) -> str:
    """Error events (`span_event_error`), else the span's error status and its message."""
    messages = []
    for event in [*_list(span.get("events")), *_list(span.get("logs"))]:
        event = obj(event)
        text = span_event_error(  # ClickHouse-style exports spell the keys "Name", "Attributes"
            str(event.get("name") or event.get("Name") or event.get("event_name") or ""),
            _flat_attributes(
                event.get("attributes") or event.get("Attributes") or event.get("body")
            ),
        )
        if text is not None:
            messages.append(text)
    attrs = _flat_attributes(span.get("span_attributes") or span.get("attributes"))
    if not messages and str(span.get("status_code", "")).lower() in ("error", "status_code_error"):
        messages.append(status_error(_text(span.get("status_message")), attrs))
    if not messages and (said := haystack_error(attrs)):
        messages.append(said)
    # One exception recorded twice (by the framework, then by OpenTelemetry's span
    # context on its way out, as AutoGen's tool spans do) is one error.
    return "\n".join(dict.fromkeys(messages))[:MAX_TEXT]


def _span_value(value: Any) -> Any:
    """An OpenInference input or output value: JSON text read as JSON, unless it
    is nested deeper than a trace may be (then the text, as over OTLP)."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value[:MAX_TEXT]
        return value[:MAX_TEXT] if _too_deep(parsed) else parsed
    return value[:MAX_TEXT] if isinstance(value, str) else value


def _too_deep(value: Any, limit: int = 64) -> bool:
    """Deeper than the server takes (`workspaces.textsafety.MAX_JSON_DEPTH`)?"""
    level, depth = ([value] if isinstance(value, dict | list) else []), 1
    while level:
        if depth > limit:
            return True
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, dict | list)]  # fmt: skip
        depth += 1
    return False


def _span_steps(
    spans: list[Any], path: Path, where: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A run's spans (a tree by `child_spans`, or a flat list with parent ids) as
    steps, in start-time order, each a step as the server's OTLP receiver makes
    them (traces/otlp.py): TOOL a tool call named by `tool.name`, LLM an LLM call
    named by its model, any other span a call named by the span; a failing span
    above a failing span keeps its error in `propagated_errors`, not as a second
    failure. Spans that carry nothing (no convention's attributes, no input,
    output or error) are left out unless named as a tool the run's model was
    offered or holding kept spans (`_without_bare_spans`). Also returns every
    span's attributes, the left-out ones' too: what they say of the run (its
    session, task key, checks) is read as the OTLP endpoint reads it."""
    flat: list[tuple[dict[str, Any], str, str | None]] = []
    stack: list[tuple[Any, str | None]] = [(span, None) for span in reversed(spans)]
    while stack:
        span, parent = stack.pop()
        _need(path, where, span, dict, "a span object")
        span_id = str(span.get("span_id") or obj(span.get("context")).get("span_id") or "")
        span_id = span_id or f"#{len(flat)}"
        parent = parent or span.get("parent_span_id") or span.get("parent_id") or None
        flat.append((span, span_id, str(parent) if parent else None))
        children = span.get("child_spans") or []
        _need(path, where, children, list, '"child_spans", a list of spans')
        stack.extend((child, span_id) for child in reversed(children))
    parent_of = {span_id: parent for _, span_id, parent in flat}
    rows = []
    for order, (span, span_id, parent) in enumerate(flat):
        attrs = _flat_attributes(span.get("span_attributes") or span.get("attributes"))
        name = span.get("span_name") or span.get("name") or "span"
        events = [(str(obj(e).get("name") or ""), _flat_attributes(obj(e).get("attributes")))
                  for e in _list(span.get("events"))]  # fmt: skip
        step_kind, name, step_input, output, tokens = span_role(attrs, str(name), events)
        error = _span_error(span)
        start = _epoch(span.get("timestamp") or span.get("start_time"))
        end = _epoch(span.get("end_time"))
        duration = _iso_seconds(span.get("duration"))
        if end is None and start is not None and duration is not None:
            end = start + duration
        rows.append({
            "_span": span_id, "_parent": parent, "_start": start, "_order": order, "_attrs": attrs,
            "_bare": bare_span(attrs, step_input, output, error),
            "_prompt": attributes_user_prompt(attrs) or events_user_prompt(events),
            "kind": step_kind, "name": str(name)[:200],
            "input": _span_value(step_input), "output": _span_value(output), "error": error,
            "started_at": _iso(start),
            "duration_ms": max(0.0, end - start) * 1000 if start is not None and end is not None else None,
            "tokens": tokens or None,
        })  # fmt: skip
    every = [row["_attrs"] for row in sorted(rows, key=lambda r: (r["_start"] is None,
                                                                   r["_start"] or 0, r["_order"]))]  # fmt: skip
    rows = _without_bare_spans(rows, parent_of)
    # Spans that start in the same instant (JavaScript's SDK times to the millisecond)
    # go parent first, as the OTLP receiver orders them.
    depth = span_depths(parent_of)
    rows.sort(key=lambda r: (r["_start"] is None, r["_start"] or 0, depth[r["_span"]], r["_order"]))
    index_of = {row["_span"]: i for i, row in enumerate(rows)}
    for i, row in enumerate(rows):
        row["index"] = i
        # The nearest kept ancestor (a left-out harness span passes its children up).
        parent, seen = row["_parent"], set()
        while parent is not None and parent not in index_of and parent not in seen:
            seen.add(parent)
            parent = parent_of.get(parent)
        row["parent_index"] = index_of.get(parent) if parent is not None else None
    for row, nested in zip(rows, nested_model_calls(
            [(r["kind"], r["parent_index"]) for r in rows]), strict=True):  # fmt: skip
        if nested:
            row["kind"] = "span"
    for row, repeated in zip(rows, repeated_model_calls(rows), strict=True):
        if repeated:
            row["kind"] = "span"
    for row, shadowed in zip(rows, shadowed_model_calls(rows), strict=True):
        if shadowed:
            row["kind"] = "span"
    holding = {r["parent_index"] for r in rows if r["parent_index"] is not None}
    asking = {
        r["parent_index"] for r in rows if r["parent_index"] is not None and r["kind"] == "llm_call"
    }
    for row in rows:
        if empty_call_holds_steps(row["kind"], row["input"], row["output"],
                                  row["index"] in holding, row["index"] in asking):  # fmt: skip
            row["kind"] = "span"
    return rows, every


def empty_call_holds_steps(
    kind: str, step_input: Any, output: Any, holds: bool, holds_model_call: bool = False
) -> bool:
    """A span read as a call that carries no input or output and holds other steps
    is the application's own structure (its request handler's span around the model
    and tool calls): a framework step. So is one with no output that holds a model
    call, whatever it was given (a Logfire span records the fields it was given,
    `handle_request {question}`, and no result). Used by the file importer and,
    after each export, by the OTLP receiver (traces/otlp_store.py)."""
    if kind != "tool_call" or output is not None:
        return False
    return (step_input is None and holds) or holds_model_call


# The spans Logfire's integration of the OpenAI Agents SDK makes
# (`logfire.instrument_openai_agents`), by their message templates: a function
# tool's call, a model call, and the SDK's own structure (its trace, an agent's
# run, a turn, a handoff, a guardrail...).
_LOGFIRE_AGENTS_FUNCTION = "Function: {name}"
_LOGFIRE_AGENTS_MODEL = ("Chat completion with ", "Responses API")
_LOGFIRE_AGENTS_STRUCTURE = (
    "OpenAI Agents trace: ", "Agent run: ", "Task: ", "Turn ", "Handoff: ", "Guardrail ",
    "Custom span: ", "MCP: list tools", "OpenAI agents: ", "Text → Speech",
)  # fmt: skip


# Haystack's spans (its OpenTelemetry tracer, `opentelemetry-haystack`; inputs and
# outputs only with HAYSTACK_CONTENT_TRACING_ENABLED): an Agent's run, its steps, each
# step's model call and tool calls, and, in a Pipeline, the pipeline's run and each
# component's.
_HAYSTACK_LLM = ("haystack.agent.step.llm.input", "haystack.agent.step.llm.output")
_HAYSTACK_STRUCTURE = ("haystack.agent.max_steps", "haystack.agent.step", "haystack.agent.input",
                       "haystack.pipeline.execution_mode", "haystack.pipeline.input_data")  # fmt: skip


def haystack_span(attrs: dict[str, Any]) -> str:
    """What a span Haystack traced is: "tool" (a tool's call by an Agent), "llm" (an
    Agent step's model call, or a chat generator's run as a pipeline's component),
    "structure" (an Agent's run or step, a pipeline's run, an Agent as a component),
    "component" (any other component's run: a prompt builder, a retriever), or ""."""
    if "haystack.tool.name" in attrs:
        return "tool"
    if any(key in attrs for key in _HAYSTACK_LLM):
        return "llm"
    if any(key in attrs for key in _HAYSTACK_STRUCTURE):
        return "structure"
    if "haystack.component.name" not in attrs:
        return ""
    kind = str(attrs.get("haystack.component.type") or "")
    if kind.endswith("Generator"):
        return "llm"
    return "structure" if kind == "Agent" else "component"


def haystack_messages(value: Any) -> Any:
    """Haystack's ChatMessages (`{"role", "content": [{"text"}, {"tool_call"},
    {"tool_call_result"}, ...], "meta"}`) as OpenAI's messages: role and text, an
    assistant's tool calls as `tool_calls`, a tool's result as a `tool` message naming
    the call it answers. Anything else as it is."""
    value = _span_value(value)
    if not (isinstance(value, list) and value and all(
            isinstance(m, dict) and isinstance(m.get("content"), list) for m in value)):  # fmt: skip
        return value
    messages = []
    for message in value:
        texts, calls, answered = [], [], ""
        for part in message["content"]:
            part = obj(part)
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part.get("tool_call"), dict):
                call = part["tool_call"]
                calls.append({"id": _text(call.get("id")), "type": "function", "function": {
                    "name": _text(call.get("tool_name")),
                    "arguments": json.dumps(call.get("arguments") or {}, ensure_ascii=False)}})  # fmt: skip
            elif isinstance(part.get("tool_call_result"), dict):
                result = part["tool_call_result"]
                texts.append(_text(result.get("result")))
                answered = _text(obj(result.get("origin")).get("id"))
        out: dict[str, Any] = {"role": _text(message.get("role")), "content": "\n".join(texts)}
        if calls:
            out["tool_calls"] = calls
        if answered:
            out["tool_call_id"] = answered
        messages.append(out)
    return messages


def haystack_value(value: Any) -> Any:
    """A Haystack Agent's, pipeline's or component's input or output with the
    ChatMessages in it (a list under `messages`, `prompt`, `replies`; one under
    `last_message`) as OpenAI's messages (`haystack_messages`)."""
    value = _span_value(value)
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if isinstance(item, dict) and isinstance(item.get("content"), list) and "role" in item:
            converted = haystack_messages([item])
            item = converted[0] if isinstance(converted, list) else item
        elif isinstance(item, list):
            item = haystack_messages(item)
        elif isinstance(item, dict):  # a pipeline's data, by component
            item = haystack_value(item)
        out[key] = item
    return out


def _haystack_llm(attrs: dict[str, Any]) -> tuple[str, Any, Any, int]:
    """A Haystack model call's (model, messages sent, replies, tokens): an Agent step's
    `haystack.agent.step.llm.*` or a chat generator component's
    `haystack.component.*`, each `{"messages": [...]}` in and `{"replies": [...]}` out;
    the model and the tokens are in each reply's `meta`."""
    sent = _span_value(_first(attrs, "haystack.agent.step.llm.input", "haystack.component.input"))
    said = _span_value(_first(attrs, "haystack.agent.step.llm.output", "haystack.component.output"))
    replies = _list(obj(said).get("replies"))
    metas = [obj(obj(reply).get("meta")) for reply in replies]
    model = next((m["model"] for m in metas if isinstance(m.get("model"), str) and m["model"]), "")
    tokens = sum(_count(obj(m.get("usage")).get("total_tokens")) for m in metas)
    messages = obj(sent).get("messages")
    return (
        model,
        haystack_messages(messages) if messages is not None else sent,
        haystack_messages(replies) if replies else said,
        tokens,
    )


def _haystack_sent(attrs: dict[str, Any]) -> Any:
    """The messages a Haystack Agent, its model call or a component was given."""
    if not haystack_span(attrs):
        return None
    given = _span_value(_first(attrs, "haystack.agent.step.llm.input", "haystack.agent.input",
                               "haystack.component.input"))  # fmt: skip
    return obj(given).get("messages")


def haystack_error(attrs: dict[str, Any]) -> str:
    """The error of a tool call Haystack traced as failed (`haystack.tool.error`, with
    `{"error": ...}` as its output; the span's status says nothing), else ""."""
    if attrs.get("haystack.tool.error") is not True:
        return ""
    output = _span_value(attrs.get("haystack.agent.step.tool.output"))
    return _text(obj(output).get("error")) or "the tool call failed"


def logfire_agents_span(attrs: dict[str, Any]) -> str:
    """What a span Logfire made of an OpenAI Agents SDK run is: "function" (a function
    tool's call), "model" (a model call), "structure" (the SDK's own: its trace, an
    agent's run, a turn...), or "" (any other span)."""
    template = attrs.get("logfire.msg_template")
    if not isinstance(template, str) or attrs.get("logfire.span_type") != "span":
        return ""
    if template.startswith("OpenAI Agents trace: "):  # the run's root, the SDK's trace
        return "structure"
    if attrs.get("gen_ai.system") != "openai":
        return ""
    if template == _LOGFIRE_AGENTS_FUNCTION:
        return "function"
    if template.startswith(_LOGFIRE_AGENTS_MODEL):
        return "model"
    return "structure" if template.startswith(_LOGFIRE_AGENTS_STRUCTURE) else ""


def status_error(message: str, attrs: dict[str, Any]) -> str:
    """A span's ERROR status as an error: its message, else the error a Logfire span of
    an OpenAI Agents SDK run records as a field (`{"message": ..., "data": {"error":
    ...}}`), else that the status said so. Used by the file importer and the OTLP
    receiver alike."""
    if message:
        return message
    error = attrs.get("error") if logfire_agents_span(attrs) else None
    if isinstance(error, str) and error[:1] == "{":
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            error = json.loads(error)
    if isinstance(error, dict):
        parts = [_text(error.get("message")), _text(obj(error.get("data")).get("error"))]
        return ": ".join(p for p in parts if p) or "span status ERROR"
    return "span status ERROR"


def logfire_message(span_name: str, attrs: dict[str, Any]) -> str:
    """A span Pydantic Logfire made (`logfire.span("calling {tool}", tool=...)`) is
    named by its message template; its message (`logfire.msg`) is that template
    filled in, what Logfire shows and what the span's writer meant to read (a
    function tool's span of an OpenAI Agents SDK run: the tool's name, which its
    message follows with why it failed). Any other span: its name."""
    if logfire_agents_span(attrs) == "function" and isinstance(attrs.get("name"), str):
        return attrs["name"][:200]
    message = attrs.get("logfire.msg")
    if (
        attrs.get("logfire.msg_template") == span_name
        and "{" in span_name
        and isinstance(message, str)
    ):
        return message.strip()[:200] or span_name
    return span_name


def logfire_fields(attrs: dict[str, Any]) -> str | None:
    """The fields a Logfire span was given (`logfire.span(..., order_id=..., arguments=
    {...})`, listed in its `logfire.json_schema`), as a JSON object: its input, as
    Logfire shows them. None for any other span."""
    schema = attrs.get("logfire.json_schema")
    if not isinstance(schema, str) or attrs.get("logfire.span_type") != "span":
        return None
    try:
        properties = json.loads(schema).get("properties")
    except (json.JSONDecodeError, RecursionError, AttributeError):
        return None
    if not isinstance(properties, dict):
        return None
    fields: dict[str, Any] = {}
    for key, kind in properties.items():
        if key not in attrs:
            continue
        value = attrs[key]
        if (
            isinstance(kind, dict)
            and kind.get("type") in ("object", "array")
            and isinstance(value, str)
        ):
            with contextlib.suppress(json.JSONDecodeError, RecursionError):
                value = json.loads(value)
        fields[key] = value
    return json.dumps(fields, ensure_ascii=False) if fields else None


def bare_span(attrs: dict[str, Any], step_input: Any, output: Any, error: str) -> bool:
    """A span that carries nothing: no convention's attributes (OpenInference, GenAI,
    OpenLLMetry, the AI SDK's, Claude Code's), no input, output or error. Such a
    span is a harness's own (a workflow's message routing, an HTTP handler) unless it
    holds kept spans or is named as a tool the model was offered or asked for. Used
    by the file importer (`_without_bare_spans`) and the OTLP receiver
    (`traces/otlp_store.py`). A Mastra `model_chunk` span, a piece of a streamed
    answer that the model call holding it records whole, carries nothing of its own
    either."""
    if attrs.get("mastra.span.type") == "model_chunk":
        return True
    return not (speaks_convention(attrs) or step_input is not None or output is not None or error)


def speaks_convention(attrs: dict[str, Any]) -> bool:
    """Whether a span carries a convention's attributes (OpenInference, GenAI,
    OpenLLMetry, the AI SDK's, Claude Code's, a workflow's structure): an
    instrumentation's span, not a plain one of the application's."""
    return any(attrs.get(k) for k in ("openinference.span.kind", "gen_ai.operation.name",
                                      "traceloop.span.kind", "gen_ai.tool.name",
                                      "gen_ai.request.model", "llm.request.type",
                                      "ai.operationId", *_WORKFLOW_STRUCTURE)) or bool(
        claude_code_span(attrs) or haystack_span(attrs) or mlflow_span(attrs)
        or langfuse_span(attrs))  # fmt: skip


# Why a run whose root span says OK is unknown (shown beside its status).
ROOT_OK_NO_OUTCOME = (
    "its root span is an instrumentation's, which says OK whenever nothing raised, not "
    "whether the run succeeded: post its outcome, or send hivemind.check.<name> checks"
)


def root_ok_ignored(status: str, attrs: dict[str, Any]) -> bool:
    """Whether a root span's status is an instrumentation's OK (`root_outcome`)."""
    return status == "ok" and root_outcome(status, attrs) is None


def root_outcome(status: str, attrs: dict[str, Any]) -> str | None:
    """The outcome a run's root span's status ("error", "ok", "unset") gives. ERROR:
    failed (the run raised). OK: succeeded only on a span of the application's own.
    OpenTelemetry asks instrumentation libraries to leave a span's status unset
    unless configured otherwise, OK being the application's word that the operation
    succeeded; yet OpenInference's instrumentations, Mastra, Strands and MLflow set OK on
    their agent's span whenever nothing raised, even when its tool failed and it
    answered that it could not help. On such a span OK is read as unset: the run's
    checks decide, else it is unknown."""
    if status == "error":
        return "failed"
    if status == "ok" and not (speaks_convention(attrs) or attrs.get("mastra.span.type")):
        return "succeeded"
    return None


def _without_bare_spans(
    rows: list[dict[str, Any]], parent_of: dict[str, Any]
) -> list[dict[str, Any]]:
    """In a run whose spans speak a convention, a span that carries nothing (no
    convention's attributes, no input, output or error) is kept when it is named as a
    tool the run's model was offered or asked for (the application ran the tool under
    a plain span of its name), or when it holds a kept span (its structure); any
    other is a harness's own span, left out (TRAIL's, whose logs hold the benchmark's
    answer; a workflow runtime's message routing). In a run where no span speaks one
    (an application traced with plain OpenTelemetry spans), the spans are its only
    record: all kept."""
    if all(r["_bare"] for r in rows):
        return rows
    tools = set()
    for row in rows:
        tools.update(declared_tools(row["_attrs"]))
    kept = {r["_span"] for r in rows if not r["_bare"] or r["name"] in tools}
    for span_id in list(kept):
        parent, seen = parent_of.get(span_id), set()
        while parent is not None and parent not in seen:
            seen.add(parent)
            kept.add(parent)
            parent = parent_of.get(parent)
    return [r for r in rows if r["_span"] in kept]


def declared_tools(attrs: dict[str, Any]) -> set[str]:
    """The tools a model span says its model was offered or asked for: GenAI's
    `gen_ai.tool.definitions` and the tool calls in `gen_ai.output.messages` (its
    parts, or an OpenAI message's `tool_calls`, as the earlier GenAI events hold them),
    OpenInference's `llm.tools.N.tool.json_schema`, the AI SDK's `ai.prompt.tools`."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str) and value[:1] == "{":
            with contextlib.suppress(json.JSONDecodeError, RecursionError):
                value = json.loads(value)
        if isinstance(value, dict):
            name = value.get("name") or obj(value.get("function")).get("name")
            if isinstance(name, str) and name:
                found.add(name[:200])

    for definition in _list(_span_value(attrs.get("gen_ai.tool.definitions"))):
        add(definition)
    said = _span_value(attrs.get("gen_ai.output.messages"))
    for message in [said] if isinstance(said, dict) else _list(said):
        for part in _list(obj(message).get("parts")):
            if obj(part).get("type") == "tool_call":
                add(part)
        for call in _list(obj(message).get("tool_calls")):  # OpenAI's shape (GenAI events)
            add(call)
    for definition in _list(_span_value(attrs.get("ai.prompt.tools"))):
        add(definition)
    for definition in _list(_mlflow_json(attrs.get("mlflow.chat.tools"))):
        add(definition)
    if langfuse_span(attrs) in _LANGFUSE_MODEL_SPANS:
        sent = _mlflow_json(attrs.get("langfuse.observation.input"))
        for definition in _list(obj(sent).get("tools")):
            add(definition)
    for i in range(200):
        schema = attrs.get(f"llm.tools.{i}.tool.json_schema")
        if schema is None:
            break
        add(schema)
    return found


def span_depths(parent_of: dict[Any, Any]) -> dict[Any, int]:
    """How many ancestors each span (or step) has, by `parent_of` (a parent that is
    not in it ends the chain; a cycle is cut). Used by the file importer and the OTLP
    receiver to order spans that start in the same instant, parent first."""
    depths: dict[Any, int] = {}
    for key in parent_of:
        path, seen, node = [], set(), key
        while node in parent_of and node not in depths and node not in seen:
            seen.add(node)
            path.append(node)
            node = parent_of[node]
        base = depths.get(node, -1) if node not in seen else -1
        for step in reversed(path):
            base += 1
            depths[step] = base
    return depths


def nested_model_calls(steps: list[tuple[str, int | None]]) -> list[bool]:
    """Which model calls (`(kind, parent_index)` by index) lie inside another model
    call: the same call made through a wrapper (LlamaIndex traces a `CustomLLM`'s
    `stream_chat` and the `stream_complete` it calls, each with the call's tokens).
    Such a step is a framework step: the call and its tokens count once, on the
    outermost. Shared with the OTLP receiver (traces/otlp_store.py)."""
    nested = []
    for kind, parent in steps:
        inside, seen = False, set()
        while kind == "llm_call" and parent is not None and parent not in seen:
            seen.add(parent)
            if steps[parent][0] == "llm_call":
                inside = True
                break
            parent = steps[parent][1]
        nested.append(inside)
    return nested


def _carries(value: Any) -> bool:
    return value is not None and value != "null"


def shadowed_model_calls(steps: list[dict[str, Any]]) -> list[bool]:
    """Which model calls carry no messages (no input, no output) while a model call
    of the same parent that carries them runs at the same time: the same call seen
    by a second instrumentation (the Anthropic SDK's own span, with the call's
    tokens, beside OpenLLMetry's with its messages). Such a step is a framework
    step, so the call and its tokens count once. Steps are dicts with `kind`,
    `parent_index`, `input`, `output`, `_start` (seconds) and `duration_ms`; the
    OTLP receiver applies the same rule in SQL (traces/otlp_store.py)."""

    def window(step: dict[str, Any]) -> tuple[float, float] | None:
        start, duration = step.get("_start"), step.get("duration_ms")
        if start is None or duration is None:
            return None
        return float(start), float(start) + float(duration) / 1000

    calls = [
        (i, step.get("parent_index"), window(step))
        for i, step in enumerate(steps)
        if step.get("kind") == "llm_call"
        and (_carries(step.get("input")) or _carries(step.get("output")))
    ]
    shadowed = []
    for i, step in enumerate(steps):
        mine = window(step)
        shadowed.append(
            step.get("kind") == "llm_call"
            and not _carries(step.get("input"))
            and not _carries(step.get("output"))
            and mine is not None
            and any(
                j != i and parent == step.get("parent_index") and other is not None
                and other[0] < mine[1] and mine[0] < other[1]
                for j, parent, other in calls
            )
        )  # fmt: skip
    return shadowed


def repeated_model_calls(steps: list[dict[str, Any]]) -> list[bool]:
    """Which model calls carry nothing of their own (no output, tokens or error)
    beside an earlier model call of the same parent with the same input that does:
    the same call recorded again (LlamaIndex traces a `CustomLLM`'s `astream_chat`
    and, beside it, the `stream_chat` it runs, which holds the call's completion as
    a nested model call). Such a step is a framework step, so the call counts once.
    Steps are dicts with `kind`, `parent_index`, `input`, `output`, `tokens` and
    `error`; the OTLP receiver applies the same rule in SQL (traces/otlp_store.py)."""
    done: dict[tuple[Any, str], bool] = {}
    repeated = []
    for step in steps:
        if step.get("kind") != "llm_call":
            repeated.append(False)
            continue
        key = (step.get("parent_index"), json.dumps(step.get("input"), sort_keys=True, default=str))
        carries = (
            step.get("output") is not None or bool(step.get("tokens")) or bool(step.get("error"))
        )
        repeated.append(not carries and done.get(key, False))
        done[key] = done.get(key, False) or carries
    return repeated


def _count(value: Any) -> int:
    try:
        return min(max(0, int(value or 0)), 2_147_483_647)
    except (TypeError, ValueError, OverflowError):
        return 0


def _openinference(path: Path) -> Parsed:
    """Runs with their spans, one a line (or a list of them); or a span table, one
    span a row, as Phoenix's spans dataframe saves to JSON (`context.span_id`,
    `context.trace_id`, `parent_id`, `attributes.<key>` columns): its rows are
    grouped into a run per trace id."""
    parsed = Parsed()
    table: dict[str, list[dict[str, Any]]] = {}
    for where, run in _json_or_jsonl(path):
        _need(path, where, run, dict, 'a run object with "spans"')
        if "spans" not in run and _PHOENIX_ROW.intersection(run):
            trace_id = str(
                run.get("context.trace_id") or obj(run.get("context")).get("trace_id") or ""
            )
            table.setdefault(trace_id, []).append(_phoenix_span(run))
            continue
        parsed.traces.append(_span_run(path, where, run))
    for trace_id, spans in table.items():
        run = {"trace_id": trace_id or None, "spans": spans}
        parsed.traces.append(_span_run(path, f"trace {trace_id or '(no id)'}", run))
    return parsed


_PHOENIX_ROW = {"context.span_id", "context.trace_id", "span_kind"}


def _phoenix_span(row: dict[str, Any]) -> dict[str, Any]:
    """A span-table row as a span: its `attributes.<key>` columns its attributes
    (or an `attributes` object), the rest as named."""
    attributes = {key.removeprefix("attributes."): value for key, value in row.items()
                  if key.startswith("attributes.") and value is not None}  # fmt: skip
    attributes = attributes or obj(row.get("attributes"))
    if isinstance(row.get("span_kind"), str) and "openinference.span.kind" not in attributes:
        attributes = {**attributes, "openinference.span.kind": row["span_kind"]}
    return {
        "span_id": row.get("context.span_id") or obj(row.get("context")).get("span_id"),
        "parent_span_id": row.get("parent_id") or None,
        "span_name": row.get("name"),
        "start_time": row.get("start_time"),
        "end_time": row.get("end_time"),
        "attributes": attributes,
        "events": _list(row.get("events")),
        "status_code": row.get("status_code"),
        "status_message": row.get("status_message"),
    }


def _root_task(row: dict[str, Any]) -> str:
    """The task a root span's input states, as the OTLP endpoint reads a root span: a
    model call's by its `input.value` or `ai.prompt` only (its messages are no task
    statement: the first user message among them is, below)."""
    if haystack_span(row["_attrs"]):
        # A pipeline's input is its components' (`{"prompt": {"order": ...}}`): the
        # first user message says what was asked, as the OTLP endpoint reads it.
        return ""
    raw = (
        row["input"]
        if row["kind"] != "llm_call"
        else _first(row["_attrs"], "input.value", "ai.prompt")
    )
    if raw and logfire_fields(row["_attrs"]) is not None:
        # A Logfire span's fields: a request among them (`question`, `task`...) is the
        # task, any other field is not (the OTLP endpoint reads them so).
        return _envelope_request(raw) if isinstance(raw, dict) else ""
    return input_task(raw) if raw else ""


def _span_run(path: Path, where: str, run: dict[str, Any]) -> dict[str, Any]:
    """One run from its spans (`{"trace_id"?, "spans": [...], "resource_attributes"?}`)."""
    spans = _need(path, where, run.get("spans"), list, '"spans", a list of spans')
    rows, every = _span_steps(spans, path, where)
    by_index = {row["index"]: row for row in rows}
    for row in rows:  # a tool's failed execution: the call failed
        parent = by_index.get(row["parent_index"]) if row["parent_index"] is not None else None
        if (row["kind"] == "span" and row["name"] in TOOL_EXECUTION_SPANS and row["error"]
                and parent is not None and parent["kind"] == "tool_call" and not parent["error"]):  # fmt: skip
            parent["error"], row["error"] = row["error"], ""
    propagated: dict[str, str] = {}
    for row in rows:  # a failing span above a failing span: the failure is the deeper one's
        if not row["error"]:
            continue
        seen, parent = set(), row["parent_index"]
        while parent is not None and parent not in seen:
            seen.add(parent)
            if by_index[parent]["error"]:
                propagated[str(parent)] = by_index[parent]["error"]
            parent = by_index[parent]["parent_index"]
    for key in propagated:
        by_index[int(key)]["error"] = ""
    roots = [r for r in rows if r["parent_index"] is None]
    task = ""
    for row in roots + rows:
        value = row["input"]
        if str(row["_attrs"].get("openinference.span.kind", "")).upper() == "AGENT" and value:
            task = input_task(value)
            if task:
                break
    # No agent span says it: the root span's input, or a crew's first task, else the
    # first user message of the earliest span that carries one, as the OTLP endpoint
    # reads them.
    task = task or next((found for r in roots if (found := _root_task(r))), "")
    task = task or next((found for r in roots if (found := crew_task(r["_attrs"]))), "")
    if not task:
        timed = sorted(rows, key=lambda r: (r["_start"] is None, r["_start"] or 0, r["_order"]))
        task = next((r["_prompt"] for r in timed if r["_prompt"]), "")
    resource = _flat_attributes(
        run.get("resource_attributes") or flat_first(spans, "resource_attributes")
    )
    # The service, else what the spans say (GenAI's agent name), else the agent span's
    # class (smolagents' "CodeAgent.run"): TRAIL's files are named by trace id, and a
    # file's name would make each run an agent. Session, task key, model, checks and
    # skills as the OTLP endpoint reads them.
    fields: dict[str, Any] = {
        "agent": service_name(resource) or flat_first(spans, "service_name") or ""
    }
    for attrs in every:
        span_run_fields(fields, attrs)
    for span in spans:
        for check in _span_evaluations(obj(span)):
            add_check(fields, check)
    agent_span = next((r["name"] for r in rows
                       if str(r["_attrs"].get("openinference.span.kind", "")).upper() == "AGENT"), "")  # fmt: skip
    agent = (fields["agent"] or agent_span.removesuffix(".run").removesuffix(".__call__")
             or path.stem)  # fmt: skip
    trace_id = run.get("trace_id") or flat_first(spans, "trace_id") or _digest(path.name, where)
    starts = [r["_start"] for r in rows if r["_start"] is not None]
    # The run's root span speaks for the run, as over OTLP (TRAIL's roots leave it unset).
    root = next((span for span in spans if isinstance(span, dict)
                 and not (span.get("parent_span_id") or span.get("parent_id"))), {})  # fmt: skip
    status = str(root.get("status_code", "")).lower().removeprefix("status_code_")
    root_attrs = _flat_attributes(root.get("span_attributes") or root.get("attributes"))
    outcome = root_outcome(status, root_attrs) or status_from_checks(fields.get("checks"))
    unknown_why = (
        {"inferred_status": {"status": "unknown", "reason": ROOT_OK_NO_OUTCOME}}
        if not outcome and root_ok_ignored(status, root_attrs)
        else {}
    )
    return {
        "external_id": str(trace_id)[:200],
        "agent": str(agent)[:200],
        "model": fields.get("model", ""),
        "session_id": fields.get("session_id", ""),
        "task_key": fields.get("task_key", ""),
        "checks": fields.get("checks", []),
        "skills_in_scope": fields.get("skills_in_scope", []),
        "task": task,
        "started_at": _iso(min(starts)) if starts else None,
        "status": outcome or "unknown",
        "metadata": {"source": str(run.get("_source") or "openinference-json"), **unknown_why,
                     **({"propagated_errors": propagated} if propagated else {})},
        "steps": [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows],
    }  # fmt: skip


# --- Gemini CLI sessions ------------------------------------------------------


# What Gemini CLI's shell tool tells the model of its command: "Exit Code: 1".
_GEMINI_EXIT = re.compile(r"^Exit Code: (-?\d+)\s*$", re.M)
_GEMINI_SHELL_HEADERS = ("Command: ", "Directory: ", "Process Group PGID: ", "<untrusted_context>",
                         "</untrusted_context>")  # fmt: skip


def _gemini_result(call: dict[str, Any]) -> tuple[str, str]:
    """A Gemini CLI tool call's output and error: its `functionResponse` parts'
    `response` (`output`, or `error`), else what the CLI showed (`resultDisplay`);
    a call whose status is error failed, a shell command whose output states a
    non-zero exit code failed, and one cancelled (declined, or its turn stopped)
    has no result and says so."""
    result = call.get("result")
    parts = result if isinstance(result, list) else [result]
    responses = [obj(obj(part).get("functionResponse")).get("response") for part in parts]
    output = "\n".join(_text(r.get("output") if isinstance(r, dict) else r) for r in responses if r)
    error = "\n".join(_text(obj(r).get("error")) for r in responses if obj(r).get("error"))
    display = _text(call.get("resultDisplay"))
    output = output or display
    status = str(call.get("status") or "").lower()
    exit_code = _GEMINI_EXIT.search(output[:20_000])
    if exit_code and exit_code.group(1) != "0":  # the shell tool ran; its command failed
        # Its own header (the command, the directory) says nothing of what went wrong.
        # Newer versions wrap it as untrusted context and add the process group.
        error = error or "\n".join(
            line.removeprefix("Output: ") for line in output.splitlines()
            if not line.startswith(_GEMINI_SHELL_HEADERS))  # fmt: skip
    if status == "error":
        error = error or display or "the tool reported an error"
    elif status == "cancelled":
        error = error or "No result: the call was cancelled (declined, or its turn was stopped)."
    return output, error


def gemini_tool_result(response: Any) -> tuple[str, str]:
    """A Gemini CLI hook's `tool_response` (`llmContent`, `returnDisplay`, `error`)
    as its output and error, read as the chat recording's are (`_gemini_result`):
    an error, or a shell command's non-zero exit code, is the call's failure. Used
    by the server's Gemini CLI hooks (traces/claude_code.py)."""
    answer = obj(response)
    content = answer.get("llmContent")
    error = answer.get("error")
    call = {
        "result": [{"functionResponse": {"response": {"output": _text(content)}}}],
        "resultDisplay": answer.get("returnDisplay"),
        "status": "error" if error else "",
    }
    output, failure = _gemini_result(call)
    if error and not failure.strip():
        failure = _text(obj(error).get("message") or error, 10_000)
    return output or _text(response if not answer else ""), failure


def _gemini_record_log(path: Path) -> dict[str, Any]:
    """A Gemini CLI session kept as a record log (`session-*.jsonl`, as Gemini CLI
    0.61 writes it): a header line (`sessionId`, `startTime`…), `{"$set": {...}}`
    lines setting the session's fields (`messages` among them), and message
    records, a record whose `id` came before replacing it (a turn gains its tool
    calls). Returns the session as the older single-JSON file holds it; a record of
    another kind is passed over."""
    data: dict[str, Any] = {}
    messages: list[dict[str, Any]] = []
    at: dict[str, int] = {}
    for where, entry in _json_or_jsonl(path):
        _need(path, where, entry, dict, "a session record object")
        if "$set" in entry:
            fields = _need(path, where, entry["$set"], dict, '"$set", an object')
            if "messages" in fields:
                messages = [m for m in _need(path, where, fields["messages"], list,
                                             '"messages", a list') if isinstance(m, dict)]  # fmt: skip
                at = {str(m.get("id")): n for n, m in enumerate(messages) if m.get("id")}
            data.update({k: v for k, v in fields.items() if k != "messages"})
        elif entry.get("type") and entry.get("id"):
            key = str(entry["id"])
            if key in at:
                messages[at[key]] = entry
            else:
                at[key] = len(messages)
                messages.append(entry)
        elif entry.get("sessionId"):
            data.update(entry)
    if not data and not messages:
        raise FormatError(path, "top level", "no session header, $set line or message record: "
                          "is it a Gemini CLI chat recording (session-*.jsonl)?")  # fmt: skip
    return {**data, "messages": messages}


# The events of a headless run's `--output-format stream-json` lines that a chat
# recording's records never are.
_GEMINI_STREAM_EVENTS = {"init", "tool_use", "tool_result", "result"}


def _gemini_stream(path: Path, lines: list[tuple[str, Any]]) -> Parsed:
    """A headless Gemini CLI run's JSON lines (`gemini -p … --output-format
    stream-json`): `message` events the user's prompt and the agent's reply (its
    `delta` chunks joined), `tool_use` and `tool_result` a call (joined by
    `tool_id`; status `error` its error), `error` events error steps (warnings are
    the CLI's), and the closing `result`: its tokens, and, when the run ended in an
    error (the API's, a turn limit), a last error step saying so. The model is the
    `init` event's, or, when that says `auto` (the CLI routes), the one that used
    the most tokens; the run's tokens are on the first step it made (a headless run
    is one turn). Named `gemini-stream-<session id>`, apart from the session's
    chat recording (`gemini-<session id>`), which holds more (a shell command's
    exit code); it has no outcome."""
    session, model, tokens = path.stem, "", 0
    steps: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    stamps: list[str] = []
    for where, line in lines:
        _need(path, where, line, dict, "a stream-json event (an object)")
        kind = line.get("type")
        stamp = line.get("timestamp") if isinstance(line.get("timestamp"), str) else None
        if stamp:
            stamps.append(stamp)
        if kind == "init":
            session = str(line.get("session_id") or session)
            model = str(line.get("model") or "")
        elif kind == "message":
            text = _text(line.get("content"))
            last = steps[-1] if steps else None
            if line.get("role") == "user" and text:
                if not text.lstrip().startswith("<session_context>"):
                    steps.append({"kind": "user_prompt", "input": text, "started_at": stamp})
            elif line.get("role") == "assistant" and text:
                if line.get("delta") and last is not None and last.get("_reply"):
                    last["output"] += text  # the next chunk of the same reply
                else:
                    steps.append({"kind": "assistant_message", "output": text,
                                  "started_at": stamp, "_reply": True})  # fmt: skip
        elif kind == "tool_use":
            step = {"kind": "tool_call", "name": str(line.get("tool_name") or "")[:200],
                    "input": line.get("parameters"), "started_at": stamp}  # fmt: skip
            steps.append(step)
            calls[str(line.get("tool_id"))] = step
        elif kind == "tool_result" and (call := calls.get(str(line.get("tool_id")))):
            if output := _text(line.get("output")):
                call["output"] = output
            if str(line.get("status") or "").lower() == "error":
                said = _text(obj(line.get("error")).get("message"), 10_000)
                call["error"] = said or output or "the tool reported an error"
        elif kind == "error" and str(line.get("severity") or "error") != "warning":
            if said := _text(line.get("message"), 10_000):
                steps.append({"kind": "error", "error": said, "started_at": stamp})
        elif kind == "result":
            stats = obj(line.get("stats"))
            tokens = _count(stats.get("total_tokens"))
            used = {
                str(k): _count(obj(v).get("total_tokens"))
                for k, v in obj(stats.get("models")).items()
            }
            if used and model in ("", "auto"):
                model = max(used, key=lambda name: used[name])
            if str(line.get("status") or "").lower() == "error":
                said = _text(obj(line.get("error")).get("message"), 2_000)
                steps.append({"kind": "error", "started_at": stamp,
                              "error": f"The run ended: {said or 'an error'}"})  # fmt: skip
    for step in steps:
        step.pop("_reply", None)
    # A headless run is one turn: its tokens on the first step it made, as a Codex
    # exec turn's are.
    made = [s for s in steps if s["kind"] != "user_prompt"]
    if tokens and made:
        made[0]["tokens"] = tokens
    parsed = Parsed()
    parsed.traces.append({
        "external_id": f"gemini-stream-{session}"[:200], "agent": "gemini-cli",
        "model": "" if model == "auto" else model[:200], "session_id": session[:200],
        "task": _first_user_turn(steps), "status": "unknown", "steps": steps,
        "started_at": stamps[0] if stamps else None, "ended_at": stamps[-1] if stamps else None,
        "metadata": {"gemini_stream_tokens": tokens} if tokens else {},
    })  # fmt: skip
    return parsed


def _gemini_session(path: Path) -> Parsed:
    """A Gemini CLI session (`~/.gemini/tmp/<project>/chats/session-*.json`, or the
    record log `session-*.jsonl` newer versions write): user messages prompts,
    `gemini` messages the agent's text and its tool calls (args, result, status),
    `error` messages error steps; info and warnings are the CLI's; the context the
    CLI sends first (`<session_context>`) is no prompt. A session has no outcome
    (give one with --status). A headless run's `stream-json` lines are read too
    (`_gemini_stream`)."""
    lines = _json_or_jsonl(path)
    if any(isinstance(line, dict) and isinstance(line.get("type"), str)
           and line["type"] in _GEMINI_STREAM_EVENTS for _, line in lines[:20]):  # fmt: skip
        return _gemini_stream(path, lines)
    data = _need(path, "top level", _gemini_record_log(path) if not _single_json(path)
                 else _read_json(path), dict, 'a Gemini CLI session ("messages")')  # fmt: skip
    messages = _need(path, "messages", data.get("messages"), list, '"messages", a list')
    steps: list[dict[str, Any]] = []
    model = ""
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        _need(path, where, message, dict, "a message object")
        kind, text = str(message.get("type") or ""), _text(message.get("content"))
        stamp = message.get("timestamp") if isinstance(message.get("timestamp"), str) else None
        if kind == "user":
            if text and not text.lstrip().startswith("<session_context>"):
                steps.append({"kind": "user_prompt", "input": text, "started_at": stamp})
        elif kind == "gemini":
            model = str(message.get("model") or model)
            first = len(steps)
            if text:
                steps.append({"kind": "assistant_message", "output": text, "started_at": stamp})
            for call in _items(path, where, message.get("toolCalls"), '"toolCalls"'):
                _need(path, where, call, dict, "a tool call object")
                output, error = _gemini_result(call)
                steps.append({"kind": "tool_call", "name": str(call.get("name") or "")[:200],
                              "input": call.get("args"), "output": output, "error": error,
                              "started_at": call.get("timestamp") if isinstance(call.get("timestamp"), str) else stamp})  # fmt: skip
            tokens = _count(obj(message.get("tokens")).get("total"))
            if tokens and len(steps) > first:
                steps[first]["tokens"] = tokens
        elif kind == "error" and text:
            steps.append({"kind": "error", "error": text, "started_at": stamp})
    session = str(data.get("sessionId") or _digest(path.name))
    parsed = Parsed()
    parsed.traces.append({
        "external_id": f"gemini-{session}"[:200], "agent": "gemini-cli", "model": model[:200],
        "session_id": session[:200], "task": _first_user_turn(steps), "status": "unknown",
        "started_at": data.get("startTime") if isinstance(data.get("startTime"), str) else None,
        "ended_at": data.get("lastUpdated") if isinstance(data.get("lastUpdated"), str) else None,
        "metadata": {k: str(data[k])[:200] for k in ("projectHash", "summary") if data.get(k)},
        "steps": steps,
    })  # fmt: skip
    return parsed


# --- Langfuse trace exports -----------------------------------------------------

# Observation types (Langfuse v3) that are a model call, and that are a tool call.
_LANGFUSE_MODEL = {"GENERATION", "EMBEDDING"}
_LANGFUSE_TOOL = {"TOOL", "RETRIEVER"}


def _langfuse_span(observation: dict[str, Any]) -> dict[str, Any]:
    """A Langfuse observation as a span the span reader takes: a GENERATION a model
    call, a TOOL a tool call, an AGENT or CHAIN a framework step, any other (SPAN,
    EVENT, RETRIEVER, ...) a call named by its name, as a plain span is; level
    ERROR is an error status with its status message."""
    kind = str(observation.get("type") or "SPAN").upper()
    usage = obj(observation.get("usageDetails")) or obj(observation.get("usage"))
    attributes: dict[str, Any] = {"input.value": observation.get("input"),
                                  "output.value": observation.get("output")}  # fmt: skip
    if kind in _LANGFUSE_MODEL:
        attributes |= {"openinference.span.kind": "LLM", "llm.model_name": observation.get("model"),
                       "llm.token_count.total": usage.get("total")
                       or _count(usage.get("input")) + _count(usage.get("output"))}  # fmt: skip
    elif kind in _LANGFUSE_TOOL:
        attributes |= {"openinference.span.kind": "TOOL", "tool.name": observation.get("name")}
    else:
        attributes["openinference.span.kind"] = kind if kind in ("AGENT", "CHAIN") else "UNKNOWN"
    failed = str(observation.get("level") or "").upper() == "ERROR"
    return {
        "span_id": observation.get("id"), "parent_span_id": observation.get("parentObservationId"),
        "span_name": observation.get("name") or kind.lower(),
        "start_time": observation.get("startTime"), "end_time": observation.get("endTime"),
        "attributes": {k: v for k, v in attributes.items() if v is not None},
        "status_code": "error" if failed else "unset",
        "status_message": _text(observation.get("statusMessage"), 10_000) if failed else "",
    }  # fmt: skip


def _langfuse(path: Path) -> Parsed:
    """Langfuse traces with their observations (`GET /api/public/traces/{id}`,
    `TraceWithFullDetails`), one a file, a list of them, one a line, or the list
    endpoint's `{"data": [...]}` once each trace has its observations: each trace
    one run, its observations steps by the span reader's rule (a failure counted
    where it happened), its name the agent; its BOOLEAN scores are checks. An
    export has no outcome (give one with --status, or send outcomes)."""
    records: list[tuple[str, Any]] = []
    for where, item in _json_or_jsonl(path):
        data = obj(item).get("data")
        records += ([(f"{where} data[{i}]", r) for i, r in enumerate(data)]
                    if isinstance(data, list) else [(where, item)])  # fmt: skip
    parsed = Parsed()
    for where, trace in records:
        _need(path, where, trace, dict, "a Langfuse trace object")
        observations = _need(path, where, trace.get("observations"), list, '"observations", a list')
        if any(isinstance(o, str) for o in observations):
            raise FormatError(path, where, "observation ids, not observations (the trace list "
                              "endpoint's shape): fetch each trace with GET /api/public/traces/{id}")  # fmt: skip
        spans = [_langfuse_span(obj(o)) for o in observations if isinstance(o, dict)]
        run = _span_run(
            path, where, {"trace_id": trace.get("id"), "spans": spans, "_source": "langfuse"}
        )
        checks = [{"name": str(score.get("name") or "score")[:200], "passed": bool(score.get("value")),
                   "detail": _text(score.get("comment"), 2_000)}
                  for score in map(obj, _list(trace.get("scores")))
                  if str(score.get("dataType") or "").upper() == "BOOLEAN"]  # fmt: skip
        cost = trace.get("totalCost")
        run.update({
            "external_id": f"langfuse-{trace.get('id') or run['external_id']}"[:200],
            "agent": str(trace.get("name") or "langfuse")[:200],
            "session_id": str(trace.get("sessionId") or "")[:200],
            "task": run["task"] or _text(trace.get("input"), 100_000),
            "started_at": trace.get("timestamp") if isinstance(trace.get("timestamp"), str) else run["started_at"],
            "status": "unknown", "checks": checks[:500],
            "cost_usd": cost if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0 else None,
        })  # fmt: skip
        parsed.traces.append(run)
    return parsed


# --- LangSmith run exports -----------------------------------------------------


def _langsmith_parent(run: dict[str, Any]) -> str:
    """A run's parent id: `parent_run_id`, or the last of `parent_run_ids` (the API's
    newer shape lists every ancestor, the parent last); "" for a root."""
    parent = run.get("parent_run_id") or (_list(run.get("parent_run_ids")) or [""])[-1]
    return str(parent or "")


def _langsmith_span(run: dict[str, Any]) -> dict[str, Any]:
    """A LangSmith run as a span the span reader takes (its child runs as child
    spans): `run_type` llm a model call named by its model, tool (and retriever) a
    tool call, any other (chain, prompt, parser) a framework step named by its
    name; `error` its error."""
    kind = str(run.get("run_type") or "chain").lower()
    extra = obj(run.get("extra"))
    attributes: dict[str, Any] = {
        "input.value": run.get("inputs"),
        "output.value": run.get("outputs"),
    }
    if kind == "llm":
        params, meta = obj(extra.get("invocation_params")), obj(extra.get("metadata"))
        model = params.get("model") or params.get("model_name") or meta.get("ls_model_name")
        attributes |= {"openinference.span.kind": "LLM", "llm.model_name": model,
                       "llm.token_count.total": run.get("total_tokens")}  # fmt: skip
    elif kind in ("tool", "retriever"):
        attributes |= {"openinference.span.kind": "TOOL", "tool.name": run.get("name")}
    else:
        attributes["openinference.span.kind"] = "CHAIN"
    error = _text(run.get("error"), 10_000)
    return {
        "span_id": run.get("id"), "parent_span_id": _langsmith_parent(run) or None,
        "span_name": run.get("name") or kind,
        "start_time": run.get("start_time"), "end_time": run.get("end_time"),
        "attributes": {k: v for k, v in attributes.items() if v is not None},
        "status_code": "error" if error else "unset", "status_message": error,
        "child_spans": [_langsmith_span(obj(c)) for c in _list(run.get("child_runs"))],
    }  # fmt: skip


def _langsmith(path: Path) -> Parsed:
    """LangSmith runs as its SDK and API give them (`Run`: `run_type`, `inputs`,
    `outputs`, `error`, `parent_run_id`, `trace_id`, `child_runs` when loaded),
    one a line or a list, root runs with their children or every run flat: the
    runs of each trace one run here, each a step by the span reader's rule. A root
    that raised (`error`) failed; otherwise there is no outcome (`--status` gives
    one); `feedback_stats` are checks, passed when their average is 1."""
    traces: dict[str, list[dict[str, Any]]] = {}
    for where, run in _json_or_jsonl(path):
        _need(path, where, run, dict, "a LangSmith run object")
        trace_id = str(run.get("trace_id") or run.get("id") or where)
        traces.setdefault(trace_id, []).append(run)
    parsed = Parsed()
    for trace_id, runs in traces.items():
        nested: set[str] = set()  # runs already inside another's child_runs
        stack = [c for r in runs for c in _list(r.get("child_runs"))]
        while stack:
            child = obj(stack.pop())
            nested.add(str(child.get("id")))
            stack += _list(child.get("child_runs"))
        once: dict[str, dict[str, Any]] = {}  # a run given twice: the copy with its children
        for position, r in enumerate(runs):
            key = str(r.get("id") or f"#{position}")
            if key not in nested and (key not in once or _list(r.get("child_runs"))):
                once[key] = r
        runs = list(once.values()) or runs
        ids = {str(r.get("id")) for r in runs}
        root = next((r for r in runs if _langsmith_parent(r) not in ids), runs[0])
        spans = [_langsmith_span(r) for r in runs]
        trace = _span_run(path, f"trace {trace_id}", {"trace_id": trace_id, "spans": spans,
                                                      "_source": "langsmith"})  # fmt: skip
        checks = [{"name": str(key)[:200], "passed": stats.get("avg") == 1,
                   "detail": f"average {stats.get('avg')} over {stats.get('n')}"}
                  for key, stats in obj(root.get("feedback_stats")).items()
                  if isinstance(stats, dict) and isinstance(stats.get("avg"), int | float)]  # fmt: skip
        cost = root.get("total_cost")
        with contextlib.suppress(TypeError, ValueError):
            cost = float(cost) if cost is not None else None  # LangSmith sends a decimal string
        trace.update({
            "external_id": f"langsmith-{trace_id}"[:200],
            "agent": str(root.get("name") or "langsmith")[:200],
            "status": "failed" if root.get("error") else "unknown", "checks": checks[:500],
            "cost_usd": cost if isinstance(cost, float) and cost >= 0 else None,
        })  # fmt: skip
        parsed.traces.append(trace)
    return parsed


# --- OTLP/JSON files (the OpenTelemetry Collector's file exporter) --------------

_OTLP_STATUS = {0: "unset", 1: "ok", 2: "error", "STATUS_CODE_UNSET": "unset",
                "STATUS_CODE_OK": "ok", "STATUS_CODE_ERROR": "error"}  # fmt: skip


def _otlp_value(value: Any) -> Any:
    """An OTLP/JSON AnyValue as a plain value."""
    value = obj(value)
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        with contextlib.suppress(TypeError, ValueError):
            return int(value["intValue"])
        return value["intValue"]
    if "arrayValue" in value:
        return [_otlp_value(v) for v in _list(obj(value["arrayValue"]).get("values"))]
    if "kvlistValue" in value:
        return _otlp_attributes(obj(value["kvlistValue"]).get("values"))
    return None


def _otlp_attributes(items: Any) -> dict[str, Any]:
    return {str(kv["key"]): _otlp_value(kv.get("value")) for kv in _list(items)
            if isinstance(kv, dict) and isinstance(kv.get("key"), str)}  # fmt: skip


def _otlp_nanos(value: Any) -> int | None:
    with contextlib.suppress(TypeError, ValueError):
        return int(value) or None
    return None


_HEX_ID = re.compile(r"\A[0-9a-fA-F]+\Z")


def _otlp_id(value: Any) -> str:
    """A trace or span id as hex, as OTLP/JSON writes it; one written by protobuf's
    generic JSON mapping (`MessageToJson`, base64 of its 16 or 8 bytes) is turned
    to hex, so the run is named as `/v1/traces` names it."""
    text = str(value or "")
    if not text or _HEX_ID.match(text) or len(text) not in (12, 24):
        return text
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return text
    return raw.hex() if len(raw) in (8, 16) else text


def _otlp_genai_events(
    path: Path, where: str, document: dict[str, Any],
    calls: dict[tuple[str, str], list[tuple[int, str, dict[str, Any], Any]]],
    resources: dict[str, dict[str, Any]],
) -> None:  # fmt: skip
    """The GenAI events of an OTLP/JSON logs export (`resourceLogs`, as the
    Collector's file exporter writes them beside the spans), by (trace id, span id):
    (time, name, attributes, body), and each trace's resource. Records without a
    span's ids, and other records, are left out, as `/v1/logs` leaves them."""
    for resource_logs in _items(path, where, document.get("resourceLogs"), '"resourceLogs"'):
        resource = _otlp_attributes(obj(obj(resource_logs).get("resource")).get("attributes"))
        for scope in _list(obj(resource_logs).get("scopeLogs")):
            for record in _list(obj(scope).get("logRecords")):
                record = obj(record)
                attrs = _otlp_attributes(record.get("attributes"))
                name = str(record.get("eventName") or attrs.get("event.name") or "")
                trace_id, span_id = _otlp_id(record.get("traceId")), _otlp_id(record.get("spanId"))
                if name not in GENAI_LOG_EVENTS or not trace_id or not span_id:
                    continue
                when = _otlp_nanos(record.get("timeUnixNano")) or _otlp_nanos(
                    record.get("observedTimeUnixNano")) or 0  # fmt: skip
                resources.setdefault(trace_id, resource)
                calls.setdefault((trace_id, span_id), []).append(
                    (when, name, attrs, _otlp_value(record.get("body")))
                )


def _join_genai_events(
    runs: dict[str, dict[str, Any]],
    calls: dict[tuple[str, str], list[tuple[int, str, dict[str, Any], Any]]],
    resources: dict[str, dict[str, Any]],
) -> None:
    """Each call's GenAI events on its span, as the attributes that carry the same
    content (`genai_call_attributes`; what the span itself carries wins); a call whose
    span is not in the file is a span of its own at its first event's time, as
    `/v1/logs` makes its step."""
    for (trace_id, span_id), events in calls.items():
        events.sort(key=lambda e: e[0])
        attrs = genai_call_attributes([(n, a, b) for _, n, a, b in events])
        for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
            if key in attrs and not isinstance(attrs[key], str):
                # As a span carries them: JSON text (a file's nested attributes are
                # read as dotted keys).
                attrs[key] = json.dumps(attrs[key], ensure_ascii=False)
        run = runs.setdefault(trace_id, {"trace_id": trace_id, "spans": [],
                                         "resource_attributes": resources[trace_id],
                                         "_source": "otlp-json"})  # fmt: skip
        span = next((s for s in run["spans"] if s["span_id"] == span_id), None)
        if span is not None:
            span["attributes"] = {**attrs, **span["attributes"]}
            continue
        first = next((w for w, *_ in events if w), None)
        run["spans"].append({
            "span_id": span_id, "parent_span_id": None,
            "span_name": str(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system") or ""),
            "start_time": first, "end_time": None, "attributes": attrs, "events": [],
            "status_code": "unset", "status_message": "",
        })  # fmt: skip


def _otlp_json(path: Path) -> Parsed:
    """OTLP/JSON `ExportTraceServiceRequest` documents, one per line as the
    OpenTelemetry Collector's file exporter writes them (or one document): the
    spans of each trace id are one run, read as the OTLP endpoint reads them
    (`span_role`, exception events and error statuses, a failure counted where it
    happened), the resource's `service.name` its agent, its id the trace id.
    `ExportLogsServiceRequest` documents among them add their GenAI events to the
    calls' spans, as `/v1/logs` does."""
    runs: dict[str, dict[str, Any]] = {}
    calls: dict[tuple[str, str], list[tuple[int, str, dict[str, Any], Any]]] = {}
    resources: dict[str, dict[str, Any]] = {}
    for where, document in _json_or_jsonl(path):
        _need(path, where, document, dict, 'an OTLP/JSON export ("resourceSpans")')
        _otlp_genai_events(path, where, document, calls, resources)
        for resource_spans in _items(path, where, document.get("resourceSpans"), '"resourceSpans"'):
            resource_spans = obj(resource_spans)
            resource = _otlp_attributes(obj(resource_spans.get("resource")).get("attributes"))
            scopes = resource_spans.get("scopeSpans") or resource_spans.get(
                "instrumentationLibrarySpans"
            )
            for scope in _items(path, where, scopes, '"scopeSpans"'):
                for span in _items(path, where, obj(scope).get("spans"), '"spans"'):
                    _need(path, where, span, dict, "a span object")
                    trace_id = _otlp_id(span.get("traceId"))
                    status = obj(span.get("status"))
                    run = runs.setdefault(trace_id, {"trace_id": trace_id or None, "spans": [],
                                                     "resource_attributes": resource,
                                                     "_source": "otlp-json"})  # fmt: skip
                    run["spans"].append({
                        "span_id": _otlp_id(span.get("spanId")) or None,
                        "parent_span_id": _otlp_id(span.get("parentSpanId")) or None,
                        "span_name": span.get("name"),
                        "start_time": _otlp_nanos(span.get("startTimeUnixNano")),
                        "end_time": _otlp_nanos(span.get("endTimeUnixNano")),
                        "attributes": _otlp_attributes(span.get("attributes")),
                        "events": [{"name": obj(e).get("name"),
                                    "attributes": _otlp_attributes(obj(e).get("attributes"))}
                                   for e in _list(span.get("events"))],
                        "status_code": _OTLP_STATUS.get(code, "unset")
                        if isinstance(code := status.get("code"), int | str) else "unset",
                        "status_message": status.get("message") or "",
                    })  # fmt: skip
    _join_genai_events(runs, calls, resources)
    parsed = Parsed()
    for trace_id, run in runs.items():
        if only_agent_creation([span["attributes"] for span in run["spans"]]):
            continue
        trace = _span_run(path, f"trace {trace_id or '(no id)'}", run)
        if not says_nothing(trace):
            parsed.traces.append(trace)
    return parsed


# What a run's spans may say of it beside its steps (and its outcome, if known).
_RUN_FIELDS = ("task", "checks", "session_id", "task_key", "skills_in_scope")


def says_nothing(trace: dict[str, Any], whole: bool = True) -> bool:
    """Whether a run read from spans holds nothing an agent did (no step; or, when
    `whole`, all its spans here, only the framework's own structure: a workflow's
    build on a trace of its own) and says nothing of a run (no task, outcome,
    checks, session, task key or skills): no run. Used by the file importer and the
    OTLP receiver alike (an export holding a trace's root span holds its last span:
    spans are exported as they end)."""
    steps = _list(trace.get("steps"))
    return (
        (not steps or (whole and all(obj(step).get("kind") == "span" for step in steps)))
        and not any(trace.get(f) for f in _RUN_FIELDS)
        and trace.get("status") in (None, "", "unknown")
    )


def only_agent_creation(span_attributes: list[dict[str, Any]]) -> bool:
    """Whether a trace's spans only create agents (GenAI `create_agent`, as AutoGen
    traces each agent's construction on a trace of its own): no run, nothing an
    agent did. Used by the file importer and the OTLP receiver alike."""
    return bool(span_attributes) and all(
        str(attrs.get("gen_ai.operation.name") or "").lower() == "create_agent"
        for attrs in span_attributes
    )


def flat_first(spans: list[Any], key: str) -> Any:
    """The first value of `key` on a run's top-level spans (a span export repeats
    the run's trace id and service on each)."""
    return next((span.get(key) for span in spans if isinstance(span, dict) and span.get(key)), None)


def _native(path: Path) -> Parsed:
    items = _json_or_jsonl(path)
    if len(items) == 1 and isinstance(items[0][1], dict) and "traces" in items[0][1]:
        traces = _need(path, "traces", items[0][1]["traces"], list, '"traces", a list')
        items = [(f"traces[{i}]", trace) for i, trace in enumerate(traces)]
    return Parsed(
        traces=[_need(path, where, item, dict, "a trace object") for where, item in items]
    )


# --- OpenHands ----------------------------------------------------------------

# Events that carry no step: the system prompt, the agent's state changes, a
# microagent's recall, a condensation of the history.
_OPENHANDS_SKIP = {"system", "change_agent_state", "agent_state_changed", "recall", "null",
                   "condensation", "condensation_request"}  # fmt: skip
_OPENHANDS_SKIP_KINDS = {"SystemPromptEvent", "ConversationStateUpdateEvent", "Condensation",
                         "CondensationRequest", "CondensationSummaryEvent", "PauseEvent",
                         # The SDK's record-keeping: a streamed answer's fragments (the
                         # answer itself is its event), token ids, a raw completion log,
                         # a security analyzer's verdicts, a hook's run.
                         "StreamingDeltaEvent", "TokenEvent", "LLMCompletionLogEvent",
                         "SecurityAnalysisEvent", "HookExecutionEvent"}  # fmt: skip


def _openhands_exit_error(exit_code: Any, output: str) -> str:
    """The error of a command that exited non-zero (-1 is OpenHands' "still running",
    no exit code yet: not an error of its own)."""
    if isinstance(exit_code, int) and not isinstance(exit_code, bool) and exit_code not in (0, -1):
        return output or f"exited with code {exit_code}"
    return ""


def openhands_tool_result(observation: Any) -> tuple[str, str]:
    """An OpenHands SDK observation (an ObservationEvent's, a PostToolUse hook's
    `tool_response`) as its output and error: the text of its content; an error when
    it says so, or a command's non-zero exit code. Used by the server's OpenHands
    hooks (traces/claude_code.py) as by the conversation reader."""
    answer = _obj(observation)
    output = _text(answer.get("content"))
    if answer.get("is_error"):
        return output, output or "tool reported an error"
    return output, _openhands_exit_error(answer.get("exit_code"), output)


def _openhands_v0(history: list[Any], path: Path, where: str) -> list[dict[str, Any]]:
    """OpenHands' event stream as `event_to_dict` writes it: actions (`action`,
    `args`) and observations (`observation`, `content`, `extras`, `cause`: the id
    of the action they answer). Older output pairs them instead, `[action,
    observation]` (its observations then answer the action beside them)."""
    steps: list[dict[str, Any]] = []
    calls: dict[Any, dict[str, Any]] = {}
    events: list[tuple[str, Any]] = []
    for i, item in enumerate(history):
        if isinstance(item, list) and len(item) == 2:
            pair = (f"{where}, history[{i}][0]", item[0]), (f"{where}, history[{i}][1]", item[1])
            if isinstance(item[0], dict) and isinstance(item[1], dict):
                # An id of the pair's own, so the observation joins its action.
                first = {**item[0], "id": ("pair", i)}
                second = {**item[1], "cause": ("pair", i)}
                pair = (pair[0][0], first), (pair[1][0], second)
            events += pair
        else:
            events.append((f"{where}, history[{i}]", item))
    for here, event in events:
        _need(path, here, event, dict, "an event object")
        stamp = _iso(_epoch(event.get("timestamp")))
        if "action" in event:
            action = str(event.get("action") or "")
            args = _obj(event.get("args"))
            if action in _OPENHANDS_SKIP:
                continue
            if action == "message":
                text = _text(args.get("content") or event.get("message"))
                if event.get("source") == "user":
                    steps.append({"kind": "user_prompt", "input": text, "started_at": stamp})
                elif text:
                    steps.append({"kind": "assistant_message", "output": text, "started_at": stamp})
                continue
            thought = _text(args.get("thought"))
            if thought:
                steps.append({"kind": "assistant_message", "output": thought, "started_at": stamp})
            if action == "think":
                continue
            meta = _obj(event.get("tool_call_metadata"))
            name = str(meta.get("function_name") or action or "action")[:200]
            step = {"kind": "tool_call", "name": name, "started_at": stamp,
                    "input": {k: v for k, v in args.items() if k != "thought"}}  # fmt: skip
            steps.append(step)
            if _id(event.get("id")) is not None:
                calls[event["id"]] = step
            continue
        if "observation" not in event:
            raise FormatError(path, here, 'an event with neither "action" nor "observation"')
        observation = str(event.get("observation") or "")
        if observation in _OPENHANDS_SKIP:
            continue
        output = _text(event.get("content") if "content" in event else event.get("message"))
        extras = _obj(event.get("extras"))
        exit_code = _first(extras, "exit_code")
        if exit_code is None:  # the SDK's events keep it in the metadata
            exit_code = _obj(extras.get("metadata")).get("exit_code")
        error = (
            (output or "error")
            if observation == "error"
            else _openhands_exit_error(exit_code, output)
        )
        cause = _id(event.get("cause"))
        call = calls.pop(cause, None) if cause is not None else None
        if call is None:
            call = {"kind": "error" if observation == "error" else "tool_result",
                    "name": observation[:200], "started_at": stamp}  # fmt: skip
            steps.append(call)
        call["output"] = output
        if error:
            call["error"] = error
    return steps


def _openhands_v1(
    history: list[Any],
    path: Path,
    where: str,
    tokens: dict[str, int] | None = None,
    when: Callable[[Any], float | None] | None = None,
) -> list[dict[str, Any]]:
    """The OpenHands software-agent SDK's events, told apart by `kind`: MessageEvent,
    ActionEvent (`tool_name`, `action`, `thought`), ObservationEvent and
    AgentErrorEvent (joined to their action by `tool_call_id` or `action_id`),
    ConversationErrorEvent (the run's own error) and ACPToolCallEvent (a call of an
    agent the SDK drives over the Agent Client Protocol, updated under one id).
    `tokens`: each model answer's tokens by its response id (a saved conversation's
    state holds them), put on the first step made from that answer. `when` reads an
    event's time (`_epoch`, unless given)."""
    steps: list[dict[str, Any]] = []
    calls: dict[Any, dict[str, Any]] = {}
    tokens = dict(tokens or {})
    when = when or _epoch
    for i, event in enumerate(history):
        here = f"{where}, history[{i}]"
        _need(path, here, event, dict, "an event object")
        kind = str(event.get("kind") or "")
        stamp = _iso(when(event.get("timestamp")))
        if kind in _OPENHANDS_SKIP_KINDS:
            continue
        first = len(steps)
        _openhands_v1_event(event, kind, stamp, steps, calls)
        answered = tokens.pop(str(event.get("llm_response_id") or ""), None)
        if answered is not None and len(steps) > first:
            steps[first]["tokens"] = answered
    return steps


def _openhands_v1_event(
    event: dict[str, Any], kind: str, stamp: str | None, steps: list[dict[str, Any]],
    calls: dict[Any, dict[str, Any]],
) -> None:  # fmt: skip
    """The steps one SDK event adds to `steps` (`calls`: the tool steps by id)."""
    if kind == "MessageEvent":
        message = _obj(event.get("llm_message"))
        text = _text(message.get("content"))
        if message.get("role") == "user" or event.get("source") == "user":
            steps.append({"kind": "user_prompt", "input": text, "started_at": stamp})
        elif text:
            steps.append({"kind": "assistant_message", "output": text, "started_at": stamp})
        return
    if kind == "ActionEvent":
        thought = "\n".join(
            t for t in (_text(event.get("reasoning_content")), _text(event.get("thought"))) if t
        )
        if thought:
            steps.append({"kind": "assistant_message", "output": thought, "started_at": stamp})
        action = _obj(event.get("action"))
        step = {"kind": "tool_call", "started_at": stamp,
                "name": str(event.get("tool_name") or action.get("kind") or "action")[:200],
                "input": {k: v for k, v in action.items() if k != "kind"}}  # fmt: skip
        steps.append(step)
        for key in (_id(event.get("tool_call_id")), _id(event.get("id"))):
            if key is not None:
                calls[key] = step
        return
    if kind in ("ObservationEvent", "AgentErrorEvent", "UserRejectObservation"):
        call = calls.get(_id(event.get("tool_call_id"))) or calls.get(_id(event.get("action_id")))
        if kind == "ObservationEvent":
            output, error = openhands_tool_result(event.get("observation"))
        else:
            output = ""
            error = _text(event.get("error") or event.get("rejection_reason")) or kind
        if call is None:
            call = {"kind": "error" if error and not output else "tool_result",
                    "name": str(event.get("tool_name") or kind)[:200], "started_at": stamp}  # fmt: skip
            steps.append(call)
        if output:
            call["output"] = output
        if error:
            call["error"] = error
        return
    if kind == "ConversationErrorEvent":
        # The run's own error (the model unreachable, a budget, an exception): its last
        # step, as the classic output's `error`.
        code, detail = _text(event.get("code")), _text(event.get("detail"))
        error = ": ".join(t for t in (code, detail) if t) or kind
        steps.append({"kind": "error", "error": error, "started_at": stamp})
        return
    if kind == "ACPToolCallEvent":
        # One call of an agent driven over ACP, sent again as it progresses (pending,
        # in progress, completed): the first event makes the step, later ones fill it.
        key = _id(event.get("tool_call_id"))
        acp: dict[str, Any] | None = calls.get(("acp", key)) if key is not None else None
        if acp is None:
            acp = {"kind": "tool_call", "started_at": stamp,
                   "name": str(event.get("tool_kind") or event.get("title") or "tool")[:200]}  # fmt: skip
            steps.append(acp)
            if key is not None:
                calls[("acp", key)] = acp
        if event.get("raw_input") is not None:
            acp["input"] = event["raw_input"]
        output = _text(event.get("raw_output") if event.get("raw_output") is not None
                       else event.get("content"))  # fmt: skip
        if output:
            acp["output"] = output
        if event.get("is_error") is True or event.get("status") == "failed":
            acp["error"] = output or "the call failed"
        return
    # Any other event with text (a kind this reader does not know) is kept as text.
    if text := _text(event.get("message") or event.get("content")):
        steps.append({"kind": "assistant_message", "output": text, "started_at": stamp})


def _openhands_eval_reports(path: Path) -> dict[str, bool]:
    """`resolved` per instance from the evaluation's `<output>.swebench_eval.jsonl`
    beside an OpenHands `output.jsonl` (its `test_result.report`)."""
    sibling = path.with_name(path.name.removesuffix(".jsonl") + ".swebench_eval.jsonl")
    if sibling == path or not sibling.is_file() or sibling.stat().st_size > _MAX_REPORT_BYTES:
        return {}
    found: dict[str, bool] = {}
    try:
        for _, record in _read_jsonl(sibling):
            record = _obj(record)
            resolved = _obj(_obj(record.get("test_result")).get("report")).get("resolved")
            if isinstance(record.get("instance_id"), str) and isinstance(resolved, bool):
                found[record["instance_id"]] = resolved
    except FormatError:
        return {}
    return found


# How a saved SDK conversation's state says it ended, where that is a failure: the
# SDK's stuck detection stopped it (the same action and result, or error, again and
# again), or it ended on an error. Any other state says nothing of the outcome.
_OPENHANDS_FAILED_STATES = {
    "stuck": "OpenHands' stuck detection stopped the conversation: the agent was repeating "
    "itself without progress",
    "error": "the conversation ended on an error",
}
_OPENHANDS_EVENT_FILE = re.compile(r"event-(\d+)-.*\.json")


def _openhands_conversation(path: Path) -> Parsed:
    """A conversation the OpenHands software-agent SDK saved (`persistence_dir`, as the
    OpenHands CLI keeps its own under ~/.openhands/conversations): this file,
    `base_state.json`, holds the agent's settings, the model's usage and how the
    run ended; its events are the `events/event-NNNNN-<id>.json` files beside it,
    read in their numbered order. One run, named by the conversation's id."""
    state = _need(path, "top level", _read_json(path), dict, "a conversation state object")
    numbered = []
    for file in (path.parent / "events").glob("event-*.json"):
        match = _OPENHANDS_EVENT_FILE.fullmatch(file.name)
        if match and file.is_file():
            numbered.append((int(match.group(1)), file))
    if not numbered:
        raise FormatError(path, "events", "no events/event-*.json files beside this "
                          "conversation state; its events are not here")  # fmt: skip
    history = []
    for _, file in sorted(numbered):
        history.append(_need(file, "top level", _read_json(file), dict, "an event object"))
    agent = _obj(state.get("agent"))
    llm = _obj(agent.get("llm"))
    model = str(llm.get("model") or "").removeprefix("litellm_proxy/")
    usage = _obj(_obj(state.get("stats")).get("usage_to_metrics"))
    tokens: dict[str, int] = {}
    cost = 0.0
    for metrics in (_obj(m) for m in usage.values()):
        spent = metrics.get("accumulated_cost")
        if isinstance(spent, int | float) and not isinstance(spent, bool) and spent > 0:
            cost += spent
        for used in (_obj(u) for u in _list(metrics.get("token_usages"))):
            counts = [used.get(k) for k in ("prompt_tokens", "completion_tokens")]
            total = sum(
                c for c in counts if isinstance(c, int) and not isinstance(c, bool) and c >= 0
            )
            if isinstance(used.get("response_id"), str) and used["response_id"] and total:
                tokens[used["response_id"]] = tokens.get(used["response_id"], 0) + total
    steps = _openhands_v1(history, path, "events", tokens, when=_local_epoch)
    status = str(state.get("execution_status") or "")
    ended = _OPENHANDS_FAILED_STATES.get(status)
    times = [t for t in (_local_epoch(e.get("timestamp")) for e in history) if t is not None]
    if ended and not (steps and steps[-1]["kind"] == "error"):
        steps.append({"kind": "error", "error": f"{ended} (execution_status: {status})",
                      "started_at": _iso(max(times)) if times else None})  # fmt: skip
    conversation = str(state.get("id") or path.parent.name)[:150]
    task = next((s.get("input", "") for s in steps if s["kind"] == "user_prompt"), "")
    parsed = Parsed()
    parsed.traces.append({
        "external_id": f"openhands-{conversation}"[:200], "session_id": conversation,
        "agent": f"OpenHands/{model}"[:200] if model else "OpenHands", "model": model[:200],
        "task": task, "status": "failed" if ended else "unknown",
        "started_at": _iso(min(times)) if times else None,
        "ended_at": _iso(max(times)) if times else None,
        # Zero is what the SDK reports for a model it has no price for: unknown.
        "cost_usd": cost or None,
        # The session's complete record: where its hooks built the run already
        # (`openhands-<session>` too), its steps replace theirs (traces/importing.py).
        "metadata": {"conversation_id": conversation, "openhands_events": "v1",
                     "execution_status": status, "replaces_hook_steps": True,
                     "outcome_from": "execution_status" if ended else ""},
        "steps": steps,
    })  # fmt: skip
    return parsed


def _openhands(path: Path) -> Parsed:
    if path.name == "base_state.json":
        return _openhands_conversation(path)
    text_start = path.read_bytes()[:4096].lstrip()
    if text_start.startswith(b"[") and _single_json(path):
        data = _read_json(path)
        first = _obj(data[0]) if data else {}
        # A bare event stream (a saved conversation), or a list of instances.
        records = ([("top level", {"history": data})] if "history" not in first
                   else [(f"element [{i}]", r) for i, r in enumerate(data)])  # fmt: skip
    else:
        records = _json_or_jsonl(path)
    evaluated = _openhands_eval_reports(path)
    # The run: the folder OpenHands wrote output.jsonl in (named by agent, model and
    # settings); a submission's, for its `trajs/<instance id>.json` (SWE-bench/
    # experiments' layout); a conversation saved on its own is named by its file.
    in_trajs = path.parent.name == "trajs"
    run = (path.parent.name if path.name.startswith("output")
           else path.parent.parent.name if in_trajs else path.stem)  # fmt: skip
    parsed = Parsed()
    seen: dict[str, int] = {}
    for where, record in records:
        _need(path, where, record, dict, "an OpenHands instance object")
        chat = next((k for k in ("messages", "trajectory") if isinstance(record.get(k), list)), "")
        if not isinstance(record.get("history"), list) and chat:
            raise FormatError(
                path, where, f'a chat-format trajectory ("{chat}", as in SWE-Gym\'s or SWE-rebench\'s '
                "OpenHands trajectories), not OpenHands' event history: import it with --format "
                "chat-jsonl",
            )  # fmt: skip
        history = _need(path, f"{where}: history", record.get("history"), list, "a list of events")
        v1 = any(isinstance(e, dict) and "kind" in e for e in history[:20])
        steps = (_openhands_v1 if v1 else _openhands_v0)(history, path, where)
        metadata = _obj(record.get("metadata"))
        instance = str(record.get("instance_id") or _obj(record.get("instance")).get("instance_id")
                       or path.stem)[:150]  # fmt: skip
        seen[instance] = seen.get(instance, 0) + 1
        attempt = f"#{seen[instance]}" if seen[instance] > 1 else ""
        report = _obj(_obj(record.get("test_result")).get("report"))
        resolved, source = report.get("resolved"), "test_result.report.resolved"
        if not isinstance(resolved, bool):
            resolved, source = evaluated.get(instance), f"{path.stem}.swebench_eval.jsonl"
        if not isinstance(resolved, bool) and isinstance(record.get("resolved"), bool):
            resolved, source = record["resolved"], "resolved"
        if not isinstance(resolved, bool):
            outcome = swe_outcome(path, instance)
            resolved, source = outcome.resolved, outcome.source
        llm = _obj(metadata.get("llm_config") or metadata.get("llm"))
        model = str(llm.get("model") or metadata.get("model") or "").removeprefix("litellm_proxy/")
        agent_class = str(metadata.get("agent_class") or "OpenHands")
        times = [t for t in (_epoch(_obj(e).get("timestamp")) for e in history) if t is not None]
        cost = _obj(record.get("metrics")).get("accumulated_cost")
        # The run ended on an error (stuck in a loop, an exception, a budget): the
        # last thing that happened, unless the events already end on it.
        ended = _text(record.get("error"), 10_000).strip() if record.get("error") else ""
        if ended and not (steps and steps[-1].get("error") == ended):
            steps.append({"kind": "error", "error": ended,
                          "started_at": _iso(max(times)) if times else None})  # fmt: skip
        task = _text(record.get("instruction"), 100_000) or next(
            (s.get("input", "") for s in steps if s["kind"] == "user_prompt"), "")  # fmt: skip
        parsed.traces.append({
            "external_id": f"openhands-{run or 'run'}-{instance}{attempt}"[:200],
            "agent": f"{agent_class}/{model}"[:200] if model else agent_class[:200],
            "model": model[:200], "task": task,
            **({"task_key": f"swe:{instance}"[:200]}
               if record.get("instance_id") or in_trajs else {}),
            "status": ("succeeded" if resolved else "failed") if isinstance(resolved, bool) else "unknown",
            "started_at": _iso(min(times)) if times else None,
            "ended_at": _iso(max(times)) if times else None,
            "cost_usd": cost if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0 else None,
            "metadata": {"instance_id": instance, "openhands_events": "v1" if v1 else "v0",
                         "outcome_from": source if isinstance(resolved, bool) else "",
                         **({"error": _text(record["error"], 2_000)} if record.get("error") else {})},
            "steps": steps,
        })  # fmt: skip
    return parsed


# --- OpenCode ------------------------------------------------------------------


def _opencode_tokens(tokens: Any) -> int | None:
    """A model call's tokens as OpenCode counts them (input, output, reasoning, and
    the cache read and written), None when it counted none."""
    counts = obj(tokens)
    cache = obj(counts.get("cache"))
    values = [counts.get("input"), counts.get("output"), counts.get("reasoning"),
              cache.get("read"), cache.get("write")]  # fmt: skip
    total = sum(v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0)
    return total or None


def _opencode_tool(part: dict[str, Any], stamp: str | None) -> dict[str, Any]:
    """One tool part: its call, its output, and its error (the tool's, or a command's
    non-zero exit code, which OpenCode records as completed)."""
    state = obj(part.get("state"))
    output = _text(state.get("output") if state.get("output") is not None
                   else obj(state.get("metadata")).get("output"))  # fmt: skip
    if state.get("status") == "error":
        error = _text(state.get("error")) or "the tool failed"
    else:
        error = _openhands_exit_error(obj(state.get("metadata")).get("exit"), output)
    timing = obj(state.get("time"))
    start, end = _epoch(timing.get("start")), _epoch(timing.get("end"))
    step: dict[str, Any] = {"kind": "tool_call", "name": str(part.get("tool") or "tool")[:200],
                            "input": state.get("input"), "started_at": _iso(start) or stamp}  # fmt: skip
    if output:
        step["output"] = output
    if error:
        step["error"] = error
    if start is not None and end is not None and end >= start:
        step["duration_ms"] = (end - start) * 1000
    if state.get("status") in ("pending", "running"):
        step["error"] = "the call had not finished when the session was exported"
    return step


# A subagent's session exported beside its parent's, named by its id, is read into
# the parent's run; `opencode_parent` tells a folder import to leave it to the parent.
_OPENCODE_ID = re.compile(rb'"id"\s*:\s*"([^"]+)"')
_OPENCODE_PARENT = re.compile(rb'"parentID"\s*:\s*"([^"]+)"')
_OPENCODE_DEPTH = 8  # subagents of subagents, at most this deep


def _opencode_head(path: Path) -> tuple[str, str]:
    """An exported session's id and the id of the session it is a subagent of ("" for
    a top-level one), read from the head of the file, where the export writes the
    session's info."""
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return "", ""
    found = [pattern.search(head) for pattern in (_OPENCODE_ID, _OPENCODE_PARENT)]
    return (found[0].group(1).decode("utf-8", "replace") if found[0] else "",
            found[1].group(1).decode("utf-8", "replace") if found[1] else "")  # fmt: skip


def _opencode_subagents_left_out(files: list[Path]) -> list[Path]:
    """A folder's OpenCode exports less the subagents' sessions that their parent's
    export beside them reads into its run (`_opencode_messages`: a subagent's session
    named by its id, `<session id>.json`)."""
    heads = {path: _opencode_head(path) for path in files}
    sessions = {(path.parent, session) for path, (session, _) in heads.items() if session}
    return [
        path for path in files
        if not (heads[path][1] and path.name == f"{heads[path][0]}.json"
                and (path.parent, heads[path][1]) in sessions)
    ]  # fmt: skip


def _opencode_messages(
    path: Path, data: dict[str, Any], steps: list[dict[str, Any]], parent: int | None,
    depth: int, instruction: str = "",
) -> None:  # fmt: skip
    """The steps of one exported session's messages, appended to `steps` (inside the
    step `parent`, for a subagent's); a `task` call whose subagent's session was
    exported beside this file (`<session id>.json`) holds that session's steps. A
    subagent's session opens with the call's prompt as a user message (`instruction`):
    the call's input holds it, and no person said it, so it is no step."""
    inside = {} if parent is None else {"parent_index": parent}
    where = "" if parent is None else f"subagent {data.get('info', {}).get('id')}: "
    for i, message in enumerate(_items(path, where, data.get("messages"), '"messages"')):
        here = f"{where}messages[{i}]"
        _need(path, here, message, dict, "a message object")
        about = obj(message.get("info"))
        role = about.get("role")
        stamp = _iso(_epoch(obj(about.get("time")).get("created")))
        first, pending = len(steps), None
        for j, part in enumerate(_items(path, f"{here}.", message.get("parts"), '"parts"')):
            _need(path, f"{here}.parts[{j}]", part, dict, "a part object")
            kind = part.get("type")
            if kind == "step-start":
                pending = len(steps)
            elif kind == "step-finish":
                tokens = _opencode_tokens(part.get("tokens"))
                if tokens and pending is not None and pending < len(steps):
                    steps[pending]["tokens"] = tokens
                pending = None
            elif kind in ("text", "reasoning") and _text(part.get("text")).strip():
                if part.get("synthetic") or part.get("ignored"):
                    continue  # text OpenCode added itself (a file's contents, a reminder)
                text = _text(part.get("text"))
                if role == "user" and instruction and text.strip() == instruction.strip():
                    continue
                steps.append({**({"kind": "user_prompt", "input": text} if role == "user"
                                 else {"kind": "assistant_message", "output": text}),
                              "started_at": stamp, **inside})  # fmt: skip
            elif kind == "tool":
                steps.append({**_opencode_tool(part, stamp), **inside})
                child = _text(obj(obj(part.get("state")).get("metadata")).get("sessionId"), 150)
                beside = path.parent / f"{child}.json"
                if (
                    part.get("tool") == "task"
                    and child
                    and depth < _OPENCODE_DEPTH
                    and beside.is_file()
                ):
                    sub = _need(beside, "top level", _read_json(beside), dict,
                                "an exported OpenCode session")  # fmt: skip
                    prompt = _text(obj(obj(part.get("state")).get("input")).get("prompt"))
                    _opencode_messages(beside, sub, steps, len(steps) - 1, depth + 1, prompt)
        error = obj(about.get("error"))
        if error:
            said = _text(obj(error.get("data")).get("message")) or _text(error.get("name"))
            steps.append({"kind": "error", "error": said or "the model call failed",
                          "started_at": stamp, **inside})  # fmt: skip
        made = steps[first:]
        if role == "assistant" and made and not any("tokens" in s for s in made):
            tokens = _opencode_tokens(about.get("tokens"))
            if tokens:
                steps[first]["tokens"] = tokens


def _opencode(path: Path) -> Parsed:
    """An OpenCode session as `opencode export <session>` writes it: its `info` (id,
    title, directory, model, cost, times) and its `messages`, each an `info` (role,
    model, tokens, an error) with its `parts`. A user's text is a prompt; an
    assistant's text and reasoning are what it said; a tool part is a call, its state
    its input, output and error (the tool's, or a command's non-zero exit code);
    each model call's tokens (`step-finish`) go on the first step it made. A message
    that ended on an error (the model's API, an abort) adds an error step. A
    subagent's session exported beside it (`<session id>.json`, as the `task` call
    names it) is read into the call that started it, its steps inside that call."""
    data = _need(path, "top level", _read_json(path), dict, "an exported OpenCode session")
    info = _need(path, "info", data.get("info"), dict, "the session's info object")
    messages = _items(path, "", data.get("messages"), '"messages"')
    steps: list[dict[str, Any]] = []
    _opencode_messages(path, data, steps, None, 0)
    for position, step in enumerate(steps):
        step["index"] = position
    times = obj(info.get("time"))
    model = obj(info.get("model"))
    model_name = "/".join(str(model[k]) for k in ("providerID", "id") if model.get(k))
    if not model_name:
        last = next((obj(m.get("info")) for m in reversed(messages) if isinstance(m, dict)
                     and obj(m.get("info")).get("modelID")), {})  # fmt: skip
        model_name = "/".join(str(last[k]) for k in ("providerID", "modelID") if last.get(k))
    session = _text(info.get("id"), 150)
    if not session:
        raise FormatError(path, "info.id", "the session has no id")
    cost = info.get("cost")
    task = next((s["input"] for s in steps if s["kind"] == "user_prompt"), "")
    parsed = Parsed()
    parsed.traces.append({
        "external_id": f"opencode-{session}"[:200], "agent": "opencode", "model": model_name[:200],
        "session_id": session,
        "task": task, "status": "unknown",
        "started_at": _iso(_epoch(times.get("created"))),
        "ended_at": _iso(_epoch(times.get("updated"))),
        "cost_usd": cost if isinstance(cost, int | float) and not isinstance(cost, bool) and cost > 0 else None,
        "metadata": {"session_id": session, "title": _text(info.get("title"), 500),
                     "directory": _text(info.get("directory"), 500),
                     **({"parent_session": _text(info["parentID"], 150)} if info.get("parentID") else {}),
                     "opencode_version": _text(info.get("version"), 50)},
        "steps": steps,
    })  # fmt: skip
    return parsed


# --- Continue ---------------------------------------------------------------------

# How Continue marks a call's state (`toolCallStates[].status`): failed, refused, or
# never finished when the session was saved.
_CONTINUE_FAILED = {"errored": "", "canceled": "the call was canceled",
                    "generating": "the call had not finished when the session was saved",
                    "generated": "the call had not run when the session was saved",
                    "calling": "the call had not finished when the session was saved"}  # fmt: skip


def _continue_text(content: Any) -> str:
    """A Continue message's content: text, or a list of parts (text and images)."""
    if isinstance(content, str):
        return content
    return "\n".join(_text(obj(part).get("text")) for part in _list(content)
                     if obj(part).get("type") == "text")  # fmt: skip


def _continue(path: Path) -> Parsed:
    """A Continue session (`~/.continue/sessions/<session id>.json`, as the Continue
    CLI 1.5 and its IDE extensions save it): its `history`, each item a `message`
    (role, content, `toolCalls`, `usage`) and the state of each call it made
    (`toolCallStates`: parsed arguments, status, output). A user's text is a prompt;
    the assistant's text (and thinking) what it said, each tool call a call, its
    output the state's (or the `tool` message answering it), failed when Continue
    says it errored (the output says why: a command's exit code, a missing file) or
    was canceled, or had not run when the session was saved; each answer's tokens
    (`usage.total_tokens`) on the first step it made. The outcome is unknown (give
    one with --status). Continue's own cost figure is not read: it prices models it
    does not know by a default."""
    data = _need(path, "top level", _read_json(path), dict, "a Continue session")
    session = _text(data.get("sessionId"), 150)
    if not session or not isinstance(data.get("history"), list):
        raise FormatError(path, "sessionId", "no Continue session here (no sessionId and history)")
    steps: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    model = ""
    for i, item in enumerate(data["history"]):
        where = f"history[{i}]"
        _need(path, where, item, dict, "a history item")
        message = _need(path, f"{where}.message", item.get("message"), dict, "a message")
        role = message.get("role")
        text = _continue_text(message.get("content"))
        first = len(steps)
        if role == "user" and text.strip():
            steps.append({"kind": "user_prompt", "input": text})
        elif role in ("assistant", "thinking") and text.strip():
            steps.append({"kind": "assistant_message", "output": text})
        elif role == "tool" and (answered := calls.get(_text(message.get("toolCallId")))):
            answered.setdefault("output", text)
        # Continue's `ChatHistoryItem` once held one call's state (`toolCallState`, as
        # its type definitions still declare it); now a list, one a call.
        held = _list(item.get("toolCallStates")) or [item.get("toolCallState")]
        states = {_text(obj(state).get("toolCallId")): obj(state) for state in held if state}
        for call in _list(message.get("toolCalls")) if role == "assistant" else []:
            call = obj(call)
            function = obj(call.get("function"))
            state = states.get(_text(call.get("id")), {})
            arguments: Any = state.get("parsedArgs")
            if arguments is None:
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    with contextlib.suppress(json.JSONDecodeError, RecursionError):
                        arguments = json.loads(arguments)
            step: dict[str, Any] = {"kind": "tool_call", "input": arguments,
                                    "name": _text(function.get("name"))[:200] or "tool"}  # fmt: skip
            said = "\n".join(_text(obj(out).get("content")) for out in _list(state.get("output")))
            if said:
                step["output"] = said
            status = _text(state.get("status"))
            if status in _CONTINUE_FAILED:
                step["error"] = (_CONTINUE_FAILED[status] or said or "the tool call failed")[
                    :10_000
                ]
            steps.append(step)
            calls[_text(call.get("id"))] = step
        usage = obj(message.get("usage"))
        model = _text(usage.get("model")) or model
        tokens = usage.get("total_tokens")
        if (
            isinstance(tokens, int)
            and not isinstance(tokens, bool)
            and tokens > 0
            and first < len(steps)
        ):
            steps[first]["tokens"] = tokens
    for position, step in enumerate(steps):
        step["index"] = position
    title = _text(data.get("title"), 500)
    # The session's own file holds no times; the list beside it (`sessions.json`) says
    # when each session was created.
    created = None
    listing = path.parent / "sessions.json"
    if listing != path and listing.is_file():
        with contextlib.suppress(FormatError, ValueError):
            entry = next((obj(e) for e in _list(_read_json(listing))
                          if obj(e).get("sessionId") == session), {})  # fmt: skip
            stamp = entry.get("dateCreated")
            created = _iso(
                _epoch(int(stamp) if isinstance(stamp, str) and stamp.isdigit() else stamp)
            )
    trace = {
        "external_id": f"continue-{session}"[:200], "agent": "continue", "model": model[:200],
        "session_id": session, "status": "unknown", "started_at": created,
        "task": next((s["input"] for s in steps if s["kind"] == "user_prompt"), ""),
        "metadata": {"session_id": session, "directory": _text(data.get("workspaceDirectory"), 500),
                     **({"title": title} if title and title != "Untitled Session" else {})},
        "steps": steps,
    }  # fmt: skip
    return Parsed(traces=[trace])


# --- Aider -------------------------------------------------------------------------

# What opens each session of an Aider chat history (`.aider.chat.history.md`, in the
# project; every session of the project is appended to the one file).
AIDER_SESSION_START = re.compile(
    r"^# aider chat started at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)[ \t]*$", re.M
)
# Aider's own lines (`> `), each ending in a Markdown line break (two spaces); one
# written in a single piece may run over several lines, its first alone quoted.
# Aider's count of a model answer's tokens (`sent` holds the cache written, not the
# cache read), rounded as Aider rounds it ("2.6k", "12k").
_AIDER_TOKENS = re.compile(
    r"Tokens: ([\d.]+)(k?) sent(?:, [\d.]+k? cache write)?(?:, ([\d.]+)(k?) cache hit)?, "
    r"([\d.]+)(k?) received\."
)
_AIDER_COST = re.compile(r"Cost: \$([\d.]+) message")
_AIDER_ADDED = re.compile(r"Added (\d+) lines? of output to the chat\.")
# A SEARCH/REPLACE block (Aider's diff format: the file's name on the line before the
# fence; diff-fenced: on the fence's first line), with the markers Aider accepts.
_AIDER_BLOCK = re.compile(
    r"^(?P<file>[^\n]*)\n```[^\n]*\n(?P<path2>[^\n<]*\n)?<{5,9} SEARCH>?[ \t]*\n"
    r"(?P<search>.*?)^={5,9}[ \t]*\n(?P<replace>.*?)^>{5,9} REPLACE[ \t]*$", re.M | re.S,
)  # fmt: skip


# A unified diff (Aider's udiff edit format), from its `---` line to its fence's end.
_AIDER_UDIFF = re.compile(r"^--- (?:a/)?(.+)\n\+\+\+ .*?(?=^```)", re.M | re.S)
# The most lines one message of Aider's runs over (an edit's failure quotes the
# blocks and the file's lines it meant): a quoted line of the model's own is not
# taken for one past them.
_AIDER_MESSAGE_LINES = 5_000


def _aider_number(digits: str, unit: str) -> int:
    return round(float(digits) * (1_000 if unit == "k" else 1))


def _aider_segments(body: str) -> list[tuple[str, str]]:
    """A session's text as Aider wrote it, in order: ("user", a typed input, its
    lines `#### `), ("aider", one of Aider's own messages, `> `) and ("model", what
    the model answered, the text between). A message of Aider's written in one piece
    quotes only its first line and ends at a line ending in a Markdown line break;
    a quoted line of the model's own (Markdown) is its text."""
    lines = body.split("\n")
    segments: list[tuple[str, str]] = []

    def add(kind: str, text: str) -> None:
        if kind == "model" and segments and segments[-1][0] == "model":
            segments[-1] = ("model", segments[-1][1] + "\n" + text)
        elif kind == "user" and segments and segments[-1][0] == "user":
            segments[-1] = ("user", segments[-1][1] + "\n" + text)
        else:
            segments.append((kind, text))

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#### ") and line.endswith("  "):
            add("user", line[5:].rstrip())
        elif line.startswith(">") and line.endswith("  "):
            add("aider", line[1:].strip())
        elif line.startswith("> "):
            # Its first line: the rest runs to a line ending in a line break, before
            # any other line of Aider's or the user's.
            end = next((j for j in range(i + 1, min(len(lines), i + _AIDER_MESSAGE_LINES))
                        if lines[j].endswith("  ") or lines[j].startswith(("> ", "#### "))), None)  # fmt: skip
            if (
                end is not None
                and lines[end].endswith("  ")
                and not lines[end].startswith(("> ", "#### "))
            ):
                add("aider", "\n".join([line[2:], *lines[i + 1 : end + 1]]).rstrip())
                i = end
            else:
                add("model", line)
        else:
            add("model", line)
        i += 1
    return [(kind, text.strip("\n") if kind == "model" else text) for kind, text in segments
            if kind != "model" or text.strip()]  # fmt: skip


def _aider_edits(text: str) -> list[dict[str, Any]]:
    """The edits of a model's answer, each an `edit` call on its file: SEARCH/REPLACE
    blocks (Aider's diff and diff-fenced edit formats), or unified diffs (udiff). A
    whole file (the whole format) is known by Aider's `Applied edit` line alone."""
    edits = []
    for match in _AIDER_BLOCK.finditer(text):
        where = (match["path2"] or match["file"]).strip().strip("*`#: ")
        edits.append({"kind": "tool_call", "name": "edit", "_block": match.group(0),
                      "input": {"file": where, "search": match["search"],
                                "replace": match["replace"]}})  # fmt: skip
    if not edits:
        for match in _AIDER_UDIFF.finditer(text):
            edits.append({"kind": "tool_call", "name": "edit",
                          "input": {"file": match[1].strip(), "diff": match[0]}})  # fmt: skip
    return edits


def _aider_session(started: str, body: str) -> dict[str, Any]:
    """One session of an Aider chat history as a run (`_aider_history`)."""
    segments = _aider_segments(body)
    steps: list[dict[str, Any]] = []
    model, version, edit_format = "", "", ""
    cost = 0.0
    answered: dict[str, Any] | None = None  # the model's last answer
    edits: list[dict[str, Any]] = []  # its edits
    ended_on_error = False
    unexplained: list[dict[str, Any]] = []  # edits Aider failed, the reason still to come
    for position, (kind, text) in enumerate(segments):
        if kind == "user":
            steps.append({"kind": "user_prompt", "input": text})
            answered, edits, ended_on_error = None, [], False
            continue
        if kind == "model":
            answered = {"kind": "assistant_message", "output": text[:MAX_TEXT]}
            steps.append(answered)
            edits, unexplained = _aider_edits(text), []
            steps.extend(edits)
            ended_on_error = False
            continue
        line = text.split("\n", 1)[0]
        following = segments[position + 1][1] if position + 1 < len(segments) else ""
        if header := re.match(r"(?:Main )?[Mm]odel: (\S+) with (\S+) edit format", line):
            model = model or header[1]
            edit_format = edit_format or header[2]
        elif header := re.match(r"Aider (v\S+)$", line):
            version = version or header[1]
        elif tokens := _AIDER_TOKENS.search(line):
            if answered is not None and "tokens" not in answered:
                answered["tokens"] = (
                    _aider_number(tokens[1], tokens[2])
                    + (_aider_number(tokens[3], tokens[4]) if tokens[3] else 0)
                    + _aider_number(tokens[5], tokens[6])
                )
            # With both kinds of cache counted, the cost is on a line of its own.
            if spent := _AIDER_COST.search(text):
                cost += float(spent[1])
        elif applied := re.match(r"Applied edit to (.+)$", line):
            done = [e for e in edits if e["input"]["file"] == applied[1] and "error" not in e]
            if not done and not any(e["input"]["file"] == applied[1] for e in edits):
                done = [{"kind": "tool_call", "name": "edit", "input": {"file": applied[1]}}]
                steps.append(done[0])
                edits.append(done[0])
            for edit in done:
                edit["output"] = line
        elif line.startswith("The LLM did not conform to the edit format."):
            failed = [e for e in edits if "output" not in e]
            if not failed:
                failed = [{"kind": "tool_call", "name": "edit", "input": None}]
                steps.extend(failed)
            for edit in failed:
                edit["error"] = line
            unexplained = [e for e in failed if "_block" not in e]
            ended_on_error = True
        elif unexplained and line and not line.startswith("https://"):
            # Why Aider could not apply them (its error's text, after the link).
            for edit in unexplained:
                edit["error"], edit["output"] = line.lstrip("# ")[:10_000], text[:MAX_TEXT]
            unexplained = []
        elif "_block" in (edits[0] if edits else {}) and re.match(
            r"# \d+ SEARCH/REPLACE blocks? failed to match!", line
        ):
            # Which blocks failed, each quoted after why; the others were applied.
            for edit in edits:
                at = text.find(edit["_block"].split("\n", 2)[-1].strip())
                if at == -1:
                    edit.pop("error", None)
                    if "were applied successfully" in text:
                        edit["output"] = (
                            "applied (Aider: the other blocks were applied successfully)"
                        )
                    continue
                reasons = re.findall(r"^## (\w+: .+)$", text[:at], re.M)
                edit["error"] = (reasons[-1] if reasons else line)[:10_000]
                edit.pop("output", None)
        elif line.startswith("Commit ") and edits:
            for edit in edits:
                if "error" not in edit:
                    edit["output"] = f"{edit.get('output', '')}\n{line}".strip()
        elif line.startswith("# Fix any errors below, if possible."):
            # Aider's lint of the files just edited, its command and what it found,
            # quoted a line each until it asks whether to fix them.
            found: list[str] = []
            for later in segments[position + 1 :]:
                if later[0] != "aider" or later[1].startswith("Attempt to fix lint errors?"):
                    break
                found.append(later[1])
            command = next((f[len("## Running: "):] for f in found
                            if f.startswith("## Running: ")), "")  # fmt: skip
            said = [f for f in found if f and not f.startswith("## Running: ")]
            steps.append({"kind": "tool_call", "name": "lint", "input": {"command": command},
                          "output": "\n".join(said)[:MAX_TEXT],
                          "error": (said[0] if said else "the lint found errors")[:10_000]})  # fmt: skip
            ended_on_error = True
        elif (added := _AIDER_ADDED.match(line)) and following.startswith(
            "Attempt to fix test errors?"
        ):
            steps.append({"kind": "tool_call", "name": "test", "input": None,
                          "error": f"the test command failed; Aider gave the model its "
                                   f"{added[1]} lines of output, which its chat history does "
                                   "not keep"})  # fmt: skip
            ended_on_error = True
        elif running := re.match(r"Running (.+)$", line):
            steps.append({"kind": "tool_call", "name": "shell",
                          "input": {"command": running[1]}})  # fmt: skip
        elif (
            line.startswith("Error running command:") and steps and steps[-1].get("name") == "shell"
        ):
            steps[-1]["error"] = text[:10_000]
        elif re.match(r"Only \d+ reflections allowed, stopping\.", line) or re.match(
            r"Model \S+ has hit a token limit!", line
        ):
            steps.append({"kind": "error", "name": "aider", "error": line})
            ended_on_error = True
        elif line.startswith("litellm.") and not (
            steps and steps[-1].get("kind") == "error" and steps[-1].get("error") == line
        ):
            steps.append({"kind": "error", "name": "model API", "error": line[:10_000]})
            ended_on_error = True
    for step in steps:
        step.pop("_block", None)
    for position, step in enumerate(steps):
        step["index"] = position
    stamp = datetime.strptime(started, "%Y-%m-%d %H:%M:%S").astimezone()  # noqa: DTZ007
    startup = body.split("\n#### ", 1)[0]
    digest = hashlib.sha256(f"{started}\n{startup}".encode()).hexdigest()[:16]
    prompts = [s["input"] for s in steps if s["kind"] == "user_prompt"]
    return {
        # The header's own time, not this machine's reading of it: the same session
        # read where another time zone is set is the same run.
        "external_id": f"aider-{stamp:%Y%m%dT%H%M%S}-{digest}",
        "agent": "aider", "model": model[:200], "status": "failed" if ended_on_error else "unknown",
        "started_at": stamp.astimezone(UTC).isoformat(),
        "task": next((p for p in prompts if not p.startswith("/")), prompts[0] if prompts else ""),
        "metadata": {k: v for k, v in (("aider_version", version), ("edit_format", edit_format)) if v},
        "steps": steps, **({"cost_usd": round(cost, 6)} if cost else {}),
    }  # fmt: skip


def _aider_history(path: Path) -> Parsed:
    """An Aider chat history (`.aider.chat.history.md`, which Aider keeps in the
    project and appends each session to, seen on 0.86): each session, from its
    `# aider chat started at` line, is a run. What the user typed (`#### `) is a
    prompt (a command such as `/run` too); the model's answer what it said, each
    SEARCH/REPLACE block in it an `edit` call on its file, applied or failed as
    Aider said (`Applied edit to`, the blocks that failed to match and why); Aider's
    lint of the edited files a `lint` call failing with what it found; its test
    command, when it failed, a `test` call (the history keeps none of its output); a
    command the model suggested and Aider ran a `shell` call; the model API's
    errors, a token limit and Aider giving up on fixing (`Only 3 reflections
    allowed`) error steps. Each answer's tokens are Aider's rounded count (`Tokens:
    2.6k sent, 47 received`), the run's cost the sum of its messages' where Aider
    knew the price. The start is the header's time, read in this machine's time zone
    (Aider writes local time). The run's id is made of its start and its first
    lines, so the same session read again, or sent again as it grows, is the same
    run. The outcome is failed when the session's last turn ended on an error (a
    failed edit, lint or test, or an error step, with no answer after it), else
    unknown. A session with nothing typed in it is no run."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"byte {exc.start}", "not UTF-8 text") from None
    starts = list(AIDER_SESSION_START.finditer(text))
    if not starts:
        raise FormatError(
            path, "file", "no Aider chat history here (no '# aider chat started at' line)"
        )
    traces = []
    for number, start in enumerate(starts):
        end = starts[number + 1].start() if number + 1 < len(starts) else len(text)
        try:
            session = _aider_session(start[1], text[start.end() : end])
        except ValueError as exc:
            line = text.count("\n", 0, start.start()) + 1
            raise FormatError(
                path, f"line {line}", f"a session Aider's format does not hold ({exc})"
            ) from None
        if session["steps"]:  # Aider opened and closed with nothing typed is no run
            traces.append(session)
    return Parsed(traces=traces)


# --- Qwen Code --------------------------------------------------------------------

# The records a Qwen Code chat log holds (`~/.qwen/projects/<project>/chats/<id>.jsonl`).
_QWEN_RECORDS = {"user", "assistant", "tool_result", "system"}


def _qwen_chat_log(path: Path) -> bool:
    """Whether a file's first line is a Qwen Code chat record (`sessionId`, `type`,
    `provenance`, its message in Gemini's `parts`)."""
    try:
        with path.open("rb") as handle:
            first = json.loads(handle.readline(1_000_000) or b"null")
    except (OSError, ValueError, RecursionError):
        return False
    return (isinstance(first, dict) and _text(first.get("type")) in _QWEN_RECORDS
            and "provenance" in first and "sessionId" in first)  # fmt: skip


def _qwen_session(path: Path) -> Parsed:
    """A Qwen Code session as it records it (`~/.qwen/projects/<project>/chats/
    <session id>.jsonl`, seen on 0.24): a record a line (`sessionId`, `timestamp`,
    `type`), its message in Gemini's shape (`parts`: text, `functionCall`,
    `functionResponse`). A user's text is a prompt; the model's text what it said,
    each `functionCall` a call, its `functionResponse` (joined by id) its output, or
    its error (a command's non-zero exit code, a missing file: Qwen Code's own
    `error`, and `toolCallResult.status`); each model answer's tokens
    (`usageMetadata`) on the first step it made; a failed model request (the
    `api_error` event Qwen Code records) an error step. The outcome is unknown,
    unless the session's last record is a failed model request: failed."""
    lines = _json_or_jsonl(path)
    records = [(where, line) for where, line in lines if isinstance(line, dict)
               and _text(line.get("type")) in _QWEN_RECORDS and line.get("sessionId")]  # fmt: skip
    if not records:
        raise FormatError(path, "top level", "no Qwen Code chat records (type, sessionId, message)")
    steps: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    model, ended_on_error = "", False
    for where, line in records:
        kind, stamp = line["type"], _iso(_epoch(line.get("timestamp")))
        if kind == "system":
            event = obj(obj(line.get("systemPayload")).get("uiEvent"))
            if event.get("event.name") == "qwen-code.api_error":
                said = _text(event.get("error_message")) or "the model request failed"
                kind_of = _text(event.get("error_type"))
                steps.append({"kind": "error", "name": "model request", "started_at": stamp,
                              "error": f"{said} ({kind_of})" if kind_of else said})  # fmt: skip
                ended_on_error = True
                model = model or _text(event.get("model"))
            continue
        parts = _items(path, f"{where}.message.", obj(line.get("message")).get("parts"), '"parts"')
        first = len(steps)
        for j, part in enumerate(parts):
            _need(path, f"{where}.message.parts[{j}]", part, dict, "a part object")
            call, answer = obj(part.get("functionCall")), obj(part.get("functionResponse"))
            if call:
                step = {"kind": "tool_call", "name": _text(call.get("name"))[:200] or "tool",
                        "input": call.get("args"), "started_at": stamp}  # fmt: skip
                steps.append(step)
                calls[_text(call.get("id"))] = step
            elif answer and (asked := calls.get(_text(answer.get("id")))) is not None:
                response = answer.get("response")
                sent = obj(response)
                asked["output"] = sent.get("output", response) if "error" not in sent else sent
                result = obj(line.get("toolCallResult"))
                shown = obj(result.get("resultDisplay"))
                if shown.get("type") == "shell_result" and isinstance(shown.get("exitCode"), int):
                    # A command's own output and exit code, not Qwen Code's report of it.
                    code = shown["exitCode"]
                    failed = _text(shown.get("output")).strip()
                    if code != 0:
                        asked["error"] = (f"{failed}\n(exit code {code})" if failed
                                          else f"exited with code {code}")[:10_000]  # fmt: skip
                elif "error" in sent or result.get("status") == "error":
                    asked["error"] = _text(sent.get("error") or "the tool call failed")[:10_000]
                start, end = _epoch(asked.get("started_at")), _epoch(line.get("timestamp"))
                if start is not None and end is not None and end >= start:
                    asked["duration_ms"] = (end - start) * 1000
            elif isinstance(part.get("text"), str) and part["text"].strip():
                steps.append({"kind": "user_prompt", "input": part["text"], "started_at": stamp}
                             if kind == "user" else
                             {"kind": "assistant_message", "output": part["text"],
                              "started_at": stamp})  # fmt: skip
        if kind == "assistant":
            model = _text(line.get("model")) or model
            used = obj(line.get("usageMetadata")).get("totalTokenCount")
            if (
                isinstance(used, int)
                and not isinstance(used, bool)
                and used > 0
                and first < len(steps)
            ):
                steps[first]["tokens"] = used
        if kind in ("user", "assistant", "tool_result") and first < len(steps):
            ended_on_error = False
    for position, step in enumerate(steps):
        step["index"] = position
    head = records[0][1]
    session = _text(head.get("sessionId"), 150)
    times = [t for t in (_epoch(line.get("timestamp")) for _, line in records) if t is not None]
    trace: dict[str, Any] = {
        "external_id": f"qwen-code-{session}"[:200], "agent": "qwen-code", "model": model[:200],
        "session_id": session, "status": "failed" if ended_on_error else "unknown",
        "task": next((s["input"] for s in steps if s["kind"] == "user_prompt"), ""),
        "started_at": _iso(min(times)) if times else None,
        "ended_at": _iso(max(times)) if times else None,
        # The session's complete record: where its hooks built the run already
        # (`qwen-code-<session>` too), its steps replace theirs (traces/importing.py).
        "metadata": {"session_id": session, "directory": _text(head.get("cwd"), 500),
                     "qwen_code_version": _text(head.get("version"), 50),
                     "replaces_hook_steps": True},
        "steps": steps,
    }  # fmt: skip
    if ended_on_error:
        trace["metadata"]["outcome_from"] = "the session ended on a failed model request"
    return Parsed(traces=[trace])


# --- Cline ----------------------------------------------------------------------

# The Cline CLI (3.x) wraps each prompt it sends in the mode it ran in.
_CLINE_INPUT = re.compile(r"\A\s*<user_input(?:\s[^>]*)?>(.*)</user_input>\s*\Z", re.S)
_CLINE_DEPTH = 8  # subagents of subagents, at most this deep
# A session's end (`status` in `<session id>.json`) that says the agent's loop failed.
_CLINE_FAILED = {"failed": "the Cline session ended on an error", "error": "the Cline session "
                 "ended on an error"}  # fmt: skip


def _cline_prompt(text: str) -> str:
    found = _CLINE_INPUT.match(text)
    return found.group(1).strip() if found else text


def _cline_result(block: dict[str, Any]) -> tuple[Any, str]:
    """A tool result's output and error: the Cline CLI's tools answer a list of items,
    one a command or file (`query`, `result`, `error`, `success`), and an item that
    did not succeed fails the call (with the others, it is still its output); a
    subagent's answer is JSON text saying how it finished."""
    content = block.get("content")
    if isinstance(content, str) and content[:1] == "{":
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            content = json.loads(content)
    failed: list[str] = []
    for item in _list(content):
        if isinstance(item, dict) and item.get("success") is False:
            said = _text(item.get("error")) or "failed"
            failed.append(
                f"{_text(item.get('query'))[:200]}: {said}" if item.get("query") else said
            )
    if isinstance(content, dict) and content.get("finishReason") in ("error", "aborted"):
        failed.append(f"the subagent ended: {content['finishReason']}")
    if block.get("is_error") and not failed:
        failed.append(_text(content if isinstance(content, str) else json.dumps(content))[:2000]
                      or "the tool failed")  # fmt: skip
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" for b in content
    ):
        content = "\n".join(_text(b.get("text")) for b in content)
    return content, "\n".join(failed)


def _cline_tokens(metrics: Any) -> int:
    metrics = obj(metrics)
    return sum(
        value for key in ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens")
        if isinstance(value := metrics.get(key), int) and not isinstance(value, bool) and value > 0
    )  # fmt: skip


def _cline_messages(
    path: Path, data: dict[str, Any], steps: list[dict[str, Any]], parent: int | None,
    depth: int, instruction: str = "",
) -> None:  # fmt: skip
    """The steps of one Cline session's messages (`<session id>.messages.json`),
    appended to `steps` (inside the step `parent`, for a subagent's): a user's text a
    prompt, its tool results joined to their calls by `tool_use_id`; an assistant's
    text and thinking what it said, each `tool_use` a call; a message Cline shows as
    an error (`metadata.displayRole`) an error step; each model answer's tokens
    (`metrics`) on the first step it made. A `spawn_agent` call holds the subagent's
    steps, read from its `agent_<id>.messages.json` beside the session's, the one whose
    opening message is the call's task (which is no user prompt: no person said it)."""
    inside = {} if parent is None else {"parent_index": parent}
    where = "" if parent is None else f"subagent {data.get('sessionId')}: "
    calls: dict[str, dict[str, Any]] = {}
    for i, message in enumerate(_items(path, where, data.get("messages"), '"messages"')):
        here = f"{where}messages[{i}]"
        _need(path, here, message, dict, "a message object")
        role = message.get("role")
        stamp = _iso(_epoch(message.get("ts")))
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else _items(
            path, f"{here}.", content, '"content"')  # fmt: skip
        first = len(steps)
        if obj(message.get("metadata")).get("displayRole") == "error":
            said = "\n".join(_text(obj(b).get("text")) for b in blocks).strip()
            steps.append({"kind": "error", "error": said or "Cline reported an error",
                          "started_at": stamp, **inside})  # fmt: skip
            continue
        for j, block in enumerate(blocks):
            _need(path, f"{here}.content[{j}]", block, dict, "a content block")
            kind = block.get("type")
            if kind in ("text", "thinking", "reasoning"):
                text = _text(block.get("text") or block.get("thinking") or block.get("reasoning"))
                if not text.strip():
                    continue
                if role == "user":
                    text = _cline_prompt(text)
                    if instruction and text.strip() == instruction.strip():
                        continue
                    steps.append({"kind": "user_prompt", "input": text, "started_at": stamp,
                                  **inside})  # fmt: skip
                else:
                    steps.append({"kind": "assistant_message", "output": text,
                                  "started_at": stamp, **inside})  # fmt: skip
            elif kind == "tool_use":
                call = {"kind": "tool_call", "name": _text(block.get("name"))[:200] or "tool",
                        "input": block.get("input"), "started_at": stamp, **inside}  # fmt: skip
                steps.append(call)
                calls[_text(block.get("id"))] = call
                task = _text(obj(block.get("input")).get("task"))
                if block.get("name") == "spawn_agent" and task and depth < _CLINE_DEPTH:
                    sub = _cline_subagent(path, task)
                    if sub is not None:
                        _cline_messages(sub[0], sub[1], steps, len(steps) - 1, depth + 1, task)
            elif kind == "tool_result" and (answered := calls.get(_text(block.get("tool_use_id")))):
                output, error = _cline_result(block)
                answered["output"] = output
                if error:
                    answered["error"] = error[:10_000]
                start, end = _epoch(answered.get("started_at")), _epoch(message.get("ts"))
                if start is not None and end is not None and end >= start:
                    answered["duration_ms"] = (end - start) * 1000
        tokens = _cline_tokens(message.get("metrics"))
        if role == "assistant" and tokens and first < len(steps):
            steps[first]["tokens"] = tokens
    for call in calls.values():
        if call["kind"] == "tool_call" and "output" not in call and "error" not in call:
            call["error"] = "the call had no result when the session was saved"


def _cline_subagent(path: Path, task: str) -> tuple[Path, dict[str, Any]] | None:
    """The subagent session beside `path` that was given `task`: its opening message."""
    for beside in sorted(path.parent.glob("agent_*.messages.json")):
        try:
            data = _read_json(beside)
        except FormatError:
            continue
        first = next(iter(_list(obj(data).get("messages"))), None)
        said = [_text(obj(b).get("text")) for b in _list(obj(first).get("content"))]
        if obj(data).get("agent") == "subagent" and any(t.strip() == task.strip() for t in said):
            return beside, data
    return None


def _cline_subagents_left_out(files: list[Path]) -> list[Path]:
    """A folder's Cline sessions less the subagents' (`agent_<id>.messages.json`) that
    the session beside them reads into its run."""
    return [p for p in files if not (p.name.startswith("agent_") and any(
        q.name.endswith(".messages.json") and not q.name.startswith("agent_")
        for q in p.parent.iterdir()))]  # fmt: skip


def _cline(path: Path) -> Parsed:
    """A Cline CLI session (3.x, `~/.cline/data/sessions/<id>/<id>.messages.json`),
    read with the session's record beside it (`<id>.json`: its times, model, prompt
    and how it ended) when there is one. The outcome is unknown (Cline finishing its
    loop says nothing of the task) unless the session ended on an error: failed."""
    data = _need(path, "top level", _read_json(path), dict, "a Cline session's messages")
    session = _text(data.get("sessionId"), 150)
    if not session or "messages" not in data:
        raise FormatError(path, "sessionId", "no Cline session here (no sessionId and messages)")
    steps: list[dict[str, Any]] = []
    _cline_messages(path, data, steps, None, 0)
    for position, step in enumerate(steps):
        step["index"] = position
    record: dict[str, Any] = {}
    beside = path.with_name(path.name.replace(".messages.json", ".json"))
    if beside != path and beside.is_file():
        with contextlib.suppress(FormatError):
            record = obj(_read_json(beside))
    about = obj(record.get("metadata"))
    info = next((obj(m.get("modelInfo")) for m in reversed(_list(data.get("messages")))
                 if isinstance(m, dict) and m.get("modelInfo")), {})  # fmt: skip
    provider = _text(record.get("provider") or info.get("provider"))
    model = _text(record.get("model") or info.get("id"))
    model_name = "/".join(part for part in (provider, model) if part)
    task = _text(about.get("prompt")) or next(
        (s["input"] for s in steps if s["kind"] == "user_prompt"), "")  # fmt: skip
    ended = _text(record.get("status"))
    trace: dict[str, Any] = {
        "external_id": f"cline-{session}"[:200], "agent": "cline", "model": model_name[:200],
        "session_id": session, "task": task, "status": "unknown",
        "started_at": _iso(_epoch(record.get("started_at"))) or next(
            (s["started_at"] for s in steps if s.get("started_at")), None),
        "ended_at": _iso(_epoch(record.get("ended_at"))),
        "metadata": {"session_id": session, "title": _text(about.get("title"), 500),
                     "directory": _text(record.get("cwd"), 500),
                     "cline_version": _text(obj(data.get("origin")).get("version"), 50),
                     **({"session_end": ended} if ended else {})},
        "steps": steps,
    }  # fmt: skip
    if ended in _CLINE_FAILED:
        trace["status"] = "failed"
        trace["metadata"]["outcome_from"] = f"the session's record (status: {ended})"
        if not (steps and steps[-1]["kind"] == "error"):
            code = record.get("exit_code")
            steps.append({"kind": "error", "index": len(steps), "started_at": trace["ended_at"],
                          "error": f"{_CLINE_FAILED[ended]} (exit code {code})"
                          if isinstance(code, int) else _CLINE_FAILED[ended]})  # fmt: skip
    return Parsed(traces=[trace])


# --- ATIF (Harbor's Agent Trajectory Interchange Format) ----------------------


def _atif_steps(
    traj: dict[str, Any], path: Path, where: str, steps: list[dict[str, Any]],
    parent: int | None = None, depth: int = 0,
) -> None:  # fmt: skip
    """An ATIF trajectory's steps, appended to `steps`: a user step a prompt; an
    agent step its message, each tool call (its result joined by `source_call_id`;
    a result naming none joins the turn's call still waiting) and the subagent
    trajectories a result delegated to, embedded (v1.7), as steps inside that call."""
    subagents = {str(t.get("session_id")): t for t in _list(traj.get("subagent_trajectories"))
                 if isinstance(t, dict)}  # fmt: skip
    inside = {} if parent is None else {"parent_index": parent}
    for i, step in enumerate(_items(path, where, traj.get("steps"), '"steps"')):
        here = f"{where}steps[{i}]"
        _need(path, here, step, dict, "a step object")
        source, text = step.get("source"), _text(step.get("message"))
        stamp = step.get("timestamp") if isinstance(step.get("timestamp"), str) else None
        if source == "system":
            continue  # the system prompt, or the harness's own operations
        if source == "user":
            if text:
                steps.append({"kind": "user_prompt", "input": text, "started_at": stamp, **inside})
            continue
        if source != "agent":
            raise FormatError(path, here, f"unknown source {source!r} (system, user or agent)")
        metrics = _obj(step.get("metrics"))
        counts = [metrics.get(k) for k in ("prompt_tokens", "completion_tokens")]
        tokens = sum(c for c in counts if isinstance(c, int) and not isinstance(c, bool) and c >= 0)
        first = len(steps)
        if text:
            steps.append(
                {"kind": "assistant_message", "output": text, "started_at": stamp, **inside}
            )
        calls: dict[str, int] = {}
        waiting: list[int] = []
        for call in _items(path, here, step.get("tool_calls"), '"tool_calls"'):
            _need(path, here, call, dict, "a tool call object")
            steps.append({"kind": "tool_call", "name": str(call.get("function_name") or "")[:200],
                          "input": _args(call.get("arguments")), "started_at": stamp, **inside})  # fmt: skip
            waiting.append(len(steps) - 1)
            if _id(call.get("tool_call_id")) is not None:
                calls[str(call["tool_call_id"])] = len(steps) - 1
        results = _items(path, here, _obj(step.get("observation")).get("results"), '"results"')
        for result in results:
            if not isinstance(result, dict):
                continue
            source_id = _id(result.get("source_call_id"))
            at = calls.get(str(source_id)) if source_id is not None else None
            if at is None and source_id is None:
                at = next((w for w in waiting if "output" not in steps[w]), None)
            refs = [r for r in _list(result.get("subagent_trajectory_ref")) if isinstance(r, dict)]
            output = _text(result.get("content")) or (
                "Delegated to subagent " + ", ".join(str(r.get("session_id")) for r in refs)
                if refs else "")  # fmt: skip
            if at is None:
                steps.append({"kind": "tool_result", "name": "", "started_at": stamp, **inside})
                at = len(steps) - 1
            steps[at]["output"] = output
            if result.get("is_error") is True:
                steps[at]["error"] = output or "the tool reported an error"
            for ref in refs:
                sub = subagents.get(str(ref.get("session_id"))) or _atif_file(
                    path, ref.get("trajectory_path"))  # fmt: skip
                if sub is not None and depth < 8:
                    _atif_steps(sub, path, f"{where}subagent {ref.get('session_id')}: ", steps,
                                parent=at, depth=depth + 1)  # fmt: skip
        if tokens and len(steps) > first:
            steps[first]["tokens"] = tokens


def _atif_file(path: Path, reference: Any) -> dict[str, Any] | None:
    """A subagent's trajectory in a file the reference names, when it is a relative
    path to a file in the trajectory's own folder or below it (never elsewhere)."""
    if not isinstance(reference, str) or not reference or "://" in reference:
        return None
    folder = path.parent.resolve()
    target = (folder / reference).resolve()
    if not target.is_file() or not target.is_relative_to(folder) or target == path.resolve():
        return None
    data = _read_json(target)
    return data if isinstance(data, dict) else None


def _harbor_trial(path: Path) -> dict[str, Any]:
    """The Harbor trial result beside a trajectory (`<trial>/result.json`, the
    trajectory in `<trial>/agent/`), when there is one."""
    for candidate in (path.parent.parent / "result.json", path.parent / "result.json"):
        if candidate.is_file() and candidate != path:
            result = _obj(_read_json(candidate))
            if "verifier_result" in result or "task_name" in result:
                return result
    return {}


# Terminus (Harbor's own agent) sends its instructions and the task as one user
# turn: the task is the "Task Description:" section, before the terminal's state.
_TERMINUS_TASK = re.compile(
    r"(?s)\bTask Description:[ \t]*\n(.+?)(?:\n\s*Current [Tt]erminal (?:state|[Ss]creen):|\Z)"
)


def _atif(path: Path) -> Parsed:
    """An ATIF trajectory (`trajectory.json`, Harbor's runs: Terminal-Bench and every
    agent Harbor runs; ATIF-v1.x), its continuation files followed
    (`continued_trajectory_ref`); the outcome from the Harbor trial's
    `result.json` beside it (its verifier's reward, 1 = success; `verifier/reward.txt`
    when there is no result), else unknown. A trial that ended on an exception after
    which its verifier ran ends on an error step saying so; one that ended before
    its verifier ran has no outcome, and says why."""
    data = _need(path, "top level", _read_json(path), dict, "an ATIF trajectory object")
    version = data.get("schema_version")
    if not (isinstance(version, str) and version.upper().startswith("ATIF")):
        raise FormatError(path, "schema_version", 'expected an ATIF trajectory ("schema_version": '
                          f'"ATIF-v1.x"), found {version!r}')  # fmt: skip
    steps: list[dict[str, Any]] = []
    _atif_steps(data, path, "", steps)
    current, seen = data, {path.resolve()}
    while isinstance(ref := current.get("continued_trajectory_ref"), str) and ref:
        following = (path.parent / ref).resolve()
        if (
            following in seen
            or not following.is_file()
            or following.parent != path.parent.resolve()
        ):
            break
        seen.add(following)
        current = _obj(_read_json(following))
        _atif_steps(current, following, f"{following.name}: ", steps)
    agent = _obj(data.get("agent"))
    trial = _harbor_trial(path)
    model = agent.get("model_name") or _obj(_obj(trial.get("config")).get("agent")).get(
        "model_name"
    )
    name = str(agent.get("name") or _obj(trial.get("agent_info")).get("name") or "agent")
    rewards = _obj(_obj(trial.get("verifier_result")).get("rewards"))
    reward = rewards.get(
        "reward", next(iter(rewards.values()), None) if len(rewards) == 1 else None
    )
    reward_file = path.parent.parent / "verifier" / "reward.txt"
    if reward is None and not trial and reward_file.is_file():
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            reward = float(reward_file.read_text(encoding="utf-8").strip())
    reward = reward if isinstance(reward, int | float) and not isinstance(reward, bool) else None
    status, metadata = _status(reward), {"atif_version": version}
    failure = _obj(trial.get("exception_info"))
    ended = ": ".join(_text(failure.get(k), 2_000) for k in ("exception_type", "exception_message")
                      if failure.get(k))  # fmt: skip
    if ended and reward is not None:
        steps.append({"kind": "error", "error": f"The trial ended on an exception: {ended}",
                      "started_at": trial.get("finished_at") if isinstance(trial.get("finished_at"), str) else None})  # fmt: skip
    elif ended:
        metadata["outcome_from"] = (f"none (the trial ended on an exception before its verifier "
                                    f"ran: {ended[:300]})")  # fmt: skip
    task_name = trial.get("task_name")
    checks = [{"name": str(key)[:200], "passed": value >= 1, "detail": f"reward {value}"}
              for key, value in rewards.items()
              if key != "reward" and isinstance(value, int | float) and not isinstance(value, bool)]  # fmt: skip
    final = _obj(data.get("final_metrics"))
    cost = final.get("total_cost_usd")
    session = data.get("session_id") or data.get("trajectory_id") or trial.get("trial_name")
    task = _first_user_turn(steps)
    if section := _TERMINUS_TASK.search(task):
        task = section.group(1).strip() or task
    parsed = Parsed()
    parsed.traces.append({
        "external_id": f"atif-{session or _digest(data)}"[:200],
        "agent": f"{name}/{model}"[:200] if model else name[:200], "model": str(model or "")[:200],
        "task_key": str(task_name)[:200] if isinstance(task_name, str) else "",
        "task": task, "status": status, "reward": reward, "checks": checks,
        "started_at": trial.get("started_at") if isinstance(trial.get("started_at"), str) else None,
        "ended_at": trial.get("finished_at") if isinstance(trial.get("finished_at"), str) else None,
        "cost_usd": cost if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0 else None,
        "metadata": {**metadata, **({"trial": str(trial["trial_name"])[:200]}
                                    if isinstance(trial.get("trial_name"), str) else {})},
        "steps": steps,
    })  # fmt: skip
    return parsed


FORMATS: dict[str, Callable[[Path], Parsed]] = {
    "native": _native,
    "chat-jsonl": _chat_jsonl,
    "tau-bench": _tau_bench,
    "tau2-bench": _tau2_bench,
    "intercode": _intercode,
    "swe-agent": _swe_agent,
    "claude-transcript": _claude_transcript,
    "claude-hooks": _claude_hooks,
    "codex-rollout": _codex_rollout,
    "inspect-log": _inspect_log,
    "ag2-chat": _ag2_chat,
    "openinference-json": _openinference,
    "openhands": _openhands,
    "atif": _atif,
    "otlp-json": _otlp_json,
    "langfuse": _langfuse,
    "langsmith": _langsmith,
    "gemini-session": _gemini_session,
    "opencode": _opencode,
    "cline": _cline,
    "continue": _continue,
    "aider": _aider_history,
    "qwen-code": _qwen_session,
}


# Where each format's outcome comes from (shown by `import --help`); a run whose
# outcome is not found is imported as unknown and named in the summary.
OUTCOME_SOURCES: dict[str, str] = {
    "native": "each trace's status / reward fields",
    "chat-jsonl": "each record's status, else its resolved or target (true or 1 = success), "
                  "else its reward (1 = success)",
    "tau-bench": "each result's reward (1 = success)",
    "tau2-bench": "simulations[].reward_info.reward (1 = success), its other checks as checks",
    "intercode": "each episode's summary.max_reward (1 = success), its per-action rewards "
                 "as one check",
    "swe-agent": "the SWE-bench harness's reports beside the runs (a summary with resolved_ids "
                 "or a leaderboard submission's results/results.json; "
                 "logs/**/<instance>/report.json, whose tests become checks); else info.resolved; "
                 "else failed if not submitted",
    "claude-transcript": "none in the file (send outcomes with the outcome API or MCP)",
    "claude-hooks": "none in the file (send outcomes with the outcome API or MCP)",
    "opencode": "none in the file (give one with --status, or send outcomes with the "
                "outcome API or MCP)",
    "continue": "none in the file (give one with --status, or send outcomes with the "
                "outcome API or MCP)",
    "aider": "failed when a session's last turn ended on an error (a failed edit, lint or "
             "test, a model API error, Aider giving up), else none (give one with --status, "
             "or send outcomes with the outcome API or MCP)",
    "qwen-code": "failed when the session's last record is a failed model request, else "
                 "none (give one with --status, or send outcomes with the outcome API or MCP)",
    "cline": "failed when the session's record beside it (<id>.json) says it ended on an "
             "error, else none (give one with --status, or send outcomes with the outcome "
             "API or MCP)",
    "codex-rollout": "none in the file (give one with --status, or send outcomes with the "
                     "outcome API or MCP)",
    "inspect-log": "each sample's scores (C, true or 1 and more pass; every scorer must pass), "
                   "its scorers as checks; a sample that ended on an error and has no score "
                   "fails",
    "ag2-chat": "is_correct (is_corrected in Who&When's hand-crafted logs)",
    "openinference-json": "the root span's status (ERROR = failed, OK = succeeded on the "
                          "application's own root span, not an instrumentation's), else its "
                          "hivemind.check.<name> checks (any failed = failed, all passed = "
                          "succeeded); TRAIL's files have none (give one with --status)",
    "gemini-session": "none in the file (give one with --status, or send outcomes with the "
                      "outcome API or MCP)",
    "langsmith": "failed when the root run raised (its error), else none (give one with "
                 "--status); feedback_stats are kept as checks",
    "langfuse": "none in the export (give one with --status, or send outcomes with the "
                "outcome API or MCP); BOOLEAN scores are kept as checks",
    "otlp-json": "the root span's status (ERROR = failed, OK = succeeded on the "
                 "application's own root span, not an instrumentation's), else its "
                 "hivemind.check.<name> checks (any failed = failed, all passed = succeeded), "
                 "else unknown (give one with --status)",
    "atif": "the Harbor trial's result.json beside the trajectory (its verifier's reward, "
            "1 = success; other rewards as checks), else its verifier/reward.txt",
    "openhands": "test_result.report.resolved (the SWE-bench evaluation's), else the "
                 "<output>.swebench_eval.jsonl beside the file, else resolved, else the "
                 "SWE-bench harness's reports beside it (as for swe-agent)",
}  # fmt: skip


GIVEN_STATUSES = ("succeeded", "failed")


def give_outcome(traces: list[Any], status: str) -> int:
    """The outcome a person gives at import (`--status`) to the runs whose file says
    none: never over one the file gives. Each such run records where its outcome
    came from (`metadata.outcome_from`). Returns how many runs took it."""
    if status not in GIVEN_STATUSES:
        return 0
    given = 0
    for trace in traces:
        if isinstance(trace, dict) and trace.get("status", "unknown") in ("", "unknown"):
            trace["status"] = status
            # Metadata that is no object is left for the server to refuse, not dropped.
            if isinstance(trace.get("metadata"), dict | None):
                trace["metadata"] = {**obj(trace.get("metadata")),
                                     "outcome_from": "given at import (--status)"}  # fmt: skip
            given += 1
    return given


def parse(fmt: str, path: Path) -> Parsed:
    """Read one file in a named format; FormatError names what is wrong and where."""
    if fmt not in FORMATS:
        raise FormatError(path, "format", f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise FormatError(path, "file", "no such file")
    if fmt not in PARQUET_FORMATS and _is_parquet(path):
        raise FormatError(
            path, "file", f"a Parquet file, which --format {fmt} does not read (its logs are "
            f"JSON); Parquet rows are read by --format {', '.join(PARQUET_FORMATS)}",
        )  # fmt: skip
    try:
        parsed = FORMATS[fmt](path)
    except RecursionError:
        raise FormatError(path, "top level", "JSON nested too deeply") from None
    except FormatError:
        raise
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError) as exc:
        # A field of a type or range the reader did not check for (an id that is a
        # list, a time in the year 40,000): the file is refused like any other
        # malformed one, with what Python said, and the rest of an import goes on.
        raise FormatError(
            path, "file", f"a value of a type or range that --format {fmt} does not read "
            f"({type(exc).__name__}: {exc}); is the file in the {fmt} format?",
        ) from exc  # fmt: skip
    if not parsed.traces and not parsed.hook_payloads:
        raise FormatError(
            path, "file", f"no {fmt} trace found in this file; is it in the {fmt} format? "
            "(--format names the format)",
        )  # fmt: skip
    if (
        fmt != "qwen-code"
        and not any(_list(obj(t).get("steps")) for t in parsed.traces)
        and (_qwen_chat_log(path))
    ):
        # Its records look like Claude Code's and its messages like Gemini's: read by
        # those formats it would be runs with no step.
        raise FormatError(path, "file", "a Qwen Code chat log; import it with --format qwen-code")
    return parsed


def folder_patterns(fmt: str) -> list[str]:
    """The names a folder import looks for, at any depth, for `fmt`."""
    return {"claude-transcript": ["*.jsonl"], "codex-rollout": ["rollout-*.jsonl"],
            "inspect-log": ["*.eval", "*.json"], "swe-agent": ["*.traj", "*.traj.json"],
            "chat-jsonl": ["*.jsonl", "*.parquet"],
            "openhands": ["output.jsonl", "trajs/*.json", "base_state.json", "*.parquet"],
            "atif": ["trajectory.json"], "cline": ["*.messages.json"],
            "qwen-code": ["chats/*.jsonl"], "aider": ["*aider.chat.history.md"], "gemini-session": ["session-*.json", "session-*.jsonl"]}.get(
                fmt, ["*.json", "*.jsonl", *(["*.parquet"] if fmt in PARQUET_FORMATS else [])])  # fmt: skip


# Files a folder import passes over although their names match: what a tool
# writes beside its logs (Inspect's log listing, `logs.json`) is not a log.
_FOLDER_SKIP = {"inspect-log": {"logs.json"}, "continue": {"sessions.json"}}


def _read_elsewhere(fmt: str, path: Path) -> bool:
    """A file a folder import leaves to another: a simulation of a tau2 results
    directory is read with its `results.json`."""
    return (fmt == "tau2-bench" and path.parent.name == "simulations"
            and (path.parent.parent / "results.json").is_file())  # fmt: skip


def no_files_message(fmt: str) -> str:
    """What to tell a person whose paths held nothing to import."""
    patterns = folder_patterns(fmt)
    names = " or ".join([", ".join(patterns[:-1]), patterns[-1]] if len(patterns) > 2 else patterns)
    return (f"No files to import under the paths given: a folder is searched for {names} "
            f"files (--format {fmt}); name a file to import it whatever its name.")  # fmt: skip


def files_under(paths: list[Path], fmt: str) -> list[Path]:
    """The files to import: given files, and for folders the files of that format."""
    patterns, skip = folder_patterns(fmt), _FOLDER_SKIP.get(fmt, set())
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for pattern in patterns:
                found += sorted(
                    p
                    for p in path.rglob(pattern)
                    if p.is_file() and p.name not in skip and not _read_elsewhere(fmt, p)
                )
        else:
            found.append(path)
    if fmt == "opencode":
        # A subagent's session exported beside its parent's is read with the parent's.
        found = _opencode_subagents_left_out(found)
    if fmt == "cline":
        found = _cline_subagents_left_out(found)
    return found
