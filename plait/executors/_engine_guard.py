"""A watchdog that stops vLLM's engine processes when the process that started them dies.

vLLM runs its engine core in a child process. When the parent exits normally
it shuts that child down, but a parent killed by SIGTERM (default action) or
SIGKILL leaves the engine core orphaned, still holding its memory and, while it
finishes queued requests, both CPU cores. The guard is a small separate
process (its own session, so a Ctrl-C to the terminal's process group does not
reach it) that blocks on a pipe from the parent. A clean shutdown writes
``ok`` before closing the pipe; end-of-file without it means the parent died,
and the guard terminates the engine processes (SIGTERM, then SIGKILL after a
grace period) together with their descendants: vLLM's workers do not always
follow an engine core that was killed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import subprocess
import sys

__all__ = ["EngineGuard", "child_pids"]

GRACE_S = 5.0

_WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
pids = [int(p) for p in sys.argv[1:]]
if sys.stdin.buffer.read() == b"ok":
    sys.exit(0)
def alive(pid):  # a zombie (killed, not yet reaped) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
def tree(roots):  # the roots and all their descendants, from /proc (vLLM's workers are grandchildren)
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += [c for c, p in parent.items() if p == pid]
    return sorted(found)
def signal_alive(pids, sig):
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
pids = tree(pids) if os.path.isdir("/proc") else pids
signal_alive(pids, signal.SIGTERM)
deadline = time.monotonic() + %s
while any(alive(p) for p in pids) and time.monotonic() < deadline:
    time.sleep(0.1)
signal_alive(pids, signal.SIGKILL)
""" % GRACE_S


def child_pids() -> set[int]:
    """Process ids of this process's live multiprocessing children (vLLM starts its engine core as one)."""
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


class EngineGuard:
    """Watches ``pids`` on behalf of this process; :meth:`release` when they were shut down cleanly."""

    def __init__(self, pids: set[int]):
        self.pids = sorted(pids)
        self._proc: subprocess.Popen | None = None
        if self.pids:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, *map(str, self.pids)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )

    def release(self) -> None:
        """The engine is down: tell the watchdog to exit without killing anything."""
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.write(b"ok")
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
