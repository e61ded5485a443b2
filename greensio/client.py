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
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import engineio
from engineio import base_client as eio_base_client
from engineio import packet as eio_packet
from engineio import payload as eio_payload

from . import exceptions
from ._core.client_events import (
    AckArrived,
    EventArrived,
    NamespaceConnected,
    NamespaceDisconnected,
    NamespaceRefused,
)
from ._core.errors import LocalProtocolError, RemoteProtocolError
from ._core.handlers import call_trimmed
from ._core.reconnect import backoff_schedule
from .base_client import CLIENT_RESERVED_EVENTS, BaseClient, _real  # noqa: F401 - CLIENT_RESERVED_EVENTS re-exported

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
#: Packets per long-polling POST: python-engineio servers refuse payloads of more than 16.
MAX_PACKETS_PER_POST = 16
#: How long ``disconnect()`` lets queued packets (the DISCONNECTs) reach the server.
FLUSH_SECONDS = 1.0

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
            batch, last = self._take_batch(first)
            if batch and not self._send_batch(batch):
                break
            if last:
                break
        self.logger.info('Exiting write loop task')
        self.write_loop_task = None

    def _take_batch(self, first: Any) -> tuple[list[Any], bool]:
        """``first`` and what else is queued, up to the limit; True if the end marker came."""
        batch: list[Any] = []
        item = first
        while item is not None:
            batch.append(item)
            if len(batch) >= MAX_PACKETS_PER_POST:
                return batch, False
            try:
                item = self.queue.get(block=False)
            except self.queue_empty:
                return batch, False
        self.queue.task_done()  # the end marker
        return batch, True

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


class _CallWaiter:
    """The callback ``call()`` uses: resolved on the reader, never queued behind handlers."""

    def __init__(self, done: Any) -> None:
        self.done = done
        self.args: tuple[Any, ...] = ()

    def __call__(self, *args: Any) -> None:
        self.args = args
        self.done.set()


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
        self._answered: set[str] = set()
        self._answer = self.eio.create_event()
        self._finished = self.eio.create_event()
        self._finished.set()
        self._reconnect_task: Any = None
        self._reconnect_abort = self.eio.create_event()

    def _create_engine(self, options: dict[str, Any]) -> _EngineClient:
        return _EngineClient(**options)

    # -- connecting -------------------------------------------------------------

    def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                namespaces: Any = None, socketio_path: str = 'socket.io', wait: bool = True,
                wait_timeout: float = 1, retry: bool = False) -> None:
        if self.connected:
            raise exceptions.ConnectionError('Already connected')
        self._stop_reconnecting()
        self._remember(url, headers, auth, transports, namespaces, socketio_path, wait_timeout)
        self._finished.clear()
        try:
            self._attempt(self.connection_namespaces, wait, wait_timeout)
        except exceptions.ConnectionError as exc:
            if not (retry and isinstance(exc.__cause__, engineio.exceptions.ConnectionError) and self._retry()):
                self._finish()
                raise
        except BaseException:
            self._finish()
            raise

    def _retry(self) -> bool:
        """``connect(retry=True)``: the reconnection schedule, run in the caller's thread."""
        me = threading.current_thread()
        with self._lock:
            self._reconnect_abort.clear()
            _reconnecting.add(self)
            self._reconnect_task = me  # so that shutdown() from elsewhere can abort it
        try:
            return self._reconnect_loop(self.connection_namespaces)
        finally:
            with self._lock:
                if self._reconnect_task is me:
                    self._reconnect_task = None

    def _attempt(self, namespaces: list[str], wait: bool, wait_timeout: float, in_loop: bool = False) -> None:
        """One Engine.IO connection plus its namespaces; raises ``ConnectionError``."""
        self._attempt_namespaces = namespaces
        self._answered = set()
        self._answer.clear()
        args, kwargs = self._engine_connect_args()
        try:
            self.eio.connect(*args, **kwargs)
        except engineio.exceptions.ConnectionError as exc:
            detail = self._connect_error_detail(exc)
            for namespace in namespaces:
                self._run_handler('connect_error', namespace, detail)
            raise exceptions.ConnectionError(exc.args[0] if exc.args else 'Connection error') from exc
        if wait:
            self._wait_for_namespaces(namespaces, wait_timeout)
        with self._lock:
            if self.eio.state != 'connected':
                raise exceptions.ConnectionError('Connection lost while connecting')
            self.connected = True
            if in_loop:  # from here on a lost connection needs a new reconnection task
                self._reconnect_task = None

    def _wait_for_namespaces(self, namespaces: list[str], wait_timeout: float) -> None:
        wanted = set(namespaces)
        # each wake-up is one namespace's answer or the connection's end, so
        # this loop runs at most len(namespaces) + 1 times past its timeouts
        while not wanted <= self._answered and self.eio.state == 'connected':
            if not self._answer.wait(wait_timeout):
                break
            self._answer.clear()
        connected = set(self._session.namespaces)
        if wanted <= connected:
            return
        missing = [ns for ns in namespaces if ns not in connected]
        refused = [ns for ns in missing if ns in self._session.failed]
        lost = self.eio.state != 'connected'
        self._drop_connection()
        if lost:
            raise exceptions.ConnectionError('Connection lost while connecting')
        if refused:
            raise exceptions.ConnectionError('One or more namespaces failed to connect: ' + ', '.join(refused))
        raise exceptions.ConnectionError('Timed out waiting for namespaces: ' + ', '.join(missing))

    def wait(self) -> None:
        wait_event(self._finished)

    # -- emitting ---------------------------------------------------------------

    def emit(self, event: str, data: Any = None, namespace: str | None = None, callback: Callable | None = None) -> None:
        namespace = namespace or '/'
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('Emitting event "%s" [%s]', event, namespace)
        with self._lock:
            try:
                pkt = self._session.emit(namespace, event, data, callback)
            except LocalProtocolError as exc:
                if namespace not in self._session.namespaces:
                    raise exceptions.BadNamespaceError(str(exc)) from None
                raise
            self._send_packet(pkt)

    def send(self, data: Any, namespace: str | None = None, callback: Callable | None = None) -> None:
        self.emit('message', data=data, namespace=namespace, callback=callback)

    def call(self, event: str, data: Any = None, namespace: str | None = None, timeout: float | None = 60) -> Any:
        waiter = _CallWaiter(self.eio.create_event())
        self.emit(event, data=data, namespace=namespace, callback=waiter)
        if not wait_event(waiter.done, timeout):
            raise exceptions.TimeoutError()
        return self._call_result(waiter.args)

    # -- disconnecting ----------------------------------------------------------

    def disconnect(self) -> None:
        self._stop_reconnecting()
        with self._lock:
            for pkt in self._session.disconnect():
                self._send_packet(pkt)
        self._flush(FLUSH_SECONDS)
        self.eio.disconnect(abort=self._in_reader())
        with self._lock:  # never connected, or already lost: nothing ran _finish
            self.connected = False
        self._finish()
        if not self._workers.is_worker() and not self._in_reader():
            self._workers.join(WORKER_JOIN_SECONDS)

    def shutdown(self) -> None:
        self.disconnect()

    # -- runtime ------------------------------------------------------------------

    def sleep(self, seconds: float = 0) -> None:
        return self.eio.sleep(seconds)

    # -- sending ------------------------------------------------------------------

    def _send_packet(self, pkt: Any) -> None:
        """Queue a packet's Engine.IO messages (callers hold ``_lock`` so parts stay together)."""
        encoded = pkt.encode()
        if isinstance(encoded, list):
            for part in encoded:
                self.eio.send(part)
        else:
            self.eio.send(encoded)

    def _flush(self, timeout: float) -> None:
        """Wait (bounded) until python-engineio's writer has sent what is queued."""
        work = self.eio.queue
        if self.eio.state != 'connected' or self._in_writer():
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

    def _drop_connection(self) -> None:
        """Close a connection that never became usable, without running handlers."""
        with self._lock:
            self.connected = False
            for pkt in self._session.disconnect():
                self._send_packet(pkt)
        self.eio.disconnect(abort=self._in_reader())

    def _in_reader(self) -> bool:
        return threading.current_thread() is self.eio.read_loop_task

    def _in_writer(self) -> bool:
        return threading.current_thread() is self.eio.write_loop_task

    # -- inbound --------------------------------------------------------------------

    def _handle_eio_connect(self) -> None:
        self.sid = self.eio.sid
        auth = _real(self.connection_auth)
        with self._lock:
            for pkt in self._session.open(self.eio.sid, self._attempt_namespaces, auth):
                self._send_packet(pkt)

    def _handle_eio_message(self, data: str | bytes) -> None:
        try:
            with self._lock:
                events = self._session.receive(data)
        except RemoteProtocolError as exc:
            self.logger.warning('protocol violation by the server, closing the connection: %s', exc)
            self.eio.disconnect(abort=True, reason=self.reason.TRANSPORT_ERROR)
            return
        for event in events:
            kind = type(event)
            if kind is EventArrived:
                self._workers.submit(self._handle_event, event)
            elif kind is AckArrived:
                if type(event.callback) is _CallWaiter:
                    event.callback(*event.args)
                else:
                    self._workers.submit(self._handle_ack, event)
            elif kind is NamespaceConnected:
                self.logger.info('Namespace %s is connected', event.namespace)
                self._workers.submit(self._handle_answer, 'connect', event.namespace, ())
            elif kind is NamespaceRefused:
                self.logger.info('Connection to namespace %s was rejected', event.namespace)
                self._workers.submit(self._handle_answer, 'connect_error', event.namespace, event.args)
            elif kind is NamespaceDisconnected:
                self._handle_server_disconnect(event.namespace)
            else:
                self.logger.warning('%s [%s], packet ignored', event.reason, event.namespace)

    def _handle_answer(self, handler: str, namespace: str, args: tuple[Any, ...]) -> None:
        # connect() returns once the connect handlers ran, as in python-socketio
        self._run_handler(handler, namespace, *args)
        self._answered.add(namespace)
        self._answer.set()

    def _handle_event(self, event: EventArrived) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('Received event "%s" [%s]', event.event, event.namespace)
        try:
            result = self._trigger_event(event.event, event.namespace, *event.args)
        except Exception:
            self.logger.exception('event handler error: "%s" [%s]', event.event, event.namespace)
            return
        if event.ack_id is not None:  # the client acks even without a handler
            with self._lock:
                self._send_packet(self._session.ack(event.namespace, event.ack_id, result))

    def _handle_ack(self, ack: AckArrived) -> None:
        try:
            ack.callback(*ack.args)
        except Exception:
            self.logger.exception('ack callback error [%s]', ack.namespace)

    def _handle_server_disconnect(self, namespace: str) -> None:
        self.logger.info('Namespace %s was disconnected by the server', namespace)
        with self._lock:
            if not self.connected:  # connect() is still waiting; it sees the namespace gone
                self._answer.set()
                return
            closing = not self._session.namespaces
            if closing:
                self.connected = False
        self._workers.submit(self._finish_server_disconnect, namespace, closing)

    def _finish_server_disconnect(self, namespace: str, closing: bool) -> None:
        self._run_handler('disconnect', namespace, self.reason.SERVER_DISCONNECT)
        self._run_handler('__disconnect_final', namespace)
        if closing:  # no namespace left: close the transport, from here and not from its reader
            self.eio.disconnect()
            self._finish()

    def _handle_eio_disconnect(self, reason: str | None = None) -> None:
        """The Engine.IO connection ended (engineio runs this on its reader or in ``disconnect``)."""
        reason = reason or self.reason.TRANSPORT_ERROR
        with self._lock:
            was_connected, self.connected = self.connected, False
            lost = self._session.connection_lost()
            # engineio's state is still 'connected' only when the transport failed
            will_reconnect = self.reconnection and was_connected and self.eio.state == 'connected'
        self.sid = None
        self._answer.set()  # wake a connect() waiting for namespace answers
        if not was_connected:  # an attempt that failed: connect() reports it
            return
        self.logger.info('Engine.IO connection dropped (%s)', reason)
        for namespace in lost:
            self._run_handler('disconnect', namespace, reason)
            if not will_reconnect:
                self._run_handler('__disconnect_final', namespace)
        if not will_reconnect:
            self._finish()
            return
        namespaces = lost or self.connection_namespaces
        with self._lock:
            # disconnect() from a disconnect handler sets _finished: no reconnection then
            if self._reconnect_task is None and not self._finished.is_set():
                self._reconnect_abort.clear()
                _reconnecting.add(self)  # from now on Ctrl-C aborts it
                self._reconnect_task = self.start_background_task(self._reconnect_main, namespaces)

    # -- reconnection -------------------------------------------------------------

    def _reconnect_main(self, namespaces: list[str]) -> None:
        try:
            reconnected = self._reconnect_loop(namespaces)
        finally:
            with self._lock:
                if self._reconnect_task is threading.current_thread():
                    self._reconnect_task = None
        if not reconnected:
            self._finish()

    def _reconnect_loop(self, namespaces: list[str]) -> bool:
        """Retry on the backoff schedule; True once connected again (the caller registered in _reconnecting)."""
        try:
            schedule = backoff_schedule(self.reconnection_delay, self.reconnection_delay_max,
                                        self.randomization_factor, self.reconnection_attempts)
            for attempt, delay in enumerate(schedule, 1):
                self.logger.info('Connection failed, new attempt in %.02f seconds', delay)
                if wait_event(self._reconnect_abort, delay):
                    self.logger.info('Reconnect task aborted')
                    break
                try:
                    self._attempt(namespaces, True, self._wait_timeout, in_loop=True)
                except (exceptions.ConnectionError, ValueError) as exc:
                    self.logger.info('Reconnection attempt %d failed: %s', attempt, exc)
                    continue
                if self._reconnect_abort.is_set():  # shutdown() while the attempt was under way
                    self._drop_connection()
                    break
                self.logger.info('Reconnection successful')
                return True
            else:
                self.logger.info('Maximum reconnection attempts reached, giving up')
            for namespace in namespaces:
                self._run_handler('__disconnect_final', namespace)
            return False
        finally:
            _reconnecting.discard(self)

    def _stop_reconnecting(self) -> None:
        with self._lock:
            task = self._reconnect_task
        if task is None or task is threading.current_thread():
            return
        self._reconnect_abort.set()
        # an attempt under way ends within the request timeout plus the namespace wait
        task.join(self.eio.request_timeout + self._wait_timeout + 1)

    def _finish(self) -> None:
        """Disconnected for good: release ``wait()`` and end the handler workers."""
        self._finished.set()
        self._workers.close()

    # -- handlers -------------------------------------------------------------------

    def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        found = self._registry.resolve(namespace, event)
        if found is None:
            return None
        handler, lead = found
        if event == 'disconnect':  # reason is optional (legacy handlers take none)
            return call_trimmed(handler, lead + args, 1)
        return handler(*lead, *args)

    def _run_handler(self, event: str, namespace: str, *args: Any) -> None:
        """Run a lifecycle handler; its errors are logged, never raised into the connection."""
        try:
            self._trigger_event(event, namespace, *args)
        except Exception:
            self.logger.exception('%s handler error [%s]', event, namespace)
