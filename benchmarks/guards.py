"""Guards against hostile model output and hostile servers (issue 19): does each one hold, and at what cost?

Each attack runs in its own subprocess (``--child NAME``) under a hard wall-clock cap (``--cap``, 60 s) and a
4 GiB address-space limit, so an attack that hangs or eats memory is killed and counts as "failed" instead of
taking the machine with it. The child measures, around the attack only (imports and set-up excluded):

* ``seconds``: time to a clear outcome (the cap when the attack was killed);
* ``peak_mb``: the child's peak resident memory (``ru_maxrss``);
* ``leftover_threads``: ``threading.active_count()`` after the attack (given up to 3 s to settle: idle worker threads end after 2 s, so a
  thread pool shut down with its event loop is not counted) minus before;
* ``outcome``: "held" only when the specific guard fired (the expected plait error or status, within the
  attack's limits: tool calls, tokens, memory, prompt size), no more threads were left than the attack allows
  (zero for most), and nothing kept burning CPU after the attack returned; "failed" otherwise.

Attacks use scripted backends (``FunctionBackend``) and local hostile HTTP servers on 127.0.0.1 only; no
model, no vLLM. The attacks live in ``_guard_attacks.py`` (hostile model output) and ``_guard_http.py``
(hostile servers). This is a benchmark, not a test: the figures are for reading, not asserting.

    python benchmarks/guards.py [--json out.json] [--only NAME,NAME] [--cap 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _guard_attacks import ATTACKS as MODEL_ATTACKS  # noqa: E402
from _guard_http import ATTACKS as HTTP_ATTACKS  # noqa: E402

ATTACKS: dict[str, Any] = {**MODEL_ATTACKS, **HTTP_ATTACKS}
"""name -> attack: a function returning (held, detail), or (held, detail, allowed_leftover_threads)."""

MEMORY_LIMIT = 4 << 30
BURN_WINDOW = 0.5  # seconds watched after the attack: CPU used by then means a search or thread kept running


def _settled_threads(baseline: int, within: float = 3.0) -> int:  # plait's idle workers end after 2 s
    deadline = time.monotonic() + within
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    return threading.active_count()


def child(name: str) -> dict[str, Any]:
    """Run one attack in this process and measure it (called in the subprocess)."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    attack = ATTACKS[name]
    before = threading.active_count()
    start = time.perf_counter()
    try:
        verdict = attack()
    except BaseException as exc:  # noqa: BLE001 - an attack that escapes its own checks did not hold
        verdict = (False, f"escaped: {type(exc).__name__}: {str(exc)[:200]}")
    seconds = time.perf_counter() - start
    held, detail, allowed = (*verdict, 0) if len(verdict) == 2 else verdict
    leftover = _settled_threads(before) - before
    cpu = time.process_time()
    time.sleep(BURN_WINDOW)
    burned = time.process_time() - cpu
    if leftover > allowed:
        held, detail = False, f"{detail}; {leftover} thread(s) left (allowed {allowed})"
    if burned > BURN_WINDOW / 2:
        held, detail = False, f"{detail}; still burning CPU after the attack ({burned:.2f}s in {BURN_WINDOW}s)"
    return {"outcome": "held" if held else "failed", "seconds": round(seconds, 3),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "leftover_threads": leftover, "detail": " ".join(detail.split())}


def run_attack(name: str, cap: float = 60.0) -> dict[str, Any]:
    """Run attack ``name`` in a subprocess killed after ``cap`` seconds; its figures, or "failed" if killed."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        log = open(Path(tmp) / "log.txt", "w+b")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--report", str(report)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > cap:
                os.killpg(proc.pid, 9)  # the attack's own session: its servers and workers too
                pid, status, usage = os.wait4(proc.pid, 0)
                killed = True
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if not killed and report.exists():
            return json.loads(report.read_text())
        log.seek(0)
        tail = log.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
        why = f"killed after the {cap:g}s cap" if killed else f"child exited {proc.returncode}: {tail[0][:200]}"
        return {"outcome": "failed", "seconds": round(min(time.perf_counter() - start, cap), 3),
                "peak_mb": round(usage.ru_maxrss / 1024, 1), "leftover_threads": 0, "detail": why}


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [f"{'attack':<24} {'outcome':<8} {'seconds':>8} {'peak MB':>8} {'threads':>7}  detail"]
    for name, r in results.items():
        rows.append(f"{name:<24} {r['outcome']:<8} {r['seconds']:>8.2f} {r['peak_mb']:>8.1f} "
                    f"{r['leftover_threads']:>7}  {r['detail'][:90]}")
    held = sum(r["outcome"] == "held" for r in results.values())
    rows.append(f"{held} of {len(results)} guards held")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, metavar="PATH", help="write the figures here")
    parser.add_argument("--only", default=None, help="comma-separated attack names (default: all)")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds before an attack is killed")
    parser.add_argument("--list", action="store_true", help="print the attack names and exit")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--report", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        Path(args.report).write_text(json.dumps(child(args.child)))
        return 0
    if args.list:
        print("\n".join(ATTACKS))
        return 0
    names = args.only.split(",") if args.only else list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}; see --list")
    results = {}
    for name in names:
        results[name] = run_attack(name, args.cap)
        print(f"{name}: {results[name]['outcome']} in {results[name]['seconds']:.2f}s", file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"attacks": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
