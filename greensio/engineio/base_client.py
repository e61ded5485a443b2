"""What the green and asyncio Engine.IO clients share: options, handlers, URLs, the handshake's answer.

Shell ring.  ``greensio._core.eio_client.EngineClient`` decides everything
about the protocol (handshake validation, long-polling batches, the upgrade
probe, the heartbeat deadline, close); :class:`greensio.engineio.Client`
(requests and websocket-client, on threads that are green once gevent has
patched them) and :class:`greensio.engineio.AsyncClient` (aiohttp) only move
bytes.  This module holds what both twins do the same way, and the public
docstrings, once.

A connection's core reports through an :class:`Inbox`: messages wait there
until the shell hands them to the ``message`` handler *outside* its lock
(a handler may send, or disconnect), and the end of the connection waits
there until the reader (or ``disconnect()``) reports it, once.
"""

from __future__ import annotations

import json as stdlib_json
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, ClassVar

from .._core.eio_client import ClientReason, EngineClient
from .._core.eio_codec import MESSAGE, OpenInfo, OutPacket
from .._core.errors import RemoteProtocolError
from ..common.options import setup_logger
from ..common.twins import SharedDocs
from . import exceptions

default_logger = logging.getLogger('engineio.client')

#: Packets per long-polling POST besides the server's maxPayload: python-engineio
#: servers refuse a payload of more than 16 packets (and drop the connection).
MAX_PACKETS_PER_POST = 16
#: The shortest wait a reader arms for the heartbeat deadline (a zero timeout
#: would make a blocking read non-blocking and spin).
MIN_WAIT = 0.01
VALID_TRANSPORTS = ('polling', 'websocket')


class Inbox:
    """The core's listener for one connection (``ClientListener``).

    ``wake`` starts the writer; the shell calls core methods with its lock
    held, so ``wake`` runs with it held too.
    """

    __slots__ = ('messages', 'reason', 'wake')

    def __init__(self, wake: Callable[[], None]) -> None:
        self.messages: list[str | bytes] = []
        self.reason: str | None = None
        self.wake = wake

    def message(self, data: str | bytes) -> None:
        self.messages.append(data)

    def wake_writer(self) -> None:
        self.wake()

    def closed(self, reason: str) -> None:
        self.reason = reason

    def take(self) -> list[str | bytes]:
        messages, self.messages = self.messages, []
        return messages


def encode_data(data: Any, json_module: Any) -> str | bytes:
    """What ``send(data)`` puts in a MESSAGE, as python-engineio does: lists and dicts as JSON."""
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, bytearray):
        return bytes(data)
    if isinstance(data, (dict, list)):
        return json_module.dumps(data, separators=(',', ':'))
    return '' if data is None else str(data)


class Reason:
    """Disconnection reasons."""

    #: Client-initiated disconnection.
    CLIENT_DISCONNECT = ClientReason.CLIENT_DISCONNECT
    #: Server-initiated disconnection.
    SERVER_DISCONNECT = ClientReason.SERVER_DISCONNECT
    #: Transport error.
    TRANSPORT_ERROR = ClientReason.TRANSPORT_ERROR


class BaseClient(SharedDocs):
    """An Engine.IO v4 client (the parts that do not depend on threads or asyncio).

    Not used directly: see :class:`greensio.engineio.Client` and
    :class:`greensio.engineio.AsyncClient`.
    """

    event_names: ClassVar[list[str]] = ['connect', 'disconnect', 'message']

    reason = Reason

    #: The JSON module for ``send()`` of lists and dicts and for received
    #: messages (process-wide, as in python-engineio).
    json: ClassVar[Any] = stdlib_json

    def __init__(self, logger: Any = False, json: Any = None, request_timeout: float = 5, http_session: Any = None,
                 ssl_verify: bool = True, handle_sigint: bool = True, websocket_extra_options: dict | None = None,
                 timestamp_requests: bool = True) -> None:
        self.handlers: dict[str, Callable] = {}
        self.base_url: str | None = None
        self.transports: list[str] | None = None
        self.current_transport: str | None = None
        self.sid: str | None = None
        self.upgrades: list[str] | None = None
        self.ping_interval: float | None = None
        self.ping_timeout: float | None = None
        self.http: Any = None
        self.http_factory: Any = None
        if http_session is not None:
            if callable(http_session):
                self.http_factory = http_session
            else:
                self.http = http_session
        self.external_http = self.http is not None
        self.handle_sigint = handle_sigint
        self.ws: Any = None
        self.read_loop_task: Any = None
        self.write_loop_task: Any = None
        #: ``'disconnected'``, ``'connected'`` or ``'disconnecting'`` (python-engineio's states).
        self.state = 'disconnected'
        self.ssl_verify = ssl_verify
        self.websocket_extra_options = websocket_extra_options or {}
        self.timestamp_requests = timestamp_requests
        self.request_timeout = request_timeout
        if json is not None:
            BaseClient.json = json
        self.logger = setup_logger(logger, default_logger)
        # greensio's Socket.IO clients take messages as they arrive, on the
        # reader and in order, raw; python-engineio applications get them on a
        # background task each, JSON decoded when they parse
        self._raw_messages = False

    def is_asyncio_based(self) -> bool:
        """``True`` for :class:`AsyncClient`."""
        return False

    def on(self, event: str, handler: Callable | None = None) -> Any:
        """Register an event handler.

        :param event: ``'connect'``, ``'message'`` or ``'disconnect'``.
        :param handler: the function to call; without it, ``on`` is a
            decorator.  ``message`` handlers get the data, ``disconnect``
            handlers a :attr:`reason` (or nothing, if they take no argument).
        """
        if event not in self.event_names:
            raise ValueError('Invalid event')

        def set_handler(handler: Callable) -> Callable:
            self.handlers[event] = handler
            return handler

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    def transport(self) -> str | None:
        """The transport in use: ``'polling'`` or ``'websocket'``."""
        return self.current_transport

    # -- the public API: documented here, implemented by each twin ------------------------------

    def connect(self, url: str, headers: dict | None = None, transports: Any = None,
                engineio_path: str = 'engine.io') -> Any:
        """Connect to an Engine.IO server.

        :param url: the server's URL; it may carry query string parameters.
        :param headers: extra HTTP headers for the connection request.
        :param transports: ``'polling'``, ``'websocket'`` or a list of them;
            default: long-polling first, then an upgrade to websocket.
        :param engineio_path: the server's endpoint.

        Raises :class:`exceptions.ConnectionError` if the server cannot be
        reached, refuses the connection or the ``connect`` handler fails.
        """
        raise NotImplementedError

    def wait(self) -> Any:
        """Wait until the connection with the server ends."""
        raise NotImplementedError

    def send(self, data: Any) -> Any:
        """Send a message: ``str``, ``bytes``, or a ``list``/``dict`` sent as JSON."""
        raise NotImplementedError

    def disconnect(self, abort: bool = False, reason: str | None = None) -> Any:
        """Disconnect from the server.

        :param abort: do not wait for the connection's tasks to end.
        :param reason: the reason the ``disconnect`` handler gets (default
            :attr:`reason.CLIENT_DISCONNECT`).
        """
        raise NotImplementedError

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``target`` concurrently: a thread with ``join()`` (green under gevent), or for
        :class:`AsyncClient` an ``asyncio.Task`` (``target`` a coroutine function)."""
        raise NotImplementedError

    def sleep(self, seconds: float = 0) -> Any:
        """Sleep without blocking other threads (or tasks)."""
        raise NotImplementedError

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        """A queue of this client's kind (``queue.Queue`` or ``asyncio.Queue``)."""
        raise NotImplementedError

    def get_queue_empty_exception(self) -> type[BaseException]:
        """The exception a queue from :meth:`create_queue` raises when empty."""
        raise NotImplementedError

    def create_event(self, *args: Any, **kwargs: Any) -> Any:
        """An event of this client's kind (``threading.Event`` or ``asyncio.Event``)."""
        raise NotImplementedError

    # -- shared steps ---------------------------------------------------------------------------

    @staticmethod
    def _valid_transports(transports: Any) -> list[str]:
        if transports is None:
            return list(VALID_TRANSPORTS)
        if isinstance(transports, str):
            transports = [transports]
        valid = [t for t in transports if t in VALID_TRANSPORTS]
        if not valid:
            raise ValueError('No valid transports provided')
        return valid

    def _new_core(self, transports: list[str], inbox: Inbox) -> EngineClient:
        self.transports = transports
        self.current_transport = transports[0]
        return EngineClient(inbox, transports=tuple(transports), max_packets_per_post=MAX_PACKETS_PER_POST)

    def _url(self, core: EngineClient, url: str, engineio_path: str, transport: str) -> str:
        """The Engine.IO URL of a request on ``transport`` (the session id included once known)."""
        parsed = urllib.parse.urlparse(url)
        scheme = 'http' if transport == 'polling' else 'ws'
        if parsed.scheme in ('https', 'wss'):
            scheme += 's'
        query = parsed.query + '&' if parsed.query else ''
        return f'{scheme}://{parsed.netloc}/{engineio_path.strip("/")}/?{query}{core.query(transport)}'

    def _timestamp(self) -> str:
        return '&t=' + str(time.time()) if self.timestamp_requests else ''

    def _handshake_refused(self, status: int, detail: Any) -> exceptions.ConnectionError:
        """python-engineio's error for a refused handshake (the Socket.IO layer reads ``args[1]``)."""
        return exceptions.ConnectionError(f'Unexpected status code {status} in server response', detail)

    def _accept(self, core: EngineClient, answer: str | bytes, now: float) -> OpenInfo:
        """The server's OPEN packet (call with the lock held); ``ConnectionError`` if unusable."""
        try:
            info = core.receive_handshake(answer, now)
        except RemoteProtocolError as exc:
            raise exceptions.ConnectionError(f'Unexpected response from server: {exc}') from None
        self.sid = info.sid
        self.upgrades = list(info.upgrades)
        self.ping_interval = info.ping_interval
        self.ping_timeout = info.ping_timeout
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('%s connection accepted with sid %s', core.transport.capitalize(), info.sid)
        return info

    def _user_data(self, data: str | bytes) -> Any:
        """A message as python-engineio hands it over: text that parses as JSON (and does
        not start with a digit) decoded."""
        if type(data) is str and data[:1] and not data[0].isnumeric():
            try:
                return self.json.loads(data)
            except ValueError:
                pass
        return data

    def _packet(self, data: Any) -> OutPacket:
        return OutPacket(MESSAGE, encode_data(data, self.json))

    def _reset(self) -> None:
        self.state = 'disconnected'
        self.sid = None
