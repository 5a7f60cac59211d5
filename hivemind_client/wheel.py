"""The client as a wheel, built from this package's own files.

The server serves it (`GET /client/`), so a machine that cannot reach this
repository or a package index installs the client from the Hivemind it reports
to: `pip install http://HOST/client/hivemind_client-<version>-py3-none-any.whl`.
The `hivemind` command it installs works from any folder.

Built with the standard library only (a wheel is a zip archive with a
`.dist-info` folder, PEP 427): nothing is downloaded or compiled, and the same
files give the same bytes (fixed timestamps, sorted entries).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path

from . import __version__

NAME = "hivemind_client"
TAG = "py3-none-any"
SUMMARY = "Hivemind client: capture agent traces, pull reviewed skills, import agent logs."
# 1980-01-01, the earliest time a zip entry can carry: builds are reproducible.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def wheel_name() -> str:
    return f"{NAME}-{__version__}-{TAG}.whl"


@lru_cache(maxsize=1)
def build_wheel() -> bytes:
    """The wheel's bytes: the package's modules and its dist-info."""
    package = Path(__file__).resolve().parent
    files: list[tuple[str, bytes]] = [
        (f"{NAME}/{path.name}", path.read_bytes()) for path in sorted(package.glob("*.py"))
    ]
    info = f"{NAME}-{__version__}.dist-info"
    files += [
        (f"{info}/METADATA", _metadata().encode()),
        (
            f"{info}/WHEEL",
            (
                f"Wheel-Version: 1.0\nGenerator: {NAME}.wheel\nRoot-Is-Purelib: true\nTag: {TAG}\n"
            ).encode(),
        ),  # fmt: skip
        (
            f"{info}/entry_points.txt",
            f"[console_scripts]\nhivemind = {NAME}.__main__:main\n".encode(),
        ),  # fmt: skip
    ]
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in files)
    files.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return buffer.getvalue()


def _metadata() -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME.replace('_', '-')}\n"
        f"Version: {__version__}\n"
        f"Summary: {SUMMARY}\n"
        "Requires-Python: >=3.10\n"
    )


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
