"""The machinery shared by greensio's in-process test clients (no sockets).

Integration ring, behind the public ``greensio.testing.TestClient`` and
``greensio.flask_testing.SocketIOTestClient``.  A client stands in for one
Engine.IO connection: it registers a fake Engine.IO socket with the server,
so every packet the server writes to it lands here (decoded with the
server's own packet class, binary attachments reassembled), and it hands its
packets to the server's Engine.IO message entry point.  Handlers run inline,
so when ``emit()`` returns, the handler has run and its ack and emits have
arrived.  Subclasses only build the WSGI environ of the connection.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from .._core import packet as pk
from .._core.payload import from_args

__all__ = ['InProcessClient']


class _CapturingSocket:
    """The Engine.IO socket the server sees for a test client; it delivers to the client."""

    upgraded = False
    upgrading = False
    connected = False  # the heartbeat greenlet pings only connected sockets
    closing = False

    def __init__(self, client: InProcessClient, eio_sid: str) -> None:
        self.client = client
        self.sid = eio_sid
        self.closed = False
        self.last_ping = None

    def send(self, eio_pkt: Any) -> None:
        if not self.closed:
            self.client._receive_eio(eio_pkt.data)

    def send_together(self, eio_pkts: list[Any]) -> None:
        for eio_pkt in eio_pkts:
            self.send(eio_pkt)

    def close(self, wait: bool = True, abort: bool = False, reason: str | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.client._eio_closed(reason)

    def check_ping_timeout(self) -> bool:
        return True


class InProcessClient:
    """One fake Engine.IO connection to ``server``; see the module docstring."""

    #: Answer a server event that asks for an ack and has no :meth:`on`
    #: handler with an empty ack (so the server's ``call()`` returns None at
    #: once instead of waiting out its timeout).
    _ack_unhandled = True

    def __init__(self, server: Any) -> None:
        if hasattr(server.manager, '_publish'):
            # deliveries would make a round trip through the broker and arrive later
            raise RuntimeError('the test client needs the in-memory manager, not a message queue')
        self.server = server
        self.eio_sid: str | None = None
        self.sids: dict[str, str] = {}
        self.connected: dict[str, bool] = {}
        self.connect_errors: dict[str, Any] = {}
        self.queue: dict[str, list[dict[str, Any]]] = {}
        self.acks: dict[str, dict[int, list[Any]]] = {}
        self.handlers: dict[tuple[str, str], Callable] = {}
        self._ack_ids = itertools.count(1)
        self._pending: pk.Packet | None = None

    # -- public API ---------------------------------------------------------------

    def is_connected(self, namespace: str | None = None) -> bool:
        """Is the client connected to ``namespace``?"""
        return self.connected.get(namespace or '/', False)

    def disconnect(self, namespace: str | None = None) -> None:
        """Leave ``namespace``; leaving the last one closes the connection."""
        namespace = namespace or '/'
        if not self.is_connected(namespace):
            raise RuntimeError('not connected')
        self._feed(self.server.packet_class(pk.DISCONNECT, namespace=namespace))
        self.connected[namespace] = False
        if not any(self.connected.values()) and self.eio_sid is not None:
            self._close_eio()

    def emit(self, event: str, *args: Any, callback: bool = False, namespace: str | None = None) -> Any:
        """Emit ``event`` to the server; with ``callback=True`` return the handler's ack.

        An ack of one value returns it, several a list, none ``None``.
        """
        ack = self._emit(event, args, callback, namespace)
        # no ack reads as an ack without values (as Server.call returns)
        return from_args(ack or (), several_as_list=True)

    def send(self, data: Any, json: bool = False, callback: bool = False, namespace: str | None = None) -> Any:
        """Send a ``message`` (``json=True``: ``json``) event."""
        return self.emit('json' if json else 'message', data, callback=callback, namespace=namespace)

    def get_received(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Events the server sent to ``namespace`` since the last call, oldest first."""
        namespace = namespace or '/'
        if not self.is_connected(namespace) and namespace not in self.queue:
            raise RuntimeError('not connected')
        received, self.queue[namespace] = self.queue.get(namespace, []), []
        return received

    def on(self, event: str, handler: Callable | None = None, namespace: str | None = None) -> Any:
        """Answer the server's events ``event`` that ask for an ack (its ``call()``).

        ``handler(*args)`` returns the ack: ``None`` for none, a tuple for
        several values.  Usable as a decorator.  The event is still recorded
        for :meth:`get_received`.
        """
        def register(fn: Callable) -> Callable:
            self.handlers[(namespace or '/', event)] = fn
            return fn

        return register if handler is None else register(handler)

    @property
    def sid(self) -> str | None:
        """The Socket.IO session id in the default namespace."""
        return self.sids.get('/')

    def get_sid(self, namespace: str | None = None) -> str | None:
        """The Socket.IO session id in ``namespace``."""
        return self.sids.get(namespace or '/')

    # -- shared steps ---------------------------------------------------------------

    def _connect(self, namespace: str, auth: Any, environ: Callable[[], dict]) -> None:
        if self.eio_sid is None:
            self._open_eio(environ())
        self.connect_errors.pop(namespace, None)
        self._feed(self.server.packet_class(pk.CONNECT, data=auth, namespace=namespace))

    def _emit(self, event: str, args: tuple, callback: bool, namespace: str | None) -> list[Any] | None:
        """Send an EVENT; with ``callback`` return the ack's values (None if none came)."""
        namespace = namespace or '/'
        if not self.is_connected(namespace):
            raise RuntimeError('not connected')
        ack_id = next(self._ack_ids) if callback else None
        self._feed(self.server.packet_class(pk.EVENT, data=[event, *args], namespace=namespace, id=ack_id))
        if ack_id is None:
            return None
        return self.acks.get(namespace, {}).pop(ack_id, None)

    # -- the fake Engine.IO connection ----------------------------------------------

    def _open_eio(self, environ: dict) -> None:
        eio = self.server.eio
        self.eio_sid = eio_sid = eio.generate_id()
        eio.sockets[eio_sid] = _CapturingSocket(self, eio_sid)
        self.server._handle_eio_connect(eio_sid, environ)

    def _close_eio(self) -> None:
        eio_sid, self.eio_sid = self.eio_sid, None
        socket = self.server.eio.sockets.pop(eio_sid, None)
        if socket is not None:
            socket.closed = True
        self.server._handle_eio_disconnect(eio_sid, self.server.reason.CLIENT_DISCONNECT)

    def _eio_closed(self, reason: str | None) -> None:
        """The server closed the connection (``eio.disconnect``, a protocol error)."""
        eio_sid, self.eio_sid = self.eio_sid, None
        for namespace in self.connected:
            self.connected[namespace] = False
        if eio_sid is not None:
            self.server._handle_eio_disconnect(eio_sid, reason or self.server.reason.SERVER_DISCONNECT)

    def _feed(self, pkt: pk.Packet) -> None:
        """Deliver a packet to the server; its handlers run before this returns."""
        if self.eio_sid is None:
            raise RuntimeError('not connected')
        encoded = pkt.encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        server = self.server
        # inline handlers make emit() deterministic: the ack is in when it returns
        saved, server.async_handlers = server.async_handlers, False
        try:
            for part in parts:
                server._handle_eio_message(self.eio_sid, part)
        finally:
            server.async_handlers = saved

    def _receive_eio(self, data: str | bytes) -> None:
        pending = self._pending
        if pending is not None:
            if pending.add_attachment(data):
                self._pending = None
                self._handle_packet(pending)
            return
        pkt = self.server.packet_class(encoded_packet=data)
        if pkt.attachment_count:
            self._pending = pkt
        else:
            self._handle_packet(pkt)

    def _handle_packet(self, pkt: pk.Packet) -> None:
        namespace = pkt.namespace or '/'
        kind = pkt.packet_type
        if kind == pk.CONNECT:
            self.connected[namespace] = True
            self.sids[namespace] = (pkt.data or {}).get('sid')
            self.queue.setdefault(namespace, [])
        elif kind == pk.CONNECT_ERROR:
            self.connected[namespace] = False
            self.connect_errors[namespace] = pkt.data
        elif kind == pk.DISCONNECT:
            self.connected[namespace] = False
        elif kind in (pk.EVENT, pk.BINARY_EVENT):
            self.queue.setdefault(namespace, []).append(self._received(pkt.data[0], pkt.data[1:], namespace))
            if pkt.id is not None:
                self._answer(namespace, pkt.id, pkt.data[0], pkt.data[1:])
        elif kind in (pk.ACK, pk.BINARY_ACK):
            self.acks.setdefault(namespace, {})[pkt.id] = pkt.data

    def _received(self, event: str, args: list[Any], namespace: str) -> dict[str, Any]:
        """The entry :meth:`get_received` returns for an event."""
        return {'name': event, 'args': args, 'namespace': namespace}

    def _answer(self, namespace: str, ack_id: int, event: str, args: list[Any]) -> None:
        """Ack a server event that asked for one, from an :meth:`on` handler."""
        handler = self.handlers.get((namespace, event))
        if handler is None and not self._ack_unhandled:
            return
        result = None if handler is None else handler(*args)
        if self.eio_sid is not None:
            self._feed(self.server._ack_packet(result, namespace, ack_id))
