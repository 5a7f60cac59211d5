"""What a trace did, read from its stored steps: the facts a diagnosis weighs.

Format-independent: every ingest path (native, OTLP, Claude Code hooks, the
importers) stores the same Step rows, so the detectors here see them all.

- **Errors**: steps flagged with an error (`explicit`), and **silent errors**:
  tool outputs that report failure without being flagged: a non-zero return or
  exit code, a Python traceback, an HTTP 4xx/5xx status, or a line that opens
  with `Error:`/`fatal:`, says "not found", "not allowed", "permission denied",
  "command not found", "No such file or directory", "does not exist", "syntax
  error", "did not pass"... Message patterns are read only on the first and
  last lines of an output, so a file's contents that mention errors (a source
  file, a log being read) do not count.
- **Signals**: the named facts that the offline diagnoser weighs against
  successful runs (`offline.py`): `tool:T` (T was called), `error:T:K` (T failed
  with error kind K), `repeat:T` (the same T call, same input, made again),
  `handoff:T` (a hand-off to a human), `user_negative` (a user turn objecting
  right after an action), `ended_on_error` (the last tool call failed),
  `assumed` (the agent said, in its own words, that it would assume, simulate or
  make up what it could not get: "let's assume", "hypothetically", "sample data").
- **Assumptions**: the agent's own messages (not the run's first step, which
  carries the task as posed) that say it is going on with assumed, simulated or
  placeholder data, in its prose (code it wrote is left out). The one named is
  the first whose sentence also says what the agent could not get ("since we
  don't have the file, I will…"), else the first. On the Who&When tune half it
  was within one step of the labelled mistake in 12 of 16 runs (0.750; the
  first such message: 10 of 16), against 0.455 for the first error
  (`bench/truth.py`). (It was 12 of 18 while "fictional" and "made up" counted
  of anything and "assume a" matched "Assume all": two of those were at the
  labelled step for another reason than the one quoted.) "Placeholder" counts
  only of data ("placeholder values", "as a placeholder"): a shell agent's "the
  placeholder for the hostname" in InterCode is a command's syntax; the tune half
  was unchanged by it (12 of 16).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from traces.errors import BARE_STATUS, ERROR_MESSAGE, decisive_line, error_ends, refused

from ..signatures import normalise

# Tools that run whatever they are given (a shell, an interpreter, a query
# console): a failure "in" them says nothing about the tool itself, so no
# instruction may be about calling or avoiding them; only about what was run.
GENERIC_TOOLS = frozenset({
    "bash", "sh", "shell", "zsh", "terminal", "cmd", "powershell", "python", "python3",
    "ipython", "sql", "exec", "execute", "run", "run_command", "command", "ctf",
    "computer", "code_interpreter",
    # The shell tools of coding agents, by the names their logs give them: Terminus'
    # only tool, OpenHands', Codex's, Gemini CLI's, Cursor's.
    "bash_command", "execute_bash", "exec_command", "local_shell", "run_shell_command",
    "run_terminal_cmd", "shell_command", "execute_command",
    # Ending the run: an error there is about the answer, not a tool's precondition
    # (Terminus' `mark_task_complete`, Cline's `attempt_completion`).
    "submit", "finish", "final_answer", "mark_task_complete", "task_complete",
    "attempt_completion", "complete_task",
})  # fmt: skip


def is_generic(tool: str) -> bool:
    return tool.lower().rsplit(".", 1)[-1] in GENERIC_TOOLS


_WORD = re.compile(r"[A-Za-z_][\w.-]*")


def command_head(command: str) -> str:
    """The first words of a command (`describe`, `show columns`, `git status`)."""
    words = _WORD.findall(command.strip())[:2]
    if not words:
        return ""
    if words[0].lower() in ("show", "git", "pip", "npm", "docker", "kubectl", "select"):
        return " ".join(words).lower() if words[0].lower() != "select" else "select"
    return words[0].lower()


_RETURN_CODE = re.compile(
    r"<returncode>\s*(-?\d+)\s*</returncode>|\breturn ?code[\"']?\s*[:=]\s*(-?\d+)"
    r"|\bexit(?:ed)?(?: with)?(?: code| status)[\s:=]+(-?\d+)|\bError (\d+)\s*$"
    r"|\bexit_code[\"']?\s*[:=]\s*(-?\d+)",
    re.I | re.M,
)
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
_EXCEPTION = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b", re.M)
_HTTP = re.compile(
    r"\bHTTP/\d(?:\.\d)?\s+([45]\d\d)\b|\bstatus(?:_code|Code)?[\"']?\s*[:=]\s*([45]\d\d)\b"
    r"|\b([45]\d\d)\s+(?:Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Conflict"
    r"|Unprocessable|Too Many Requests|Internal Server Error|Bad Gateway|Service Unavailable"
    r"|Gateway Time-?out)\b",
    re.I,
)
# The agent saying it goes on with something it did not get: assumed facts,
# simulated or placeholder data (chosen on the Who&When tune half; see above).
# "Fictional" and "made up" count only of data: a search result's "plays a fictional
# character", a page's "women made up 46 percent" are no agent inventing anything;
# "assume a" only as a word: "Assume all residents are humans" is a case in a proof.
_MADE_UP_DATA = r"(?:data|dataset|values?|numbers?|figures?|names?|details|entries|records)\b"
_ASSUMED = re.compile(
    r"\b(?:simulat(?:e|ed|ing)\b|hypothetical(?:ly)?|let'?s assume|we(?: will|'ll| can) assume"
    r"|assum(?:e|ing) (?:that|the|we|a)\b|for (?:demonstration|illustration)(?: purposes)?"
    rf"|sample data|dummy|placeholder {_MADE_UP_DATA}|as a placeholder|mock(?:ed)? data"
    rf"|made-up|made up {_MADE_UP_DATA}"
    rf"|fictional {_MADE_UP_DATA}|pretend|example data|synthetic data)",
    re.I,
)
# The agent saying what it could not get, in the sentence where it assumes or makes
# up data instead ("since we don't have the file, I will…"): that message, not an
# earlier "assuming we have a CSV file", is where it went on without it (chosen on
# the Who&When tune half: 12 of 16 within one step of the label, against 10 of 16
# for the first such message, and 10 of 16 when the words were anywhere in it).
_LACKING = re.compile(
    r"\b(?:can(?:no|['’])t|cannot|unable to|(?:do|does|did)(?: not|n['’]?t) have"
    r"|(?:is|are|was|were)(?: not|n['’]?t) (?:available|accessible|provided)"
    r"|no (?:direct )?access|without (?:direct )?access|could(?: not|n['’]?t))\b",
    re.I,
)
# Code in a message: fenced blocks (an unclosed fence runs to the end) and inline spans.
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)
_HANDOFF = re.compile(r"transfer|escalat|human|handoff|hand_off", re.I)
_NEGATIVE = re.compile(
    r"\b(?:no[,.!]|nope|wrong|incorrect|that's not|that is not|not what i|didn't|did not|"
    r"doesn't work|does not work|still (?:not|doesn't|isn't|broken|failing)|isn't working|"
    r"not working|undo|revert|stop (?:it|that|doing)|why did you|i said|i asked|frustrat|"
    r"(?:you|that)(?:'s| is| was| made)? (?:a |the )?mistake)",
    re.I,
)
# Control tokens a harness puts in a simulated user's turns (tau-bench's
# "###STOP###", "###TRANSFER###"): not words the user said.
_CONTROL_TOKEN = re.compile(r"#{2,}[A-Z_]+#{2,}")
# An HTTP status in its context ("HTTP/1.1 503", "status code 403", "Error 404",
# `"code": 429`): a bare number in an error ("invalid literal for int(): '500'",
# "line 401") is not one.
_STATUS = r"(?:\bhttp\S*|\bstatus(?:[ _]?code)?|\bcode|\berror)\W{0,3}"
_CATEGORY_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"timed? ?out|timeout|deadline exceeded", re.I), "environment.timeout"),
    (
        re.compile(
            _STATUS + r"40[13]\b|unauthori[sz]ed|forbidden|permission denied|access denied"
            r"|credential|authenticat|api[ _-]?key|not permitted|token (?:expired|invalid)"
            r"|insufficient ?privileges|not subscribed",
            re.I,
        ),
        "environment.auth",
    ),
    (
        re.compile(
            r"command not found|no module named|modulenotfound|cannot find module|not installed"
            r"|importerror|no such file or directory|enoent|file not found|filenotfound",
            re.I,
        ),
        "environment.missing_dependency",
    ),
    (
        re.compile(
            _STATUS + r"5\d\d\b|connection (?:refused|reset|aborted)|econnrefused|unavailable"
            r"|too many requests|" + _STATUS + r"429\b|rate.?limit|internal server error"
            r"|bad gateway|connectionerror|failed to establish a new connection",
            re.I,
        ),
        "environment.service_error",
    ),
    (
        re.compile(
            r"invalid|missing required|required (?:field|argument|parameter)|unknown (?:column|field|"
            r"argument|option|table|parameter)|no such (?:column|table)|syntax ?error|does not exist"
            r"|doesn't exist|error in your sql syntax|not found|validation|malformed|typeerror|valueerror|keyerror|"
            + _STATUS
            + r"4\d\d\b"
            r"|not allowed|is not defined|nameerror|attributeerror|indentationerror|ambiguous",
            re.I,
        ),
        "tool_use.wrong_arguments",
    ),
]
# Code the agent wrote that Python could not run as written, whatever the message
# goes on to say ("SyntaxError: ... not permitted" is not a permission).
_CODE_WRONG = re.compile(
    r"^(?:SyntaxError|IndentationError|TabError|NameError|UnboundLocalError)\b"
)
_WORDS = re.compile(r"[a-z<>][a-z0-9_<>.\-]*")


@dataclass(frozen=True)
class StepView:
    index: int
    kind: str
    name: str
    input: Any
    output: Any
    error: str


@dataclass
class ErrorEvent:
    step: int
    tool: str
    kind: str  # short, masked: "exit 2", "http 404", "traceback keyerror", "unknown column <str>"
    text: str  # the error as the step showed it (first lines)
    explicit: bool

    @property
    def category(self) -> str:
        found = error_category(self.text)
        # No tool made it (the agent's own turn failed): "a tool failed" is not true,
        # and nothing more specific was read from it.
        return "" if not self.tool and found == "tool_use.error_not_handled" else found


@dataclass
class ToolCall:
    step: int
    name: str
    key: str  # name + input digest: the same call made again has the same key
    input: Any = None

    @property
    def command(self) -> str:
        """The input, short and masked, for descriptions."""
        return _command(self.input)


@dataclass
class TraceFacts:
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[ErrorEvent] = field(default_factory=list)
    repeats: list[tuple[ToolCall, int]] = field(default_factory=list)  # first call, times made
    handoffs: list[ToolCall] = field(default_factory=list)
    objections: list[tuple[int, str, ToolCall]] = field(default_factory=list)  # step, text, after
    assumptions: list[tuple[int, str]] = field(default_factory=list)  # step, the words
    # Those whose quoted sentence also says what it could not get (`_LACKING`).
    lacking: set[int] = field(default_factory=set)
    # The agent's messages after its last tool call: a run whose last call failed
    # and that then went on talking (a group chat reasoning on for five turns) did
    # not end on that error; one closing answer is still the end.
    said_after_last_call: int = 0
    user_turns: int = 0
    signals: set[str] = field(default_factory=set)

    @property
    def tools(self) -> list[str]:
        return [c.name for c in self.calls]


def text_of(value: Any, limit: int = 20_000) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:limit]
    return json.dumps(value, ensure_ascii=False, default=str)[:limit]


def _edge_lines(text: str) -> list[str]:
    """The first two and last two non-empty lines (only the ends are split)."""
    if len(text) > 2000:
        head = [line for line in text[:1000].splitlines() if line.strip()][:2]
        tail = [line for line in text[-1000:].splitlines() if line.strip()][-2:]
        edge = head + tail
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        edge = lines[:2] + lines[-2:] if len(lines) > 4 else lines
    return [line for line in edge if len(line) <= 400]


def silent_error(output: Any) -> tuple[str, str] | None:
    """(kind, text) when a tool's output reports a failure it was not flagged with.

    `output` is the stored value or its JSON text; a JSON string is read as text,
    a JSON object by its fields."""
    if isinstance(output, str) and output[:1] in ('"', "{"):
        with contextlib.suppress(ValueError):  # cut short, or not JSON: read as text
            output = json.loads(output)
    if isinstance(output, dict):
        for key in ("returncode", "exit_code", "exitCode", "return_code"):
            code = output.get(key)
            if isinstance(code, int) and not isinstance(code, bool) and code != 0:
                stderr = text_of(output.get("stderr") or output.get("output") or "", 2000)
                return f"exit {code}", stderr or f"{key} {code}"
        if output.get("is_error") is True or output.get("isError") is True:
            text = text_of(output.get("content") or output.get("error") or output, 2000)
            return _message_kind(text), text
        if isinstance(output.get("error"), str) and output["error"].strip():
            return _message_kind(output["error"]), output["error"][:2000]
    text = text_of(output)
    if not text:
        return None
    head = text[:4000]
    if "Traceback" in text and (_TRACEBACK.search(head) or _TRACEBACK.search(text[-8000:])):
        tail = text[-8000:]
        names = _EXCEPTION.findall(tail)
        name = names[-1].rsplit(".", 1)[-1] if names else "exception"
        raised = next(
            (line.strip() for line in reversed(tail.splitlines()) if line.strip().startswith(names[-1])),
            "",
        ) if names else ""  # fmt: skip
        return f"traceback {name.lower()}", (raised + "\n" + _gist(text[-1500:])).strip()
    lowered = head.lower()
    match = None
    if "return" in lowered or "exit" in lowered or "error " in lowered:
        match = _RETURN_CODE.search(head)
    if match is None and len(text) > 4000 and ("exit" in text[-2000:] or "return" in text[-2000:]):
        match = _RETURN_CODE.search(text[-2000:])
    if match:
        code = next(g for g in match.groups() if g is not None)
        if code not in {"0", "-0"}:
            return f"exit {code}", _gist(text)
    edges = _edge_lines(text)
    for line in edges:
        http = _HTTP.search(line)
        if http:
            return f"http {next(g for g in http.groups() if g)}", line.strip()[:500]
    for line in edges:
        if ERROR_MESSAGE.search(line):
            # A bare label ("ERROR:", as OpenHands' and SWE-agent's file editor
            # write it) heads the line that says what went wrong.
            said = decisive_line(text) if BARE_STATUS.match(line) else line.strip()
            return _message_kind(said), said[:500]
    return None


def _prose(text: str) -> str:
    """A message as the agent said it: line breaks of its JSON text read as such,
    code it wrote left out."""
    return _CODE.sub(" ", text.replace("\\n", "\n").replace("\\t", " "))


def assumed(text: str) -> str:
    """The sentence in which an agent says it assumes, simulates or makes up what it
    could not get ("" when it says no such thing). Code it wrote is not what it said:
    fenced and inline code are left out (a `placeholder` variable, a `simulate()`
    call; on the Who&When tune half, matches only in code were right 2 of 4 times).

    The diagnosis reads a message as its JSON text (mining._load), where a line
    break is the two characters "\\n": read as one, or "…directly.\\n\\nAssuming
    we have…" would hold no word "Assuming" (its "n" would start it)."""
    text = _prose(text)
    match = _ASSUMED.search(text)
    if match is None:
        return ""
    # The quoted sentence ends at a full stop or a line break ("...directly):\\n\\n
    # \\n\\nLet me use..." was quoted whole while line breaks were read as text).
    before = text[: match.start()]
    start = max(before.rfind("."), before.rfind("\n")) + 1
    ends = [
        i for i in (text.find(".", match.end()), text.find("\n", match.end()))
        if i >= match.end() - 1
    ]  # fmt: skip
    end = min(ends) if ends else len(text)
    quote = text[start : end + 1].replace('\\"', '"').replace("\\t", " ")
    return " ".join(quote.split()).strip('"')[:200]  # not the JSON string's own quotes


def _gist(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-3:])[:1500] if lines else ""


def _message_kind(text: str) -> str:
    """The first words of a masked error line: what stays the same between occurrences."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    words = _WORDS.findall(normalise(first)[:200])
    return " ".join(words[:6]) or "error"


def error_category(text: str) -> str:
    """The kind of an error, read from the line that says what went wrong
    (`decisive_line`): a web page or a package list printed before it says
    "timeout" or "unavailable" without either being the error."""
    if refused(text):
        return ""  # nothing failed: what the refusal says of the call is the user's
    line = decisive_line(text)
    if _CODE_WRONG.match(line):
        return "tool_use.wrong_arguments"
    for pattern, category in _CATEGORY_RULES:
        if pattern.search(line):
            return category
    return "tool_use.error_not_handled"


def _digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:12]


# The argument that holds what a shell, an interpreter or a console was given to
# run, beside options that are not the command: Claude Code's Bash (`command`,
# `description`), OpenHands' `execute_bash`, Codex's `exec_command` (`cmd`, or an
# argv list), Terminus' `bash_command` (`keystrokes`, `duration`).
_COMMAND_KEYS = ("command", "cmd", "keystrokes", "code", "script", "sql", "query")


def _command(value: Any) -> str:
    if isinstance(value, dict):
        held = next((value[k] for k in _COMMAND_KEYS if _runnable(value.get(k))), None)
        if held is not None:
            value = " ".join(held) if isinstance(held, list) else held
        elif len(value) == 1:
            value = next(iter(value.values()))
    text = normalise(text_of(value, 400))
    return text[:80] + ("…" if len(text) > 80 else "")


def _runnable(value: Any) -> bool:
    """A command as text, or as an argv list of words."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(word, str) for word in value)
    return isinstance(value, str) and bool(value.strip())


def trace_facts(steps: list[StepView]) -> TraceFacts:
    facts = TraceFacts()
    seen: dict[str, ToolCall] = {}
    repeated: dict[str, int] = {}
    last_call: ToolCall | None = None
    first = steps[0].index if steps else 0
    for step in steps:
        if step.kind in {"assistant_message", "llm_call"} and step.index != first:
            if text_of(step.output if step.output not in (None, "") else step.input, 200).strip():
                facts.said_after_last_call += 1
            message = text_of(step.output if step.output not in (None, "") else step.input)
            said = assumed(message)
            if said:
                facts.assumptions.append((step.index, said))
                if _LACKING.search(said):  # in the sentence itself (the message: 10 of 16)
                    facts.lacking.add(step.index)
            continue
        if step.kind == "user_prompt":
            facts.user_turns += 1
            text = _CONTROL_TOKEN.sub(" ", text_of(step.input, 1000))
            if last_call is not None and facts.user_turns > 1 and _NEGATIVE.search(text[:300]):
                facts.objections.append((step.index, text[:300], last_call))
            continue
        if step.kind == "error" and step.error:
            # An error step of its own is the agent's turn failing (a harness refusing
            # its message, the model's API error), not the last tool it called: that
            # call's own result says whether it failed. Named only when it names itself.
            tool = step.name
            facts.errors.append(
                ErrorEvent(
                    step.index, tool, _message_kind(step.error), error_ends(step.error), True
                )
            )
            continue
        if step.kind == "span":
            # A framework's own step (an agent run, a graph node): not a call. Its
            # error is one only when it raised it itself (a call's error inside it
            # is counted on the call, not again here).
            if step.error:
                facts.errors.append(ErrorEvent(
                    step.index, step.name, _message_kind(step.error), error_ends(step.error), True))  # fmt: skip
            continue
        if step.kind not in {"tool_call", "tool_result"} or not step.name:
            continue
        if step.name.startswith("user."):
            # A simulated user's own tool (tau2's phone): never the agent's call,
            # never the agent's error.
            continue
        if step.kind == "tool_result":
            # The result of a call already made (logged as a step of its own): its
            # error belongs to that call; it is not another call.
            if step.error:
                facts.errors.append(ErrorEvent(
                    step.index, step.name, _message_kind(step.error), error_ends(step.error), True))  # fmt: skip
            else:
                found = silent_error(step.output)
                if found is not None:
                    facts.errors.append(
                        ErrorEvent(step.index, step.name, found[0], found[1], False)
                    )
            continue
        call = ToolCall(step.index, step.name, f"{step.name}:{_digest(step.input)}", step.input)
        facts.calls.append(call)
        facts.said_after_last_call = 0
        last_call = call
        if call.key in seen:
            repeated[call.key] = repeated.get(call.key, 1) + 1
        else:
            seen[call.key] = call
        if _HANDOFF.search(step.name):
            facts.handoffs.append(call)
        if step.error:
            facts.errors.append(
                ErrorEvent(
                    step.index, step.name, _message_kind(step.error), error_ends(step.error), True
                )
            )
        else:
            found = silent_error(step.output)
            if found is not None:
                facts.errors.append(ErrorEvent(step.index, step.name, found[0], found[1], False))
    facts.repeats = [(seen[key], times) for key, times in repeated.items()]
    signals = {f"tool:{c.name}" for c in facts.calls}
    signals |= {f"error:{e.tool}:{e.kind}" for e in facts.errors}
    signals |= {f"repeat:{first.name}" for first, _ in facts.repeats}
    signals |= {f"handoff:{c.name}" for c in facts.handoffs}
    if facts.objections:
        signals.add("user_negative")
    if facts.assumptions:
        signals.add("assumed")
    if facts.user_turns > 1:
        signals.add("site:conversation")
    if facts.calls and facts.errors and facts.errors[-1].step >= facts.calls[-1].step:
        signals.add("ended_on_error")
    facts.signals = {s[:200] for s in signals}
    return facts
