"""Sessions over a websocket: opened on one, or upgraded to one from long-polling.

Shell ring (gevent).  gevent-websocket (or greensio's server, which uses its
handler) does the HTTP upgrade; the connection is then taken over
(``websocket.WebSocketTransport``) and read by one greenlet, which feeds each
message to the core; writes go straight to the socket from the emitting
greenlet.  The reader is the request's greenlet, unless the server lets the
application keep the connection past the WSGI call (``DETACH``, greensio's
own server): then the request ends, with its handler, buffers and headers,
and no greenlet waits for the connection: a watcher notices when it is
readable, and a pooled reader greenlet serves what arrived (see the
"detached websockets" section below).  A greenlet suspended in a read keeps
its stack in memory, several KiB for each of thousands of idle connections.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from .._core import eio_http
from .._core import websocket as wsproto
from .._core.eio_server import CLOSED, Reason
from .socket import Socket, _WaitingWebSocket
from .websocket import WAIT

_monotonic = time.monotonic

#: WSGI environ key a server sets (to ``True``) when the application may keep a
#: websocket's connection after the WSGI call returns: the application
#: detaches the connection's socket (``socket.detach()``) and serves it on a
#: greenlet of its own; the server then neither closes it nor waits for it.
DETACH = 'greensio.detach'
#: Reader greenlets kept parked for the next readable websocket: a burst
#: of traffic needs as many as there are websockets served at once, and a
#: greenlet kept costs ~7 KiB.
IDLE_READERS = 64


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
        detach = environ.get(DETACH) is True
        transport = WebSocketTransport.take_over(original, self.max_http_buffer_size, detach)
        environ['wsgi.websocket'] = TakenOverWebSocket(original, transport)
        if detach:
            # what pywsgi reads the request with reads websocket frames now: the
            # request's body, empty, is read from nothing (and the reader and its
            # buffer go with the request's handler)
            environ['wsgi.input'] = io.BytesIO()
        if state is None:
            socket = self._open_websocket(transport, environ)
        else:
            socket = state.context
            if self._probe(socket, transport):
                self.logger.info('%s: websocket transport ready', state.sid)
            else:
                self.logger.info('%s: websocket upgrade failed', state.sid)
                socket = None
        if socket is None:
            if detach:
                transport.release()
        elif detach:
            # messages may be in the parser already (sent right behind the
            # upgrade, or during the probe): served before the first park
            self._loop.run_callback(self._serve_reader, socket, transport)
        else:
            self._read_websocket(socket, transport)
        return []

    # -- detached websockets (``DETACH``) -------------------------------------------------
    #
    # No greenlet waits for a detached websocket's next message: each one's
    # socket has a watcher, and when the socket is readable a reader greenlet
    # (a parked one, else a new one) serves what arrived, then parks the
    # connection again and itself with it.  A suspended greenlet keeps its
    # C stack slice and a page of Python frames (~7 KiB); idle connections
    # now cost neither, and a busy one costs what waiting in ``recv`` cost
    # (a watcher started, a switch to the hub and back).

    def _resume_reader(self, socket: Socket, transport: Any) -> None:
        """The socket of a parked websocket is readable (a watcher's callback, in the hub)."""
        transport.readable()
        self._serve_reader(socket, transport)

    def _serve_reader(self, socket: Socket, transport: Any) -> None:
        """Switch to a reader greenlet for this websocket (from the hub)."""
        idle = self._idle_readers
        if idle:
            reader = idle.pop()
        else:
            from greenlet import greenlet

            # a bare greenlet: the hub is its parent, which reports what it
            # raises, as for any greenlet; a gevent Greenlet would add the
            # spawner's stack and links nobody reads
            reader = greenlet(self._reader, self._gevent.get_hub())
        reader.switch(socket, transport)

    def _reader(self, socket: Socket, transport: Any) -> None:
        """A reader greenlet: serves a readable websocket, then waits (parked) for the next one."""
        hub = self._gevent.get_hub()
        idle = self._idle_readers
        while True:
            if self._read_ready(socket, transport):
                transport.park(self._resume_reader, socket, transport)
            if len(idle) >= IDLE_READERS:
                return
            idle.append(self._gevent.getcurrent())
            socket, transport = hub.switch()

    def _read_ready(self, socket: Socket, transport: Any) -> bool:
        """Serve the messages a detached websocket has delivered; False once it is over (and closed)."""
        if self._read_websocket(socket, transport, transport.receive_ready):
            return True
        transport.release()
        on_end = transport.on_end
        if on_end is not None:
            on_end()
        return False

    def _received(self, socket: Socket, state: Any, msg: str | bytes) -> bool:
        """Hand a websocket message to the core (and the application); False once the session is closed."""
        data = state.receive_ws(msg, _monotonic())
        if data is None:
            if state.state == CLOSED:
                if state.close_reason == Reason.TRANSPORT_ERROR:
                    self.logger.warning('%s: invalid Engine.IO packet, closing', socket.sid)
                return False
            if state.deadline < socket._armed:
                self._arm(socket)
            return True
        self.message_handler(socket.sid, data)
        return True

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

    def _read_websocket(self, socket: Socket, transport: Any, receive: Callable[[], Any] | None = None) -> bool:
        """Hand the websocket's messages to the core until it ends (then close it) or, with
        ``receive=transport.receive_ready``, until the next one has not arrived (True: still open)."""
        state = socket.state
        receive = receive or transport.receive
        error = False
        msg: Any = None
        try:
            while True:
                try:
                    msg = receive()
                except wsproto.WebSocketError as exc:
                    self.logger.warning('%s: websocket protocol error: %s', socket.sid, exc)
                    transport.close(exc.code)
                    error = True
                    return False
                except OSError:  # a silent peer is closed by the heartbeat, as a ping timeout
                    return False
                if msg is WAIT:
                    return True
                if msg is None or not self._received(socket, state, msg):
                    return False
        finally:
            if msg is not WAIT:
                self._closed_websocket(socket, transport, error)

    def _closed_websocket(self, socket: Socket, transport: Any, error: bool = False) -> None:
        socket.state.transport_closed(error)
        transport.close()
