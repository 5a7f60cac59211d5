"""What an error says went wrong, read from the text a step reported.

The trace page shows an error step by its decisive line, and the failures app
names and classifies an incident by it (failures/diagnosis/facts.py): a Python
traceback's exception, not the label, header or output printed around it.
"""

from __future__ import annotations

import re

# A line saying something failed: an error prefix, or words no success prints.
ERROR_MESSAGE = re.compile(
    r"^\s*(?:error|fatal|exception|failed|failure)\b\s*[:\-!]"
    r"|\b(?:not found|not allowed|permission denied|access denied|command not found"
    r"|no such file or directory|does not exist|syntax error|did not pass|is not defined"
    r"|no module named|cannot find|could not find|unable to|not permitted|unknown column"
    r"|no such (?:column|table)|invalid (?:argument|value|input|syntax|request))\b"
    # A test runner's verdict: "Failed 3/3 Test Cases", "2 failed, 5 passed", "tests failed".
    r"|\bfailed [1-9]\d*(?:\s*/\s*\d+| of \d+)? (?:tests?|test cases?|checks?)\b"
    r"|\b[1-9]\d* (?:tests? )?failed\b|\btests? failed\b",
    re.I,
)

# A call the user, their permission rules or a hook refused or stopped: no tool
# failed. Claude Code's tool results for a rejected or interrupted call and for a
# call its permission rules deny (Claude Code 2.1.332: "Permission to use Bash with
# command rm orders/A1.json has been denied.", "Error: " before it in its headless
# output); Codex's call not approved (traces/otlp_codex.py).
_REFUSED = re.compile(
    r"(?:Error:\s*)?"
    r"(?:The user doesn't want to (?:proceed with this tool use|take this action right now)"
    r"|\[Request interrupted by user"
    r"|Permission to use \S+ .{0,2000}?has been denied"
    r"|The call was not permitted \()",
    re.I,
)


def refused(text: str) -> bool:
    """Whether an error says the call was refused or stopped (by the user, their
    permission rules or a hook), not that it failed."""
    return _REFUSED.match(text.lstrip()) is not None


def unanswered(text: str) -> bool:
    """Whether an error is a hook session's note that a call got no answer by its
    turn's end (`claude_code.UNFINISHED`, in its words of today or before): it did
    not complete, which may be a failure, a refusal or a stop."""
    return text.startswith("No PostToolUse before the turn ended")


# A bare exit status or a label with nothing after it: never what went wrong.
BARE_STATUS = re.compile(
    r"^\s*(?:exit(?:ed)?(?: with)?(?: (?:code|status))?\s*[:=]?\s*-?\d+\s*:?"
    r"|<returncode>\s*-?\d+\s*</returncode>|exitcode:\s*-?\d+(?:\s*\([^)]*\))?"
    r"|code output:?|error:?|stderr:?|traceback \(most recent call last\):?|<output>|</output>|…)\s*$",
    re.I,
)
# A label a harness puts before what a tool printed (AG2's "Code output: ..."):
# taken off the start of a line before the line is read.
_OUTPUT_LABEL = re.compile(r"^\s*(?:code output|output|stdout|stderr)\s*:\s*", re.I)
# An exception as Python prints it when raised: its class (dotted or not), then ":"
# or the end of the line.
_RAISED = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Warning)(?::|$)"
)
_SAYS_ERROR = re.compile(r"\berror\s*:", re.I)
_SAYS_FAILED = re.compile(r"\b(?:fail(?:ed|s|ure)?|errors?|exception)\b", re.I)
_SENTENCE_THEN_ERROR = re.compile(r"[.;]\s+(?=(?:error|exception)\s*:)", re.I)
# A compiler's or linter's diagnostic: "path/file.ext:LINE[:COL]: message" (Go, gcc,
# tsc, eslint's unix format, mypy): what failed, under a header line such as
# Go's "# github.com/org/repo/pkg".
_DIAGNOSTIC = re.compile(r"^[\w./\\-]+\.\w+:\d+(?::\d+)?:?\s+\S")
# What is kept of a long error: its start and its end, where a traceback's
# exception is (the middle is frames and printed output).
ERROR_HEAD, ERROR_TAIL = 600, 900


def error_ends(text: str) -> str:
    """A long error's first ERROR_HEAD and last ERROR_TAIL characters, "…" between."""
    if len(text) <= ERROR_HEAD + ERROR_TAIL:
        return text
    return f"{text[:ERROR_HEAD]}\n…\n{text[-ERROR_TAIL:]}"


def _from_the_error(line: str) -> str:
    """A line that says "Error:" after a sentence about something else starts
    there: tau2's refusal of a turn ends its dump of the message with
    "cost: 0.008862. Error: You sent a message with both text content and tool
    calls." Left whole when what comes before says it failed too."""
    match = _SENTENCE_THEN_ERROR.search(line)
    before = line[: match.start()] if match else ""
    if match is None or ERROR_MESSAGE.search(before) or _SAYS_FAILED.search(before):
        return line
    return line[match.end() :]


def decisive_line(text: str) -> str:
    """The line of an error that says what went wrong. For a Python traceback, the
    exception after its last header, not the output printed before or after it;
    else the last exception raised (a SyntaxError has no header); else a
    compiler's first diagnostic ("file.go:6:2: ..."); else the first line that
    says it failed; else the first line that is not a bare exit status or
    label ("exit 1:", "<returncode>1</returncode>", "Code output:")."""
    lines = [_OUTPUT_LABEL.sub("", line, count=1).rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line.strip()]
    headers = [
        i for i, line in enumerate(lines)
        if line.lstrip().lower().startswith("traceback (most recent call last)")
    ]  # fmt: skip
    if headers:
        for line in lines[headers[-1] + 1 :]:
            if line.startswith((" ", "\t", "File ")) or BARE_STATUS.match(line):
                continue  # a frame, its code, or where the text was cut
            return line.strip()
    raised = [line.strip() for line in lines if _RAISED.match(line.strip())]
    if raised:
        return raised[-1]
    for line in lines:
        if _DIAGNOSTIC.match(line.strip()):
            return line.strip()
    for line in lines:
        if (ERROR_MESSAGE.search(line) or _SAYS_ERROR.search(line)) and not BARE_STATUS.match(line):
            return _from_the_error(line.strip())
    for line in lines:
        if not BARE_STATUS.match(line):
            return line.strip()
    return text.strip()
