"""Long-polling requests answered straight on their connection, without a WSGI environ.

Shell ring (gevent).  A long-polling round trip is two small HTTP requests,
and on gevent's pywsgi building the WSGI environ, parsing headers with the
email package and writing headers and body in two sends cost several times
the Engine.IO work itself.  Requests that carry a ``sid`` (and no upgrade,
no chunked body) therefore go to the Engine.IO server's ``handle_polling``
from a parsed request line and headers, and their answer is written in one
send.  Two servers do so:

- greensio's own handler (``greensio.serving.GreenHandler``), for every
  such request it parses;
- any other pywsgi handler (gevent-websocket's, the documented deployment of
  python-socketio, also under gunicorn): once pywsgi has written the answer
  of a polling request, :class:`KeptAlive`, the WSGI result, goes on reading
  that keep-alive connection and answers the polling requests that follow
  itself.  It looks at each request head in the connection's read buffer
  before taking it; anything else (a handshake, an upgrade, another URL, a
  head not yet whole) is left there for pywsgi to read, as if nothing had
  happened.  pywsgi's own handler gets an access-log line for each such
  request, in its format; gevent-websocket's (whose log shows nothing unless
  in debug mode) gets none.  The line of the request whose result this is
  comes when the connection is handed back, timed up to then.
"""

from __future__ import annotations

import io
import time
from datetime import datetime
from email.utils import formatdate
from typing import Any

from .._core.eio_http import Response, parse_query
from .middleware import WSGIApp

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
                self.status = self._framing_fault()
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

    def _framing_fault(self) -> str:
        """Why the length of the request's body is in doubt ('' when it is not).

        A proxy in front may frame such a request otherwise than pywsgi (which
        keeps the first of two Content-Length headers, parses one with
        ``int()``, so ``+5`` and ``5_0`` pass, and drops it silently when the
        body is chunked): what one side takes for body the other serves as a
        request of its own, which is request smuggling.  A non-empty status
        makes pywsgi answer 400 and close the connection.
        """
        length = coding = None
        for key, value in self._items:
            if len(key) == 14 and key.lower() == 'content-length':
                if length is not None:
                    return 'Duplicate Content-Length'
                length = value
            elif len(key) == 17 and key.lower() == 'transfer-encoding':
                if coding is not None:
                    return 'Duplicate Transfer-Encoding'
                coding = value
        if coding is not None:
            if length is not None:
                return 'Content-Length with Transfer-Encoding'
            if coding.lower() != 'chunked':  # pywsgi decodes chunked alone
                return 'Unsupported Transfer-Encoding'
        elif length is not None and not (length.isascii() and length.isdigit()):
            return 'Invalid Content-Length'
        return ''

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


class PollingRoute:
    """Where a server's long-polling requests go, found once per server.

    Set when the served app is a plain ``WSGIApp`` (possibly behind a Flask
    app's ``wsgi_app``) of a green Engine.IO server, or of a greensio server
    on one.
    """

    def __init__(self, path: str, engine: Any, server: Any) -> None:
        self.path = path
        self.engine = engine
        self.server = server  # the Socket.IO server, or the Engine.IO one

    @classmethod
    def of(cls, application: Any) -> PollingRoute | None:
        from .server import Server

        for app in (application, getattr(application, 'wsgi_app', None)):
            if isinstance(app, WSGIApp) and _may_skip(type(app)):
                engine = getattr(app.engineio_app, 'eio', app.engineio_app)
                if isinstance(engine, Server) and engine.async_mode == 'gevent':
                    return cls(app.engineio_path, engine, app.engineio_app)
        return None

    def takes(self, method: str, target: str, headers: Any) -> str | None:
        """The query of a request this route answers directly, None when the WSGI app must see it."""
        path, _, query = target.partition('?')
        if path != self.path or 'sid=' not in query:
            return None
        if headers.get('upgrade') is not None or headers.get('transfer-encoding') is not None:
            return None
        if method != 'POST' and headers.get('content-length') not in (None, '0'):
            return None  # a body nobody would read
        return query


def _may_skip(app_class: type) -> bool:
    """Whether polling requests of existing sessions may bypass this WSGI app.

    A class says so with ``fast_polling``; one that overrides ``__call__``
    without saying is given every request.
    """
    return vars(app_class).get('fast_polling', app_class.__call__ is WSGIApp.__call__)


_date_cache: list[Any] = [0, '']


def http_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True)]
    return _date_cache[1]


def send_answer(engine: Any, r: Response, method: str, query: str, sock: Any, close: bool) -> bool:
    """Write the answer to a long-polling request in one send; False if the connection failed.

    ``close``: the client asked for the connection to end after it.
    """
    body = r.body
    head = [f'HTTP/1.1 {r.status_line}\r\n']
    for name, value in r.headers:
        head.append(f'{name}: {value}\r\n')
    head.append(f'Content-Length: {len(body)}\r\nDate: {http_date()}\r\n')
    if r.close_connection or close:
        head.append('Connection: close\r\n')
    head.append('\r\n')
    data = ''.join(head).encode('latin-1') + body
    try:
        # one send() is enough for a small response; gevent's sendall()
        # adds a getsockopt() system call and chunking on every call
        sent = sock.send(data)
        if sent < len(data):
            sock.sendall(memoryview(data)[sent:])
    except OSError:
        if method == 'GET' and r.status == 200:
            engine.polling_lost(parse_query(query).get('sid', ''))
        return False
    return True


def access_line(client: Any, requestline: str, status: str, length: int, started: float) -> str:
    """pywsgi's access-log line for a request answered here."""
    if isinstance(client, tuple):
        client = client[0]
    now = datetime.now().replace(microsecond=0)
    return (f'{client or "-"} - - [{now}] "{requestline}" {status.split()[0]} {length or "-"} '
            f'{time.time() - started:.6f}\n')


class KeptAlive:
    """The WSGI result of a long-polling request served by a pywsgi handler that is not greensio's.

    Its one chunk is the answer; once pywsgi has written it, iterating on
    serves the polling requests that follow on the same connection (see the
    module's description), until one that is not for it.
    """

    def __init__(self, body: bytes, handler: Any, route: PollingRoute, scheme: str) -> None:
        self.body = body
        self.handler = handler
        self.route = route
        self.scheme = scheme

    def __iter__(self) -> Any:
        yield self.body
        handler = self.handler
        # pywsgi itself iterates this (no middleware that would collect the
        # chunks first), and the answer above is on the wire
        if handler.result is self and handler.headers_sent and not handler.close_connection:
            self._serve(handler)

    def _serve(self, handler: Any) -> None:
        from gevent import pywsgi

        log = None
        if type(handler).log_request is pywsgi.WSGIHandler.log_request:
            server_log = handler.server.log

            def log(requestline: str, headers: Any, status: str, length: int, started: float) -> None:
                server_log.write(access_line(handler.client_address, requestline, status, length, started))

        serve_following(handler, self.route, self.scheme, log)


def serve_following(handler: Any, route: PollingRoute, scheme: str, log: Any) -> None:
    """Answer the requests that follow on ``handler``'s keep-alive connection while they are
    long-polling requests of ``route``'s sessions; the first that is not is left to pywsgi.

    ``log(requestline, headers, status, length, started)`` logs each
    request answered (None: no log).
    """
    while _serve_next(handler, route, scheme, log):
        pass


def _serve_next(handler: Any, route: PollingRoute, scheme: str, log: Any) -> bool:
    """Answer the connection's next request if it is for ``route``; False to hand the connection back."""
    rfile = handler.rfile
    try:
        buffered = rfile.peek(1)  # waits for the next request
    except (OSError, ValueError):  # the peer left, or pywsgi closed the connection
        return False
    end = buffered.find(b'\r\n\r\n')
    if end < 0:
        return False  # a head not whole yet (or not HTTP): pywsgi reads it
    head = buffered[:end + 4]
    line_end = head.find(b'\r\n')
    requestline = head[:line_end].decode('latin-1')
    method, _, rest = requestline.partition(' ')
    target, _, version = rest.partition(' ')
    if version != 'HTTP/1.1':
        return False
    headers = RequestHeaders(io.BytesIO(head[line_end + 2:]))
    if headers.status or headers.get('expect') is not None:
        return False
    query = route.takes(method, target, headers)
    engine = route.engine
    if query is None or not query.startswith(engine.sid_prefix, query.find('sid=') + 4):
        return False  # not long-polling, or a session of another worker (greensio.forwarding)
    started = time.time()
    unread = [len(head)]  # the head stays in the buffer until the engine takes the request

    def read(size: int) -> bytes:
        if unread:
            rfile.read(unread.pop())
        return rfile.read(size)

    r = engine.handle_polling(method, query, headers, scheme, read)
    if r is NotImplemented:
        return False  # nothing read: pywsgi serves it through the application
    if unread:
        rfile.read(unread.pop())
    if r is None:  # the body never came: no answer, the connection closes
        handler.close_connection = True
        return False
    close = r.close_connection or (headers.get('connection') or '').lower() == 'close'
    if not send_answer(engine, r, method, query, handler.socket, close):
        handler.close_connection = True
        return False
    if log is not None:
        log(requestline, headers, r.status_line, len(r.body), started)
    if close:
        handler.close_connection = True
    return not close
