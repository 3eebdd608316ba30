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
