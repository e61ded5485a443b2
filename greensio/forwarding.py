"""Several workers without sticky sessions (integration ring).

A long-polling client sends each request of its session on whatever
connection its HTTP agent has free, and a balancer (gunicorn's accept loop,
nginx's round-robin) hands it to whatever worker is free: the session's
state lives in one worker only.  Each worker here has a *tag*, eight
characters that start every session id it issues and its message-queue host
id.

On one machine each worker listens on a unix socket named after its tag, in
a directory private to the user.  A worker that receives a request naming
another worker's session hands the *connection* over to the owner (its file
descriptor, with the bytes already read from it) and forgets it: the owner
answers the request, and the client's later requests on that connection go
straight to the owner.  Nothing of the session then depends on the worker
that received it first, and a websocket upgrade is simply served by the
owner.

Between machines the message queue carries the request instead (a
``greensio.request`` of kind ``forward``, which only the owner answers), and
a websocket upgrade is accepted where it arrives and relayed message by
message (``greensio.relay``); the owner is found among the live workers by
the tag its host id starts with.

A sid whose tag names no live worker (a forged sid, a worker that is gone)
is answered where it arrived: ``400 Session ID unknown``, and the client
connects again.

greensio's gunicorn worker turns this on; ``GREENSIO_FORWARDING=off`` turns
it off, ``GREENSIO_WORKERS_DIR`` chooses the directory (workers of one
machine that share sessions must share it; the default is per user, under
the temporary directory).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import socket
import stat
import struct
import tempfile
import time
from typing import Any

import gevent

from ._core import websocket as wsproto

#: Length of a worker's tag, the start of every sid it issues.
TAG_LENGTH = 8
_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'
#: Seconds to reach the owner's socket before the request is answered here.
CONNECT_TIMEOUT = 2.0
#: Bytes moved per read.
CHUNK = 65536
#: Largest hand-over accepted: the request's head and what followed it.
MAX_HANDOVER = 1024 * 1024
_LENGTH = struct.Struct('!I')

#: This process's workers directory, when forwarding is on (set by :func:`enable`).
peers: Peers | None = None


def _is_tag(text: str) -> bool:
    return len(text) == TAG_LENGTH and all(c in _ALPHABET for c in text)


def default_directory() -> str:
    return os.path.join(tempfile.gettempdir(), f'greensio-workers-{os.getuid()}')


class Peers:
    """The workers of this machine that share sessions: this one's tag and socket, the others' by tag."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory or os.environ.get('GREENSIO_WORKERS_DIR') or default_directory()
        self.tag = ''.join(secrets.choice(_ALPHABET) for _ in range(TAG_LENGTH))
        self.path = os.path.join(self.directory, self.tag + '.sock')

    def listen(self) -> socket.socket:
        """This worker's socket, in a directory only this user may enter."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        info = os.stat(self.directory)
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise RuntimeError(f'{self.directory} must belong to this user and be closed to others (mode 0700): '
                               'whoever can write there could inject requests into any session')
        self._sweep()
        # bound and listening under a name the sweep ignores, then renamed into place: another
        # worker starting at the same moment must never find it refusing connections
        provisional = f'{self.path}.{os.getpid()}'
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(provisional)
        listener.listen(1024)
        os.rename(provisional, self.path)
        return listener

    def _sweep(self) -> None:
        """Remove the sockets of workers that died without removing theirs (SIGKILL)."""
        for name in os.listdir(self.directory):
            if not name.endswith('.sock'):
                continue
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(CONNECT_TIMEOUT)
            try:
                probe.connect(os.path.join(self.directory, name))
            except ConnectionRefusedError:  # nobody listens there any more
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.directory, name))
            except OSError:
                pass
            finally:
                probe.close()

    def owner(self, sid: str) -> str | None:
        """The socket of the worker that owns ``sid``, if that is another worker of this machine."""
        tag = sid[:TAG_LENGTH]
        if len(sid) <= TAG_LENGTH or tag == self.tag or not _is_tag(tag):
            return None
        path = os.path.join(self.directory, tag + '.sock')
        return path if os.path.exists(path) else None

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def enable(directory: str | None = None) -> Peers | None:
    """Turn forwarding on for this process (unless ``GREENSIO_FORWARDING=off``); sids get its tag."""
    global peers
    if os.environ.get('GREENSIO_FORWARDING', '').lower() in ('off', '0', 'false', 'no'):
        return None
    from .engineio.base_server import BaseServer

    peers = Peers(directory)
    BaseServer.sid_prefix = peers.tag
    return peers


def hand_over(handler: Any, owner: str) -> bool:
    """Give ``handler``'s connection to the worker listening on ``owner``; False if it cannot be reached.

    ``handler`` is a pywsgi handler past the request's head (greensio's
    ``GreenHandler``).  The owner gets the connection's descriptor, the
    client's address, the request's head and whatever the client sent after
    it, and serves the connection from there; this worker lets it go.
    """
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.settimeout(CONNECT_TIMEOUT)
    try:
        upstream.connect(owner)
    except OSError:
        upstream.close()
        return False
    sock = handler.socket
    received = _request_head(handler) + _buffered(handler, sock)
    address = handler.client_address if isinstance(handler.client_address, tuple) else ('', 0)
    meta = json.dumps({'address': list(address[:2])}).encode()
    payload = _LENGTH.pack(len(meta)) + meta + received
    try:
        with upstream:
            sent = socket.send_fds(upstream, [payload], [sock.fileno()])
            upstream.sendall(payload[sent:])
    except OSError:
        handler.close_connection = True  # the owner may or may not have it: this connection is done
        return True
    # the owner serves the connection now: this worker closes its descriptor at once (a copy left
    # open would keep the connection up should the owner die, with nobody answering on it)
    handler.rfile.close()
    sock.close()
    handler.socket = None
    return True


def _request_head(handler: Any) -> bytes:
    lines = [handler.requestline, *(f'{name}: {value}' for name, value in handler.headers.items())]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def _buffered(handler: Any, sock: socket.socket) -> bytes:
    """What the client sent after the head and pywsgi's reader already holds (a body, a next request)."""
    chunks = []
    sock.settimeout(0.0)
    try:
        while data := handler.rfile.read1(CHUNK):
            chunks.append(data)
    except OSError:  # nothing more without waiting
        pass
    return b''.join(chunks)


class HandOvers:
    """The owner's side: connections other workers of this machine hand over, served by ``handler_class``.

    ``server`` is a pywsgi ``WSGIServer`` that gives the handlers their
    application and environ (it needs not be started).  Serve it with a
    ``StreamServer`` on :meth:`Peers.listen`'s socket, whose pool bounds the
    connections served at once.
    """

    def __init__(self, server: Any, rfile_size: int) -> None:
        self.server = server
        self.rfile_size = rfile_size

    def __call__(self, upstream: socket.socket, address: Any) -> None:
        upstream.settimeout(CONNECT_TIMEOUT)
        try:
            with upstream:
                handed = self._receive(upstream)
        except Exception as exc:  # noqa: BLE001 - whatever a broken peer sent, this worker carries on
            self.server.log.write(f'greensio: refused a connection hand-over: {exc!r}\n')
            return
        if handed is None:  # a starting worker checking that this one is alive
            return
        client, address, received = handed
        reader = io.BufferedReader(_Replay(received, client), self.rfile_size)
        self.server.handler_class(client, address, self.server, reader).handle()

    @staticmethod
    def _receive(upstream: socket.socket) -> tuple[socket.socket, tuple[str, int], bytes] | None:
        data, fds, _flags, _ = socket.recv_fds(upstream, CHUNK, 1)
        if not data and not fds:
            return None
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise ValueError('no connection came with it')
        client = socket.socket(fileno=fds[0])
        try:
            chunks, size = [data], len(data)
            while more := upstream.recv(CHUNK):
                size += len(more)
                if size > MAX_HANDOVER:
                    raise ValueError(f'more than {MAX_HANDOVER} bytes')
                chunks.append(more)
            data = b''.join(chunks)
            (length,) = _LENGTH.unpack_from(data)
            host, port = json.loads(data[_LENGTH.size:_LENGTH.size + length])['address']
            return client, (str(host), int(port)), data[_LENGTH.size + length:]
        except BaseException:
            client.close()
            raise


class _Replay(io.RawIOBase):
    """A connection's bytes: first those another worker had read from it, then the socket's."""

    def __init__(self, received: bytes, sock: socket.socket) -> None:
        self.received = memoryview(received)
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.received:
            n = min(len(buffer), len(self.received))
            buffer[:n] = self.received[:n]
            self.received = self.received[n:]
            return n
        return self.sock.recv_into(buffer)


#: The request headers a long-polling request forwarded over the message
#: queue keeps (what the Engine.IO server reads of one).
QUEUE_HEADERS = ('content-type', 'origin', 'accept-encoding', 'cookie', 'user-agent')
#: Seconds a forwarded request waits beyond the owner's ping interval and
#: timeout (a long-polling GET waits up to the interval there).
QUEUE_MARGIN = 5.0
#: Seconds a request waits for its owner to be heard on the queue (a worker
#: that just started), before it is answered as an unknown session.
MEMBERSHIP_WAIT = 1.0
_UNKNOWN_SESSION = ('400 BAD REQUEST', [('Content-Type', 'application/json')],
                    b'{"code":1,"message":"Session ID unknown"}')


def forward_over_queue(handler: Any, server: Any, sid: str) -> bool:
    """Have the worker of another machine that owns ``sid`` serve this long-polling request, through the queue.

    ``server`` is the Socket.IO server whose message-queue manager carries
    it; False when the owner is not among the live workers (the request is
    then answered here, as an unknown session).  A websocket upgrade is
    accepted here and relayed to the owner through the queue.
    """
    manager = getattr(server, 'manager', None)
    if not hasattr(manager, 'forward') or handler.headers.get('transfer-encoding') is not None:
        return False
    if not _is_tag(sid[:TAG_LENGTH]) or sid.startswith(server.eio.sid_prefix or '\0'):
        return False  # no worker's tag, or this worker's own session
    upgrade = (handler.headers.get('upgrade') or '').lower() == 'websocket'
    if handler.command not in ('GET', 'POST') or (upgrade and handler.command != 'GET'):
        return False
    server._initialize_manager()  # a worker that has had no client yet has not heard the others
    owner = manager.owner_of(sid, TAG_LENGTH)
    # a worker that just started (this one, or the owner) may not have been
    # heard yet: the session's next request can outrun the owner's heartbeat
    deadline = time.monotonic() + MEMBERSHIP_WAIT
    while owner is None and time.monotonic() < deadline:
        gevent.sleep(0.01)
        owner = manager.owner_of(sid, TAG_LENGTH)
    if owner is None:
        return False
    engine = server.eio
    if upgrade:
        return _relay(handler, manager, engine, owner, sid)
    length = int(handler.headers.get('content-length') or 0)
    if length > engine.max_http_buffer_size:
        return False  # answered here: the owner would refuse it too
    body = handler.rfile.read(length) if length else b''
    _, _, query = handler.path.partition('?')
    headers = {name: value for name in QUEUE_HEADERS if (value := handler.headers.get(name)) is not None}
    request = {'sid': sid, 'method': handler.command, 'query': query, 'headers': headers, 'body': body}
    try:
        answer = manager.forward(owner, request, engine.ping_interval + engine.ping_timeout + QUEUE_MARGIN)
    except Exception:  # noqa: BLE001 - a full outbox: the client connects again
        answer = None
    status, answer_headers, answer_body = answer or _UNKNOWN_SESSION
    if isinstance(answer_body, str):
        answer_body = answer_body.encode()
    head = [f'HTTP/1.1 {status}\r\n']
    head.extend(f'{name}: {value}\r\n' for name, value in answer_headers
                if name.lower() not in ('content-length', 'connection'))
    head.append(f'Content-Length: {len(answer_body)}\r\n')
    if handler.close_connection:
        head.append('Connection: close\r\n')
    head.append('\r\n')
    try:
        handler.socket.sendall(''.join(head).encode('latin-1') + answer_body)
    except OSError:
        handler.close_connection = True
    return True


def _relay(handler: Any, manager: Any, engine: Any, owner: str, sid: str) -> bool:
    """Accept the websocket here and relay it to ``owner`` through the queue, until either side closes."""
    key = handler.headers.get('sec-websocket-key')
    if not key or handler.headers.get('sec-websocket-version') != '13':
        return False
    _, _, query = handler.path.partition('?')
    headers = {name.lower(): value for name, value in handler.headers.items()
               if name.lower() in (*QUEUE_HEADERS, 'upgrade', 'connection')}
    relay = manager.open_relay(owner, {'sid': sid, 'query': query, 'headers': headers})
    sock = handler.socket
    handler.close_connection = True
    try:
        sock.settimeout(None)
        sock.sendall(('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                      f'Sec-WebSocket-Accept: {wsproto.accept_key(key)}\r\n\r\n').encode('latin-1'))
    except OSError:
        relay.close()
        return True

    def owner_to_client() -> None:
        try:
            while (frame := relay.receive()) is not None:
                sock.sendall(frame)
            sock.sendall(wsproto.encode_close())
        except OSError:
            pass
        finally:
            _shutdown(sock)

    back = gevent.spawn(owner_to_client)
    parser = wsproto.FrameParser(engine.max_http_buffer_size)
    try:
        while not relay.closed and (data := handler.rfile.read1(CHUNK)):
            parser.feed(data)
            while not relay.closed and (message := parser.next_message()) is not None:
                if message.opcode in (wsproto.OP_TEXT, wsproto.OP_BINARY):
                    relay.send(message.data)
                elif message.opcode == wsproto.OP_PING:
                    sock.sendall(wsproto.encode_frame(wsproto.OP_PONG, message.data))
                elif message.opcode == wsproto.OP_CLOSE:
                    relay.close()
    except (OSError, wsproto.WebSocketError):
        pass
    finally:
        relay.close()
        back.join()
    return True


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
