"""What the green and asyncio clients share: ``Client``/``AsyncClient``, ``SimpleClient``/``AsyncSimpleClient``.

Shell ring.  Options, the Engine.IO client's construction, handler
registration and resolution, the connection parameters, the read-only state
(``namespaces``, ``get_sid``...), the public docstrings and every multi-step
flow (connect and its retry, the namespace wait, call, disconnect, packet
dispatch, the reconnection schedule, the simple client's inbox) are written
once here, as generators that yield the steps that may wait, so the twins cannot drift;
``_twins.drive`` and ``_twins.drive_async`` run them.
``_core.client_session.ClientSession`` holds the protocol state and
``_core.reconnect`` the backoff.  Each twin keeps only how it waits, spawns
and sends: the green one on (green) threads, the asyncio one on the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import time
from collections.abc import Callable, Generator
from typing import Any, ClassVar

from .. import exceptions
from .._core.client_events import (
    AckArrived,
    EventArrived,
    NamespaceConnected,
    NamespaceDisconnected,
    NamespaceRefused,
)
from .._core.client_session import ClientSession
from .._core.errors import LocalProtocolError, RemoteProtocolError
from .._core.handlers import HandlerRegistry, call_trimmed, event_decorator
from .._core.payload import from_args
from .._core.reconnect import backoff_schedule
from ..engineio import exceptions as eio_exceptions
from ..engineio.base_client import BaseClient as EngineBase
from .base_namespace import BaseClientNamespace
from .options import packet_class, setup_logger
from .twins import SharedDocs

default_logger = logging.getLogger('socketio.client')

#: Events a client's ``'*'`` handler never receives (python-socketio's ``Client.reserved_events``).
_RESERVED_EVENTS = ['connect', 'connect_error', 'disconnect', '__disconnect_final']
CLIENT_RESERVED_EVENTS = frozenset(_RESERVED_EVENTS)


#: A step of a flow: a callable and its arguments (see ``_twins.drive``).
Step = tuple[Any, ...]
Flow = Generator[Step, Any, Any]


class CallWaiter:
    """The callback ``call()`` uses: resolved on the reader, never queued behind handlers."""

    def __init__(self, done: Any) -> None:
        self.done = done  # a threading.Event, or an asyncio.Event
        self.args: tuple[Any, ...] = ()

    def __call__(self, *args: Any) -> None:
        self.args = args
        self.done.set()


def _real(value: Any) -> Any:
    """``url``, ``headers`` and ``auth`` may be callables, evaluated at every attempt.

    Used as a flow step: the asyncio twin's driver awaits what a coroutine
    function returns, as python-socketio's ``AsyncClient`` does.
    """
    return value() if callable(value) else value


class BaseClient(SharedDocs):
    """The parts of a Socket.IO client that do not depend on threads or asyncio.

    Not used directly: see :class:`greensio.Client` and :class:`greensio.AsyncClient`.
    """

    reason = EngineBase.reason
    reserved_events: ClassVar[list[str]] = list(_RESERVED_EVENTS)

    #: The Engine.IO client class the twin builds on (its options are accepted).
    _engine_base: ClassVar[type] = EngineBase

    # each twin creates these, as threading or asyncio events and a thread or task
    _answer: Any  # set at each namespace answer and when the connection ends
    _finished: Any  # set while disconnected for good: releases wait()
    _reconnect_abort: Any  # set to stop a reconnection loop
    _reconnect_task: Any

    def __init__(self, reconnection: bool = True, reconnection_attempts: int = 0, reconnection_delay: float = 1,
                 reconnection_delay_max: float = 5, randomization_factor: float = 0.5, logger: Any = False,
                 serializer: Any = 'default', json: Any = None, handle_sigint: bool = True, **kwargs: Any) -> None:
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.reconnection_delay = reconnection_delay
        self.reconnection_delay_max = reconnection_delay_max
        self.randomization_factor = randomization_factor
        self.handle_sigint = handle_sigint
        self.logger = setup_logger(logger, default_logger)
        engineio_options = dict(kwargs)
        if 'engineio_logger' in engineio_options:
            engineio_options['logger'] = engineio_options.pop('engineio_logger')
        engineio_options['handle_sigint'] = handle_sigint
        self.packet_class = packet_class(serializer)
        if json is not None:
            self.packet_class.json = json
            engineio_options['json'] = json
        accepted = frozenset(inspect.signature(self._engine_base.__init__).parameters) - {'self'}
        ignored = set(engineio_options) - accepted
        if ignored:
            self.logger.debug('ignoring unknown client options: %s', ', '.join(sorted(ignored)))
        self.eio = self._engine_base(**{k: v for k, v in engineio_options.items() if k in accepted})
        self.eio._raw_messages = True  # on the reader, in order, undecoded: the Socket.IO layer decodes
        self.eio.on('connect', self._handle_eio_connect)
        self.eio.on('message', self._handle_eio_message)
        self.eio.on('disconnect', self._handle_eio_disconnect)

        self._registry = HandlerRegistry(CLIENT_RESERVED_EVENTS, client=True)
        self.handlers = self._registry.handlers
        self.namespace_handlers = self._registry.namespace_handlers
        self._session = ClientSession(self.packet_class)
        self.connection_url: Any = None
        self.connection_headers: Any = None
        self.connection_auth: Any = None
        self.connection_transports: Any = None
        self.connection_namespaces: list[str] = []
        self.socketio_path: str | None = None
        self.sid: str | None = None
        #: True from a successful ``connect()`` until the connection is lost.
        self.connected = False
        self._wait_timeout: float = 1
        self._attempt_namespaces: list[str] = []
        self._answered: set[str] = set()
        self._lock: Any = contextlib.nullcontext()
        self._recovered: dict[str, bool] = {}  # namespace -> restored by the server, this connection
        self._reconnect_gate: Any = None  # the reconnection task waits there for the disconnect handlers

    def is_asyncio_based(self) -> bool:
        """``True`` for :class:`AsyncClient`."""
        return self.eio.is_asyncio_based()

    @property
    def namespaces(self) -> dict[str, str]:
        """Connected namespaces and their sids."""
        return self._session.namespaces

    @property
    def failed_namespaces(self) -> list[str]:
        """Namespaces the server refused during the last connection."""
        return self._session.failed

    @property
    def callbacks(self) -> dict[str, dict[int, Any]]:
        """Ack callbacks waiting for the server, per namespace and ack id."""
        return self._session.callbacks

    # -- handler registration (shared) ----------------------------------------------------

    def on(self, event: str, handler: Callable | None = None, namespace: str | None = None) -> Any:
        """Register a handler for ``event`` (as a decorator or with ``handler``).

        ``connect()`` takes no arguments, ``connect_error(data)`` gets the
        server's refusal, ``disconnect(reason)`` (or ``disconnect()``) one of
        :attr:`reason`; other handlers get the event's arguments and their
        return value is the ack.  ``event='*'`` catches events without a
        handler (the event name comes first); ``namespace='*'`` catches
        namespaces without handlers (the namespace comes first).  An
        :class:`AsyncClient`'s handlers may be plain or coroutine functions.
        """
        return self._registry.on(event, handler, namespace)

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """Register a handler named after the decorated function (``@sio.event`` or ``@sio.event(namespace=...)``)."""
        return event_decorator(self.on, args, kwargs)

    def register_namespace(self, namespace_handler: Any) -> None:
        """Register a class-based namespace (``ClientNamespace`` or ``AsyncClientNamespace``)."""
        if not isinstance(namespace_handler, BaseClientNamespace):
            raise ValueError('Not a namespace instance')  # noqa: TRY004 - python-socketio's exception
        if namespace_handler.is_asyncio_based() != self.is_asyncio_based():
            raise ValueError('Not a valid namespace class for this client')
        namespace_handler._set_client(self)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler

    # -- the public API: documented here, implemented by each twin ----------------------------

    def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                namespaces: Any = None, socketio_path: str = 'socket.io', wait: bool = True,
                wait_timeout: float = 1, retry: bool = False) -> Any:
        """Connect to a Socket.IO server.

        :param url: the server's URL, query string included.
        :param headers: extra HTTP headers for the handshake.
        :param auth: data for the server's connect handler (a dict).
        :param transports: ``['websocket']``, ``['polling']`` or ``None``
            (polling, then an upgrade to websocket).
        :param namespaces: a namespace or a list; default: every namespace
            with a handler, or ``'/'``.
        :param socketio_path: the server's endpoint.
        :param wait: return only once every namespace answered; any that
            did not connect raise :class:`exceptions.ConnectionError`.
        :param wait_timeout: seconds to wait for each namespace answer.
        :param retry: if the server cannot be reached, retry with the
            reconnection schedule before giving up.

        ``url``, ``headers`` and ``auth`` may be callables, called at every
        (re)connection attempt; with ``AsyncClient`` they may also be
        coroutine functions, awaited.
        """
        raise NotImplementedError

    def wait(self) -> Any:
        """Wait until the client is disconnected for good (it waits through reconnections)."""
        raise NotImplementedError

    def emit(self, event: str, data: Any = None, namespace: str | None = None, callback: Callable | None = None) -> Any:
        """Emit an event to the server.

        ``data`` may be a tuple for several arguments; bytes anywhere inside
        travel as binary attachments.  ``callback`` receives the server's
        ack.  Safe to call from several threads (or tasks) at once.
        """
        raise NotImplementedError

    def send(self, data: Any, namespace: str | None = None, callback: Callable | None = None) -> Any:
        """Send a ``message`` event."""
        raise NotImplementedError

    def call(self, event: str, data: Any = None, namespace: str | None = None, timeout: float | None = 60) -> Any:
        """Emit and wait until the server acks; return its value(s).

        Returns ``None``, the single value, or a tuple of values; raises
        :class:`exceptions.TimeoutError` after ``timeout`` seconds (``None``
        waits for ever), even if the connection drops meanwhile.
        """
        raise NotImplementedError

    def disconnect(self) -> Any:
        """Leave every namespace and close the connection; stops reconnecting too.

        ``disconnect`` handlers get :attr:`reason.CLIENT_DISCONNECT`.
        """
        raise NotImplementedError

    def shutdown(self) -> Any:
        """Disconnect, or stop a reconnection in progress; leaves no task running."""
        raise NotImplementedError

    def get_sid(self, namespace: str | None = None) -> str | None:
        """The sid the server gave this client in ``namespace``, or ``None``."""
        return self._session.namespaces.get(namespace or '/')

    def transport(self) -> str:
        """``'polling'`` or ``'websocket'``."""
        return self.eio.transport()

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``target`` concurrently: a thread (green under gevent) with ``join()``,
        or for :class:`AsyncClient` an ``asyncio.Task`` (``target`` a coroutine function).
        """
        return self.eio.start_background_task(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> Any:
        """Sleep without blocking other threads (or tasks)."""
        raise NotImplementedError

    # -- shared helpers -------------------------------------------------------------------------

    def _remember(self, url: Any, headers: Any, auth: Any, transports: Any, namespaces: Any,
                  socketio_path: str, wait_timeout: float) -> None:
        """Keep ``connect()``'s arguments for reconnections; default the namespaces."""
        if namespaces is None:
            namespaces = [ns for ns in {**self.handlers, **self.namespace_handlers} if ns != '*'] or ['/']
        elif isinstance(namespaces, str):
            namespaces = [namespaces]
        self.connection_url = url
        self.connection_headers = headers
        self.connection_auth = auth
        self.connection_transports = transports
        self.connection_namespaces = list(namespaces)
        self.socketio_path = socketio_path
        self._wait_timeout = wait_timeout

    def _engine_connect_args(self, url: Any, headers: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """What ``eio.connect`` gets for an attempt (``url`` and ``headers`` already evaluated)."""
        return ((url,),
                {'headers': dict(headers or {}), 'transports': self.connection_transports,
                 'engineio_path': self.socketio_path})

    @staticmethod
    def _connect_error_detail(exc: BaseException) -> Any:
        """The ``connect_error`` argument for the Engine.IO client's ``ConnectionError``."""
        return exc.args[1] if len(exc.args) > 1 else (exc.args[0] if exc.args else None)

    # -- what each twin provides: how it waits, spawns and sends ----------------------------------------
    #
    # ``_lock`` guards the session and keeps a packet's parts together (a
    # ``threading.Lock`` for the green twin, a no-op on the event loop, where
    # nothing yields inside it).  Flows never yield while holding it.

    def _run_flow(self, flow: Flow) -> Any:
        """Drive ``flow``: its value, or for :class:`AsyncClient` an awaitable of it."""
        raise NotImplementedError

    def _current(self) -> Any:
        """The running thread (green twin) or task (asyncio twin)."""
        raise NotImplementedError

    def _wait(self, event: Any, timeout: float | None) -> Any:
        """Wait (bounded) for ``event``; True once it is set (an awaitable of it on asyncio)."""
        raise NotImplementedError

    def _submit(self, flow: Flow) -> None:
        """Run ``flow`` concurrently, on a handler worker or in a task."""
        raise NotImplementedError

    def _queue_message(self, data: str | bytes) -> None:
        """Queue one Engine.IO message without waiting."""
        raise NotImplementedError

    def _join_reconnect(self, task: Any, timeout: float) -> Any:
        """Wait (bounded) until the reconnection ``task`` stopped."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Disconnected for good: release ``wait()``."""
        self._finished.set()

    def _handle_eio_message(self, data: str | bytes) -> Any:
        raise NotImplementedError

    def _handle_eio_disconnect(self, reason: str | None = None) -> Any:
        raise NotImplementedError

    def _mark_reconnecting(self) -> None:
        """A reconnection starts (the green twin lets Ctrl-C abort it)."""

    # -- shared steps -------------------------------------------------------------------------

    def _in_reader(self) -> bool:
        return self._current() is self.eio.read_loop_task

    def _send_packet(self, pkt: Any) -> None:
        """Queue a packet's Engine.IO messages (callers hold ``_lock`` so parts stay together)."""
        encoded = pkt.encode()
        for part in encoded if isinstance(encoded, list) else (encoded,):
            self._queue_message(part)

    def _emit(self, event: str, data: Any, namespace: str | None, callback: Callable | None) -> None:
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

    def _eio_disconnect(self, **kwargs: Any) -> Step:
        """The step that closes the Engine.IO connection."""
        return (functools.partial(self.eio.disconnect, **kwargs),)

    def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        found = self._registry.resolve(namespace, event)
        if found is None:
            return None
        handler, lead = found
        if event == 'disconnect':  # reason is optional (legacy handlers take none)
            return call_trimmed(handler, lead + args, 1)
        return handler(*lead, *args)

    # -- flows: written once, driven by each twin's _run_flow ----------------------------------

    def _handler_flow(self, event: str, namespace: str, *args: Any) -> Flow:
        """Run a lifecycle handler; its errors are logged, never raised into the connection."""
        try:
            yield (self._trigger_event, event, namespace, *args)
        except Exception:
            self.logger.exception('%s handler error [%s]', event, namespace)

    def _connect_flow(self, url: Any, headers: Any, auth: Any, transports: Any, namespaces: Any,
                      socketio_path: str, wait: bool, wait_timeout: float, retry: bool) -> Flow:
        if self.connected:
            raise exceptions.ConnectionError('Already connected')
        yield (self._stop_reconnecting,)
        self._remember(url, headers, auth, transports, namespaces, socketio_path, wait_timeout)
        self._finished.clear()
        try:
            yield from self._attempt_flow(self.connection_namespaces, wait, wait_timeout)
        except exceptions.ConnectionError as exc:
            if not (retry and isinstance(exc.__cause__, eio_exceptions.ConnectionError)
                    and (yield from self._retry_flow())):
                self._finish()
                raise
        except BaseException:
            self._finish()
            raise

    def _retry_flow(self) -> Flow:
        """``connect(retry=True)``: the reconnection schedule, run by the caller."""
        me = self._current()
        with self._lock:
            self._reconnect_abort.clear()
            self._mark_reconnecting()
            self._reconnect_task = me  # so that shutdown() from elsewhere can abort it
        try:
            return (yield (self._reconnect_loop, self.connection_namespaces))
        finally:
            with self._lock:
                if self._reconnect_task is me:
                    self._reconnect_task = None

    def _attempt_flow(self, namespaces: list[str], wait: bool, wait_timeout: float, in_loop: bool = False) -> Flow:
        """One Engine.IO connection plus its namespaces; raises ``ConnectionError``."""
        self._attempt_namespaces = namespaces
        self._answered = set()
        self._answer.clear()
        url = yield (_real, self.connection_url)
        headers = yield (_real, self.connection_headers)
        args, kwargs = self._engine_connect_args(url, headers)
        try:
            yield (functools.partial(self.eio.connect, **kwargs), *args)
        except eio_exceptions.ConnectionError as exc:
            detail = self._connect_error_detail(exc)
            for namespace in namespaces:
                yield from self._handler_flow('connect_error', namespace, detail)
            raise exceptions.ConnectionError(exc.args[0] if exc.args else 'Connection error') from exc
        if wait:
            yield from self._wait_for_namespaces_flow(namespaces, wait_timeout)
        with self._lock:
            if self.eio.state != 'connected':
                raise exceptions.ConnectionError('Connection lost while connecting')
            self.connected = True
            if in_loop:  # from here on a lost connection needs a new reconnection task
                self._reconnect_task = None

    def _wait_for_namespaces_flow(self, namespaces: list[str], wait_timeout: float) -> Flow:
        wanted = set(namespaces)
        # each wake-up is one namespace's answer or the connection's end, so
        # this loop runs at most len(namespaces) + 1 times past its timeouts
        while not wanted <= self._answered and self.eio.state == 'connected':
            if not (yield (self._wait, self._answer, wait_timeout)):
                break
            self._answer.clear()
        connected = set(self._session.namespaces)
        if wanted <= connected:
            return
        missing = [ns for ns in namespaces if ns not in connected]
        refused = [ns for ns in missing if ns in self._session.failed]
        lost = self.eio.state != 'connected'
        yield from self._drop_connection_flow()
        if lost:
            raise exceptions.ConnectionError('Connection lost while connecting')
        if refused:
            raise exceptions.ConnectionError('One or more namespaces failed to connect: ' + ', '.join(refused))
        raise exceptions.ConnectionError('Timed out waiting for namespaces: ' + ', '.join(missing))

    def _call_flow(self, waiter: CallWaiter, event: str, data: Any, namespace: str | None,
                   timeout: float | None) -> Flow:
        yield (self.emit, event, data, namespace, waiter)
        if not (yield (self._wait, waiter.done, timeout)):
            with self._lock:  # an ack that never comes must not keep its waiter for the connection's life
                pending = self._session.callbacks.get(namespace or '/', {})
                for ack_id in [i for i, cb in pending.items() if cb is waiter]:
                    del pending[ack_id]
            raise exceptions.TimeoutError()
        return from_args(waiter.args)

    def _disconnect_flow(self) -> Flow:
        yield (self._stop_reconnecting,)
        with self._lock:
            for pkt in self._session.disconnect():
                self._send_packet(pkt)
        # the Engine.IO client sends what is queued (these DISCONNECTs) before its CLOSE
        yield self._eio_disconnect(abort=self._in_reader())
        with self._lock:  # never connected, or already lost: nothing ran _finish
            self.connected = False
        self._finish()

    def _drop_connection_flow(self) -> Flow:
        """Close a connection that never became usable, without running handlers."""
        with self._lock:
            self.connected = False
            for pkt in self._session.disconnect():
                self._send_packet(pkt)
        yield self._eio_disconnect(abort=self._in_reader())

    # -- inbound ------------------------------------------------------------------------------

    def _handle_eio_connect(self) -> Any:
        return self._run_flow(self._eio_connect_flow())

    @property
    def recovered(self) -> bool:
        """Whether the server restored the earlier session of every namespace of this connection.

        Servers with connection state recovery (greensio's, Node's socket.io
        4.6+) keep a dropped client's sid, rooms and data for a while and
        replay what it missed; a reconnection that finds them sets this.
        """
        return bool(self._recovered) and all(self._recovered.values())

    def _eio_connect_flow(self) -> Flow:
        self.sid = self.eio.sid
        self._recovered = {}
        auth = yield (_real, self.connection_auth)
        with self._lock:
            for pkt in self._session.open(self.eio.sid, self._attempt_namespaces, auth):
                self._send_packet(pkt)

    def _message_flow(self, data: str | bytes) -> Flow:
        """Decode a message on the reader, in order; hand its events to handlers."""
        try:
            with self._lock:
                events = self._session.receive(data)
        except RemoteProtocolError as exc:
            self.logger.warning('protocol violation by the server, closing the connection: %s', exc)
            # a failed connection, not a chosen disconnect: reconnection applies (socket.io-client
            # reconnects after a "parse error" too)
            yield self._eio_disconnect(abort=True, reason=self.reason.TRANSPORT_ERROR)
            return
        for event in events:
            kind = type(event)
            if kind is EventArrived:
                self._submit(self._event_flow(event))
            elif kind is AckArrived:
                if type(event.callback) is CallWaiter:  # call(): resolved here, never queued behind handlers
                    event.callback(*event.args)
                else:
                    self._submit(self._ack_flow(event))
            elif kind is NamespaceConnected:
                self.logger.info('Namespace %s is %s', event.namespace,
                                 'recovered' if event.recovered else 'connected')
                self._recovered[event.namespace] = event.recovered
                self._submit(self._answer_flow('connect', event.namespace, ()))
            elif kind is NamespaceRefused:
                self.logger.info('Connection to namespace %s was rejected', event.namespace)
                self._submit(self._answer_flow('connect_error', event.namespace, event.args))
            elif kind is NamespaceDisconnected:
                self._handle_server_disconnect(event.namespace)
            else:
                self.logger.warning('%s [%s], packet ignored', event.reason, event.namespace)

    def _answer_flow(self, handler: str, namespace: str, args: tuple[Any, ...]) -> Flow:
        # connect() returns once the connect handlers ran, as in python-socketio
        yield from self._handler_flow(handler, namespace, *args)
        self._answered.add(namespace)
        self._answer.set()

    def _event_flow(self, event: EventArrived) -> Flow:
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('Received event "%s" [%s]', event.event, event.namespace)
        try:
            result = yield (self._trigger_event, event.event, event.namespace, *event.args)
        except Exception:
            self.logger.exception('event handler error: "%s" [%s]', event.event, event.namespace)
            return
        if event.ack_id is not None:  # the client acks even without a handler
            with self._lock:
                self._send_packet(self._session.ack(event.namespace, event.ack_id, result))

    def _ack_flow(self, ack: AckArrived) -> Flow:
        try:
            yield (ack.callback, *ack.args)  # awaited on asyncio when it returns an awaitable
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
        self._submit(self._server_disconnect_flow(namespace, closing))

    def _server_disconnect_flow(self, namespace: str, closing: bool) -> Flow:
        yield from self._handler_flow('disconnect', namespace, self.reason.SERVER_DISCONNECT)
        yield from self._handler_flow('__disconnect_final', namespace)
        if closing:  # no namespace left: close the transport, from here and not from its reader
            yield (self.eio.disconnect,)
            self._finish()

    def _eio_disconnect_flow(self, reason: str | None) -> Flow:
        """The Engine.IO connection ended (run on its reader or in its ``disconnect``)."""
        reason = reason or self.reason.TRANSPORT_ERROR
        with self._lock:
            was_connected, self.connected = self.connected, False
            lost = self._session.connection_lost()
            # a failed transport (or a server that broke the protocol) is worth another
            # attempt; a disconnect by either side is final
            will_reconnect = self.reconnection and was_connected and reason == self.reason.TRANSPORT_ERROR
        self.sid = None
        self._answer.set()  # wake a connect() waiting for namespace answers
        if not was_connected:  # an attempt that failed: connect() reports it
            return
        self.logger.info('Engine.IO connection dropped (%s)', reason)
        gate = None
        if will_reconnect:
            with self._lock:
                if self._reconnect_task is None and not self._finished.is_set():
                    # started before the disconnect handlers run (it waits for them at the
                    # gate), so that Ctrl-C or disconnect() meanwhile finds and stops it
                    gate = self._reconnect_gate = self.eio.create_event()
                    self._reconnect_abort.clear()
                    self._mark_reconnecting()  # from now on Ctrl-C aborts it
                    self._reconnect_task = self.start_background_task(
                        self._reconnect_main, lost or self.connection_namespaces, gate)
        try:
            for namespace in lost:
                yield from self._handler_flow('disconnect', namespace, reason)
                if not will_reconnect:
                    yield from self._handler_flow('__disconnect_final', namespace)
        finally:
            if gate is not None:
                gate.set()
        if not will_reconnect:
            self._finish()

    # -- reconnection ---------------------------------------------------------------------------

    def _reconnect_main(self, namespaces: list[str], gate: Any) -> Any:
        """The reconnection task's body (an awaitable on asyncio)."""
        return self._run_flow(self._reconnect_main_flow(namespaces, gate))

    def _reconnect_main_flow(self, namespaces: list[str], gate: Any) -> Flow:
        me = self._current()
        try:
            yield (self._wait, gate, None)  # the disconnect handlers have run
            reconnected = yield (self._reconnect_loop, namespaces)
        finally:
            with self._lock:
                if self._reconnect_task is me:
                    self._reconnect_task = None
        if not reconnected:
            self._finish()

    def _reconnect_loop(self, namespaces: list[str]) -> Any:
        """Retry on the backoff schedule; True once connected again (each twin brackets ``_reconnect_flow``)."""
        raise NotImplementedError

    def _reconnect_flow(self, namespaces: list[str]) -> Flow:
        schedule = backoff_schedule(self.reconnection_delay, self.reconnection_delay_max,
                                    self.randomization_factor, self.reconnection_attempts)
        for attempt, delay in enumerate(schedule, 1):
            self.logger.info('Connection failed, new attempt in %.02f seconds', delay)
            if (yield (self._wait, self._reconnect_abort, delay)):
                self.logger.info('Reconnect task aborted')
                break
            try:
                yield from self._attempt_flow(namespaces, True, self._wait_timeout, in_loop=True)
            except (exceptions.ConnectionError, ValueError) as exc:
                self.logger.info('Reconnection attempt %d failed: %s', attempt, exc)
                continue
            if self._reconnect_abort.is_set():  # shutdown() while the attempt was under way
                yield from self._drop_connection_flow()
                break
            self.logger.info('Reconnection successful')
            return True
        else:
            self.logger.info('Maximum reconnection attempts reached, giving up')
        for namespace in namespaces:
            yield from self._handler_flow('__disconnect_final', namespace)
        return False

    def _stop_reconnecting_flow(self) -> Flow:
        with self._lock:
            task = self._reconnect_task
        if task is None or task is self._current():
            return
        self._reconnect_abort.set()
        if self._reconnect_gate is not None:
            self._reconnect_gate.set()  # a disconnect handler calling disconnect(): the task waits there
        # an attempt under way ends within the request timeout plus the namespace wait
        yield (self._join_reconnect, task, self.eio.request_timeout + self._wait_timeout + 1)

    def _stop_reconnecting(self) -> Any:
        return self._run_flow(self._stop_reconnecting_flow())


class BaseSimpleClient(SharedDocs):
    """What :class:`SimpleClient` and :class:`AsyncSimpleClient` share, and their docstrings."""

    client_class: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.client_args = args
        self.client_kwargs = kwargs
        self.client: Any = None
        self.namespace = '/'
        #: True from ``connect()`` until disconnected for good (stays True while reconnecting).
        self.connected = False
        self.input_buffer: list[list[Any]] = []
        self._live = False  # the namespace is connected right now

    def _new_client(self, namespace: str) -> Any:
        """A fresh client whose handlers report to ``_update`` and fill the inbox."""
        self.namespace = namespace
        self.input_buffer = []
        client = self.client = self.client_class(*self.client_args, **self.client_kwargs)

        @client.event(namespace=namespace)
        def connect() -> None:
            self._update(live=True, connected=True)

        @client.event(namespace=namespace)
        def disconnect() -> None:
            self._update(live=False)  # emit/call wait while reconnecting

        @client.on('__disconnect_final', namespace=namespace)
        def disconnect_final() -> None:
            self._update(live=False, connected=False)

        @client.on('*', namespace=namespace)
        def on_event(event: str, *args: Any) -> None:
            self._update(event=[event, *args])

        return client

    # -- what each twin provides: how it waits for a change -------------------------------------

    def _guard(self) -> Any:
        """The context that guards the state (a ``threading.Condition``, or none on the event loop)."""
        raise NotImplementedError

    def _notify(self) -> None:
        """Wake whoever waits for a change (called inside ``_guard()``)."""
        raise NotImplementedError

    def _wait_change(self, timeout: float | None) -> Any:
        """Wait (inside ``_guard()``) for the next change or ``timeout`` (an awaitable on asyncio)."""
        raise NotImplementedError

    def _update(self, **state: Any) -> None:
        with self._guard():
            self._live = state.get('live', self._live)
            self.connected = state.get('connected', self.connected)
            if 'event' in state:
                self.input_buffer.append(state['event'])
            self._notify()

    # -- flows: written once, driven by each twin ------------------------------------------------

    def _connect_flow(self, url: Any, headers: Any, auth: Any, transports: Any, namespace: str,
                      socketio_path: str, wait_timeout: float) -> Flow:
        if self.connected:
            raise RuntimeError('Already connected')
        client = self._new_client(namespace)
        try:
            yield (functools.partial(client.connect, url, headers=headers, auth=auth, transports=transports,
                                     namespaces=[namespace], socketio_path=socketio_path,
                                     wait_timeout=wait_timeout),)
        except BaseException:
            self.client = None
            self._update(live=False, connected=False)
            raise
        self._update(live=True, connected=True)

    def _wait_live_flow(self) -> Flow:
        """Wait through a reconnection; ``DisconnectedError`` once it gave up."""
        with self._guard():
            while self.connected and not self._live:
                yield (self._wait_change, None)
            client = self.client
            if not self.connected or client is None:
                raise exceptions.DisconnectedError()
            return client

    def _live_call_flow(self, method: str, *args: Any, **kwargs: Any) -> Flow:
        """``client.method(...)`` once the namespace is connected; waits through reconnections."""
        while True:
            client = yield from self._wait_live_flow()
            try:
                return (yield (functools.partial(getattr(client, method), *args, namespace=self.namespace,
                                                 **kwargs),))
            except exceptions.BadNamespaceError:
                self._update(live=False)  # lost just now: wait for the reconnection

    def _receive_flow(self, timeout: float | None) -> Flow:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._guard():
            while not self.input_buffer:
                if not self.connected:
                    raise exceptions.DisconnectedError()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise exceptions.TimeoutError()
                yield (self._wait_change, remaining)
            return self.input_buffer.pop(0)

    def _disconnect_flow(self) -> Flow:
        client = self.client
        if client is not None:
            yield (client.disconnect,)
        self.client = None
        self._update(live=False, connected=False)

    # -- the public API: documented here, implemented by each twin ---------------------------------

    def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                namespace: str = '/', socketio_path: str = 'socket.io', wait_timeout: float = 5) -> Any:
        """Connect to a server; the arguments are those of :meth:`greensio.Client.connect`.

        Raises ``RuntimeError`` if already connected and
        :class:`exceptions.ConnectionError` if the server cannot be reached
        or refuses the namespace.
        """
        raise NotImplementedError

    @property
    def sid(self) -> str | None:
        """The sid of this client in its namespace (it changes when reconnecting)."""
        return self.client.get_sid(self.namespace) if self.client else None

    @property
    def transport(self) -> str:
        """``'polling'``, ``'websocket'``, or ``''`` when not connected."""
        return (self.client.transport() or '') if self.client else ''

    def emit(self, event: str, data: Any = None) -> Any:
        """Send an event (no ack); waits while the client reconnects."""
        raise NotImplementedError

    def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        """Send an event and return the server's ack; :class:`exceptions.TimeoutError` after ``timeout``."""
        raise NotImplementedError

    def receive(self, timeout: float | None = None) -> Any:
        """The next event from the server as ``[event, *args]``, in arrival order.

        Raises :class:`exceptions.TimeoutError` when none arrives within
        ``timeout`` seconds and :class:`exceptions.DisconnectedError` once
        the client is disconnected for good and the inbox is empty.
        """
        raise NotImplementedError

    def disconnect(self) -> Any:
        """Disconnect from the server (also stops a reconnection)."""
        raise NotImplementedError
