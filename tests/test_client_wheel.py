"""The client installs like a tool: the server serves its wheel, `pip install` of
that URL in a fresh venv outside the repository gives a `hivemind` command."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from io import BytesIO

import pytest

from hivemind_client import __version__
from hivemind_client.wheel import build_wheel, wheel_name


def test_the_wheel_holds_the_package_and_a_hivemind_command():
    archive = zipfile.ZipFile(BytesIO(build_wheel()))
    names = set(archive.namelist())
    assert "hivemind_client/__main__.py" in names and "hivemind_client/formats.py" in names
    info = f"hivemind_client-{__version__}.dist-info"
    assert (
        "hivemind = hivemind_client.__main__:main"
        in archive.read(f"{info}/entry_points.txt").decode()
    )
    record = archive.read(f"{info}/RECORD").decode()
    assert all(name in record for name in names)
    assert build_wheel() == build_wheel()  # reproducible


def test_anyone_can_read_how_to_install_it_and_a_wrong_name_is_404(client):
    index = client.get("/client/")
    assert index.status_code == 200
    assert index.json()["wheel"].endswith(f"/client/{wheel_name()}")
    assert client.get(f"/client/{wheel_name()}").status_code == 200  # anonymous: public code
    assert client.get("/client/other-1.0-py3-none-any.whl").status_code == 404
    assert client.post("/client/").status_code == 405


@pytest.mark.django_db
def test_pip_install_from_the_server_gives_a_hivemind_command_that_runs_anywhere(
    live_server, tmp_path
):
    env_dir = tmp_path / "agent-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    url = f"{live_server.url}/client/{wheel_name()}"
    elsewhere = tmp_path / "some-project"
    elsewhere.mkdir()
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--disable-pip-version-check", url],
        cwd=elsewhere, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no PYTHONPATH to the repository
    help_ = subprocess.run([str(env_dir / "bin" / "hivemind"), "--help"], cwd=elsewhere,
                           capture_output=True, text=True, env=clean, timeout=60)  # fmt: skip
    assert help_.returncode == 0, help_.stderr
    assert "usage: hivemind" in help_.stdout and "install-claude-hooks" in help_.stdout
    status = subprocess.run([str(env_dir / "bin" / "hivemind"), "status"], cwd=elsewhere,
                            capture_output=True, text=True, env=clean, timeout=60)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert f"hivemind client {__version__}" in status.stdout
    assert "HIVEMIND_URL not set" in status.stdout
    assert sys.prefix not in status.stdout  # nothing of the server's environment
