"""Engine.IO for greensio: python-engineio, corrected, plus greensio's websocket path.

Shell ring.  python-engineio keeps the handshake, long-polling and the
upgrade.  ``EngineServer`` fixes where it breaks the Engine.IO v4 spec or
loses data (each fix names the defect), and ``GreenSocket`` moves the
per-message websocket path into greensio: frames are parsed by
``_core.websocket`` and written straight to the TCP socket from the emitting
greenlet (no per-socket queue or writer greenlet), and one heartbeat
greenlet pings every client instead of one greenlet per client.
"""

from __future__ import annotations

import base64
import logging
import socket as _socket
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import engineio
import gevent
from engineio import exceptions as eio_exc
from engineio import packet as eio_packet
from engineio import socket as eio_socket

from ._core import eio
from ._core import websocket as wsproto
from ._core.eio import CLOSE, MESSAGE, NOOP, OPEN, PING, PONG, UPGRADE, decode_payload  # noqa: F401 - re-exported

#: Bytes a websocket may owe its peer before the peer is deemed dead; a
#: client that stops reading must not grow the server's memory without end.
MAX_WRITE_BACKLOG = 16 * 1024 * 1024

logger = logging.getLogger('greensio.engine')


class OutPacket(eio_packet.Packet):
    """An outgoing Engine.IO packet that many recipients can share.

    Encodings are computed once and cached per form (polling text, base64
    for polling, websocket frame), so a broadcast costs one encoding.
    """

    def __init__(self, packet_type: int, data: str | bytes | None = None) -> None:
        self.packet_type = packet_type
        self.data = data
        self.binary = isinstance(data, (bytes, bytearray))
        self.encode_cache = None
        self._text: str | None = None
        self._frame: bytes | None = None

    def encode(self, b64: bool = False) -> Any:
        if self.binary and not b64:
            return self.data
        text = self._text
        if text is None:
            if self.binary:
                text = 'b' + base64.b64encode(self.data).decode('ascii')  # type: ignore[arg-type]
            else:
                text = str(self.packet_type) + (self.data or '')  # type: ignore[operator]
            self._text = text
        return text

    def frame(self) -> bytes:
        frame = self._frame
        if frame is None:
            if self.binary:
                frame = wsproto.encode_frame(wsproto.OP_BINARY, bytes(self.data))  # type: ignore[arg-type]
            else:
                frame = wsproto.encode_frame(wsproto.OP_TEXT, self.encode().encode('utf-8'))
            self._frame = frame
        return frame


def _frame_of(pkt: Any) -> bytes:
    """The websocket frame of an ``OutPacket`` or of a python-engineio packet."""
    if isinstance(pkt, OutPacket):
        return pkt.frame()
    return OutPacket(pkt.packet_type, pkt.data).frame()


class WebSocketTransport:
    """A websocket taken over from gevent-websocket after its handshake."""

    def __init__(self, sock: Any, max_message_size: int, early_data: bytes = b'') -> None:
        self.sock = sock
        self.parser = wsproto.FrameParser(max_message_size)
        self.parser.feed(early_data)
        self.closed = False
        # gevent's recv allocates its buffer only once data is there: a
        # blocked BufferedReader.read1(64 KiB) held 64 KiB per idle client
        self._recv = sock.recv
        self._raw_send = sock._sock.send  # non-blocking: never stalls a broadcast
        self._backlog: list[bytes] = []
        self._backlog_size = 0
        self._flushing = False
        # No socket timeout: the heartbeat closes a silent peer, and a timeout
        # would cost a timer on every blocking read.
        sock.settimeout(None)

    @classmethod
    def take_over(cls, ws: Any, max_message_size: int) -> WebSocketTransport:
        handler = ws.handler
        ws.closed = True  # gevent-websocket must not write its own close frame later
        sock = handler.socket
        sock.settimeout(0.0)  # collect what pywsgi's reader buffered, without waiting
        early = handler.rfile.read1(65536) or b''
        return cls(sock, max_message_size, early)

    def receive(self) -> str | bytes | None:
        """The next text or binary message; None once the peer is gone."""
        parser = self.parser
        while True:
            msg = parser.next_message()
            if msg is None:
                data = self._recv(max(parser.bytes_wanted(), 65536))
                if not data:
                    return None
                parser.feed(data)
                continue
            op = msg.opcode
            if op == wsproto.OP_TEXT or op == wsproto.OP_BINARY:
                return msg.data
            if op == wsproto.OP_PING:
                self.send(wsproto.encode_frame(wsproto.OP_PONG, msg.data))  # type: ignore[arg-type]
            elif op == wsproto.OP_CLOSE:
                self.close()
                return None

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        if self._flushing:
            self._queue(frame)
            return
        try:
            sent = self._raw_send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.abort()
            return
        if sent < len(frame):
            self._queue(frame[sent:])
            self._flushing = True
            gevent.spawn(self._flush)

    def _queue(self, data: bytes) -> None:
        self._backlog.append(data)
        self._backlog_size += len(data)
        if self._backlog_size > MAX_WRITE_BACKLOG:
            logger.warning('websocket peer stopped reading (%d bytes owed), closing', self._backlog_size)
            self.abort()

    def _flush(self) -> None:
        try:
            while self._backlog and not self.closed:
                data = b''.join(self._backlog)
                self._backlog.clear()
                self._backlog_size = 0
                self.sock.sendall(data)
        except OSError:
            self.abort()
        finally:
            self._flushing = False

    def close(self, code: int = wsproto.CLOSE_NORMAL, reason: str = '') -> None:
        """Send a close frame and end the TCP connection.

        A peer whose writes are backed up gets no close frame: it would sit
        behind data the peer is not reading.
        """
        if self.closed:
            return
        if not self._flushing:
            self.send(wsproto.encode_close(code, reason))
        self.abort()

    def abort(self) -> None:
        self.closed = True
        self._backlog.clear()
        self._backlog_size = 0
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass


class TakenOverWebSocket:
    """``environ['wsgi.websocket']`` once greensio reads and writes the connection.

    gevent-websocket's own object goes dead at the takeover, yet users of
    gevent-websocket and python-socketio keep the environ of a connect
    handler and drop the client later with ``environ['wsgi.websocket'].close()``.
    This stand-in keeps that working: ``close()`` sends a close frame and ends
    the TCP connection (the server's disconnect handler then runs), ``closed``
    says whether it has ended, and the request details come from
    gevent-websocket's object.  ``send()`` and ``receive()`` raise: a raw
    message would break Engine.IO's framing, and the server reads every
    message itself.
    """

    def __init__(self, original: Any, transport: WebSocketTransport) -> None:
        self._original = original
        self._transport = transport

    @property
    def closed(self) -> bool:
        return self._transport.closed

    def close(self, code: int = wsproto.CLOSE_NORMAL, message: bytes | str = b'') -> None:
        reason = message.decode('utf-8', 'replace') if isinstance(message, bytes) else message
        self._transport.close(code, reason)

    def send(self, message: Any, binary: bool | None = None) -> None:
        raise RuntimeError('greensio writes this websocket itself: use the server\'s emit() or send()')

    def receive(self) -> Any:
        raise RuntimeError('greensio reads this websocket itself: its messages reach the event handlers '
                           '(and emit() sends)')

    @property
    def environ(self) -> dict:
        return self._original.environ

    @property
    def origin(self) -> str | None:
        return self._original.origin

    @property
    def protocol(self) -> str | None:
        return self._original.protocol

    @property
    def version(self) -> str | None:
        return self._original.version

    @property
    def path(self) -> str | None:
        return self._original.path


class _DetachedQueue:
    """Stands in for a websocket client's polling queue once frames go direct."""

    def put(self, item: Any) -> None:
        pass

    def empty(self) -> bool:
        return True

    def join(self) -> None:
        pass


_DETACHED_QUEUE = _DetachedQueue()


class GreenSocket(eio_socket.Socket):
    """One Engine.IO connection."""

    def __init__(self, server: EngineServer, sid: str) -> None:
        super().__init__(server, sid)
        self.server: EngineServer = server
        self.last_ping = None  # the heartbeat task pings; see EngineServer
        self.ws: WebSocketTransport | None = None  # set once frames go direct
        self._transport: WebSocketTransport | None = None  # set from the takeover on
        self._polling = False
        self._heartbeat_holds = 0  # readers of this peer the server has paused

    def schedule_ping(self) -> None:
        # a PONG arrived: the heartbeat task pings again at its next tick
        self.last_ping = None

    def hold_heartbeat(self, held: bool) -> None:
        """Say that the server stops (``True``) or resumes reading this peer.

        While a hold lasts the peer cannot time out: its PONG may be waiting,
        unread, behind its other packets; and it is pinged every
        ``ping_interval`` all the same, so that it does not time the server
        out either.  When the last hold ends, a pending ping gets a full
        ``ping_timeout`` again, counted from now.
        """
        self._heartbeat_holds += 1 if held else -1
        if not self._heartbeat_holds and self.last_ping:
            self.last_ping = time.time()

    def check_ping_timeout(self) -> bool:
        if self._heartbeat_holds and not self.closed:
            return True
        return super().check_ping_timeout()

    def send(self, pkt: Any) -> None:
        ws = self.ws
        if ws is not None:
            ws.send(_frame_of(pkt))
        elif not self.closed:
            self.queue.put(pkt)

    def receive_packet(self, packet_type: int, data: str | bytes) -> None:
        if packet_type == MESSAGE:
            self.server.message_handler(self.sid, data)
        elif packet_type == PONG:
            self.last_ping = None
        elif packet_type == CLOSE:
            self.close(wait=False, abort=True, reason=self.server.reason.CLIENT_DISCONNECT)
        # UPGRADE: nothing to answer (python-engineio sent a stray NOOP);
        # PING/NOOP from a v4 client carry no meaning: ignored

    def handle_get_request(self, environ: dict, start_response: Callable) -> Any:
        connections = [s.strip() for s in environ.get('HTTP_CONNECTION', '').lower().split(',')]
        if 'upgrade' in connections and environ.get('HTTP_UPGRADE', '').lower() == 'websocket':
            return self._upgrade_websocket(environ, start_response)
        if self.upgrading or self.upgraded:
            return [OutPacket(NOOP)]
        if self._polling:
            # spec: a second concurrent GET is an error that ends the session
            self.server.logger.warning('%s: overlapping polling GET, closing session', self.sid)
            self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
            raise eio_exc.EngineIOError('overlapping GET')
        self._polling = True
        try:
            return self.poll()
        except eio_exc.QueueEmpty:
            self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
            raise
        finally:
            self._polling = False

    def handle_post_request(self, environ: dict) -> None:
        length = int(environ.get('CONTENT_LENGTH') or 0)
        if length > self.server.max_http_buffer_size:
            raise eio_exc.ContentTooLongError()
        try:
            body = environ['wsgi.input'].read(length)
        except OSError:  # pywsgi's input when the peer ends the connection inside the body
            body = b''
        if len(body) < length:
            # never decode a cut payload: its last packet would arrive truncated
            self.server.logger.warning('%s: polling POST shorter than its Content-Length, closing session', self.sid)
            raise eio_exc.EngineIOError('truncated body')
        try:
            packets = decode_payload(body.decode('utf-8'))
        except (ValueError, UnicodeDecodeError) as exc:
            self.server.logger.warning('%s: malformed polling payload (%s), closing session', self.sid, exc)
            raise eio_exc.EngineIOError(str(exc)) from None
        for packet_type, data in packets:
            if self.closed:
                break
            self.receive_packet(packet_type, data)

    def close(self, wait: bool = True, abort: bool = False, reason: str | None = None) -> None:
        # never wait for the queue to drain: python-engineio did, and a
        # session closed with nobody polling hung the request forever
        super().close(wait=False, abort=abort, reason=reason)
        if self._transport is not None:  # attached, or still probing an upgrade
            self._transport.close()

    def _upgrade_websocket(self, environ: dict, start_response: Callable) -> Any:
        geventws = environ.get('wsgi.websocket')
        if geventws is None or self.server.async_mode != 'gevent':
            return super()._upgrade_websocket(environ, start_response)
        if self.upgraded:
            raise OSError('Socket has been upgraded already')
        server = self.server
        ws = self._transport = WebSocketTransport.take_over(geventws, server.max_http_buffer_size)
        environ['wsgi.websocket'] = TakenOverWebSocket(geventws, ws)
        attached = False
        try:
            if self.connected and not self._probe(ws):
                # a failed upgrade leaves the polling session as it was
                server.logger.info('%s: websocket upgrade failed', self.sid)
                return []
            self.connected = self.upgraded = True
            self._attach(ws)
            attached = True
            server.logger.info('%s: websocket transport ready', self.sid)
            self._read_loop(ws)
        finally:
            self.ws = self._transport = None
            ws.close()
            if attached:
                self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
        return []

    def _probe(self, ws: WebSocketTransport) -> bool:
        """The polling → websocket upgrade handshake (2probe / 3probe / 5)."""
        self.upgrading = True
        try:
            if ws.receive() != '2probe':
                return False
            ws.send(OutPacket(PONG, 'probe').frame())
            if self._polling:
                # release the pending poll; with none pending a queued NOOP
                # would reach the websocket as a stray packet after the upgrade
                self.queue.put(OutPacket(NOOP))
            return ws.receive() == '5'
        finally:
            self.upgrading = False

    def _attach(self, ws: WebSocketTransport) -> None:
        """Move what the polling queue still holds to the websocket, then write directly."""
        queue = self.queue
        while not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is None:
                return
            ws.send(_frame_of(pkt))
        self.ws = ws
        self.queue = _DETACHED_QUEUE  # a gevent JoinableQueue is ~2.5 KiB per client

    def _read_loop(self, ws: WebSocketTransport) -> None:
        receive_packet = self.receive_packet
        on_message = self.server.message_handler
        sid = self.sid
        while not self.closed:
            try:
                msg = ws.receive()
            except wsproto.WebSocketError as exc:
                self.server.logger.warning('%s: websocket protocol error: %s', sid, exc)
                ws.close(exc.code)
                return
            except OSError:  # a silent peer is closed by the heartbeat, as a ping timeout
                return
            if msg is None:
                return
            if msg.__class__ is str:
                if msg[:1] == '4':
                    on_message(sid, msg[1:])
                elif msg and msg[0] in '123456':
                    receive_packet(int(msg[0]), msg[1:])
                else:
                    self.server.logger.warning('%s: invalid Engine.IO packet, closing', sid)
                    ws.close(wsproto.CLOSE_PROTOCOL_ERROR)
                    return
            else:
                on_message(sid, msg)


def _on_main_thread() -> bool:
    """Whether this is the process's main OS thread, even when gevent has patched ``threading``.

    Imported here only: asyncio users need not load ``gevent.monkey``.
    """
    from gevent.monkey import get_original

    return get_original('_thread', 'get_ident')() == get_original('threading', 'main_thread')().ident


def _framing_fault(environ: dict) -> str | None:
    """What makes the length of a request's body doubtful, if anything.

    A proxy in front may frame such a request otherwise than the server, and
    what one takes for body the other serves as a request of its own
    (request smuggling); the answer then closes the connection, so nothing
    after it is served.  Engine.IO clients always send a Content-Length, and
    a chunked request cannot be told apart from one that also sent a
    Content-Length: gevent's pywsgi drops that header before the application
    sees it, and keeps the connection open.
    """
    if 'HTTP_TRANSFER_ENCODING' in environ:
        return 'a Transfer-Encoding'
    length = environ.get('CONTENT_LENGTH')
    if length and not (length.isascii() and length.isdigit()):  # int() takes '+5' and '5_0'
        return 'an invalid Content-Length'
    return None


class EngineServer(engineio.Server):
    """python-engineio's server with greensio's corrections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs['async_handlers'] = False  # Socket.IO dispatches handlers itself
        super().__init__(*args, **kwargs)
        self.message_handler: Callable[[str, str | bytes], None] = lambda sid, data: None
        self._heartbeat: Any = None

    def handle_request(self, environ: dict, start_response: Callable) -> Any:
        if self.async_mode == 'gevent' and gevent.getcurrent().parent is None and not _on_main_thread():
            # a plain OS thread: its greenlets would never run, and every request would hang
            raise RuntimeError(
                "greensio's gevent mode needs a gevent server (greensio.run/make_server, gunicorn with "
                "greensio.gunicorn.GeventWebSocketWorker), or gevent.monkey.patch_all() first thing; "
                "this request came from an OS thread of a threading server (such as 'flask run' or "
                "Django's runserver): to keep that server, create greensio.Server(async_mode='threading')")
        fault = _framing_fault(environ)
        if fault is not None:
            self.logger.warning('refused a request with %s (its body length is in doubt), closing the connection',
                                fault)
            r = self._bad_request('Bad framing')
            start_response(r['status'], r['headers'] + [('Connection', 'close')])
            return [r['response']]
        method = environ['REQUEST_METHOD']
        if method in ('GET', 'POST'):
            query_string = environ.get('QUERY_STRING', '')
            if not eio.has_transport(query_string):
                # python-engineio assumed polling; the spec requires it
                return self._respond(start_response, self._bad_request('Transport unknown'))
            if method == 'POST' and int(environ.get('CONTENT_LENGTH') or 0) > self.max_http_buffer_size:
                return self._too_large(urllib.parse.parse_qs(query_string), start_response)
        return super().handle_request(environ, start_response)

    def _too_large(self, query: dict, start_response: Callable) -> Any:
        """Answer an oversize POST at once and drop the TCP connection.

        python-engineio never answered it and kept the socket (and the
        request greenlet) forever; the body is never read.
        """
        sid = query.get('sid', [None])[0]
        socket = self.sockets.get(sid)
        if socket is not None:
            self.logger.warning('%s: polling POST over maxPayload, closing session', sid)
            socket.close(wait=False, reason=self.reason.TRANSPORT_ERROR)
        start_response('413 Payload Too Large', [('Content-Type', 'text/plain'), ('Connection', 'close')])
        return [b'Payload Too Large']

    @staticmethod
    def _respond(start_response: Callable, r: dict) -> list:
        start_response(r['status'], r['headers'])
        return [r['response']]

    def disconnect(self, sid: str | None = None) -> None:
        sockets = [self.sockets.get(sid)] if sid is not None else list(self.sockets.values())
        for s in sockets:
            if s is not None:
                s.close(wait=False, reason=self.reason.SERVER_DISCONNECT)
                self.sockets.pop(s.sid, None)

    def _ok(self, packets: list | None = None, headers: list | None = None, jsonp_index: int | None = None) -> dict:
        encoded = None if packets is None else [p.encode(b64=True) for p in packets]
        return eio.ok_response(encoded, headers, jsonp_index)

    def _handle_connect(
        self, environ: dict, start_response: Callable, transport: str, jsonp_index: int | None = None
    ) -> Any:
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
            self._heartbeat = self.start_background_task(self._heartbeat_task)
        sid = self.generate_id()
        s = GreenSocket(self, sid)
        self.sockets[sid] = s
        handshake = eio.handshake(sid, self._upgrades(sid, transport), self.ping_interval,
                                  self.ping_interval_grace_period, self.ping_timeout, self.max_http_buffer_size)
        s.send(OutPacket(OPEN, handshake))
        ret = self._trigger_event('connect', sid, environ, run_async=False)
        if ret is not None and ret is not True:
            del self.sockets[sid]
            self.logger.warning('Application rejected connection')
            return self._unauthorized(ret or None)
        if transport == 'websocket':
            ret = s.handle_get_request(environ, start_response)
            if s.closed:
                self.sockets.pop(sid, None)
            return ret
        s.connected = True
        attributes = eio.cookie_attributes(self.cookie)
        headers = [('Set-Cookie', self._generate_sid_cookie(sid, attributes))] if attributes else None
        try:
            return self._ok(s.poll(), headers=headers, jsonp_index=jsonp_index)
        except eio_exc.QueueEmpty:
            return self._bad_request()

    def _heartbeat_task(self) -> None:
        """Ping every connected client each ``ping_interval`` (one greenlet for all)."""
        ping = OutPacket(PING)
        while self.service_task_event is None or not self.service_task_event.is_set():
            self.sleep(self.ping_interval)
            now = time.time()
            for s in list(self.sockets.values()):
                # a peer the server is not reading gets pinged anyway: its PONG
                # may be unread, and without pings it would time the server out
                if s.connected and not s.closing and (s.last_ping is None or s._heartbeat_holds):
                    s.last_ping = now
                    s.send(ping)

    def shutdown(self) -> None:
        super().shutdown()
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None and hasattr(heartbeat, 'kill'):
            heartbeat.kill()  # a greenlet; a thread (threading mode) ends at its next tick
