"""A websocket taken over from gevent-websocket: frames read and written by greensio.

Shell ring (gevent).  gevent-websocket (or greensio's server, which uses its
handler) does the HTTP upgrade; from then on greensio reads the TCP socket
and parses frames with ``_core.websocket``, and writes frames straight to
the socket from the emitting greenlet: no per-socket queue or writer
greenlet, and a broadcast writes the same cached frame to every recipient.
The first frame of a loop iteration leaves at once; the frames that follow it
in the same iteration (a burst of broadcasts) leave together in one write at
its end, so a burst costs one system call per client instead of one per frame.
"""

from __future__ import annotations

import logging
import socket as _socket
from typing import Any

import gevent

from .._core import websocket as wsproto

#: Bytes a websocket may owe its peer before the peer is deemed dead; a
#: client that stops reading must not grow the server's memory without end.
MAX_WRITE_BACKLOG = 16 * 1024 * 1024
#: Bytes asked of the socket per read: gevent's recv allocates its buffer only
#: once data is there, so an idle client costs no read buffer.
READ_SIZE = 65536
#: Bytes a burst collects before they are written without waiting for the end
#: of the loop iteration: a long burst must not hold a client's data back.
CORK_SIZE = 65536

logger = logging.getLogger('greensio.engineio')

#: what :meth:`WebSocketTransport.receive_ready` returns when the next message has not arrived
WAIT = object()


class WebSocketTransport:
    """Frames in and out of one websocket's TCP socket."""

    __slots__ = ('_backlog', '_backlog_size', '_corked', '_flushing', '_hub', '_ready', '_watcher', 'closed', 'on_end',
                 'parser', 'sock')

    def __init__(self, sock: Any, max_message_size: int, early_data: bytes = b'', answer: bytes = b'') -> None:
        self.sock = sock
        self.parser = wsproto.FrameParser(max_message_size)
        if early_data:
            self.parser.feed(early_data)
        self.closed = False
        self._backlog: list[bytes] = []
        self._backlog_size = 0
        self._flushing = False
        self._corked = False  # a frame left in this loop iteration: the next ones wait for its end
        # the hub, not bound methods of it or of the socket: each one kept
        # is one more object per connection for the garbage collector to walk
        self._hub = gevent.get_hub()
        #: called by the session's reader once the connection is over (the
        #: access-log line of a websocket request is written then)
        self.on_end: Any = None
        self._watcher: Any = None  # see park()
        self._ready = False
        # No socket timeout: the heartbeat closes a silent peer, and a timeout
        # would cost a timer on every blocking read.
        sock.settimeout(None)
        if answer:
            # the server's answer to the upgrade, not written yet: it leaves
            # with the frames of this loop iteration (the open packet), in
            # one write, and at the latest at the iteration's end
            self._queue(answer)
            self._corked = True
            self._hub.loop.run_callback(self._uncork)

    @classmethod
    def take_over(cls, ws: Any, max_message_size: int, detach: bool = False) -> WebSocketTransport:
        """The transport of gevent-websocket's ``environ['wsgi.websocket']``, which goes dead.

        ``detach``: the server lets the application keep the connection once
        the WSGI call returns (greensio's own server does): the connection's
        descriptor moves to a socket object of the transport's own, and the
        request's handler, its reader and their buffers can go.
        """
        handler = ws.handler
        ws.closed = True  # gevent-websocket must not write its own close frame later
        # nor look for its application when it is collected: its ``close()``
        # on a closed websocket builds a throwaway class twice (a tenth of a
        # connection's set-up); with no handler it stops at the first step
        ws.handler = None
        sock = handler.socket
        # the server may hold its 101 answer back for the transport to write
        # (``greensio.serving.GreenHandler.upgrade_answer``)
        answer = getattr(handler, 'upgrade_answer', None) or b''
        if answer:
            handler.upgrade_answer = None
        # a peer may have sent frames right behind its upgrade request, into
        # the buffer of pywsgi's reader: collect them without waiting
        sock.settimeout(0.0)
        try:
            early = handler.rfile.read1(READ_SIZE) or b''
        except OSError:
            early = b''
        if detach:
            sock = type(sock)(sock.family, sock.type, sock.proto, fileno=sock.detach())
        return cls(sock, max_message_size, early, answer)

    def settimeout(self, seconds: float | None) -> None:
        self.sock.settimeout(seconds)

    def receive(self) -> str | bytes | None:
        """The next text or binary message; None once the peer is gone.

        Raises ``wsproto.WebSocketError`` on a protocol violation, OSError
        on a socket error or a timeout.
        """
        return self._receive(True)

    def receive_ready(self) -> str | bytes | None | object:
        """As :meth:`receive`, from what has arrived only: ``WAIT`` when the next message is not all there.

        The socket is read once after each :meth:`park` callback (it is
        readable then), never more: the caller parks again on ``WAIT``.
        """
        return self._receive(False)

    def park(self, callback: Any, *args: Any) -> None:
        """Have ``callback(*args)`` run (in the hub) once the socket is readable; no greenlet waits meanwhile."""
        self._io().start(callback, *args)

    def _io(self) -> Any:
        """The socket's read watcher (made on first use)."""
        watcher = self._watcher
        if watcher is None:
            watcher = self._watcher = self._hub.loop.io(self.sock.fileno(), 1)
        return watcher

    def readable(self) -> None:
        """The :meth:`park` callback came: the socket has something to read (data, or its end)."""
        self._watcher.stop()
        self._ready = True

    def release(self) -> None:
        """Close the socket (the transport owns it: ``take_over(detach=True)``), once nothing reads it any more."""
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self.sock.close()

    def _receive(self, wait: bool) -> str | bytes | None | object:
        parser = self.parser
        while True:
            msg = parser.next_message()
            if msg is None:
                if wait:
                    # wait for the socket to be readable first: a peer that
                    # waits for our answer has sent nothing more yet, and reading
                    # at once would cost a failed system call and an exception
                    self._hub.wait(self._io())
                elif self._ready:
                    self._ready = False
                else:
                    return WAIT
                data = self.sock.recv(max(parser.bytes_wanted(), READ_SIZE))
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
        """Write ``frame`` now, without waiting: what the socket does not take waits in a bounded backlog."""
        if self.closed:
            return
        if self._flushing:
            self._queue(frame)
            return
        if self._corked:
            self._queue(frame)
            if self._backlog_size >= CORK_SIZE:
                self._uncork()
            return
        try:
            # gevent's send with a timeout of 0: never parks the emitting
            # greenlet (a broadcast must not wait for one slow reader)
            sent = self.sock.send(frame, 0, 0.0)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.abort()
            return
        if sent < len(frame):
            self._queue(frame[sent:])
            self._flushing = True
            gevent.spawn(self._flush)
        else:
            self._corked = True
            self._hub.loop.run_callback(self._uncork)

    def _uncork(self) -> None:
        """Write what the burst collected (a callback at the end of the loop iteration)."""
        if not self._corked:
            return  # written already: the burst outgrew ``CORK_SIZE``
        self._corked = False
        if self._backlog and not self._flushing:
            data = b''.join(self._backlog)
            self._backlog.clear()
            self._backlog_size = 0
            self.send(data)

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
        self._uncork()
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
    says whether it has ended, and the request details (``environ``,
    ``origin``, ``protocol``, ``version``, ``path``) are read from the
    request's environ, as gevent-websocket's object reads them.  It does not
    keep gevent-websocket's object, which holds the request's handler and its
    buffers.  ``send()`` and ``receive()`` raise: a raw message would break
    Engine.IO's framing, and the server reads every message itself.
    """

    __slots__ = ('environ', 'transport')

    def __init__(self, original: Any, transport: WebSocketTransport) -> None:
        self.environ: dict | None = original.environ
        self.transport = transport

    @property
    def closed(self) -> bool:
        return self.transport.closed

    def close(self, code: int = wsproto.CLOSE_NORMAL, message: bytes | str = b'') -> None:
        reason = message.decode('utf-8', 'replace') if isinstance(message, bytes) else message
        self.transport.close(code, reason)

    def send(self, message: Any, binary: bool | None = None) -> None:
        raise RuntimeError('greensio writes this websocket itself: use the server\'s emit() or send()')

    def receive(self) -> Any:
        raise RuntimeError('greensio reads this websocket itself: its messages reach the event handlers '
                           '(and emit() sends)')

    def _detail(self, key: str) -> str | None:
        return self.environ.get(key) if self.environ else None

    @property
    def origin(self) -> str | None:
        return self._detail('HTTP_ORIGIN')

    @property
    def protocol(self) -> str | None:
        return self._detail('HTTP_SEC_WEBSOCKET_PROTOCOL')

    @property
    def version(self) -> str | None:
        return self._detail('HTTP_SEC_WEBSOCKET_VERSION')

    @property
    def path(self) -> str | None:
        return self._detail('PATH_INFO')
