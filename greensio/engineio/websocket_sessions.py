"""Sessions over a websocket: opened on one, or upgraded to one from long-polling.

Shell ring (gevent).  gevent-websocket (or greensio's server, which uses its
handler) does the HTTP upgrade; the connection is then taken over
(``websocket.WebSocketTransport``) and read by the request's greenlet, which
feeds each message to the core; writes go straight to the socket from the
emitting greenlet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._core import eio_http
from .._core import websocket as wsproto
from .._core.eio_server import CLOSED, Reason
from .socket import Socket, _WaitingWebSocket

_monotonic = time.monotonic


class WebSocketSessions:
    """The green ``Server``'s websocket side (a part of :class:`greensio.engineio.server.Server`)."""

    def _websocket(self, route: eio_http.WebSocketRequest, environ: dict, start_response: Callable) -> list:
        from .websocket import TakenOverWebSocket, WebSocketTransport

        state = route.session
        original = environ.get('wsgi.websocket')
        if original is None:
            # no websocket-capable server in front (not gevent-websocket's handler)
            if state is not None:
                state.abort_probe()
            r = eio_http.refuse(eio_http.UNKNOWN_TRANSPORT, headers=route.headers).response()
            return self._wsgi_answer(start_response, r, environ)
        transport = WebSocketTransport.take_over(original, self.max_http_buffer_size)
        environ['wsgi.websocket'] = TakenOverWebSocket(original, transport)
        if state is None:
            socket = self._open_websocket(transport, environ)
            if socket is None:
                return []
        else:
            socket = state.context
            if not self._probe(socket, transport):
                self.logger.info('%s: websocket upgrade failed', state.sid)
                return []
            self.logger.info('%s: websocket transport ready', state.sid)
        self._read_websocket(socket, transport)
        return []

    def serve_relayed(self, request: dict, transport: Any) -> None:
        """Serve the websocket upgrade of one of this server's sessions that another worker accepted.

        ``request`` holds the upgrade's ``query`` and lower-case ``headers``;
        ``transport`` carries the websocket's messages in and its frames out
        (``receive``, ``send``, ``settimeout``, ``close``), through the
        message queue between the two workers.
        """
        with self._lock:
            route = self._core.route('GET', request['query'], request['headers'], scheme='http')
        if not isinstance(route, eio_http.WebSocketRequest) or route.session is None:
            transport.close()
            return
        socket = route.session.context
        if not self._probe(socket, transport):
            self.logger.info('%s: relayed websocket upgrade failed', socket.sid)
            return
        self.logger.info('%s: websocket transport ready (relayed by another worker)', socket.sid)
        self._read_websocket(socket, transport)

    def _open_websocket(self, transport: Any, environ: dict) -> Socket | None:
        sid = self.generate_id()
        state, open_packet = self._core.open(sid, 'websocket', _monotonic())
        socket = self.sockets[sid] = Socket(self, state)
        waiting = socket.ws = _WaitingWebSocket()
        self._arm(socket)
        if self._connect(socket, environ) is not None:
            transport.close()
            return None
        transport.send(open_packet.frame())
        for frame in waiting.frames:
            transport.send(frame)
        socket.ws = transport
        if waiting.closed or socket.closed:  # closed by the connect handler
            self._closed_websocket(socket, transport)
            return None
        return socket

    def _probe(self, socket: Socket, transport: Any) -> bool:
        """The polling → websocket upgrade (``2probe`` / ``3probe`` / ``5``), with its timeouts."""
        state = socket.state
        socket.probe_ws = transport
        try:
            transport.settimeout(self._core.config.upgrade_timeout)
            while True:
                try:
                    msg = transport.receive()
                except Exception:  # noqa: BLE001 - a timeout, a socket or protocol error: the probe failed
                    msg = None
                if msg is None:
                    state.abort_probe()
                    transport.close()
                    return False
                result = state.receive_probe(msg, _monotonic())
                if result is None:
                    transport.close()
                    return False
                done, packets = result
                for packet in packets:
                    transport.send(packet.frame())
                if done:
                    socket.ws = transport
                    transport.settimeout(None)
                    return True
                transport.settimeout(max(state.probe_deadline - _monotonic(), 0.001))
        finally:
            socket.probe_ws = None

    def _read_websocket(self, socket: Socket, transport: Any) -> None:
        state = socket.state
        receive_ws = state.receive_ws
        receive = transport.receive
        on_message = self.message_handler
        sid = socket.sid
        error = False
        try:
            while True:
                try:
                    msg = receive()
                except wsproto.WebSocketError as exc:
                    self.logger.warning('%s: websocket protocol error: %s', sid, exc)
                    transport.close(exc.code)
                    error = True
                    return
                except OSError:  # a silent peer is closed by the heartbeat, as a ping timeout
                    return
                if msg is None:
                    return
                data = receive_ws(msg, _monotonic())
                if data is None:
                    if state.state == CLOSED:
                        if state.close_reason == Reason.TRANSPORT_ERROR:
                            self.logger.warning('%s: invalid Engine.IO packet, closing', sid)
                        return
                    if state.deadline < socket._armed:
                        self._arm(socket)
                    continue
                on_message(sid, data)
        finally:
            self._closed_websocket(socket, transport, error)

    def _closed_websocket(self, socket: Socket, transport: Any, error: bool = False) -> None:
        socket.state.transport_closed(error)
        transport.close()
