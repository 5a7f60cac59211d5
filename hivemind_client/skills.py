"""Pull published skills into a local folder (e.g. .claude/skills/).

One sub-folder per skill holding its SKILL.md. A state file in the folder
remembers the ETag and which sub-folders this client wrote, so that:
- an unchanged set is not downloaded again (If-None-Match → 304);
- skills retired since the last pull lose their folder;
- folders this client did not write are never touched.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import urllib.error
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
