"""hivemind (or python -m hivemind_client) {skills pull | capture | replay | import |
doctor | status | install-claude-hooks | install-codex-hooks | install-cursor-hooks |
install-gemini-hooks | install-openhands-hooks | install-opencode-plugin |
install-cline-hooks | install-qwen-hooks | install-aider-hooks | send-opencode-session |
send-cline-session | send-aider-session}"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .capture import SOURCES
from .skills import PullError, pull, pull_index

ENV_HELP = ("The hooks read two variables from the environment the agent runs in:\n"
            "  export HIVEMIND_URL=http://your-hivemind:8000\n"
            "  export HIVEMIND_API_KEY=hm_...   # a key with the ingest (and skills:read) scope\n"
            "The key is never written into the hooks file. Optional: HIVEMIND_AGENT (the "
            "agent's name) and HIVEMIND_SESSION_ID (the session skills are pulled for, so "
            "skills on trial follow its arm; the SessionStart hook passes its own session id). "
            "Check with: python -m hivemind_client doctor")  # fmt: skip


def hook_session(stream: object) -> str:
    """The session_id of a hook payload on stdin ("" when there is none to read)."""
    import json

    try:
        if getattr(stream, "isatty", lambda: True)():
            return ""
        payload = json.loads(stream.read(1_000_000) or "{}")  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return ""
    session = payload.get("session_id") if isinstance(payload, dict) else None
    return str(session)[:200] if session else ""


def status_main(project: Path) -> int:
    """Where events go, with which key and agent, what waits in the spool, and
    which of the project's agent hook files call Hivemind."""
    from . import __version__
    from .capture import spool_path

    key = os.environ.get("HIVEMIND_API_KEY", "")
    spool = spool_path()
    waiting = sum(1 for _ in spool.open()) if spool.exists() else 0
    print(f"hivemind client {__version__}")
    print(f"  server   {os.environ.get('HIVEMIND_URL') or '(HIVEMIND_URL not set)'}")
    print(f"  key      {key[:15] + '…' if key else '(HIVEMIND_API_KEY not set)'}")
    print(
        f"  agent    {os.environ.get('HIVEMIND_AGENT') or '(from each event; HIVEMIND_AGENT not set)'}"
    )
    print(f"  spool    {waiting} event(s) waiting in {spool}")
    for name in (
        ".claude/settings.json",
        ".codex/hooks.json",
        ".cursor/hooks.json",
        ".gemini/settings.json",
        ".openhands/hooks.json",
        ".qwen/settings.json",
        ".opencode/plugins/hivemind.js",
        ".clinerules/hooks/TaskComplete",
        ".aider.conf.yml",
    ):
        path = project / name
        found = path.exists() and "hivemind_client" in path.read_text(errors="replace")
        print(f"  hooks    {name}: {'Hivemind installed' if found else 'no Hivemind hook'}")
    return 0


URL_HELP = "the Hivemind server, e.g. http://127.0.0.1:8000 (default: HIVEMIND_URL)"
KEY_HELP = "an API key of the workspace (default: HIVEMIND_API_KEY)"


def main(argv: list | None = None) -> int:
    # `hivemind` once installed (hivemind_client/wheel.py), else `python -m hivemind_client`.
    prog = "hivemind" if Path(sys.argv[0]).name == "hivemind" else "python -m hivemind_client"
    parser = argparse.ArgumentParser(prog=prog)
    commands = parser.add_subparsers(dest="group", required=True)
    skills = commands.add_parser(
        "skills", help="keep a folder of the published skills in step (skills pull)"
    ).add_subparsers(dest="command", required=True)
    pull_cmd = skills.add_parser("pull", help="write published skills into a folder")
    pull_cmd.add_argument(
        "--dir", default=".claude/skills", type=Path,
        help="the folder to keep a skill folder each in (default: .claude/skills)",
    )  # fmt: skip
    pull_cmd.add_argument("--url", default=os.environ.get("HIVEMIND_URL", ""), help=URL_HELP)
    pull_cmd.add_argument("--key", default=os.environ.get("HIVEMIND_API_KEY", ""), help=KEY_HELP)
    pull_cmd.add_argument(
        "--index",
        action="store_true",
        help="use /.well-known/agent-skills/index.json (only changed digests)",
    )
    pull_cmd.add_argument("--budget", type=float, default=10.0, help="seconds to give up after")
    pull_cmd.add_argument(
        "--hook", action="store_true",
        help="run as an agent hook: always exit 0, errors on stderr; the hook payload on "
             "stdin (Claude Code's SessionStart) gives the session id",
    )  # fmt: skip
    pull_cmd.add_argument(
        "--session", default="",
        help="the session the skills are for (skills on trial follow its arm); default: the "
             "hook payload's session_id with --hook, else HIVEMIND_SESSION_ID",
    )  # fmt: skip
    capture_cmd = commands.add_parser(
        "capture", help="post an agent hook payload from stdin (always exits 0)"
    )
    capture_cmd.add_argument("--source", default="claude-code", choices=SOURCES)
    merge = commands.add_parser(
        "merge-transcript",
        help="from a hook payload on stdin at a turn's end, import the session's transcript "
        "in a process of its own (always exits 0)",
    )
    merge.add_argument("--source", default="claude-code", choices=["claude-code", "codex"])
    merge.add_argument("--url", default="", help="the server (default: HIVEMIND_URL)")
    replay = commands.add_parser(
        "replay",
        help="send a recorded session in the order it happened: a hook log (JSON "
        "lines or a JSON array) or a folder of them (one file per event type, chat.json beside)",
    )
    replay.add_argument("path", type=Path)
    replay.add_argument("--source", default="claude-code", choices=SOURCES)
    commands.add_parser("doctor", help="check URL, key, scopes, clock and spool; say what to fix")
    status = commands.add_parser(
        "status", help="what this machine sends, where, and which hooks a project has"
    )
    status.add_argument("--project", default=".", type=Path)
    importer = commands.add_parser(
        "import", help="send agent log files (tau2-bench, InterCode, SWE-agent, transcripts...)"
    )
    importer.add_argument(
        "paths", nargs="+", type=Path,
        help="files, or folders searched for the files the format names",
    )  # fmt: skip
    importer.add_argument(
        "--format", required=True, dest="fmt",
        help="the files' format (tau2-bench, swe-agent, claude-transcript, otlp-json, ...; "
             "the README's table lists them all, and an unknown one is answered with the list)",
    )  # fmt: skip
    importer.add_argument(
        "--results", type=Path, default=None,
        help="swe-agent and openhands: a SWE-bench report (a summary with resolved_ids, or a "
             "report keyed by instance id) with the runs' outcomes, when it is not beside them",
    )  # fmt: skip
    importer.add_argument("--agent", default="", help="name the agent of every run sent")
    importer.add_argument(
        "--status", choices=["succeeded", "failed"], default="",
        help="the outcome of the runs whose files give none, when you know it from elsewhere "
             "(never over one a file gives)",
    )  # fmt: skip
    importer.add_argument("--url", default=os.environ.get("HIVEMIND_URL", ""), help=URL_HELP)
    importer.add_argument("--key", default=os.environ.get("HIVEMIND_API_KEY", ""), help=KEY_HELP)
    install = commands.add_parser(
        "install-claude-hooks", help="add the capture hooks to .claude/settings.json"
    )
    install.add_argument("--project", default=".", type=Path)
    install.add_argument(
        "--hook-type",
        default="auto",
        choices=["auto", "http", "command"],
        help="auto: http hooks when this Claude Code has them and --url is known",
    )
    install.add_argument("--url", default=os.environ.get("HIVEMIND_URL", ""))
    for agent in ("codex", "cursor", "gemini", "openhands", "qwen"):
        other = commands.add_parser(
            f"install-{agent}-hooks", help=f"add the capture hook to the project's {agent} hooks"
        )
        other.add_argument("--project", default=".", type=Path)
    cline_hooks = commands.add_parser(
        "install-cline-hooks",
        help="write the Cline CLI hooks that send each session when a task ends",
    )
    cline_hooks.add_argument("--project", default=".", type=Path)
    aider_hooks = commands.add_parser(
        "install-aider-hooks",
        help="set Aider's notifications command, in .aider.conf.yml, to send each session "
        "at its turn's end",
    )
    aider_hooks.add_argument("--project", default=".", type=Path)
    aider = commands.add_parser(
        "send-aider-session",
        help="send the session an Aider chat history ends with (what install-aider-hooks "
        "sets Aider to run)",
    )
    aider.add_argument(
        "--file", default="", help="the chat history (default: the git repository's "
        ".aider.chat.history.md)",
    )  # fmt: skip
    aider.add_argument(
        "--hook", action="store_true", help="send in the background and return at once"
    )
    plugin = commands.add_parser(
        "install-opencode-plugin",
        help="write the OpenCode plugin that sends each session at its turn's end",
    )
    plugin.add_argument("--project", default=".", type=Path)
    opencode = commands.add_parser(
        "send-opencode-session",
        help="export an OpenCode session and send it (what the OpenCode plugin runs)",
    )
    opencode.add_argument("--opencode", default="opencode", help="the OpenCode binary")
    opencode.add_argument("--session", required=True)
    cline = commands.add_parser(
        "send-cline-session",
        help="send a Cline CLI session (what the hooks install-cline-hooks writes run)",
    )
    cline_from = cline.add_mutually_exclusive_group(required=True)
    cline_from.add_argument("--session", help="the session's id")
    cline_from.add_argument(
        "--hook", action="store_true", help="read the hook payload on stdin; send in the background"
    )
    args = parser.parse_args(argv)
    if args.group == "capture":
        from .capture import main as capture_main

        return capture_main(args.source)
    if args.group == "merge-transcript":
        from .capture import merge_transcript_main

        return merge_transcript_main(args.source, args.url)
    if args.group == "send-opencode-session":
        from .capture import send_opencode_session

        return send_opencode_session(args.opencode, args.session)
    if args.group == "send-cline-session":
        from .capture import send_cline_hook, send_cline_session

        return send_cline_hook() if args.hook else send_cline_session(args.session)
    if args.group == "send-aider-session":
        from .capture import send_aider_hook, send_aider_session

        return send_aider_hook(args.file) if args.hook else send_aider_session(args.file)
    if args.group == "doctor":
        from .doctor import main as doctor_main

        return doctor_main()
    if args.group == "status":
        return status_main(args.project)
    if args.group == "replay":
        from .capture import replay as replay_file

        return replay_file(args.path, args.source)
    if args.group == "import":
        from .formats import FORMATS
        from .importer import main as import_main

        if args.fmt not in FORMATS:
            print(f"Unknown format {args.fmt!r}; one of {', '.join(FORMATS)}.", file=sys.stderr)
            return 2
        if not args.url or not args.key:
            print(
                "Set HIVEMIND_URL and HIVEMIND_API_KEY (or pass --url and --key).", file=sys.stderr
            )
            return 2
        return import_main(
            args.url, args.key, args.fmt, args.paths, agent=args.agent, status=args.status,
            results=args.results,
        )  # fmt: skip
    if args.group.startswith("install-"):
        from . import install

        # Installers that leave a file of the project's own alone, saying why.
        refusing = {
            "install-cline-hooks": (install.install_cline_hooks, ".clinerules/hooks/"),
            "install-aider-hooks": (install.install_aider_hooks, ".aider.conf.yml"),
        }

        if args.group == "install-claude-hooks":
            try:
                added, kind = install.install_claude_hooks(
                    args.project, hook_type=args.hook_type, url=args.url
                )
            except ValueError as exc:
                print(f"hivemind: {exc}", file=sys.stderr)
                return 2
            where = f"{kind} hooks in .claude/settings.json"
        elif args.group == "install-codex-hooks":
            added, where = install.install_codex_hooks(args.project), ".codex/hooks.json"
        elif args.group == "install-gemini-hooks":
            added, where = install.install_gemini_hooks(args.project), ".gemini/settings.json"
        elif args.group == "install-openhands-hooks":
            added, where = install.install_openhands_hooks(args.project), ".openhands/hooks.json"
        elif args.group == "install-qwen-hooks":
            added, where = install.install_qwen_hooks(args.project), ".qwen/settings.json"
        elif args.group == "install-opencode-plugin":
            added = install.install_opencode_plugin(args.project)
            where = ".opencode/plugins/hivemind.js"
        elif args.group in refusing:
            installer, where = refusing[args.group]
            try:
                added = installer(args.project)
            except ValueError as exc:
                print(f"hivemind: {exc}", file=sys.stderr)
                return 2
        else:
            added, where = install.install_cursor_hooks(args.project), ".cursor/hooks.json"
        print(f"Added Hivemind to {where} for: {', '.join(added) or 'nothing (already there)'}.")
        print(ENV_HELP)
        if args.group == "install-codex-hooks":
            print(install.CODEX_TRUST_HELP)
        if args.group == "install-gemini-hooks":
            print(install.GEMINI_TRUST_HELP)
        if args.group == "install-cline-hooks":
            print(install.CLINE_HUB_HELP)
        if args.group == "install-qwen-hooks":
            print(install.QWEN_TRUST_HELP)
        if args.group == "install-aider-hooks":
            print(install.AIDER_HELP)
        return 0
    failed = 0 if args.hook else 1
    session = args.session or (hook_session(sys.stdin) if args.hook else "")
    if session:
        os.environ["HIVEMIND_SESSION_ID"] = session  # sent as X-Hivemind-Session
    if not args.url or not args.key:
        print("Set HIVEMIND_URL and HIVEMIND_API_KEY (or pass --url and --key).", file=sys.stderr)
        return failed and 2
    try:
        fetch = pull_index if args.index else pull
        result = fetch(url=args.url, key=args.key, directory=args.dir, timeout=args.budget)
    except PullError as exc:
        print(f"hivemind: {exc}", file=sys.stderr)
        return failed
    if result.served == 0 and not args.hook:  # a hook's output goes to the agent: kept short
        if result.removed:
            print(f"Removed {len(result.removed)} skill(s) no longer published: "
                  f"{', '.join(result.removed)}.")  # fmt: skip
        print(
            "No skill is published for this session yet: a lead approves skills on the "
            "Skills page (one on trial is served only to the sessions of its arm)."
        )
        return 0
    if not result.changed:
        print("Skills are up to date.")
        return 0
    print(f"Wrote {len(result.written)} skill(s), removed {len(result.removed)}.")
    for name in result.skipped:
        print(
            f"Skipped {name}: the folder exists and was not written by hivemind.", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
