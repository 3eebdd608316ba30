"""Sync functions in worker threads: timeouts that hold, retries that never overlap, few leftover threads.

A sync node or tool runs in a worker thread so that, however long it blocks,
it stalls no other node and its timeout fires on time. Python cannot kill a
thread: when a call times out (or its run is cancelled) the caller moves on
and the thread is *abandoned*: it runs to its end and its result is dropped.
Three rules keep that safe:

* every worker thread holds one of :data:`MAX_THREADS` process-wide slots
  until its function returns, abandoned or not, so hung functions cannot pile
  up threads; a call waits for a free slot, its timeout running;
* a :class:`Lane` runs one call at a time: a retry starts only once the
  attempt it replaces has really ended (the wait counts against the retry's
  timeout), so two attempts of one call never run, or write results, at once;
* abandoned threads still running are counted (:func:`abandoned_threads`),
  and the lane's ``on_abandon`` callback reports each one as it happens.

Threads are daemons, so a hung one never keeps the process from exiting,
and pooled: a worker idle for :data:`IDLE_SECONDS` ends, so threads left
after a run are the abandoned ones still running plus a few idle workers,
all within :data:`MAX_THREADS`. A hand-off to an idle worker costs about
15 us, a new thread about 50 us (measured here); benchmarks/overhead.py
gives 28 us per sync node in a thread against 7 us inline.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_THREADS", "Lane", "run_in_thread", "abandoned_threads", "in_worker_thread"]

#: Worker threads running plait work at once in this process, abandoned ones included
#: (``PLAIT_MAX_THREADS`` in the environment changes it; anyio's own default is also 40).
MAX_THREADS = int(os.environ.get("PLAIT_MAX_THREADS", "40"))
IDLE_SECONDS = 2.0  # an idle worker thread ends after this long

_lock = threading.Lock()  # guards the counters, the lists and every call's done/abandoned flags
_busy = 0  # calls running in worker threads
_abandoned = 0  # of which abandoned by their caller
_idle: list[queue.SimpleQueue] = []  # inboxes of idle workers (busy + idle workers <= MAX_THREADS)
_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
_local = threading.local()


def abandoned_threads() -> int:
    """Worker threads whose caller gave up (timeout, cancellation) that are still running."""
    return _abandoned


def in_worker_thread() -> bool:
    """True inside a worker thread started by :func:`run_in_thread`."""
    return getattr(_local, "worker", False)


class _Call:
    """One function call for a worker thread; its outcome goes back to the caller's event loop."""

    __slots__ = ("fn", "name", "loop", "future", "done", "abandoned")

    def __init__(self, fn: Callable[[], Any], name: str, loop: asyncio.AbstractEventLoop):
        self.fn, self.name, self.loop = fn, name, loop
        self.future: asyncio.Future = loop.create_future()
        self.done = self.abandoned = False

    def body(self, inbox: queue.SimpleQueue) -> None:
        """Run in a worker: call ``fn``, free the slot, put the worker back to idle, hand the outcome over."""
        global _busy, _abandoned
        threading.current_thread().name = f"plait-worker: {self.name}"  # names the node or tool in thread dumps
        result = error = None
        try:
            result = self.fn()
        except BaseException as exc:  # handed to the caller, who re-raises it
            error = exc
        with _lock:
            self.done = True
            _busy -= 1
            if self.abandoned:
                _abandoned -= 1
            _idle.append(inbox)
            waiters = _waiters[:]
            _waiters.clear()
        _wake(waiters)
        if not self.abandoned:
            try:
                self.loop.call_soon_threadsafe(self._deliver, result, error)
            except RuntimeError:  # the caller's loop is closed
                pass

    def _deliver(self, result: Any, error: BaseException | None) -> None:
        if not self.future.done():
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)


class Lane:
    """Runs sync calls in worker threads one after another, even when an earlier one was abandoned.

    Use one lane per logical call (a node activation, a tool call) and run
    each attempt through it: an attempt waits for its predecessor's thread to
    end before it starts its own. ``on_abandon(still_running)`` is called, on
    the event loop, when an attempt's caller gives up while its thread runs on.
    """

    __slots__ = ("_last", "on_abandon")

    def __init__(self, on_abandon: Callable[[int], None] | None = None):
        self._last: _Call | None = None
        self.on_abandon = on_abandon

    async def run(self, fn: Callable[[], Any], name: str = "call") -> Any:
        """``fn()`` in a worker thread; cancelling the caller abandons the thread (it is not waited for)."""
        global _abandoned
        last = self._last
        if last is not None and not last.done:
            await _wait_until(lambda: last.done)
        await _wait_until(_take_slot)
        call = self._last = _Call(fn, name, asyncio.get_running_loop())
        try:
            _hand_over(call)
        except BaseException:  # no thread could be started
            _release_slot()
            raise
        try:
            return await call.future
        except BaseException:
            with _lock:
                left = not call.done
                if left:
                    call.abandoned = True
                    _abandoned += 1
                running = _abandoned
            if left and self.on_abandon is not None:
                self.on_abandon(running)
            raise


async def run_in_thread(fn: Callable[[], Any], *, lane: Lane | None = None, name: str = "call") -> Any:
    """``fn()`` in a worker thread, after ``lane``'s previous call has ended (a fresh lane when None)."""
    return await (lane or Lane()).run(fn, name)


def _hand_over(call: _Call) -> None:
    """Give ``call`` (its slot taken) to an idle worker, or to a new one."""
    with _lock:
        inbox = _idle.pop() if _idle else None
    if inbox is None:
        inbox = queue.SimpleQueue()
        threading.Thread(target=_work, args=(inbox,), name="plait-worker", daemon=True).start()
    inbox.put(call)


def _work(inbox: queue.SimpleQueue) -> None:
    """A worker thread's loop: run the calls put in its inbox; end after IDLE_SECONDS without one."""
    _local.worker = True
    while True:
        try:
            call = inbox.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with _lock:
                if inbox in _idle:
                    _idle.remove(inbox)
                    return
            call = inbox.get()  # claimed by a caller just as it expired: the call is on its way
        call.body(inbox)


def _take_slot() -> bool:
    global _busy
    if _busy < MAX_THREADS:
        _busy += 1
        return True
    return False


def _release_slot() -> None:
    global _busy
    with _lock:
        _busy -= 1
        waiters = _waiters[:]
        _waiters.clear()
    _wake(waiters)


async def _wait_until(ready: Callable[[], bool]) -> None:
    """Wait until ``ready()`` (called under the lock) is true; worker threads wake waiters as they end."""
    loop = asyncio.get_running_loop()
    while True:
        with _lock:
            if ready():
                return
            future = loop.create_future()
            _waiters.append((loop, future))
        try:
            await future
        finally:
            with _lock:
                if (loop, future) in _waiters:
                    _waiters.remove((loop, future))


def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]]) -> None:
    for loop, future in waiters:
        try:
            loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # that loop is closed
            pass


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
