"""The synchronous Socket.IO client (``socketio.Client``).

Shell ring.  python-engineio's ``engineio.Client`` carries the transport
(requests and websocket-client), ``_core.client_session.ClientSession``
holds the protocol state, ``_core.reconnect`` computes the backoff, and
this module runs user handlers and waits.

Threads: the client uses the ``threading`` module, so it runs on green
threads once gevent has monkey-patched the process (do that first thing,
as for any blocking library under gevent) and on OS threads otherwise.  A
connection has python-engineio's reader and writer, a few reused handler
workers and, while one runs, a reconnection task.  Messages are decoded in
order on the reader (binary attachments included); handlers run on the
workers, so a handler that blocks or calls ``call()`` never stops acks
from arriving, and a burst of events starts in arrival order.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import engineio
from engineio import base_client as eio_base_client
from engineio import packet as eio_packet
from engineio import payload as eio_payload

from ._twins import drive
from .base_client import (  # noqa: F401 - CLIENT_RESERVED_EVENTS and the limits re-exported
    CLIENT_RESERVED_EVENTS,
    FLUSH_SECONDS,
    MAX_PACKETS_PER_POST,
    BaseClient,
    CallWaiter,
    Flow,
    take_batch,
)

try:
    from websocket import WebSocketConnectionClosedException as _WS_CLOSED
except ImportError:  # no 'client' extra: the server still imports; the websocket transport is unavailable
    _WS_CLOSED = OSError

#: Handler workers one client runs at once; further events wait for a free one.
MAX_WORKERS = 32
#: Seconds an idle handler worker waits for more work before it ends.
WORKER_IDLE_SECONDS = 5.0
#: How long ``disconnect()`` waits for running handlers to end (they are daemons).
WORKER_JOIN_SECONDS = 1.0

#: Long waits wake at least this often: CPython runs a signal handler only in the
#: main thread, and a SIGINT the kernel delivers to another thread cannot
#: interrupt the main thread's untimed lock wait, so Ctrl-C would go unseen.
SIGNAL_CHECK_SECONDS = 1.0

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

    Without this check python-engineio logs that a package is missing and the
    connection attempt then fails with a misleading "Connection lost".
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
    """The calling thread's :class:`~greensio._green.Home` once gevent has patched threads, else None."""
    monkey = sys.modules.get('gevent.monkey')
    if monkey is None or not monkey.is_module_patched('threading'):
        return None
    from ._green import Home

    return Home()


def _install_sigint_handler() -> None:
    global _previous_sigint
    if _previous_sigint is None and threading.current_thread() is threading.main_thread():
        _previous_sigint = signal.signal(signal.SIGINT, _sigint)


def wait_event(event: Any, timeout: float | None = None) -> bool:
    """``event.wait(timeout)`` in slices of ``SIGNAL_CHECK_SECONDS``; True once the event is set."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is None:
            step = SIGNAL_CHECK_SECONDS
        else:
            step = min(deadline - time.monotonic(), SIGNAL_CHECK_SECONDS)
            if step <= 0:
                return event.is_set()
        if event.wait(step):
            return True


class _EngineClient(engineio.Client):
    """``engineio.Client`` that hands messages over on its reader, in order.

    python-engineio starts a thread per message, which can reorder packets
    and splits a binary packet's parts across threads; the Socket.IO layer
    decodes on the reader instead and runs handlers on its own workers.
    """

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.state == 'disconnected':
            # a fresh queue per connection: packets of the last one (and its
            # sentinel) can never reach this one's writer
            self.queue = self.create_queue()
        return super().connect(*args, **kwargs)

    def _reset(self) -> None:
        writer = self.write_loop_task
        super()._reset()
        if writer is not None and writer is not threading.current_thread() and writer.is_alive():
            # python-engineio drains the queue here; after a disconnect made on
            # the reader (a CLOSE from the server) that removes the sentinel the
            # writer waits for, leaving it blocked for ping_interval + ping_timeout
            self.queue.put(None)

    def _read_loop_polling(self) -> None:
        """Long-poll until the connection ends; then what python-engineio does on the way out.

        Replaces python-engineio's loop only for its decoder, which refuses a
        response of more than 16 packets (a limit meant for what a client
        POSTs to a server): the Node server sends everything queued for a
        client in one response, so a burst of 17 events dropped the
        connection.  The server's maxPayload bounds a response.
        """
        while self.state == 'connected' and self.write_loop_task:
            response = self._send_request('GET', self.base_url + self._get_url_timestamp(),
                                          timeout=max(self.ping_interval, self.ping_timeout) + 5)
            packets = self._poll_packets(response)
            if packets is None:
                self.queue.put(None)  # ends the writer too
                break
            for pkt in packets:
                self._receive_packet(pkt)
        writer = self.write_loop_task
        if writer is not None:  # the writer clears the attribute itself when it ends
            writer.join()
        if self.state == 'connected':
            self._trigger_event('disconnect', self.reason.TRANSPORT_ERROR, run_async=False)
            with contextlib.suppress(ValueError):
                eio_base_client.connected_clients.remove(self)
            self._reset()

    def _poll_packets(self, response: Any) -> list[Any] | None:
        """The packets of a polling response, or None when the connection is unusable."""
        if response is None or isinstance(response, str):
            self.logger.warning('polling request failed: %s', response or 'connection refused')
            return None
        if not 200 <= response.status_code < 300:
            self.logger.warning('polling request failed with status %s', response.status_code)
            return None
        try:
            body = response.content.decode('utf-8')
            return [eio_packet.Packet(encoded_packet=part) for part in body.split('\x1e')] if body else []
        except ValueError as exc:  # UnicodeDecodeError and binascii.Error included
            self.logger.warning('invalid polling response: %s', exc)
            return None

    def _write_loop(self) -> None:
        """Send what is queued until the connection ends, at most ``MAX_PACKETS_PER_POST`` per POST.

        Replaces python-engineio's writer, which puts everything queued in
        one POST: python-engineio servers refuse more than 16 packets in a
        payload, so a burst of emits over long-polling was lost and the
        connection failed.  A ``None`` in the queue ends the writer.
        """
        timeout = max(self.ping_interval, self.ping_timeout) + 5
        while self.state == 'connected':
            try:
                first = self.queue.get(timeout=timeout)
            except self.queue_empty:
                self.logger.error('packet queue is empty, aborting')
                break
            batch, last = take_batch(self.queue, first, self.queue_empty)
            if batch and not self._send_batch(batch):
                break
            if last:
                break
        self.logger.info('Exiting write loop task')
        self.write_loop_task = None

    def _send_batch(self, batch: list[Any]) -> bool:
        """Send packets on the current transport; False once it failed."""
        try:
            if self.current_transport == 'polling':
                body = eio_payload.Payload(packets=batch).encode()
                response = self._send_request('POST', self.base_url, body=body,
                                              headers={'Content-Type': 'text/plain'}, timeout=self.request_timeout)
                if response is None or isinstance(response, str) or not 200 <= response.status_code < 300:
                    status = getattr(response, 'status_code', response)
                    self.logger.warning('polling POST failed (%s), aborting', status)
                    return False
                return True
            for pkt in batch:
                if pkt.binary:
                    self.ws.send_binary(pkt.encode())
                else:
                    self.ws.send(pkt.encode())
            return True
        except (_WS_CLOSED, OSError):  # BrokenPipeError included
            self.logger.warning('WebSocket connection was closed, aborting')
            return False
        finally:
            for _ in batch:
                self.queue.task_done()

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == 'message':
            handler = self.handlers.get('message')
            if handler is not None:
                handler(*args)
            return None
        return super()._trigger_event(event, *args, **kwargs)


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

    _engine_base = engineio.Client

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

    def _create_engine(self, options: dict[str, Any]) -> _EngineClient:
        return _EngineClient(**options)

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

    def _flush(self, timeout: float) -> None:
        work = self.eio.queue
        if self.eio.state != 'connected' or threading.current_thread() is self.eio.write_loop_task:
            return
        if not work.unfinished_tasks:
            return
        condition = getattr(work, 'all_tasks_done', None)
        if condition is None:  # gevent's patched Queue: join() takes a timeout
            work.join(timeout)
            return
        with condition:
            if work.unfinished_tasks:
                condition.wait(timeout)

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
