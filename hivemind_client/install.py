"""Hook installers for Claude Code, Codex and Cursor.

Each keeps the hooks a project already has and adds Hivemind's once (running
it again adds nothing). The API key is never written into a file: command
hooks read HIVEMIND_URL / HIVEMIND_API_KEY from the environment the agent runs
in; Claude Code `http` hooks name the key as `$HIVEMIND_API_KEY` in a header,
which Claude Code fills from the environment (`allowedEnvVars`).

Claude Code:
- `http` hooks where the installed Claude Code has them (2.1.63 and later;
  `claude --version` is asked) and the server URL is known, else command
  hooks with an absolute interpreter and package path;
- SessionStart is always a command hook (Claude Code does not run `http` hooks
  for it): it captures the event and pulls the published skills into
  `.claude/skills/` within a time budget;
- with `http` hooks, Stop and SessionEnd also get a command hook that starts the
  import of the session's transcript (`merge-transcript`), which the server,
  handed only its path, cannot read; a command capture hook does that itself.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from .capture import HOOK_EVENTS, TRANSCRIPTS, capture_command, client_command

HTTP_HOOKS_SINCE = (2, 1, 63)
PULL_BUDGET_SECONDS = 5
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
MARKERS = ("hivemind_client", "/api/v1/hooks/")
TRANSCRIPT_EVENTS = TRANSCRIPTS["claude-code"][1]


def claude_code_version() -> tuple[int, ...] | None:
    try:
        out = subprocess.run(["claude", "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", out.stdout)
    return tuple(int(x) for x in found.groups()) if found else None


def _ours(hook: dict) -> bool:
    text = str(hook.get("command", "")) + str(hook.get("url", ""))
    return any(marker in text for marker in MARKERS)


def _kind(hook: dict) -> str:
    command = str(hook.get("command", ""))
    return ("pull" if "skills pull" in command
            else "transcript" if "merge-transcript" in command else "capture")  # fmt: skip


def _add(hooks: dict, event: str, hook: dict, matcher: str | None = None) -> bool:
    entries = hooks.setdefault(event, [])
    kind = _kind(hook)
    for entry in entries:
        for existing in entry.get("hooks", []):
            if _ours(existing) and _kind(existing) == kind:
                return False
    entry: dict = {"hooks": [hook]}
    if matcher is not None:
        entry["matcher"] = matcher
    entries.append(entry)
    return True


def install_claude_hooks(
    project: Path, *, hook_type: str = "auto", url: str = ""
) -> tuple[list[str], str]:
    """Add Hivemind's hooks to <project>/.claude/settings.json; return the events
    added and the hook type used ("http" or "command")."""
    if hook_type == "auto":
        version = claude_code_version()
        hook_type = "http" if url and version and version >= HTTP_HOOKS_SINCE else "command"
    if hook_type == "http" and not url:
        raise ValueError("http hooks need the server URL: pass --url or set HIVEMIND_URL.")
    settings_path = project / ".claude" / "settings.json"
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {}
    hooks = settings.setdefault("hooks", {})
    added = []
    for event in HOOK_EVENTS:
        if hook_type == "http" and event != "SessionStart":
            hook = {"type": "http",
                    # ?reply=empty: a 204 on success (Claude Code reads a JSON body as hook output).
                    "url": url.rstrip("/") + "/api/v1/hooks/claude-code?reply=empty",
                    "headers": {"Authorization": "Bearer $HIVEMIND_API_KEY"},
                    "allowedEnvVars": ["HIVEMIND_API_KEY"], "timeout": 2}  # fmt: skip
        else:
            hook = {"type": "command", "command": capture_command(), "timeout": 5}
        if _add(hooks, event, hook, "*" if event in TOOL_EVENTS else None):
            added.append(event)
    if _add(hooks, "SessionStart", _skills_pull_hook(project / ".claude" / "skills")):
        added.append("SessionStart (skills pull)")
    if hook_type == "http":
        merge = {"type": "command", "timeout": 5,
                 "command": client_command(f"merge-transcript --url {shlex.quote(url)}")}  # fmt: skip
        for event in TRANSCRIPT_EVENTS:
            if _add(hooks, event, merge):
                added.append(f"{event} (transcript)")
    settings_path.parent.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings, indent=2) + "\n")
    return added, hook_type


CODEX_EVENTS = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"]


# What Codex asks before it runs a project's hooks (seen on Codex CLI 0.171: an
# untrusted project's hooks, and untrusted hooks, are skipped without a word).
CODEX_TRUST_HELP = """\
Codex runs these hooks only in a trusted project, and only once you have trusted
them (an untrusted hook is skipped without a word): open `codex` in this folder,
trust the folder, then trust the Hivemind hooks in /hooks. A change to
.codex/hooks.json asks for trust again. For automation that has checked the hooks
file itself: `codex exec --trust` once in this folder, then
`codex exec --dangerously-bypass-hook-trust ...` (it skips that review).
Codex's hooks do not say whether a command failed (no exit code): at each turn's
end the hook imports the session's rollout, which has them, in a process of its
own (HIVEMIND_CODEX_ROLLOUT=off leaves that to you:
python -m hivemind_client import --format codex-rollout ~/.codex/sessions/)."""


def install_codex_hooks(project: Path) -> list[str]:
    """Add the capture hook to <project>/.codex/hooks.json (Codex's hooks file,
    same shape as Claude Code's) and switch hooks on in .codex/config.toml."""
    path = project / ".codex" / "hooks.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    hooks = data.setdefault("hooks", {})
    added = []
    for event in CODEX_EVENTS:
        hook = {"type": "command", "command": capture_command("codex"), "timeout": 5}
        if _add(hooks, event, hook, "*" if event in TOOL_EVENTS else None):
            added.append(event)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    config = project / ".codex" / "config.toml"
    text = config.read_text() if config.exists() else ""
    if "codex_hooks" not in text:
        section = "[features]\ncodex_hooks = true\n"
        if "[features]" in text:
            text = text.replace("[features]\n", section, 1)
        else:
            text = (text.rstrip() + "\n\n" if text.strip() else "") + section
        config.write_text(text)
    return added


# Gemini CLI's events that make a run (seen on 0.61): the prompt, each call when it
# ends, the turn's reply, the session's start and end. BeforeTool is left out: its
# payload names no call id to join it to its AfterTool.
GEMINI_EVENTS = ["SessionStart", "BeforeAgent", "AfterTool", "AfterAgent", "SessionEnd"]
CLINE_HUB_HELP = """\
Cline runs hooks from its hub daemon, which keeps the environment it started with:
after exporting HIVEMIND_URL and HIVEMIND_API_KEY, run `cline hub stop` (the next
`cline` starts it again with them)."""


GEMINI_TRUST_HELP = """\
Gemini CLI reads a project's .gemini/settings.json only in a trusted folder (when
folder trust is on): trust this folder when Gemini CLI asks, or in /permissions."""


def install_gemini_hooks(project: Path) -> list[str]:
    """Add the capture hook to <project>/.gemini/settings.json (Gemini CLI's hooks,
    Claude Code's shape)."""
    path = project / ".gemini" / "settings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    hook = {"type": "command", "command": capture_command("gemini-cli"), "timeout": 5000}
    added = _add_all(data.setdefault("hooks", {}), {e: e for e in GEMINI_EVENTS}, hook, "AfterTool")
    _save(path, data)
    return added


QWEN_TRUST_HELP = """\
Qwen Code loads a project's .qwen/settings.json hooks only in a trusted folder: trust
this folder when Qwen Code asks (or add the hooks to ~/.qwen/settings.json)."""


def install_qwen_hooks(project: Path) -> list[str]:
    """Add the capture hook to <project>/.qwen/settings.json (Qwen Code's hooks, in
    Claude Code's shape and with its events); at each turn's end the capture hook
    imports the session's chat record, which replaces the steps the hooks built. At
    SessionStart the workspace's published skills are pulled into .qwen/skills."""
    path = project / ".qwen" / "settings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    hook = {"type": "command", "command": capture_command("qwen-code"), "timeout": 5}
    hooks = data.setdefault("hooks", {})
    added = [event for event in HOOK_EVENTS
             if _add(hooks, event, dict(hook), "*" if event in TOOL_EVENTS else None)]  # fmt: skip
    # The workspace's published skills, where Qwen Code finds a project's (.qwen/skills).
    if _add(hooks, "SessionStart", _skills_pull_hook(project / ".qwen" / "skills")):
        added.append("SessionStart (skills pull)")
    _save(path, data)
    return added


# OpenHands' events that make a run (the SDK 1.58's hooks, which the OpenHands CLI,
# GUI and Cloud run from a project's .openhands/hooks.json): the session's start
# and end, the prompt, each call when it ends, the turn's end. PreToolUse is left
# out: its payload names no call id to join it to its PostToolUse.
OPENHANDS_EVENTS = ["SessionStart", "UserPromptSubmit", "PostToolUse", "Stop", "SessionEnd"]


def install_openhands_hooks(project: Path) -> list[str]:
    """Add the capture hook to <project>/.openhands/hooks.json (OpenHands' hooks, in
    Claude Code's shape: under "hooks", or at the top level when the file already
    keeps its events there, under the names it already uses)."""
    path = project / ".openhands" / "hooks.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    hooks = data.setdefault("hooks", {}) if "hooks" in data or not data else data
    names = {}
    for event in OPENHANDS_EVENTS:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in event).lstrip("_")
        names[event] = snake if snake in hooks and event not in hooks else event
    hook = {"type": "command", "command": capture_command("openhands"), "timeout": 5}
    added = _add_all(hooks, names, hook, "PostToolUse")
    _save(path, data)
    return added


def _add_all(hooks: dict, names: dict[str, str], hook: dict, tool_event: str) -> list[str]:
    """`hook` added for each event (under the key `names` gives it) that lacks ours,
    matching every tool on `tool_event`; the events it was added for."""
    added = []
    for event, name in names.items():
        if _add(hooks, name, dict(hook), "*" if event == tool_event else None):
            added.append(event)
    return added


def _skills_pull_hook(folder: Path) -> dict:
    """The SessionStart hook that pulls the workspace's published skills into
    `folder` within the pull's time budget."""
    return {"type": "command", "timeout": PULL_BUDGET_SECONDS + 2,
            "command": client_command(f"skills pull --hook --budget {PULL_BUDGET_SECONDS} "
                                      f"--dir {json.dumps(str(folder.resolve()))}")}  # fmt: skip


def _save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# The shell, file-edit and MCP events (Cursor 1.7 and later), not postToolUse as
# well: newer Cursor sends both for one shell command, which would be two steps.
CURSOR_EVENTS = ["sessionStart", "beforeSubmitPrompt", "afterShellExecution", "afterFileEdit",
                 "afterMCPExecution", "afterAgentResponse", "stop", "sessionEnd"]  # fmt: skip


def install_cursor_hooks(project: Path) -> list[str]:
    """Add the capture hook to <project>/.cursor/hooks.json (version 1)."""
    path = project / ".cursor" / "hooks.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("version", 1)
    hooks = data.setdefault("hooks", {})
    added = []
    command = capture_command("cursor")
    for event in CURSOR_EVENTS:
        entries = hooks.setdefault(event, [])
        if not any(_ours(entry) for entry in entries):
            entries.append({"command": command})
            added.append(event)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return added


# OpenCode's plugin (a project's .opencode/plugins/): at each turn's end its session,
# as `opencode export` writes it, is sent by this client in a process of its own.
CLINE_HOOK = """\
#!/bin/sh
# Written by `hivemind install-cline-hooks` (Hivemind's capture): when a task ends
# ({event}) the Cline session is sent to Hivemind by its client, in a process of its
# own, so Cline never waits on it. It reads HIVEMIND_URL and HIVEMIND_API_KEY from
# the environment Cline runs in; HIVEMIND_CAPTURE=off sends nothing.
PYTHONPATH={pythonpath}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -m hivemind_client \\
  send-cline-session --hook
"""
# The Cline CLI runs a project's hook files, named after their event, from here.
CLINE_HOOK_EVENTS = ("TaskComplete", "TaskCancel")


def install_cline_hooks(project: Path) -> list[str]:
    """Write Hivemind's hooks to <project>/.clinerules/hooks/TaskComplete and
    TaskCancel (the Cline CLI runs a project's hook files, named after their event,
    at a task's end): each sends the session (`send-cline-session --hook`). Written
    again, they are the same files. A hook file of that name that is not Hivemind's
    is left as it is: ValueError, saying which (a folder holds one file an event)."""
    folder = project / ".clinerules" / "hooks"
    texts = {event: CLINE_HOOK.format(event=event, python=shlex.quote(sys.executable),
                                      pythonpath=shlex.quote(str(Path(__file__).resolve().parent.parent)))
             for event in CLINE_HOOK_EVENTS}  # fmt: skip
    theirs = [e for e in CLINE_HOOK_EVENTS if (folder / e).exists()
              and "hivemind install-cline-hooks" not in (folder / e).read_text(errors="replace")]  # fmt: skip
    if theirs:
        raise ValueError(
            f"{folder} already has a {' and a '.join(theirs)} hook of its own; Cline runs one "
            "file an event, so add this line to it instead: "
            f"{shlex.quote(sys.executable)} -m hivemind_client send-cline-session --hook"
        )
    added = []
    folder.mkdir(parents=True, exist_ok=True)
    for event, text in texts.items():
        path = folder / event
        if path.exists() and path.read_text() == text:
            continue
        path.write_text(text)
        path.chmod(0o755)
        added.append(event)
    return added


AIDER_MARK = "# Written by `hivemind install-aider-hooks`"
AIDER_HELP = """\
Aider runs the notifications command when it waits for you after the model answered;
the command sends the session Aider is writing (.aider.chat.history.md) in the
background, then pulls the workspace's published skills into
.hivemind/aider-skills.md, which Aider reads (`read`) with each request. A run with
--message (no waiting) is not sent: import its history with
python -m hivemind_client import --format aider .aider.chat.history.md"""


def install_aider_hooks(project: Path) -> list[str]:
    """Turn Aider's notifications on in <project>/.aider.conf.yml (Aider reads a
    project's, at the git root or in the folder it starts in), their command sending
    the project's chat history's last session (`send-aider-session --hook`), and add
    the file the published skills are pulled into to the files Aider reads
    (`read`). Aider has no hooks; its notifications command is what it runs at a
    turn's end. Written again, nothing changes. A notifications command of the file's
    own, or notifications switched off there, is left as it is: ValueError, saying
    what to add (Aider runs one command); so is a `read` of the file's own (it may be
    a list): ValueError, saying which file to add to it, after the rest is written."""
    from .capture import aider_skills, refresh_aider_skills
    from .skills import write_one_file

    path = project / ".aider.conf.yml"
    history = (project / ".aider.chat.history.md").resolve()
    package_parent = str(Path(__file__).resolve().parent.parent)
    command = (f"PYTHONPATH={shlex.quote(package_parent)}${{PYTHONPATH:+:$PYTHONPATH}} "
               f"{shlex.quote(sys.executable)} -m hivemind_client send-aider-session --hook "
               f"--file {shlex.quote(str(history))}")  # fmt: skip
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    theirs = re.search(r"^notifications-command\s*:(.*)$", text, re.M)
    if theirs and "send-aider-session" not in theirs[1]:
        raise ValueError(
            f"{path} has a notifications command of its own; Aider runs one, so add this "
            f"to it: {command}"
        )
    switched = re.search(r"^notifications\s*:\s*(\S*)", text, re.M)
    if switched and switched[1].strip("'\"").lower() not in ("true", "yes", "on"):
        raise ValueError(
            f"{path} switches Aider's notifications off ({switched[0].strip()}); Hivemind's "
            "capture runs as their command: set it to true and run this again"
        )
    folder, skills_file = aider_skills(project.resolve())
    added = []
    block = ""
    if not theirs:
        block += (("" if switched else "notifications: true\n")
                  + "notifications-command: '" + command.replace("'", "''") + "'\n")  # fmt: skip
        added.append("notifications-command")
    reads = re.search(r"^read\s*:", text, re.M)
    if not reads:
        block += "read: '" + str(skills_file).replace("'", "''") + "'\n"
        added.append("read")
    if block:
        if text and not text.endswith("\n"):
            text += "\n"
        mark = f"{AIDER_MARK}: send each session to Hivemind, read its skills.\n"
        path.write_text(text + mark + block, encoding="utf-8")
    # Aider reads only the files that are there when it starts.
    if not refresh_aider_skills(project.resolve()) and not skills_file.exists():
        write_one_file(folder, skills_file)
    if reads and str(skills_file) not in text:
        raise ValueError(
            f"capture installed, but {path} has a `read` of its own: add the file the "
            f"published skills are pulled into to it, so Aider reads them: {skills_file}"
        )
    return added


OPENCODE_PLUGIN = """\
// Written by `hivemind install-opencode-plugin` (Hivemind's capture): at each turn's
// end (session.idle) the session, as `opencode export` writes it, is sent to Hivemind
// by its client, in a process of its own, so OpenCode never waits on it. It reads
// HIVEMIND_URL and HIVEMIND_API_KEY from the environment OpenCode runs in;
// HIVEMIND_CAPTURE=off sends nothing.
import {{ spawn }} from "node:child_process"
import {{ delimiter }} from "node:path"

const COMMAND = {command}
const PYTHONPATH = {pythonpath}

export const HivemindCapture = async () => ({{
  event: async ({{ event }}) => {{
    if (event.type !== "session.idle") return
    const session = event.properties?.sessionID
    if (!session || !process.env.HIVEMIND_URL || process.env.HIVEMIND_CAPTURE === "off") return
    const env = {{ ...process.env, PYTHONPATH: [PYTHONPATH, process.env.PYTHONPATH].filter(Boolean).join(delimiter) }}
    spawn(COMMAND[0], [...COMMAND.slice(1), "--opencode", process.execPath, "--session", session],
          {{ detached: true, stdio: "ignore", env }}).unref()
  }},
}})
"""


def install_opencode_plugin(project: Path) -> list[str]:
    """Write Hivemind's plugin to <project>/.opencode/plugins/hivemind.js (OpenCode
    loads a project's plugins from there at start): at each turn's end it sends the
    session (`send-opencode-session`). Written again, it is the same file."""
    path = project / ".opencode" / "plugins" / "hivemind.js"
    package_parent = str(Path(__file__).resolve().parent.parent)
    command = [sys.executable, "-m", "hivemind_client", "send-opencode-session"]
    text = OPENCODE_PLUGIN.format(
        command=json.dumps(command), pythonpath=json.dumps(package_parent)
    )
    if path.exists() and path.read_text() == text:
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return ["session.idle"]
