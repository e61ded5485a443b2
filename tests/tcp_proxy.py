"""A TCP proxy on 127.0.0.1 whose connections a test can cut, as a network drop would.

``cut()`` ends every connection through the proxy with a TCP reset on both
sides (``SO_LINGER`` 0), the way a lost Wi-Fi or a NAT timeout looks to
the server and the client: no Socket.IO or Engine.IO goodbye, no FIN.
"""

from __future__ import annotations

import socket
import struct

import gevent
from gevent.server import StreamServer

_RESET = struct.pack('ii', 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    except OSError:
        pass
    sock.close()


class CuttableProxy:
    def __init__(self, target_port: int) -> None:
        self.target = ('127.0.0.1', target_port)
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._silent: list[socket.socket] = []
        self.cuts = 0
        self._server = StreamServer(('127.0.0.1', 0), self._handle)
        self._server.start()
        self.port = self._server.server_port

    def _handle(self, client: socket.socket, address: object) -> None:
        upstream = socket.create_connection(self.target)
        pair = (client, upstream)
        self._pairs.append(pair)
        pipes = [gevent.spawn(self._pipe, client, upstream), gevent.spawn(self._pipe, upstream, client)]
        gevent.joinall(pipes, count=1)
        gevent.killall(pipes)
        if pair in self._pairs:
            self._pairs.remove(pair)
            client.close()
            upstream.close()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    return
                sink.sendall(data)
        except OSError:
            return

    def cut(self, tell_server: bool = True) -> int:
        """Reset every open connection; returns how many.

        With ``tell_server=False`` only the client sees the reset: the
        server's side stays open and silent, as when a network drops
        without a packet reaching the server, until :meth:`close`.
        """
        pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            _reset(client)
            if tell_server:
                _reset(upstream)
            else:
                self._silent.append(upstream)
        self.cuts += len(pairs)
        return len(pairs)

    def close(self) -> None:
        self.cut()
        for upstream in self._silent:
            _reset(upstream)
        self._server.stop()

    def __enter__(self) -> CuttableProxy:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
