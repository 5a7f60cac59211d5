"""The command a Claude Code hook runs: `python -m hivemind_client capture`.

Reads the hook payload on stdin and posts it to Hivemind. It never blocks the
agent: the whole run is bounded by `DEADLINE` seconds and it always exits 0.
When the server cannot be reached the payload goes to a local spool file
(JSON lines) and is sent, oldest first, on a later call. Each payload gets an
event id when first captured, so a payload that is sent twice (a spool flush
interrupted after the server stored it) still becomes one step, not two.
`HIVEMIND_CAPTURE=false` turns capture off. At the end of a turn it also starts
the import of the session's transcript in a process of its own
(`merge_transcript_later`): Codex's hooks carry no exit codes, its rollout does;
Claude Code's carry no model calls, tokens or words between calls, its
transcript does.

Without `HIVEMIND_URL` / `HIVEMIND_API_KEY` the payload is spooled and a warning
is printed on stderr once (a marker file beside the spool). The spool never
grows past `HIVEMIND_SPOOL_MAX_MB` (default 20): the oldest payloads are dropped
and counted in `<spool>.dropped`, and the warning says how many.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from .retry import urlopen_waiting

DEADLINE = 0.9  # seconds: Claude Code waits for hooks; stay well under 1 s
MAX_PAYLOAD = 5 * 1024 * 1024


def spool_limit() -> int:
    try:
        return int(float(os.environ.get("HIVEMIND_SPOOL_MAX_MB", "20")) * 1024 * 1024)
    except ValueError:
        return 20 * 1024 * 1024


def spool_path() -> Path:
    default = Path.home() / ".hivemind" / "spool.jsonl"
    return Path(os.environ.get("HIVEMIND_SPOOL", str(default)))


SOURCES = ("claude-code", "codex", "cursor", "gemini-cli", "openhands", "qwen-code")


def _post(
    url: str, key: str, item: dict, timeout: float, *, wait: bool = False,
    refusals: list[str] | None = None,
) -> bool:  # fmt: skip
    """Send one hook payload; whether the server took it (or refused it for good,
    a 4xx that retrying will not change: its status and answer are added to
    `refusals`, when given). `wait`: wait as the server asks on 429 and 503 (a
    replay); a live hook never waits, it spools."""
    source = item.get("source", "claude-code")
    request = urllib.request.Request(
        url.rstrip("/") + f"/api/v1/hooks/{source if source in SOURCES else 'claude-code'}",
        data=json.dumps(item["payload"]).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                 "X-Hivemind-Event-Id": item["event_id"]},
    )  # fmt: skip
    try:
        opened = (urlopen_waiting(request, timeout=max(timeout, 0.05)) if wait
                  else urllib.request.urlopen(request, timeout=max(timeout, 0.05)))  # fmt: skip
        with opened as response:
            return 200 <= response.status < 300
    except urllib.error.HTTPError as exc:
        # 4xx will not get better by retrying: drop it rather than spool forever.
        final = 400 <= exc.code < 500 and exc.code not in (408, 429)
        if final and refusals is not None:
            answer = ""
            with contextlib.suppress(OSError):
                answer = exc.read(500).decode("utf-8", "replace").strip()
            refusals.append(f"HTTP {exc.code}" + (f": {answer}" if answer else ""))
        return final
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _append(path: Path, items: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as spool:
        for item in items:
            spool.write(json.dumps(item) + "\n")
    _trim(path)


def _trim(path: Path) -> None:
    """Keep the spool under its limit: drop the oldest lines, count them."""
    limit = spool_limit()
    try:
        if path.stat().st_size <= limit:
            return
        lines = path.read_bytes().splitlines(keepends=True)
    except OSError:
        return
    kept, size = [], 0
    for line in reversed(lines):
        if size + len(line) > limit:
            break
        kept.append(line)
        size += len(line)
    dropped = len(lines) - len(kept)
    path.write_bytes(b"".join(reversed(kept)))
    counter = path.with_name(path.name + ".dropped")
    try:
        before = int(counter.read_text() or 0) if counter.exists() else 0
    except (OSError, ValueError):
        before = 0
    counter.write_text(str(before + dropped))


def _warn_once(path: Path, message: str) -> None:
    marker = path.with_name(path.name + ".warned")
    if marker.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(message)
    except OSError:
        pass
    print(f"hivemind capture: {message}", file=sys.stderr)


def _take_spool(path: Path) -> list[dict]:
    """Claim the spool: rename first so a concurrent hook does not send it twice."""
    if not path.exists():
        return []
    claimed = path.with_suffix(f".{os.getpid()}.sending")
    try:
        path.rename(claimed)
    except OSError:
        return []
    items = []
    for line in claimed.read_text().splitlines():
        try:
            items.append(json.loads(line))
        except ValueError:
            continue
    claimed.unlink(missing_ok=True)
    return items


def capture(stdin_text: str, *, started: float | None = None, source: str = "claude-code") -> str:
    """Returns what happened: disabled / sent / spooled / ignored."""
    started = started if started is not None else time.monotonic()
    if os.environ.get("HIVEMIND_CAPTURE", "true").lower() in ("false", "0", "no", "off"):
        return "disabled"
    try:
        payload = json.loads(stdin_text[:MAX_PAYLOAD])
    except ValueError:
        return "ignored"
    url, key = os.environ.get("HIVEMIND_URL", ""), os.environ.get("HIVEMIND_API_KEY", "")
    item = {"event_id": uuid.uuid4().hex, "payload": payload, "source": source}
    path = spool_path()
    if not url or not key:
        _append(path, [item])
        _warn_once(path, "HIVEMIND_URL and HIVEMIND_API_KEY are not set: events are kept in "
                   f"{path} (at most {spool_limit() // (1024 * 1024)} MB, oldest dropped) "
                   "until they are. Run `python -m hivemind_client doctor` to check.")  # fmt: skip
        return "spooled"
    pending = _take_spool(path) + [item]
    unsent = []
    for position, queued in enumerate(pending):
        remaining = DEADLINE - (time.monotonic() - started)
        if remaining <= 0.05 or not _post(url, key, queued, remaining):
            unsent = pending[position:]
            break
    if unsent:
        _append(path, unsent)
        return "spooled"
    if isinstance(payload, dict):
        merge_transcript_later(payload, source)
    return "sent"


# What the capture hook imports at a turn's end, by agent: the session's own record,
# which has what its hooks lack. Codex's rollout: each command's exit code. Claude
# Code's transcript: the model's words between calls, each model call with its
# model and tokens, and (beside it) its subagents' transcripts. (format, the hook
# events that end a turn, the variable that turns it off)
TRANSCRIPTS = {
    "codex": ("codex-rollout", ("Stop",), "HIVEMIND_CODEX_ROLLOUT"),
    "claude-code": ("claude-transcript", ("Stop", "SessionEnd"), "HIVEMIND_CLAUDE_TRANSCRIPT"),
    # OpenHands' saved conversation: the agent's thoughts and each answer's tokens.
    "openhands": ("openhands", ("Stop", "SessionEnd"), "HIVEMIND_OPENHANDS_CONVERSATION"),
    # Qwen Code's chat record (`transcript_path`): each answer's tokens, its text.
    "qwen-code": ("qwen-code", ("Stop", "SessionEnd"), "HIVEMIND_QWEN_TRANSCRIPT"),
}


def openhands_conversation(payload: dict) -> Path | None:
    """Where OpenHands saved the conversation of a hook payload: its state file,
    `<conversations>/<id as hex>/base_state.json`, the conversations folder being
    HIVEMIND_OPENHANDS_CONVERSATIONS, else the one the OpenHands CLI keeps
    (`$OH_PERSISTENCE_DIR` or ~/.openhands, then `conversations`); None when it
    is not there (an SDK application saving elsewhere names it with the variable)."""
    try:
        folder = uuid.UUID(str(payload.get("session_id") or "")).hex
    except ValueError:
        return None
    base = os.environ.get("HIVEMIND_OPENHANDS_CONVERSATIONS") or str(
        Path(os.environ.get("OH_PERSISTENCE_DIR") or Path.home() / ".openhands") / "conversations"
    )
    state = Path(base).expanduser() / folder / "base_state.json"
    return state if state.is_file() else None


def merge_transcript_later(payload: dict, source: str) -> bool:
    """At the end of a turn, import the session's transcript (the payload's
    `transcript_path`: Codex's rollout, Claude Code's session transcript and its
    subagents' beside it; OpenHands' saved conversation, `openhands_conversation`)
    in a process of its own, so the hook returns at once. It merges into the run
    the hooks built (`<source>-<session id>`, calls matched by their ids; an
    OpenHands conversation replaces its steps; `traces/transcripts.py`); a
    transcript unchanged since the last import changes nothing.
    `HIVEMIND_CODEX_ROLLOUT=off`, `HIVEMIND_CLAUDE_TRANSCRIPT=off` or
    `HIVEMIND_OPENHANDS_CONVERSATION=off` turns it off. Returns whether it started."""
    if source not in TRANSCRIPTS:
        return False
    fmt, events, switch = TRANSCRIPTS[source]
    if (payload.get("hook_event_name") or payload.get("event_type")) not in events:
        return False
    if os.environ.get(switch, "on").lower() in ("off", "false", "0", "no"):
        return False
    if source == "openhands":
        state = openhands_conversation(payload)
        if state is None:
            return False
        transcript = str(state)
    else:
        path = payload.get("transcript_path")
        if not isinstance(path, str) or not path.endswith(".jsonl") or not Path(path).is_file():
            return False
        transcript = path
    # Claude Code keeps a session's subagents in <session>/subagents/agent-<id>.jsonl;
    # imported after the session's own, they nest under the calls that started them.
    subagents = (
        sorted((Path(transcript[: -len(".jsonl")]) / "subagents").glob("agent-*.jsonl"))
        if transcript.endswith(".jsonl") else []
    )  # fmt: skip
    package_parent = str(Path(__file__).resolve().parent.parent)
    paths = [package_parent, *filter(None, [os.environ.get("PYTHONPATH")])]
    subprocess.Popen(  # noqa: S603 (this interpreter, this package, file paths)
        [sys.executable, "-m", "hivemind_client", "import", "--format", fmt, transcript,
         *map(str, subagents)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
    )  # fmt: skip
    return True


def merge_transcript_main(source: str, url: str = "") -> int:
    """`merge-transcript`: the hook payload on stdin; at a turn's end, the import of
    its transcript started (`merge_transcript_later`). Never fails the hook."""
    try:
        payload = json.loads(sys.stdin.read()[:MAX_PAYLOAD])
    except ValueError:
        return 0
    if url:
        os.environ["HIVEMIND_URL"] = url
    if isinstance(payload, dict) and os.environ.get("HIVEMIND_CAPTURE", "true").lower() not in (
        "false", "0", "no", "off"):  # fmt: skip
        with contextlib.suppress(OSError):
            merge_transcript_later(payload, source)
    return 0


def main(source: str = "claude-code") -> int:
    started = time.monotonic()
    text = ""
    try:
        text = sys.stdin.read(MAX_PAYLOAD) if not sys.stdin.isatty() else ""
        capture(text, started=started, source=source)
    except Exception:  # never break the agent over telemetry
        pass
    if source == "cursor" and '"beforeSubmitPrompt"' in text:
        print('{"continue": true}')  # Cursor reads a decision from this hook's stdout
    return 0


HOOK_EVENTS = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse",
               "PostToolUseFailure", "Notification", "Stop", "StopFailure", "SubagentStop",
               "SessionEnd"]  # fmt: skip


def client_command(arguments: str) -> str:
    """A hook command: this interpreter and this package, by absolute path, so
    the hook works from any directory the agent runs it in."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    return (f"PYTHONPATH={shlex.quote(package_parent)} {shlex.quote(sys.executable)} "
            f"-m hivemind_client {arguments}")  # fmt: skip


def capture_command(source: str = "claude-code") -> str:
    return client_command("capture" if source == "claude-code" else f"capture --source {source}")


def replay(path: Path, source: str = "claude-code", url: str = "", key: str = "") -> int:
    """Send a recorded session in the order it happened; stop at the first refusal.

    `path` is a hook log (JSON lines, or a JSON array of payloads) or a folder of
    them (one file per event type, merged by time: `hooklog.session_events`); a
    session transcript in the folder (`chat.json`) is sent after its events and
    completes the trace they built."""
    from .hooklog import is_transcript, read_items, server_dated, session_events

    url = url or os.environ.get("HIVEMIND_URL", "")
    key = key or os.environ.get("HIVEMIND_API_KEY", "")
    if not url or not key:
        print("Set HIVEMIND_URL and HIVEMIND_API_KEY.", file=sys.stderr)
        return 2
    files = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file()) \
        if path.is_dir() else [path]  # fmt: skip
    logs: list[list[dict]] = []
    transcripts: list[Path] = []
    entries: list = []
    for file in files:
        try:
            items = read_items(file)
        except (ValueError, OSError) as exc:
            print(f"{file}: {exc}; nothing was sent.", file=sys.stderr)
            return 1
        if is_transcript(items):
            transcripts.append(file)
            entries += items
        elif not all(isinstance(i, dict) for i in items):
            print(f"{file}: every hook payload must be a JSON object; nothing was sent.",
                  file=sys.stderr)  # fmt: skip
            return 1
        else:
            logs.append(items)
    sent = 0
    seen: dict[str, int] = {}
    events = session_events(logs, entries)
    for payload in events:
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
        # The same payload again is another event (OpenHands' hooks name no call id:
        # one command run twice sends two equal PostToolUse payloads); replaying the
        # log again gives each the same id, so nothing is added twice.
        seen[digest] = seen.get(digest, 0) + 1
        again = f"-{seen[digest]}" if seen[digest] > 1 else ""
        item = {"event_id": f"replay-{digest}{again}", "payload": payload, "source": source}
        refusals: list[str] = []
        if not _post(url, key, item, 10.0, wait=True, refusals=refusals) or refusals:
            why = f" (the server answered {refusals[0]})" if refusals else ""
            if refusals and refusals[0].startswith("HTTP 404"):
                why += f"; does this server take {source} hooks? Upgrade it, or check --source"
            print(f"{path}: event {sent + 1} not accepted{why}; stopped after {sent} event(s).",
                  file=sys.stderr)  # fmt: skip
            return 1
        sent += 1
    for transcript in transcripts:
        from .importer import SendError, import_file

        try:
            import_file(url, key, "claude-transcript", transcript)
        except (SendError, ValueError) as exc:
            print(f"{transcript}: not sent ({exc}).", file=sys.stderr)
            return 1
    print(f"Sent {sent} event(s)" + (f" and {len(transcripts)} transcript(s)" if transcripts else "")
          + f" from {path}.")  # fmt: skip
    sessions: dict[str, bool] = {}  # session -> some event of it carries a time
    for payload in events:
        session = str(payload.get("session_id") or "")
        sessions[session] = sessions.get(session, False) or server_dated(payload)
    undated = [session for session, dated in sessions.items() if not dated]
    if undated:
        print(f"{len(undated)} of the {len(sessions)} session(s) carried no time of their own "
              "(no time in their hook events, no transcript of them): each is dated by its "
              "arrival, today, and counted on that day in Overview and Metrics.")  # fmt: skip
    return 0


def send_opencode_session(opencode: str, session: str) -> int:
    """`send-opencode-session`, which the OpenCode plugin `install-opencode-plugin`
    writes runs at each turn's end (`session.idle`), in a process of its own: the
    session as `opencode export` writes it (`opencode` is the binary the plugin runs
    in), with its subagents' sessions beside it (each `task` call's), sent with
    `import --format opencode`, its status read from the session by the server as a
    hook-built run's is. A subagent's own session is sent with its parent's, not on
    its own. The same session sent again updates its run, or changes nothing. Never
    fails OpenCode: returns 0 unless an export or the send failed, and says why on
    stderr."""
    from .importer import SendError, import_file

    url, key = os.environ.get("HIVEMIND_URL", ""), os.environ.get("HIVEMIND_API_KEY", "")
    if not url or not key or os.environ.get("HIVEMIND_CAPTURE", "true").lower() in (
        "false", "0", "no", "off"):  # fmt: skip
        return 0
    folder = Path(tempfile.mkdtemp(prefix="hivemind-opencode-"))
    try:
        exported = _opencode_export(opencode, session, folder)
        if exported is None:
            return 1
        if (exported.get("info") or {}).get("parentID"):
            return 0  # a subagent's session: its parent's turn end sends it
        children = _opencode_children(exported)
        seen = {session}
        while children:  # subagents of subagents, each exported once
            child = children.pop()
            if child in seen or len(seen) > 64:
                continue
            seen.add(child)
            more = _opencode_export(opencode, child, folder)
            children += _opencode_children(more) if more else []
        import_file(url, key, "opencode", folder / f"{session}.json", status_from_session=True)
    except (SendError, ValueError, OSError) as exc:
        print(f"hivemind: OpenCode session {session} not sent ({exc}).", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def cline_sessions_folder() -> Path:
    """Where the Cline CLI keeps its sessions: HIVEMIND_CLINE_SESSIONS if set, else
    `$CLINE_DATA_DIR/sessions`, else `~/.cline/data/sessions` (the CLI's default)."""
    if folder := os.environ.get("HIVEMIND_CLINE_SESSIONS"):
        return Path(folder).expanduser()
    if data := os.environ.get("CLINE_DATA_DIR"):
        return Path(data).expanduser() / "sessions"
    return Path.home() / ".cline" / "data" / "sessions"


def send_cline_hook() -> int:
    """`send-cline-session --hook`, what the hooks `install-cline-hooks` writes run
    (TaskComplete, TaskCancel): the hook payload on stdin names the session
    (`sessionContext.rootSessionId`); its sending is started in a process of its own
    (Cline saves the session just after the hook runs), and Cline is told to go on
    (`{"cancel": false}` on stdout). Never fails the hook."""
    print(json.dumps({"cancel": False}), flush=True)
    try:
        payload = json.loads(sys.stdin.read(MAX_PAYLOAD) or "{}")
    except ValueError:
        return 0
    context = payload.get("sessionContext") if isinstance(payload, dict) else None
    session = context.get("rootSessionId") if isinstance(context, dict) else None
    if not isinstance(session, str) or not session or "/" in session or session.startswith("."):
        return 0
    if os.environ.get("HIVEMIND_CAPTURE", "true").lower() in ("false", "0", "no", "off"):
        return 0
    _send_later(["send-cline-session", "--session", session])
    return 0


def _send_later(arguments: list[str]) -> None:
    """Run `python -m hivemind_client ARGUMENTS` in a process of its own, holding none
    of the caller's pipes, so the agent that ran the hook never waits on the send."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    paths = [package_parent, *filter(None, [os.environ.get("PYTHONPATH")])]
    with contextlib.suppress(OSError):
        subprocess.Popen(  # noqa: S603 (this interpreter, this package, our own arguments)
            [sys.executable, "-m", "hivemind_client", *arguments],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        )  # fmt: skip


def send_cline_session(session: str, settle: float = 0.5, wait: float = 15.0) -> int:
    """`send-cline-session --session ID`: the Cline CLI session's saved messages
    (`<sessions>/<id>/<id>.messages.json`, `cline_sessions_folder`), once Cline has
    stopped writing them (unchanged for `settle` seconds, at most `wait`), sent with
    `import --format cline`; its subagents' files beside it go into the calls that
    spawned them. With no outcome in its record, its status is read from the session
    by the server as a hook-built run's is. The same session sent again updates its
    run, or changes nothing. Returns 0 unless the file was not there or the send
    failed, and says why on stderr."""
    from .importer import SendError, import_file

    url, key = os.environ.get("HIVEMIND_URL", ""), os.environ.get("HIVEMIND_API_KEY", "")
    if not url or not key or os.environ.get("HIVEMIND_CAPTURE", "true").lower() in (
        "false", "0", "no", "off"):  # fmt: skip
        return 0
    path = cline_sessions_folder() / session / f"{session}.messages.json"
    deadline = time.monotonic() + wait
    seen: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        try:
            stat = path.stat()
        except OSError:
            time.sleep(settle)
            continue
        if seen == (stat.st_mtime, stat.st_size):
            break
        seen = (stat.st_mtime, stat.st_size)
        time.sleep(settle)
    if seen is None:
        print(f"hivemind: Cline session {session} not sent (no {path}).", file=sys.stderr)
        return 1
    try:
        import_file(url, key, "cline", path, status_from_session=True)
    except (SendError, ValueError, OSError) as exc:
        print(f"hivemind: Cline session {session} not sent ({exc}).", file=sys.stderr)
        return 1
    return 0


def aider_history_file(given: str = "") -> Path:
    """The Aider chat history a turn's end sends: the one named (the installed
    command names the project's), else AIDER_CHAT_HISTORY_FILE, else the
    `.aider.chat.history.md` of the git repository holding this folder (where Aider
    keeps it), else of this folder."""
    if given or (given := os.environ.get("AIDER_CHAT_HISTORY_FILE", "")):
        return Path(given).expanduser()
    here = Path.cwd()
    root = next((p for p in (here, *here.parents) if (p / ".git").exists()), here)
    return root / ".aider.chat.history.md"


def send_aider_hook(history: str = "") -> int:
    """`send-aider-session --hook`, Aider's notifications command as
    `install-aider-hooks` sets it (Aider runs it when it waits for the user after the
    model answered, and waits for it): the sending is started in a process of its
    own. Never fails."""
    if os.environ.get("HIVEMIND_CAPTURE", "true").lower() in ("false", "0", "no", "off"):
        return 0
    _send_later(["send-aider-session", "--file", str(aider_history_file(history).resolve())])
    return 0


def send_aider_session(history: str = "") -> int:
    """`send-aider-session`: the last session of an Aider chat history
    (`aider_history_file`), the one Aider is writing, sent with `import --format
    aider` as a live capture (with no outcome, its status is read from the session by
    the server as a hook-built run's is). The same session sent again as it grows
    updates its run. Returns 0 unless there was nothing to send or the send failed,
    and says why on stderr."""
    from .formats import AIDER_SESSION_START
    from .importer import SendError, import_file

    url, key = os.environ.get("HIVEMIND_URL", ""), os.environ.get("HIVEMIND_API_KEY", "")
    if not url or not key or os.environ.get("HIVEMIND_CAPTURE", "true").lower() in (
        "false", "0", "no", "off"):  # fmt: skip
        return 0
    path = aider_history_file(history)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"hivemind: Aider session not sent ({exc}).", file=sys.stderr)
        return 1
    starts = list(AIDER_SESSION_START.finditer(text))
    if not starts:
        print(f"hivemind: Aider session not sent (no session in {path}).", file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="hivemind-aider-"))
    try:
        last = folder / ".aider.chat.history.md"
        last.write_text(text[starts[-1].start() :], encoding="utf-8")
        import_file(url, key, "aider", last, status_from_session=True)
    except (SendError, ValueError, OSError) as exc:
        print(f"hivemind: Aider session not sent ({exc}).", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    refresh_aider_skills(path.parent)
    return 0


def aider_skills(project: Path) -> tuple[Path, Path]:
    """Where an Aider project's published skills are pulled (a folder a skill) and
    the one file Aider reads them from (`read` in .aider.conf.yml)."""
    return project / ".hivemind" / "aider-skills", project / ".hivemind" / "aider-skills.md"


def refresh_aider_skills(project: Path, timeout: float = 5.0) -> bool:
    """Pull the workspace's published skills and write the file Aider reads them from;
    Aider reads it again for each request, so a skill published now reaches the next
    one. No session is named: Aider's next session starts with what this turn's end
    pulled, so skills on trial, whose arm is a session's, are withheld. Returns
    whether it wrote; a failure is said on stderr and changes nothing."""
    from .skills import PullError, pull, write_one_file

    url, key = os.environ.get("HIVEMIND_URL", ""), os.environ.get("HIVEMIND_API_KEY", "")
    if not url or not key:
        return False
    folder, one_file = aider_skills(project)
    os.environ.pop("HIVEMIND_SESSION_ID", None)
    try:
        pulled = pull(url=url, key=key, directory=folder, timeout=timeout)
    except (PullError, OSError, ValueError) as exc:
        print(f"hivemind: skills not pulled for Aider ({exc}).", file=sys.stderr)
        return False
    if not pulled.changed and one_file.exists():
        return False
    return write_one_file(folder, one_file)


def _opencode_export(opencode: str, session: str, folder: Path) -> dict | None:
    """`opencode export <session>`, written to `<folder>/<session>.json` (the name a
    parent's export finds its subagent's by); its JSON, or None when it failed."""
    try:
        exported = subprocess.run(  # noqa: S603 (the OpenCode binary the plugin names)
            [opencode, "export", session], capture_output=True, timeout=120, check=True,
            stdin=subprocess.DEVNULL,
        ).stdout  # fmt: skip
        data = json.loads(exported)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"hivemind: opencode export {session} failed ({exc}); nothing sent.", file=sys.stderr)
        return None
    (folder / f"{session}.json").write_bytes(exported)
    return data if isinstance(data, dict) else None


def _opencode_children(exported: dict) -> list[str]:
    """The subagents' sessions an exported session's `task` calls started."""
    return [
        str(part["state"]["metadata"]["sessionId"])
        for message in exported.get("messages") or [] if isinstance(message, dict)
        for part in message.get("parts") or [] if isinstance(part, dict)
        and part.get("tool") == "task"
        and isinstance((part.get("state") or {}).get("metadata"), dict)
        and part["state"]["metadata"].get("sessionId")
    ]  # fmt: skip
