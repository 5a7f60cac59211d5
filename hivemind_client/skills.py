"""Pull published skills into a local folder (e.g. .claude/skills/).

One sub-folder per skill holding its SKILL.md. A state file in the folder
remembers the ETag and which sub-folders this client wrote, so that:
- an unchanged set is not downloaded again (If-None-Match → 304);
- skills retired since the last pull lose their folder;
- folders this client did not write are never touched.

`pull_index` reads the Agent Skills discovery index instead
(/.well-known/agent-skills/index.json): it downloads only the skills whose
digest changed, and refuses a file whose bytes do not match its digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = ".hivemind-pull.json"
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass
class PullResult:
    changed: bool
    written: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # names whose folder we do not own
    served: int | None = None  # skills the server serves this session; None: not asked (304)


class PullError(Exception):
    pass


def _state(directory: Path) -> dict:
    try:
        return json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {"etag": "", "folders": []}


def _request(url: str, key: str, etag: str, timeout: float) -> urllib.request.Request:
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "hivemind-client/0.1"}
    if etag:
        headers["If-None-Match"] = etag
    for env, header in (
        ("HIVEMIND_AGENT", "X-Hivemind-Agent"),
        ("HIVEMIND_SESSION_ID", "X-Hivemind-Session"),
    ):
        if os.environ.get(env):
            headers[header] = os.environ[env]
    return urllib.request.Request(url.rstrip("/") + "/api/v1/skills.zip", headers=headers)


def pull(*, url: str, key: str, directory: Path, timeout: float = 10.0) -> PullResult:
    directory.mkdir(parents=True, exist_ok=True)
    state = _state(directory)
    try:
        with urllib.request.urlopen(
            _request(url, key, state.get("etag", ""), timeout), timeout=timeout
        ) as response:
            payload, etag = response.read(), response.headers.get("ETag", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return PullResult(changed=False)
        detail = exc.read().decode(errors="replace")[:300]
        raise PullError(f"server answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PullError(f"could not reach {url}: {exc}") from None
    return _apply(directory, state, payload, etag)


def _apply(directory: Path, state: dict, payload: bytes, etag: str) -> PullResult:
    owned = set(state.get("folders", []))
    result = PullResult(changed=True)
    files = {}
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        for member in archive.namelist():
            name, _, rest = member.partition("/")
            if rest == "SKILL.md" and NAME_RE.match(name):
                files[name] = archive.read(member)
    result.served = len(files)
    for name, content in sorted(files.items()):
        target = directory / name
        if target.exists() and name not in owned:
            result.skipped.append(name)  # someone else's folder: leave it alone
            continue
        target.mkdir(exist_ok=True)
        (target / "SKILL.md").write_bytes(content)
        result.written.append(name)
    for name in sorted(owned - set(files)):
        target = directory / name
        if target.is_dir() and NAME_RE.match(name):
            shutil.rmtree(target)
            result.removed.append(name)
    (directory / STATE_FILE).write_text(json.dumps({"etag": etag, "folders": result.written}))
    return result


def _get(url: str, key: str, timeout: float) -> bytes:
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "hivemind-client/0.1"}
    for env, header in (("HIVEMIND_AGENT", "X-Hivemind-Agent"),
                        ("HIVEMIND_SESSION_ID", "X-Hivemind-Session")):  # fmt: skip
        if os.environ.get(env):
            headers[header] = os.environ[env]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout) as response:  # fmt: skip
            return response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise PullError(f"{url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PullError(f"could not reach {url}: {exc}") from None


def pull_index(*, url: str, key: str, directory: Path, timeout: float = 10.0) -> PullResult:
    """Pull through the discovery index: only changed digests are downloaded."""
    directory.mkdir(parents=True, exist_ok=True)
    state = _state(directory)
    index_url = url.rstrip("/") + "/.well-known/agent-skills/index.json"
    try:
        entries = json.loads(_get(index_url, key, timeout))["skills"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PullError(f"{index_url} is not a skills discovery index: {exc}") from None
    known = state.get("digests", {})
    files: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        if entry.get("type") != "skill-md" or not NAME_RE.match(name):
            continue
        digests[name] = str(entry.get("digest", ""))
        current = directory / name / "SKILL.md"
        if known.get(name) == digests[name] and current.exists():
            continue  # unchanged since the last pull
        content = _get(urllib.parse.urljoin(index_url, str(entry["url"])), key, timeout)
        if "sha256:" + hashlib.sha256(content).hexdigest() != digests[name]:
            raise PullError(f"{name}: the downloaded SKILL.md does not match its digest; "
                            "nothing was written.")  # fmt: skip
        files[name] = content
    owned = set(state.get("folders", []))
    result = PullResult(changed=bool(files) or bool(owned - set(digests)), served=len(digests))
    for name, content in sorted(files.items()):
        target = directory / name
        if target.exists() and name not in owned:
            result.skipped.append(name)
            continue
        target.mkdir(exist_ok=True)
        (target / "SKILL.md").write_bytes(content)
        result.written.append(name)
    for name in sorted(owned - set(digests)):
        target = directory / name
        if target.is_dir() and NAME_RE.match(name):
            shutil.rmtree(target)
            result.removed.append(name)
    kept = sorted((owned & set(digests)) | set(result.written))
    (directory / STATE_FILE).write_text(json.dumps(
        {"etag": "", "folders": kept, "digests": {n: digests[n] for n in kept}}))  # fmt: skip
    return result


ONE_FILE_HEADER = """\
# Skills published in Hivemind

Written by `hivemind_client` from the skills your team reviewed and published; the
next pull rewrites this file, so do not edit it. Follow a skill when its description
fits the task at hand.
"""


def write_one_file(directory: Path, target: Path) -> bool:
    """The skills a pull wrote into `directory` (a folder a skill, its SKILL.md),
    joined into one Markdown file at `target`, for an agent that reads a file of
    conventions rather than a skills folder (Aider's `read`). Returns whether the
    file changed."""
    owned = sorted(n for n in _state(directory).get("folders", []) if NAME_RE.match(n))
    parts = [ONE_FILE_HEADER]
    for name in owned:
        with contextlib.suppress(OSError):
            parts.append(f"\n## Skill: {name}\n\n" + (directory / name / "SKILL.md").read_text(
                encoding="utf-8", errors="replace").strip() + "\n")  # fmt: skip
    if len(parts) == 1:
        parts.append("\nNo skill is published yet.\n")
    text = "".join(parts)
    if target.exists() and target.read_text(encoding="utf-8", errors="replace") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True
