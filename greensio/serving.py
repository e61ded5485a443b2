"""Serving a greensio app on gevent's WSGI server (integration ring).

``make_server`` builds a ``gevent.pywsgi.WSGIServer`` with gevent-websocket's
handler for the HTTP upgrade and ``TCP_NODELAY`` on every connection: pywsgi
writes a response's headers and body separately, and without it each
long-polling response waits ~40 ms for the client's delayed ACK.

The server does not need monkey-patching.  Patch (``from gevent import
monkey; monkey.patch_all()`` first thing in the program) when handlers use
blocking libraries, and always with the message-queue managers, which check.
"""

from __future__ import annotations

import socket
from typing import Any

from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler


#: Responses up to this size go out in one ``send()`` with their headers.
COALESCE_LIMIT = 64 * 1024


class GreenHandler(WebSocketHandler):
    """gevent-websocket's handler, tuned for Engine.IO's small responses.

    TCP_NODELAY on the connection, and headers and a small body written with
    one system call: a long-polling round trip is two small responses, and
    pywsgi's separate header write doubled the sends (and the wake-ups of
    the peer) for each.
    """

    def handle(self) -> None:
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a unix socket)
            pass
        super().handle()

    def _write_with_headers(self, data: bytes) -> None:
        if self.response_use_chunked or len(data) > COALESCE_LIMIT:
            return super()._write_with_headers(data)
        self.headers_sent = True
        self.finalize_headers()
        out = bytearray(b'HTTP/1.1 ')
        out += self.status
        out += b'\r\n'
        for header, value in self.response_headers:
            out += header + b': ' + value + b'\r\n'
        out += b'\r\n'
        if data:  # gevent-websocket writes its 101 response with ''
            out += data
        self._sendall(out)


def make_server(app: Any, host: str = '127.0.0.1', port: int = 5000, log: Any = None, **kwargs: Any) -> pywsgi.WSGIServer:
    """A ready-to-start WSGI server for ``app`` (port 0 picks a free port)."""
    return pywsgi.WSGIServer((host, port), app, handler_class=GreenHandler, log=log, **kwargs)


def run(app: Any, host: str = '127.0.0.1', port: int = 5000, log: Any = 'default', **kwargs: Any) -> None:
    """Serve ``app`` forever on gevent, with websocket support."""
    server = make_server(app, host, port, log=log, **kwargs)
    print(f'greensio serving on http://{host}:{server.server_port}')
    server.serve_forever()
