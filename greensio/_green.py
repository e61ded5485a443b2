"""Green-thread runtime helpers for the shells (gevent only).

``WorkerPool`` runs handlers on reused greenlets: creating a greenlet per
event costs 15-28 µs of a ~100 µs round trip (PERFORMANCE.md), so a worker
that finishes parks itself on a ``Waiter`` and the next event wakes it.
"""

import logging
from collections.abc import Callable
from typing import Any

from gevent import get_hub, spawn
from gevent.hub import Waiter

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
            spawn(self._work, fn, args)

    def _work(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        idle = self._idle
        hub = get_hub()
        while True:
            try:
                fn(*args)
            except Exception:  # the task logs its own errors; this is a last resort
                logger.exception('background task failed')
            if len(idle) >= self.max_idle:
                return
            waiter = Waiter(hub)
            idle.append(waiter)
            fn, args = waiter.get()
