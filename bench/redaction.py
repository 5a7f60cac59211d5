"""Redaction throughput on ordinary and adversarial 1 MB fields.

    python bench/redaction.py            # 1 MB inputs
    python bench/redaction.py --quick    # 100 KB inputs

Inputs: ordinary (tool outputs and log lines with some PII in them), and
adversarial texts that made the old engine quadratic ("1.1.1.1…", "a@a@…",
long token runs) or that are dense with PII. Baseline, in the same run: the
engine before it moved to RE2 (workspaces/redaction.py at commit cdddffd, read
with `git show`), on the same inputs, stopped after 60 s per input.

Printed: MB/s per input for both; the RESULT line has each engine's slowest
adversarial input, in seconds per MB (a baseline that ran past the time limit
is counted at the limit, so its figure is a lower bound).
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BASELINE_COMMIT = "cdddffd"
# The engine before JSON keys that redact alike were numbered in linear time.
KEYS_BASELINE_COMMIT = "3bacb7e"
TIMEOUT = 60.0


def inputs(size: int) -> dict[str, str]:
    line = ('{"tool": "crm.search", "status": 200, "customer": "jane.doe@example.com", '
            '"ip": "203.0.113.7", "note": "called back, order 88123 shipped", "path": '
            '"/srv/app/src/orders/views.py", "took_ms": 184}\n')  # fmt: skip
    log = "2026-11-22T10:00:00Z INFO request id=7f3a2c latency=12ms user=42 ok\n"

    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]

    return {
        "ordinary tool output": fill(line),
        "ordinary log lines": fill(log),
        "adversarial 1.1.1.1…": fill("1."),
        "adversarial a@a@…": fill("a@"),
        "adversarial token run": fill("a"),
        "adversarial 1:1:1:…": fill("1:"),
        "adversarial dashes": fill("-"),
        "dense: IP addresses": fill(" 203.0.113.7"),
        "dense: email addresses": fill(" x@y.io"),
        "dense: card-like groups": fill("4111 "),
        # Values glued to identifiers and inside paths: the alternation rejects a
        # span, so every kind scans the text on its own (the slower path).
        "glued: ids and paths": fill(" customer_card_4111111111111111 /srv/up/4111111111111111/a"),
    }


def baseline_module(commit: str = BASELINE_COMMIT):  # type: ignore[no-untyped-def]
    source = subprocess.run(
        ["git", "show", f"{commit}:workspaces/redaction.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path("/tmp/hivemind_bench_redaction_baseline.py")
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("redaction_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["redaction_baseline"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _time_baseline(text: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    redactor = baseline_module().build_redactor(enabled={})
    started = time.perf_counter()
    redactor.text(text, Counter())
    queue.put(time.perf_counter() - started)


def time_baseline(text: str) -> float | None:
    """Seconds, or None when it ran past TIMEOUT (killed)."""
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=_time_baseline, args=(text, queue))
    process.start()
    process.join(TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return queue.get()


def json_keys(n: int) -> dict[str, int]:
    """An object whose n keys each hold an email address: they all redact to [EMAIL]."""
    return {f"user{i}.name@example.com": i for i in range(n)}


def _time_keys(n: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    redactor = baseline_module(KEYS_BASELINE_COMMIT).build_redactor(enabled={})
    value = json_keys(n)
    started = time.perf_counter()
    redactor.value(value, Counter())
    queue.put(time.perf_counter() - started)


def time_keys_baseline(n: int) -> float | None:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=_time_keys, args=(n, queue))
    process.start()
    process.join(TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return queue.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    size = 100_000 if args.quick else 1_000_000
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
    from workspaces.redaction import build_redactor

    redactor = build_redactor(enabled={})
    worst, worst_base, worst_name, base_name = 0.0, 0.0, "", ""
    mb = size / 1_000_000
    print(f"{'input':26s} {'RE2 s':>8s} {'MB/s':>8s} {'baseline s':>11s} {'MB/s':>8s}")
    for name, text in inputs(size).items():
        started = time.perf_counter()
        redactor.text(text, Counter())
        seconds = time.perf_counter() - started
        base = time_baseline(text)
        base_text = (
            f"{base:11.3f} {mb / base:8.2f}"
            if base
            else f"{'>' + str(int(TIMEOUT)):>11s} {'<' + f'{mb / TIMEOUT:.3f}':>8s}"
        )
        print(f"{name:26s} {seconds:8.3f} {mb / seconds:8.2f} {base_text}")
        if name.startswith("adversarial"):
            if seconds / mb > worst:
                worst, worst_name = seconds / mb, name
            if (base or TIMEOUT) / mb > worst_base:
                worst_base, base_name = (base or TIMEOUT) / mb, name
    # JSON keys that all redact to the same placeholder: linear in their number?
    print(
        f"\n{'JSON keys':>10s} {'now s':>8s} {'baseline s':>11s}  (baseline: {KEYS_BASELINE_COMMIT})"
    )
    key_seconds: dict[int, float] = {}
    base_keys: dict[int, float | None] = {}
    for n in (10_000, 40_000):
        value = json_keys(n)
        started = time.perf_counter()
        redactor.value(value, Counter())
        key_seconds[n] = time.perf_counter() - started
        base_keys[n] = time_keys_baseline(n) if (n == 10_000 or not args.quick) else None
        shown = base_keys[n]
        base_text = (f"{shown:11.3f}" if shown is not None
                     else f"{'>' + str(int(TIMEOUT)) if n == 10_000 or not args.quick else 'skipped':>11s}")  # fmt: skip
        print(f"{n:>10,d} {key_seconds[n]:8.3f} {base_text}")
    growth = key_seconds[40_000] / key_seconds[10_000]
    base_40k = base_keys[40_000]
    # Worst adversarial input of each engine (each on its own worst case).
    print(
        f"RESULT worst_adversarial_s_per_mb={worst:.3f} s/MB baseline={worst_base:.3f} "
        f"ratio={worst / worst_base:.4f} input={worst_name.replace(' ', '_')} "
        f"baseline_input={base_name.replace(' ', '_')} size={size}"
        + (" baseline_timed_out=1" if worst_base * mb >= TIMEOUT else "")
        + f" json_keys_40k_s={key_seconds[40_000]:.3f} json_keys_growth_x4={growth:.2f}"
        + (f" baseline_json_keys_10k_s={base_keys[10_000]:.3f}" if base_keys[10_000] else
           f" baseline_json_keys_10k_s>{TIMEOUT:.0f}")
        + ("" if args.quick else (f" baseline_json_keys_40k_s={base_40k:.3f}" if base_40k
                                  else f" baseline_json_keys_40k_s>{TIMEOUT:.0f}"))
    )  # fmt: skip


if __name__ == "__main__":
    main()
