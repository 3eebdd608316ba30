"""The engine guard: a process killed without shutting its vLLM engine down leaves no engine running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from plait.executors._engine_guard import EngineGuard


def gone(pid: int) -> bool:
    """The process no longer runs (it does not exist, or it is a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(gone(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


def reap(parent: subprocess.Popen, pids: list[int]) -> None:
    """Whatever a failed test left running goes."""
    parent.kill()
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def start_parent(code: str) -> tuple[subprocess.Popen, list[int]]:
    """Run ``code`` in a parent process that prints the pids it wants guarded on its first line."""
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
    line = parent.stdout.readline()
    assert line.strip(), "the parent process printed no pids"
    return parent, [int(p) for p in line.split()]


GUARDED_SLEEPER = """
    import subprocess, sys, time
    from plait.executors._engine_guard import EngineGuard
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    guard = EngineGuard({child.pid})
    print(child.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_parent_takes_its_guarded_children_down(sig):
    parent, pids = start_parent(GUARDED_SLEEPER)
    try:
        assert not any(gone(p) for p in pids)
        parent.send_signal(sig)
        parent.wait(timeout=10)
        assert wait_gone(pids, timeout=15), f"guarded processes {pids} still run after the parent died"
    finally:
        reap(parent, pids)


def test_released_guard_leaves_the_processes_alone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        guard = EngineGuard({child.pid})
        watchdog = guard._proc
        guard.release()
        assert watchdog.wait(timeout=10) == 0
        time.sleep(0.5)
        assert child.poll() is None  # still running: a clean shutdown is not a death
    finally:
        child.kill()
        child.wait()


def test_no_pids_no_watchdog():
    guard = EngineGuard(set())
    assert guard._proc is None
    guard.release()  # nothing to do, no error


REAL_ENGINE = """
    import os
    import anyio
    from plait.executors import VLLMBackend
    from plait.executors._engine_guard import child_pids

    def children(pid):
        out = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
        return out

    async def main():
        backend = VLLMBackend("smollm2-135m", max_model_len=2048)
        await backend.start()
        cores = sorted(child_pids())
        print("PIDS", *cores, *[w for c in cores for w in children(c)], flush=True)  # engine cores and workers
        await anyio.sleep(600)

    if __name__ == "__main__":
        anyio.run(main)
"""


@pytest.mark.vllm
def test_sigkilled_process_leaves_no_vllm_engine_running(tmp_path):
    pytest.importorskip("vllm")
    from plait.executors import pull_model

    pull_model("smollm2-135m")
    script = tmp_path / "engine_parent.py"  # a file, not -c: vLLM's spawned engine re-imports the main module
    script.write_text(textwrap.dedent(REAL_ENGINE))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    for line in parent.stdout:  # vLLM logs to stdout too: find the marked line
        if line.startswith("PIDS"):
            pids = [int(p) for p in line.split()[1:]]
            break
    try:
        assert len(pids) >= 2, f"expected an engine core and its worker, got {pids}"
        assert not any(gone(p) for p in pids)
        parent.kill()
        parent.wait(timeout=10)
        assert wait_gone(pids, timeout=60), f"vLLM engine processes {pids} outlived their killed parent"
    finally:
        reap(parent, pids)
