"""A deterministic three-node graph over a scripted backend, run as a batch by the fault tests.

``PIPELINE_EFFECTS=DIR``: each node, as it completes, appends ``NODE PID`` to
``DIR/X`` (X: the input), so a test counts how often each node ran and where.
``PIPELINE_HANG_AFTER=N``: this process's N-th ``refine`` writes ``DIR/hanging``
and ``DIR/hanging.PID`` and never returns (a worker to kill while it provably
holds an input);
with ``PIPELINE_HANG_ONE=1`` only the first process to get there hangs (Ray
workers share one environment).
``PIPELINE_STALL_AFTER=N``: this process's N-th ``refine`` does its work, writes
``DIR/stalled``, then freezes the whole process (a blocking sleep on the event
loop: no lease renewal runs) until ``DIR/resume`` exists, and returns.
"""

import os
import time
from pathlib import Path

import anyio

from plait import FunctionBackend, Graph, Request, RunContext, SamplingParams

graph = Graph("pipeline")
LATENCY = float(os.environ.get("PIPELINE_LATENCY", "0.02"))
EFFECTS = os.environ.get("PIPELINE_EFFECTS")
HANG_AFTER = int(os.environ.get("PIPELINE_HANG_AFTER", "0"))
HANG_ONE = os.environ.get("PIPELINE_HANG_ONE") == "1"
STALL_AFTER = int(os.environ.get("PIPELINE_STALL_AFTER", "0"))
_refines = 0


def _effect(node: str, x: int) -> None:
    if EFFECTS:
        fd = os.open(Path(EFFECTS) / str(x), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{node} {os.getpid()}\n".encode())
        finally:
            os.close(fd)


def _first_to_hang() -> bool:
    if not HANG_ONE:
        return True
    try:
        os.close(os.open(Path(EFFECTS) / "hang.claim", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def _marker(name: str, text: str) -> None:
    """Write ``DIR/name`` whole at once (a test polling for it never reads it half written)."""
    tmp = Path(EFFECTS) / f".{name}.{os.getpid()}"
    tmp.write_text(text)
    os.replace(tmp, Path(EFFECTS) / name)


@graph.node
async def draft(x: int, ctx: RunContext) -> str:
    completion = await ctx.generate(Request(prompt=f"draft for {x}", params=SamplingParams(max_tokens=8)))
    _effect("draft", x)
    return completion.text


@graph.node
async def refine(draft: str, x: int) -> str:
    global _refines
    _refines += 1
    if _refines == HANG_AFTER and _first_to_hang():
        _marker("hanging", f"{x} {os.getpid()} {time.time()}")
        _marker(f"hanging.{os.getpid()}", f"{x} {os.getpid()} {time.time()}")  # one per hanging process
        await anyio.sleep_forever()
    await anyio.sleep(LATENCY)
    if x % 50 == 49:
        raise ValueError(f"input {x} is poisoned")
    _effect("refine", x)
    if _refines == STALL_AFTER:
        _marker("stalled", f"{x} {os.getpid()}")
        while not (Path(EFFECTS) / "resume").exists():
            time.sleep(0.01)  # blocks the event loop: the process is frozen, as far as its leases know
    return draft.upper()


@graph.node
def score(refine: str, x: int) -> dict:
    _effect("score", x)
    return {"x": x, "text": refine, "score": (x * 7919) % 101}


graph.chain(draft, refine, score)


def make_backend() -> FunctionBackend:
    return FunctionBackend(lambda r: f"<{r.prompt_text()}>", latency=LATENCY, prefix_cache=False)
