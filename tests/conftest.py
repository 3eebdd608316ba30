import threading
import time

import pytest

from plait.orchestrator import _threads


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def release():
    """An event that hung sync functions wait on; set at the end so that no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()
    deadline = time.monotonic() + 10
    while _threads.abandoned_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _threads.abandoned_threads() == 0


_REAL_VLLM = {"vllm_engine", "vllm_server"}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: the marker must be there when it looks
def pytest_collection_modifyitems(items):
    """Every test that starts a real vLLM engine or server carries the ``vllm`` marker, however it reaches one
    (a fixture, or the conformance suite's ``backend_kind`` parameter), so ``-m "not vllm"`` never starts one."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("backend_kind") if callspec is not None else None
        if _REAL_VLLM & set(getattr(item, "fixturenames", ())) or kind in ("vllm", "openai"):
            item.add_marker(pytest.mark.vllm)
