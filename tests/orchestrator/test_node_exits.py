"""``sys.exit()`` or Ctrl-C inside a node ends the run as itself (exit code kept), not as an exception group."""

import subprocess
import sys

import anyio
import pytest

from plait import Graph, MemoryCheckpointer

SCRIPT = """
import anyio, sys
from plait import Graph
g = Graph("exits")

@g.node
async def leaves(x: int) -> int:
    sys.exit(3)

@g.node
async def waits(x: int) -> int:
    await anyio.sleep(30)
    return x

anyio.run(lambda: g.run(1))
"""


def test_sys_exit_in_a_node_exits_the_process_with_its_code_and_no_traceback():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr


def test_keyboard_interrupt_in_a_node_is_raised_as_itself_and_the_run_is_recorded_cancelled():
    g = Graph("ctrl_c")
    store = MemoryCheckpointer()

    @g.node
    async def first(x: int) -> int:
        return x + 1

    @g.node
    async def second(y: int) -> int:
        raise KeyboardInterrupt

    g.chain(first, second)

    with pytest.raises(KeyboardInterrupt):
        anyio.run(lambda: g.run(1, checkpoint=store, run_id="r"))
    run = store.get_run("r")
    assert run.status == "cancelled" and "KeyboardInterrupt" in run.error
    assert "first#0" in store.load_nodes("r")  # what finished is kept for the resume
