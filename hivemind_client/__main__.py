"""python -m hivemind_client {skills pull | capture | import | install-claude-hooks}"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .skills import PullError, pull


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hivemind_client")
    commands = parser.add_subparsers(dest="group", required=True)
    skills = commands.add_parser("skills").add_subparsers(dest="command", required=True)
    pull_cmd = skills.add_parser("pull", help="write published skills into a folder")
    pull_cmd.add_argument("--dir", default=".claude/skills", type=Path)
    pull_cmd.add_argument("--url", default=os.environ.get("HIVEMIND_URL", ""))
    pull_cmd.add_argument("--key", default=os.environ.get("HIVEMIND_API_KEY", ""))
    commands.add_parser(
        "capture", help="post a Claude Code hook payload from stdin (always exits 0)"
    )
    importer = commands.add_parser(
        "import", help="send agent log files (tau2-bench, InterCode, SWE-agent, transcripts...)"
    )
    importer.add_argument("paths", nargs="+", type=Path)
    importer.add_argument("--format", required=True, dest="fmt")
    importer.add_argument("--url", default=os.environ.get("HIVEMIND_URL", ""))
    importer.add_argument("--key", default=os.environ.get("HIVEMIND_API_KEY", ""))
    install = commands.add_parser(
        "install-claude-hooks", help="add the capture hook to .claude/settings.json"
    )
    install.add_argument("--project", default=".", type=Path)
    args = parser.parse_args(argv)
    if args.group == "capture":
        from .capture import main as capture_main

        return capture_main()
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
        return import_main(args.url, args.key, args.fmt, args.paths)
    if args.group == "install-claude-hooks":
        from .capture import install_hooks

        added = install_hooks(args.project)
        print(
            f"Added the Hivemind capture hook for: {', '.join(added) or 'nothing (already there)'}."
        )
        print("The hook reads two variables from the environment Claude Code runs in:\n"
              "  export HIVEMIND_URL=http://your-hivemind:8000\n"
              "  export HIVEMIND_API_KEY=hm_...   # a key with the ingest scope\n"
              "The key is never written into .claude/settings.json.")  # fmt: skip
        return 0
    if not args.url or not args.key:
        print("Set HIVEMIND_URL and HIVEMIND_API_KEY (or pass --url and --key).", file=sys.stderr)
        return 2
    try:
        result = pull(url=args.url, key=args.key, directory=args.dir)
    except PullError as exc:
        print(f"hivemind: {exc}", file=sys.stderr)
        return 1
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
