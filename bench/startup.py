"""Start-up, first requests and memory of the default run (`make run`).

    python bench/startup.py            # a fresh data directory, then a restart on it
    python bench/startup.py --quick    # the fresh start only

Runs `python -m hivemind_web.run` (what `make run` runs once the venv is
installed) on a free port with `HIVEMIND_DATA_DIR` in a temporary directory:
embedded PostgreSQL, embedded broker, migrations, the demo seed, the worker
(with beat) and gunicorn. Measured:
- seconds from the command to the first 200 from `/healthz`, and to the demo
  seed's "Demo workspace ready" (it runs beside the start);
- the first request each page gets after that (signed in as the demo admin),
  against the same page's median over 5 later requests (the same-run baseline);
- memory, 60 s after the first requests (the demo's skills drafted by then): PSS (each shared page divided among the
  processes sharing it) and RSS summed over the supervisor's process tree, and
  the embedded PostgreSQL's processes apart. The RSS sum is the baseline: what
  the processes would hold if none shared a page.
Then SIGINT, and the run must stop within 60 s.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "/w/demo/",
    "/w/demo/traces/",
    "/w/demo/failure-modes/",
    "/w/demo/skills/",
    "/w/demo/metrics/",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(root: int) -> list[int]:
    out = subprocess.check_output(["ps", "-e", "-o", "pid=,ppid="], text=True)
    kids: dict[int, list[int]] = defaultdict(list)
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        kids[ppid].append(pid)
    todo, seen = [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += kids[pid]
    return seen


def memory(pids: list[int]) -> tuple[int, int, int]:
    """(processes, PSS MiB, RSS MiB) summed."""
    pss = rss = n = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) for line in lines[1:]}
        pss, rss, n = pss + fields.get("Pss", 0), rss + fields.get("Rss", 0), n + 1
    return n, pss // 1024, rss // 1024


def postgres_pids(data_dir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "cwd").resolve() == (data_dir / "pg").resolve():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_up(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def sign_in(base: str, log: Path) -> urllib.request.OpenerDirector:
    text = log.read_text()
    password = re.search(r"Password\s+(\S+)", text)
    if not password:
        raise SystemExit("the run did not print the demo admin's password")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(base + "/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode(
        {"username": "admin", "password": password.group(1), "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(
        base + "/login/", data=data, headers={"Referer": base + "/login/"}
    )
    opener.open(request).read()
    return opener


def timed(opener: urllib.request.OpenerDirector, url: str) -> float:
    started = time.perf_counter()
    with opener.open(url) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"{url}: {response.status}")
    return (time.perf_counter() - started) * 1000


def one_start(data_dir: Path, label: str) -> list[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = data_dir.parent / f"run-{label}.log"
    env = {**os.environ, "HIVEMIND_DATA_DIR": str(data_dir), "PORT": str(port)}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    started = time.monotonic()
    with log.open("w") as out:
        run = subprocess.Popen([sys.executable, "-m", "hivemind_web.run", f"--port={port}"],
                               cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        if not wait_up(base, started + 300):
            raise SystemExit(f"not up in 300 s; see {log}")
        up = time.monotonic() - started
        while "Demo workspace ready" not in log.read_text():  # seeded beside the start
            if time.monotonic() > started + 300:
                raise SystemExit(f"the demo was not seeded in 300 s; see {log}")
            time.sleep(0.2)
        demo = time.monotonic() - started
        opener = sign_in(base, log)
        firsts, laters = [], []
        for path in PAGES:
            firsts.append(timed(opener, base + path))
            laters.append(statistics.median(timed(opener, base + path) for _ in range(5)))
        time.sleep(60)  # the worker drafts the demo's skills meanwhile
        n, pss, rss = memory(tree(run.pid))
        pg_n, pg_pss, _ = memory(postgres_pids(data_dir))
        print(f"\n== {label}: /healthz after {up:.1f} s, the demo seeded after {demo:.1f} s")
        for path, first, later in zip(PAGES, firsts, laters, strict=True):
            print(
                f"   {path:22} first request {first:6.1f} ms   later (median of 5) {later:6.1f} ms"
            )
        print(f"   memory: {n} processes PSS {pss} MiB (RSS summed {rss} MiB); "
              f"embedded PostgreSQL {pg_n} processes PSS {pg_pss} MiB")  # fmt: skip
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(60)
            stopped = "yes"
        except subprocess.TimeoutExpired:
            run.kill()
            stopped = "no"
    return [
        f"RESULT startup={label} healthz_s={up:.1f} target<=25 demo_seeded_s={demo:.1f} "
        f"first_request_max_ms={max(firsts):.1f} target<=100 baseline_later_max_ms={max(laters):.1f} "
        f"pss_mib={pss + pg_pss} target<=1229 baseline_rss_sum_mib={rss} processes={n + pg_n} "
        f"stopped_on_sigint={stopped}"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        results += one_start(data_dir, "fresh")
        if not args.quick:
            results += one_start(data_dir, "restart")
    print()
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
