"""What the green ``Client`` and the asyncio ``AsyncClient`` share.

Shell ring.  Options, the Engine.IO client's construction, handler
registration and resolution, the connection parameters, the read-only state
(``namespaces``, ``get_sid``...) and the public docstrings are written once
here; ``_core.client_session.ClientSession`` holds the protocol state and
``_core.reconnect`` the backoff.  Each twin keeps only what waits: the green
one on (green) threads, the asyncio one on the event loop.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from engineio import base_client as eio_base_client

from ._core.client_session import ClientSession
from ._core.handlers import HandlerRegistry, event_decorator
from ._twins import SharedDocs
from .base_server import _packet_class, _setup_logger
from .namespace import BaseClientNamespace

default_logger = logging.getLogger('socketio.client')

#: Events a client's ``'*'`` handler never receives.
CLIENT_RESERVED_EVENTS = frozenset({'connect', 'connect_error', 'disconnect', '__disconnect_final'})


def _real(value: Any) -> Any:
    """``url``, ``headers`` and ``auth`` may be callables, evaluated at every attempt."""
    return value() if callable(value) else value


class BaseClient(SharedDocs):
    """The parts of a Socket.IO client that do not depend on threads or asyncio.

    Not used directly: see :class:`greensio.Client` and :class:`greensio.AsyncClient`.
    """

    reason = eio_base_client.BaseClient.reason
    reserved_events: ClassVar[list[str]] = ['connect', 'connect_error', 'disconnect', '__disconnect_final']

    #: The python-engineio client class the twin builds on (its options are accepted).
    _engine_base: ClassVar[type] = object

    def __init__(self, reconnection: bool = True, reconnection_attempts: int = 0, reconnection_delay: float = 1,
                 reconnection_delay_max: float = 5, randomization_factor: float = 0.5, logger: Any = False,
                 serializer: Any = 'default', json: Any = None, handle_sigint: bool = True, **kwargs: Any) -> None:
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.reconnection_delay = reconnection_delay
        self.reconnection_delay_max = reconnection_delay_max
        self.randomization_factor = randomization_factor
        self.handle_sigint = handle_sigint
        self.logger = _setup_logger(logger, default_logger)
        engineio_options = dict(kwargs)
        if 'engineio_logger' in engineio_options:
            engineio_options['logger'] = engineio_options.pop('engineio_logger')
        engineio_options['handle_sigint'] = handle_sigint
        self.packet_class = _packet_class(serializer)
        if json is not None:
            self.packet_class.json = json
            engineio_options['json'] = json
        accepted = frozenset(inspect.signature(self._engine_base.__init__).parameters) - {'self'}
        ignored = set(engineio_options) - accepted
        if ignored:
            self.logger.debug('ignoring unknown client options: %s', ', '.join(sorted(ignored)))
        self.eio = self._create_engine({k: v for k, v in engineio_options.items() if k in accepted})
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

    def _create_engine(self, options: dict[str, Any]) -> Any:
        raise NotImplementedError

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
        (re)connection attempt.
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

    def _engine_connect_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """What ``eio.connect`` gets for an attempt (callables evaluated now)."""
        return ((_real(self.connection_url),),
                {'headers': dict(_real(self.connection_headers) or {}), 'transports': self.connection_transports,
                 'engineio_path': self.socketio_path})

    @staticmethod
    def _connect_error_detail(exc: BaseException) -> Any:
        """The ``connect_error`` argument for python-engineio's ``ConnectionError``."""
        return exc.args[1] if len(exc.args) > 1 else (exc.args[0] if exc.args else None)

    @staticmethod
    def _call_result(args: tuple) -> Any:
        """python-socketio's shape of an ack: nothing → None, one value, or a tuple."""
        return args[0] if len(args) == 1 else (args or None)

    def _handle_eio_connect(self) -> Any:
        raise NotImplementedError

    def _handle_eio_message(self, data: str | bytes) -> Any:
        raise NotImplementedError

    def _handle_eio_disconnect(self, reason: str | None = None) -> Any:
        raise NotImplementedError
