"""The synchronous Socket.IO client (``socketio.Client``).

Shell ring.  :class:`greensio.engineio.Client` carries the transport
(requests and websocket-client, around the sans-IO Engine.IO core),
``_core.client_session.ClientSession`` holds the protocol state,
``_core.reconnect`` computes the backoff, and this module runs user
handlers and waits.

Threads: the client uses the ``threading`` module, so it runs on green
threads once gevent has monkey-patched the process (do that first thing,
as for any blocking library under gevent) and on OS threads otherwise.  A
connection has the Engine.IO client's reader and writer, a few reused handler
workers and, while one runs, a reconnection task.  Messages are decoded in
order on the reader (binary attachments included); handlers run on the
workers, so a handler that blocks or calls ``call()`` never stops acks
from arriving, and a burst of events starts in arrival order.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ..common.base_client import (  # noqa: F401 - CLIENT_RESERVED_EVENTS re-exported
    CLIENT_RESERVED_EVENTS,
    BaseClient,
    CallWaiter,
    Flow,
)
from ..common.twins import drive
from ..engineio.client import Client as EngineIOClient
from ..engineio.client import wait_event

#: Handler workers one client runs at once; further events wait for a free one.
MAX_WORKERS = 32
#: Seconds an idle handler worker waits for more work before it ends.
WORKER_IDLE_SECONDS = 5.0
#: How long ``disconnect()`` waits for running handlers to end (they are daemons).
WORKER_JOIN_SECONDS = 1.0

# Clients waiting to reconnect; Ctrl-C aborts their waits (handle_sigint).
_reconnecting: weakref.WeakSet = weakref.WeakSet()
_previous_sigint: Any = None


def _sigint(signum: int, frame: Any) -> Any:
    for client in list(_reconnecting):
        client._reconnect_abort.set()
    if callable(_previous_sigint):
        return _previous_sigint(signum, frame)
    return signal.default_int_handler(signum, frame)


#: The packages each transport of the Python client needs: its 'client' extra.
TRANSPORT_PACKAGES = {'polling': ('requests', 'requests'), 'websocket': ('websocket', 'websocket-client')}


def require_transport_packages(transports: Any) -> None:
    """Raise at once, naming the extra to install, if a transport's package is missing.

    Without this check the connection attempt would fail with a less helpful
    ``ConnectionError``.
    """
    missing = []
    for transport in transports or ('polling', 'websocket'):
        module, package = TRANSPORT_PACKAGES.get(transport, (None, None))
        if module is None:
            continue
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ModuleNotFoundError(f"greensio.Client needs the 'client' extra: pip install 'greensio[client]' "
                                  f"(missing: {', '.join(missing)})", name=missing[0])


def _green_home() -> Any:
    """The calling thread's :class:`~greensio.green.runtime.Home` once gevent has patched threads, else None."""
    monkey = sys.modules.get('gevent.monkey')
    if monkey is None or not monkey.is_module_patched('threading'):
        return None
    from .runtime import Home

    return Home()


def _install_sigint_handler() -> None:
    global _previous_sigint
    if _previous_sigint is None and threading.current_thread() is threading.main_thread():
        _previous_sigint = signal.signal(signal.SIGINT, _sigint)


class _Workers:
    """Reused handler threads (green under gevent), started only when none is free.

    A burst of events runs on one worker, in arrival order; a handler that
    blocks makes the next event start another worker, so nothing waits on it.
    """

    def __init__(self, start: Callable[..., Any], logger: logging.Logger) -> None:
        self._start = start
        self._logger = logger
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._free = 0  # workers waiting for work, minus queued items
        self._threads: list[Any] = []
        self._retired: list[Any] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._queue.put((fn, args))
            if self._free > 0:
                self._free -= 1
                return
            if len(self._threads) >= MAX_WORKERS:
                return
            # started under the lock so close() always sees it; the worker
            # does not take the lock before it has run its first item
            self._threads.append(self._start(self._work, self._queue))

    def _work(self, work: queue.Queue) -> None:
        me = threading.current_thread()
        while True:
            try:
                item = work.get(timeout=WORKER_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if work is not self._queue or self._free <= 0:
                        continue  # an item was queued for this worker meanwhile
                    self._free -= 1
                    self._threads.remove(me)
                return
            if item is None:  # close()
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # each task logs its own errors; this is a last resort
                self._logger.exception('handler task failed')
            item = fn = args = None  # a waiting worker keeps nothing of its task alive
            with self._lock:
                if work is self._queue:
                    self._free += 1

    def is_worker(self) -> bool:
        me = threading.current_thread()
        with self._lock:
            return me in self._threads or me in self._retired

    def close(self) -> None:
        """Let the workers finish what is queued, then end them."""
        with self._lock:
            work, threads = self._queue, self._threads
            self._queue, self._threads, self._free = queue.Queue(), [], 0
            self._retired = [t for t in self._retired if t.is_alive()] + threads
        for _ in threads:
            work.put(None)

    def join(self, timeout: float) -> None:
        """Wait (bounded) for closed workers to end; never waits for the caller itself."""
        me = threading.current_thread()
        with self._lock:
            retired = list(self._retired)
        deadline = time.monotonic() + timeout
        for thread in retired:
            if thread is not me:
                thread.join(max(deadline - time.monotonic(), 0))
        with self._lock:
            self._retired = [t for t in self._retired if t.is_alive()]


class Client(BaseClient):
    """A Socket.IO client; drop-in for ``socketio.Client``.

    :param reconnection: reconnect after the connection is lost (not after
        ``disconnect()`` or a disconnect by the server).
    :param reconnection_attempts: give up after this many failed attempts;
        0 (default) tries for ever.
    :param reconnection_delay: seconds before the first attempt, doubled
        for each further attempt ...
    :param reconnection_delay_max: ... up to this many seconds.
    :param randomization_factor: jitter as a +/- fraction of each delay:
        attempt ``n`` waits ``min(reconnection_delay * 2**n,
        reconnection_delay_max) * (1 + randomization_factor * (2*random() - 1))``.
        (python-socketio adds this many *seconds* instead.)
    :param logger: ``True`` logs at INFO, ``False`` (default) only errors,
        or pass a :class:`logging.Logger`.
    :param serializer: ``'default'``, ``'msgpack'`` or a ``Packet`` subclass.
    :param json: an alternative JSON module (process-wide, as in python-socketio).
    :param handle_sigint: Ctrl-C aborts reconnection waits and disconnects
        (installed once, from the main thread).
    :param kwargs: Engine.IO client options: ``request_timeout``,
        ``http_session``, ``ssl_verify``, ``websocket_extra_options``,
        ``timestamp_requests``, ``engineio_logger``; others are ignored.
    """

    _engine_base = EngineIOClient

    def __init__(self, reconnection: bool = True, reconnection_attempts: int = 0, reconnection_delay: float = 1,
                 reconnection_delay_max: float = 5, randomization_factor: float = 0.5, logger: Any = False,
                 serializer: Any = 'default', json: Any = None, handle_sigint: bool = True, **kwargs: Any) -> None:
        if handle_sigint:
            _install_sigint_handler()
        super().__init__(reconnection, reconnection_attempts, reconnection_delay, reconnection_delay_max,
                         randomization_factor, logger, serializer, json, handle_sigint, **kwargs)
        self._lock = threading.Lock()  # session state and the order of multi-part sends
        self._workers = _Workers(self.eio.start_background_task, self.logger)
        self._answer = self.eio.create_event()
        self._finished = self.eio.create_event()
        self._finished.set()
        self._reconnect_task: Any = None
        self._reconnect_abort = self.eio.create_event()
        self._home = _green_home()  # under gevent: where emits from native threads are handed

    # -- the public API (flows and docstrings on BaseClient) --------------------------------------

    def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                namespaces: Any = None, socketio_path: str = 'socket.io', wait: bool = True,
                wait_timeout: float = 1, retry: bool = False) -> None:
        require_transport_packages(transports)
        self._home = _green_home()  # the connection's greenlets run in this thread's hub
        drive(self._connect_flow(url, headers, auth, transports, namespaces, socketio_path, wait, wait_timeout, retry))

    def wait(self) -> None:
        wait_event(self._finished)

    def emit(self, event: str, data: Any = None, namespace: str | None = None, callback: Callable | None = None) -> None:
        if self._home is not None and self._home.away():  # a native thread: the hub sends it
            return self._home.run(self.emit, event, data, namespace, callback)
        self._emit(event, data, namespace, callback)

    def send(self, data: Any, namespace: str | None = None, callback: Callable | None = None) -> None:
        self.emit('message', data=data, namespace=namespace, callback=callback)

    def call(self, event: str, data: Any = None, namespace: str | None = None, timeout: float | None = 60) -> Any:
        if self._home is not None and self._home.away():
            return self._home.run(self.call, event, data, namespace, timeout)
        return drive(self._call_flow(CallWaiter(self.eio.create_event()), event, data, namespace, timeout))

    def disconnect(self) -> None:
        drive(self._disconnect_flow())
        if not self._workers.is_worker() and not self._in_reader():
            self._workers.join(WORKER_JOIN_SECONDS)

    def shutdown(self) -> None:
        self.disconnect()

    def sleep(self, seconds: float = 0) -> None:
        return self.eio.sleep(seconds)

    # -- how this twin waits, spawns and sends ------------------------------------------------------

    _run_flow = staticmethod(drive)

    def _current(self) -> Any:
        return threading.current_thread()

    def _wait(self, event: Any, timeout: float | None) -> bool:
        return wait_event(event, timeout)

    def _submit(self, flow: Flow) -> None:
        self._workers.submit(drive, flow)

    def _queue_message(self, data: str | bytes) -> None:
        self.eio.send(data)

    def _finish(self) -> None:
        """Disconnected for good: release ``wait()`` and end the handler workers."""
        self._finished.set()
        self._workers.close()

    def _handle_eio_message(self, data: str | bytes) -> None:
        drive(self._message_flow(data))

    def _handle_eio_disconnect(self, reason: str | None = None) -> None:
        drive(self._eio_disconnect_flow(reason))

    # -- reconnection ---------------------------------------------------------------------------

    def _mark_reconnecting(self) -> None:
        _reconnecting.add(self)

    def _reconnect_loop(self, namespaces: list[str]) -> bool:
        try:
            return drive(self._reconnect_flow(namespaces))
        finally:
            _reconnecting.discard(self)

    def _join_reconnect(self, task: Any, timeout: float) -> None:
        task.join(timeout)
