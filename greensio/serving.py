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
#: Read buffer per connection; pywsgi's default 8 KiB stays allocated for
#: the whole life of every websocket client, this one too but at half.
REQUEST_BUFFER = 4096
#: Request header lines and line length accepted (http.client's limits).
MAX_HEADERS = 100
MAX_HEADER_LINE = 65536


class RequestHeaders:
    """What pywsgi reads of a request's headers, parsed without the email package.

    pywsgi parses headers with ``http.client.parse_headers`` (~50 µs a
    request here, a large share of a long-polling round trip); this keeps its
    interface (``status``, ``get``, ``getheader``, ``headers``, ``typeheader``,
    deleting a header) at about a tenth of the cost.
    """

    def __init__(self, fp: Any, *args: Any) -> None:
        self.status = ''
        self._items: list[tuple[str, str]] = []
        for _ in range(MAX_HEADERS + 1):
            line = fp.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                self.status = 'Line too long'
                return
            if line in (b'\r\n', b'\n', b''):
                return
            text = line.decode('latin-1')
            if text[0] in ' \t' and self._items:  # obsolete line folding
                name, value = self._items.pop()
                self._items.append((name, value + ' ' + text.strip()))
                continue
            name, sep, value = text.partition(':')
            if not sep or not name or name != name.strip():
                self.status = 'Invalid header line'
                return
            self._items.append((name, value.strip()))
        self.status = 'Too many headers'

    def get(self, name: str, default: Any = None) -> Any:
        index = self.__dict__.get('_index')
        if index is None:
            index = self._index = {}
            for key, value in self._items:
                index.setdefault(key.lower(), value)
        return index.get(name.lower(), default)

    getheader = get

    def items(self) -> list[tuple[str, str]]:
        # gunicorn's access log (greensio.gunicorn) reads the headers this way
        return list(self._items)

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self._items = [item for item in self._items if item[0].lower() != name]
        self.__dict__.pop('_index', None)

    @property
    def headers(self) -> list[str]:
        return [f'{key}: {value}\r\n' for key, value in self._items]

    @property
    def typeheader(self) -> str | None:
        return self.get('content-type')


class GreenHandler(WebSocketHandler):
    """gevent-websocket's handler, tuned for Engine.IO's small responses.

    TCP_NODELAY on the connection, a lighter request header parser, and
    headers and a small body written with one system call: a long-polling round trip is two small responses, and
    pywsgi's separate header write doubled the sends (and the wake-ups of
    the peer) for each.
    """

    MessageClass = RequestHeaders

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        super().__init__(sock, address, server, rfile or sock.makefile('rb', REQUEST_BUFFER))

    def handle(self) -> None:
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a unix socket)
            pass
        super().handle()

    def run_application(self) -> None:
        super().run_application()
        body = self.wsgi_input
        if self.code == 413 and self.close_connection and body is not None:
            # the app refused an oversize body and closes the connection:
            # pywsgi would first read (and discard) the whole announced body, so
            # a peer that never sends it held the connection and its greenlet
            body.content_length = body.position
            body.chunked_input = False

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
