"""GET /api/v1/skills latency and throughput under gunicorn, 200 vs 304.

    python bench/skills_api.py --quick     # 300 requests each
    python bench/skills_api.py             # 3,000 requests each

Creates a throw-away workspace with 50 published skills, starts gunicorn
(2 workers) on loopback, and measures from --threads keep-alive clients (default
2, one per worker; 4 shows queueing):
full responses (200) and conditional ones (If-None-Match → 304). Baseline in the
same run: GET /healthz (one trivial query), the floor of this server stack.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import start_server  # noqa: E402  (same gunicorn start-up as bench/ingest.py)

BODY = "## When this applies\nx\n\n## Do\ny\n\n## Don't\nz\n\n## How to check\nw"


def workspace_with_skills(count: int):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from skills.models import Skill, SkillVersion
    from skills.publication import published_set_refresh
    from workspaces.models import Scope
    from workspaces.services import api_key_create, workspace_create

    user, _ = get_user_model().objects.get_or_create(username="bench")
    suffix = uuid.uuid4().hex[:8]
    ws = workspace_create(name=f"Bench {suffix}", slug=f"bench-{suffix}", owner=user)
    for i in range(count):
        skill = Skill.objects.create(workspace=ws, name=f"bench-skill-{i}", status="published")
        version = SkillVersion.objects.create(
            skill=skill, number=1, description=f"Skill number {i} for the benchmark.",
            body=BODY, authorship="user",
        )  # fmt: skip
        skill.published_version = version
        skill.save()
    published_set_refresh(workspace_id=ws.pk)  # what the review service does on approval
    key = api_key_create(workspace=ws, name="bench", scopes=[Scope.SKILLS_READ], actor=None).secret
    return ws, key


def measure(
    url: str, path: str, headers: dict, total: int, threads: int = 4
) -> tuple[list[float], float, int]:
    host, port = url.split("//")[1].split(":")
    per_thread = total // threads
    statuses: set[int] = set()

    def worker(_: int) -> list[float]:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        times = []
        for _ in range(per_thread):
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            times.append((time.perf_counter() - started) * 1000)
            statuses.add(response.status)
        return times

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = [t for chunk in pool.map(worker, range(threads)) for t in chunk]
    elapsed = time.perf_counter() - started
    assert len(statuses) == 1, statuses
    return times, len(times) / elapsed, statuses.pop()


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="concurrent keep-alive clients")
    args = parser.parse_args()
    import django

    django.setup()
    total = 300 if args.quick else 3000
    import tempfile

    from hivemind_web import embedded_broker

    workspace, key = workspace_with_skills(50)
    # The server needs a broker to start (the skills API itself enqueues nothing).
    socket_path = Path(tempfile.mkdtemp(prefix="hm-bench-", dir="/tmp")) / "redis.sock"
    broker = embedded_broker.start(socket_path)
    proc, url = start_server(f"redis+socket://{socket_path}")
    try:
        auth = {"Authorization": f"Bearer {key}"}
        measure(url, "/api/v1/skills", auth, 40)  # warm-up
        conn = http.client.HTTPConnection(*url.split("//")[1].split(":"))
        conn.request("GET", "/api/v1/skills", headers=auth)
        response = conn.getresponse()
        response.read()
        etag = response.headers["ETag"]
        results = {
            "200": measure(url, "/api/v1/skills", auth, total, args.threads),
            "304": measure(
                url, "/api/v1/skills", {**auth, "If-None-Match": etag}, total, args.threads
            ),  # fmt: skip
            "healthz": measure(url, "/healthz", {}, total, args.threads),
        }
    finally:
        for process in (proc, broker):
            process.terminate()
            process.wait(timeout=30)
        workspace.delete()
    base = results["healthz"][0]
    for name in ("200", "304"):
        times, rps, status = results[name]
        assert str(status) == name, status
        print(
            f"RESULT skills_{name}_p95_ms={pct(times, 95):.2f} ms baseline={pct(base, 95):.2f} "
            f"ratio={pct(times, 95) / pct(base, 95):.2f} p50_ms={pct(times, 50):.2f} "
            f"rps={rps:.0f} baseline_rps={results['healthz'][1]:.0f} skills=50 requests={len(times)} "
            f"threads={args.threads}"
        )


if __name__ == "__main__":
    main()
