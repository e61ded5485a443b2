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

import io
import signal
import socket
import time
from email.utils import formatdate
from typing import Any

import engineio
import gevent
from engineio import exceptions as eio_exc
from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler

from .engine import EngineServer

#: Responses up to this size go out in one ``send()`` with their headers.
COALESCE_LIMIT = 64 * 1024
#: Read buffer per connection; pywsgi's default 8 KiB stays allocated for
#: the whole life of every websocket client, this one too but at half.
REQUEST_BUFFER = 4096
#: Seconds a connection may take to send a whole request head, or stay idle
#: between keep-alive requests, before it is closed: an abandoned or trickling
#: connection must not hold a file descriptor and a greenlet for ever
#: (Node's http server bounds the same with ``headersTimeout``).  Bodies and
#: responses of long-polling requests served by the fast path are bounded too;
#: a websocket drops it at the upgrade (the heartbeat watches it from then on).
IDLE_TIMEOUT = 60.0
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


class _PollingRoute:
    """Where a server's long-polling requests go, found once per server.

    Set when the served app is a plain ``WSGIApp`` (possibly behind a
    Flask app's ``wsgi_app``) of a greensio server on its gevent engine.
    """

    def __init__(self, path: str, engine: EngineServer) -> None:
        self.path = path
        self.engine = engine
        origins = engine.cors_allowed_origins
        self.cors = origins != []
        self.any_origin = origins == '*' or (isinstance(origins, (list, tuple)) and '*' in origins)
        # an allow-list of names is checked here; a callable only by python-engineio
        self.allowed: frozenset[str] | None = None
        if isinstance(origins, str):
            self.allowed = frozenset([origins])
        elif isinstance(origins, (list, tuple)):
            self.allowed = frozenset(origin for origin in origins if isinstance(origin, str))
        self.same_origin = origins is None  # python-engineio's default

    def origin_allowed(self, origin: str, headers: RequestHeaders, scheme: str) -> bool:
        """True when python-engineio would certainly accept ``origin``.

        False sends the request down the ordinary path, which decides (a
        refusal, a callable, or proxy headers in play).
        """
        if not self.cors or self.any_origin:
            return True
        if self.allowed is not None:
            return origin in self.allowed
        if self.same_origin and headers.get('x-forwarded-proto') is None and headers.get('x-forwarded-host') is None:
            host = headers.get('host')
            return bool(host) and origin == f'{scheme}://{host}'
        return False

    @classmethod
    def of(cls, application: Any) -> _PollingRoute | None:
        for app in (application, getattr(application, 'wsgi_app', None)):
            if isinstance(app, engineio.WSGIApp) and _may_skip(type(app)):
                engine = getattr(app.engineio_app, 'eio', None)
                if isinstance(engine, EngineServer) and engine.async_mode == 'gevent':
                    return cls(app.engineio_path, engine)
        return None


def _may_skip(app_class: type) -> bool:
    """Whether polling requests of existing sessions may bypass this WSGI app.

    A class says so with ``fast_polling``; one that overrides ``__call__``
    without saying is given every request.
    """
    return vars(app_class).get('fast_polling', app_class.__call__ is engineio.WSGIApp.__call__)


#: what pywsgi puts in ``server.log`` when asked for no access log
_NO_LOG = getattr(pywsgi, '_NoopLog', ())

_date_cache: list[Any] = [0, b'']


def _http_date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True).encode('latin-1')]
    return _date_cache[1]


class GreenHandler(WebSocketHandler):
    """gevent-websocket's handler, tuned for Engine.IO's small responses.

    TCP_NODELAY on the connection, a lighter request header parser, and
    headers and a small body written with one system call: a long-polling
    round trip is two small responses, and pywsgi's separate header write
    doubled the sends (and the wake-ups of the peer) for each.
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

    def read_requestline(self) -> str:
        self.socket.settimeout(getattr(self.server, 'idle_timeout', IDLE_TIMEOUT))
        return super().read_requestline()

    def read_request(self, raw_requestline: str) -> bool:
        # faulty framing is refused by RequestHeaders; this is the rule that
        # needs the version: HTTP/1.0 has no Transfer-Encoding, so its framing
        # is in doubt (a ValueError here is answered 400, and the connection closed)
        parsed = super().read_request(raw_requestline)
        if self.request_version != 'HTTP/1.1' and self.headers.get('transfer-encoding') is not None:
            raise ValueError(f'Transfer-Encoding in an {self.request_version} request')
        return parsed

    def _handle_client_error(self, ex: Exception) -> Any:
        if isinstance(ex, OSError):  # the head stalled past the idle timeout, or the peer left:
            return None  # close without a traceback on stderr (pywsgi prints one)
        return super()._handle_client_error(ex)

    # -- the long-polling fast path ---------------------------------------------
    #
    # A long-polling round trip is two small HTTP requests.  Building a WSGI
    # environ, routing through WSGIApp and python-engineio's request checks
    # cost more than the Engine.IO work itself, so requests for an existing,
    # connected polling session are served straight from the parsed request
    # line and headers.  Anything unusual (JSONP, an Origin not certainly
    # allowed, an upgrade, chunked bodies, an unknown sid...) takes
    # the ordinary WSGI path, which keeps python-engineio's behaviour.
    # pywsgi calls ``get_environ`` right after parsing the headers, so that is
    # where the fast path runs; ``handle_one_response`` then has nothing to do.

    _served_fast = False

    def get_environ(self) -> dict:
        if self._serve_polling():
            self._served_fast = True
            return {}
        self.socket.settimeout(None)  # past its head, an application's request is not bounded here
        return super().get_environ()

    def handle_one_response(self) -> None:
        if self._served_fast:
            self._served_fast = False
            return
        super().handle_one_response()

    def _polling_route(self) -> _PollingRoute | None:
        server = self.server
        route = server.__dict__.get('_greensio_route', False)
        if route is False:
            route = server._greensio_route = _PollingRoute.of(server.application)
        return route

    def _serve_polling(self) -> bool:
        command = self.command
        if (command != 'GET' and command != 'POST') or self.request_version != 'HTTP/1.1':
            return False
        route = self._polling_route()
        if route is None:
            return False
        path, _, query = self.path.partition('?')
        if path != route.path or '%' in query:
            return False
        params = dict(part.partition('=')[::2] for part in query.split('&'))
        if params.get('transport') != 'polling' or 'j' in params:
            return False
        engine = route.engine
        sid = params.get('sid')
        s = engine.sockets.get(sid)
        if s is None or s.closed or not s.connected or s.upgraded or s.upgrading:
            return False
        headers = self.headers
        origin = headers.get('origin')
        if origin is not None and (
            '\r' in origin  # a value pywsgi's own checks must refuse
            or not route.origin_allowed(origin, headers, self.server.environ['wsgi.url_scheme'])
        ):
            return False
        if headers.get('upgrade'):
            return False
        if command == 'POST':
            length = headers.get('content-length')
            if length is None or not length.isdigit() or int(length) > engine.max_http_buffer_size:
                return False
            answer = self._post(engine, s, int(length))
        else:
            answer = self._get(engine, s)
        if answer is None:  # the body never came: no answer, the connection closes
            self.close_connection = True
        else:
            self._respond(engine, route, *answer, origin)
        return True

    def _post(self, engine: EngineServer, s: Any, length: int) -> tuple[bytes, bytes, bytes] | None:
        try:
            body = self.rfile.read(length)
        except OSError:  # the body stalled past the idle timeout, or the peer left
            return None
        if len(body) < length:
            # the peer ended its side inside the body: refused (by the session,
            # which sees the short body) and, the framing being broken, closed
            self.close_connection = True
        try:
            s.handle_post_request({'CONTENT_LENGTH': length, 'wsgi.input': io.BytesIO(body)})
        except eio_exc.EngineIOError:
            engine.disconnect(s.sid)
            return b'400 BAD REQUEST', b'text/plain', b'"Bad Request"'
        except Exception:
            engine.logger.exception('post request handler error')
        return b'200 OK', b'text/plain', b'ok'

    def _get(self, engine: EngineServer, s: Any) -> tuple[bytes, bytes, bytes]:
        try:
            packets = s.handle_get_request({}, None)
        except eio_exc.EngineIOError:
            engine.disconnect(s.sid)
            return b'400 BAD REQUEST', b'text/plain', b'"Bad Request"'
        finally:
            if s.closed:
                engine.sockets.pop(s.sid, None)
        return b'200 OK', b'text/plain; charset=UTF-8', engine._ok(packets)['response']

    def _respond(self, engine: EngineServer, route: _PollingRoute, status: bytes, content_type: bytes,
                 body: bytes, origin: str | None) -> None:
        extra = b''
        if engine.http_compression and len(body) >= engine.compression_threshold:
            accepted = [e.split(';')[0].strip() for e in (self.headers.get('accept-encoding') or '').split(',')]
            for encoding in engine.compression_methods:
                if encoding in accepted:
                    body = getattr(engine, '_' + encoding)(body)
                    extra += b'Content-Encoding: ' + encoding.encode() + b'\r\n'
                    break
        if route.cors:
            if origin is not None:
                extra += b'Access-Control-Allow-Origin: ' + origin.encode('latin-1') + b'\r\n'
            if engine.cors_credentials:
                extra += b'Access-Control-Allow-Credentials: true\r\n'
        if self.close_connection:
            extra += b'Connection: close\r\n'
        head = b'HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n%s\r\n' % (
            status, content_type, len(body), _http_date(), extra)
        data = head + body
        try:
            # one send() is enough for a small response; gevent's sendall()
            # adds a getsockopt() system call and chunking on every call
            sent = self.socket.send(data)
            if sent < len(data):
                self.socket.sendall(memoryview(data)[sent:])
        except OSError:
            self.close_connection = True
            return
        if not isinstance(self.server.log, _NO_LOG):
            self.status = self._orig_status = status.decode('latin-1')
            self.response_length = len(body)
            self.time_finish = time.time()
            self.log_request()

    def log_request(self) -> None:
        # pywsgi's access log, to the server's ``log``.  gevent-websocket's
        # version formats the line for every request (~20 µs) and hands it to
        # its own logger, which shows nothing unless in debug mode.
        if not isinstance(self.server.log, _NO_LOG):
            pywsgi.WSGIHandler.log_request(self)

    def run_application(self) -> None:
        super().run_application()
        body = self.wsgi_input
        if self.code in (400, 413) and self.close_connection and body is not None:
            # the app refused an oversize body, or one of doubtful length, and
            # closes the connection: pywsgi would first read (and discard) the
            # whole announced body, so a peer that never sends it (or streams
            # chunks without end) held the connection and its greenlet
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


def make_server(app: Any, host: str = '127.0.0.1', port: int = 5000, log: Any = None,
                idle_timeout: float = IDLE_TIMEOUT, **kwargs: Any) -> pywsgi.WSGIServer:
    """A ready-to-start WSGI server for ``app`` (port 0 picks a free port).

    ``idle_timeout``: see :data:`IDLE_TIMEOUT`.  Other keyword arguments go to
    gevent's ``WSGIServer``.
    """
    server = pywsgi.WSGIServer((host, port), app, handler_class=GreenHandler, log=log, **kwargs)
    server.idle_timeout = idle_timeout
    return server


def run(app: Any, host: str = '127.0.0.1', port: int = 5000, log: Any = 'default', **kwargs: Any) -> None:
    """Serve ``app`` forever on gevent, with websocket support.

    Ctrl-C (SIGINT) stops the server with one line and no traceback, and this
    call returns: a program that ends there exits with status 0, as
    ``flask run`` does.
    """
    server = make_server(app, host, port, log=log, **kwargs)
    server.start()  # binds first, so port 0 prints the port it got
    print(f'greensio serving on http://{host}:{server.server_port}', flush=True)
    _serve_until_interrupted(server)


def _serve_until_interrupted(server: Any) -> None:
    """``server.serve_forever()``, until Ctrl-C (SIGINT), which then stops it quietly.

    Python's own SIGINT handler raises KeyboardInterrupt in whichever greenlet
    runs at that moment, gevent's hub or a request's, and each prints a
    traceback through gevent's internals before the main greenlet sees it.
    Here the signal only schedules ``server.stop()``, and the call returns
    after printing one line; a second Ctrl-C, should stopping hang, raises
    KeyboardInterrupt as before.  A handler the program installed itself is
    left alone, and so is a server run outside the main thread (signals are
    not delivered there).
    """
    interrupted: list[bool] = []

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.append(True)
        signal.signal(signal.SIGINT, previous)
        gevent.spawn(server.stop)  # not here: this may run inside any greenlet

    previous = signal.getsignal(signal.SIGINT)
    installed = False
    if previous is signal.default_int_handler:
        try:
            signal.signal(signal.SIGINT, on_sigint)
            installed = True
        except ValueError:  # not the main thread
            pass
    try:
        server.serve_forever()
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        print('greensio stopped (interrupted)', flush=True)
