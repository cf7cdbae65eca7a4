"""One daemon thread that runs a store's blocking calls, one at a time, in order.

The thread store does all its file and SQLite work here: appends to a rollout
keep the order they were submitted in, and the SQLite connection never
changes threads. The thread is a daemon, so it never keeps the process alive;
the store's ``close()`` drains it first, so an orderly shutdown loses nothing.

Why not ``kernel.blocking``: that pool is shared and parallel (calls of one
owner may run concurrently and out of order), which is right for independent
filesystem calls and wrong for an append-only log.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["SerialExecutor"]

T = TypeVar("T")

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class SerialExecutor(Executor):
    """A ``concurrent.futures.Executor`` backed by one daemon thread, started on first use."""

    def __init__(self, name: str = "kernel-thread-store") -> None:
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._shutdown = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self.name} is shut down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._queue.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            del future, fn, args, kwargs, item

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop after the calls already submitted; ``wait`` joins the thread."""
        with self._lock:
            if self._shutdown:
                thread = None if not wait else self._thread
            else:
                self._shutdown = True
                thread = self._thread
                if cancel_futures:
                    while True:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item is not None:
                            item[0].cancel()
                self._queue.put(None)
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
