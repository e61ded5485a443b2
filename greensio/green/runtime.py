"""Green-thread runtime helpers for the shells (gevent only).

``WorkerPool`` runs handlers on reused greenlets: creating a greenlet per
event costs 15-28 µs of a ~100 µs round trip (measured under gevent), so a worker
that finishes parks itself on a ``Waiter`` and the next event wakes it.
"""

import logging
from collections.abc import Callable
from typing import Any

from gevent import get_hub, spawn
from gevent.hub import Waiter
from gevent.monkey import get_original

#: The OS thread's id and a lock that blocks it, even when gevent has patched ``threading``.
os_thread_ident = get_original('_thread', 'get_ident')
allocate_lock = get_original('_thread', 'allocate_lock')

logger = logging.getLogger('greensio')

#: Parked workers kept for reuse; more than this return to the OS after a burst.
MAX_IDLE_WORKERS = 256


class WorkerPool:
    def __init__(self, max_idle: int = MAX_IDLE_WORKERS) -> None:
        self.max_idle = max_idle
        self._idle: list[Waiter] = []

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._idle:
            waiter = self._idle.pop()
            get_hub().loop.run_callback(waiter.switch, (fn, args))
        else:
            # a greenlet keeps its spawn arguments for life: the task goes in a box it empties
            spawn(self._work, [(fn, args)])

    def _work(self, first: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
        idle = self._idle
        hub = get_hub()
        fn, args = first.pop()
        while True:
            try:
                fn(*args)
            except Exception:  # the task logs its own errors; this is a last resort
                logger.exception('background task failed')
            fn = args = None  # type: ignore[assignment]  # a parked worker keeps nothing of its task alive
            if len(idle) >= self.max_idle:
                return
            waiter = Waiter(hub)
            idle.append(waiter)
            fn, args = waiter.get()


class Home:
    """The OS thread whose hub runs a server or client (the thread that made it).

    gevent objects belong to one hub; ``run`` carries a call made on another
    OS thread (a native thread, gevent's thread pool) back there.
    """

    def __init__(self) -> None:
        self.hub = get_hub()
        self.thread = os_thread_ident()

    def away(self) -> bool:
        """True when the caller runs on another OS thread."""
        return os_thread_ident() != self.thread

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in a greenlet of the home hub; block this OS thread
        until it ends, then return its result or raise its exception."""
        done = allocate_lock()
        done.acquire()
        outcome: list[Any] = []

        def body() -> None:
            try:
                outcome.append((True, fn(*args)))
            except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
                outcome.append((False, exc))
            finally:
                done.release()

        self.hub.loop.run_callback_threadsafe(spawn, body)
        done.acquire()
        if not outcome:
            raise RuntimeError('the call was killed in the hub before it ended')
        ok, value = outcome[0]
        if ok:
            return value
        raise value
