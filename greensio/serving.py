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

import signal
import socket
import time
from typing import Any

import gevent
from gevent import pywsgi
from geventwebsocket.handler import Client, WebSocketHandler

from . import forwarding
from ._core.eio_http import parse_query
from .engineio.direct import PollingRoute, RequestHeaders, access_line, send_answer, serve_following
from .engineio.websocket_sessions import DETACH

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
class GreenHandler(WebSocketHandler):
    """gevent-websocket's handler, tuned for Engine.IO's small responses.

    TCP_NODELAY on the connection, a lighter request header parser, and
    long-polling requests of existing sessions answered straight from the
    parsed request (no WSGI environ), headers and body in one send.
    """

    MessageClass = RequestHeaders

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        super().__init__(sock, address, server, rfile or sock.makefile('rb', REQUEST_BUFFER))

    def handle(self) -> None:
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a unix socket)
            pass
        try:
            super().handle()
        except OSError:  # the peer left while an error answer was written: nothing to report
            pass

    def read_requestline(self) -> str:
        self.socket.settimeout(getattr(self.server, 'idle_timeout', IDLE_TIMEOUT))
        return super().read_requestline()

    def read_request(self, raw_requestline: str) -> bool:
        # faulty framing is refused by RequestHeaders; this is the rule that
        # needs the version: HTTP/1.0 has no Transfer-Encoding, so its framing
        # is in doubt (a ValueError here is answered 400, and the connection closed)
        try:
            parsed = super().read_request(raw_requestline)
        except OSError as exc:
            # the head stalled past the idle timeout, or the peer left: a
            # ValueError is answered 400 without pywsgi's traceback on stderr
            raise ValueError(f'request head not received ({exc.__class__.__name__})') from None
        if self.request_version != 'HTTP/1.1' and self.headers.get('transfer-encoding') is not None:
            raise ValueError(f'Transfer-Encoding in an {self.request_version} request')
        return parsed

    # -- long-polling, straight from the parsed request ------------------------------
    #
    # A long-polling round trip is two small HTTP requests.  Building a WSGI
    # environ and routing through WSGIApp cost more than the Engine.IO work
    # itself, so requests that carry a sid (and no upgrade, no chunked body)
    # go to the Engine.IO server's ``handle_polling`` from the parsed request
    # line and headers; the core decides them exactly as it decides WSGI
    # requests.  Handshakes and websockets take the WSGI path: the
    # application keeps their environ.  pywsgi calls ``get_environ`` right
    # after parsing the headers, so that is where this runs;
    # ``handle_one_response`` then has nothing to do.

    _served_direct = False
    _detached = False

    def get_environ(self) -> dict:
        if self._forward() or self._serve_polling():
            self._served_direct = True
            return {}
        self.socket.settimeout(None)  # past its head, an application's request is not bounded here
        environ = super().get_environ()
        environ['greensio.nodelay'] = True  # set in handle(): the Engine.IO server need not set it again
        if getattr(self.server, 'detach_websockets', False):
            environ[DETACH] = True
        return environ

    def handle_one_response(self) -> None:
        if self._served_direct:
            self._served_direct = False
            route = self._polling_route()
            if route is not None and not self.close_connection:
                # the long-polling requests that follow on this connection are
                # answered without pywsgi's request parsing and its timeouts
                log = self.log_followed if getattr(self.server, 'access_log', True) else None
                serve_following(self, route, self.server.environ['wsgi.url_scheme'], log)
            return
        super().handle_one_response()

    def _forward(self) -> bool:
        """Hand a request of a session another worker owns to that worker (see ``greensio.forwarding``)."""
        peers = forwarding.peers
        if peers is None:
            return False
        _, _, query = self.path.partition('?')
        at = query.find('sid=')
        if at < 0 or query.startswith(peers.tag, at + 4):  # no session, or one of this worker's
            return False
        sid = parse_query(query).get('sid') or ''
        owner = peers.owner(sid)
        if owner is not None:  # a worker of this machine: if it is not there any more, the session is gone
            return forwarding.hand_over(self, owner)
        route = self._polling_route()  # the owner may be a worker of another machine
        return route is not None and forwarding.forward_over_queue(self, route.server, sid)

    def _polling_route(self) -> PollingRoute | None:
        server = self.server
        route = server.__dict__.get('greensio_route', False)
        if route is False:
            route = server.greensio_route = PollingRoute.of(server.application)
        return route

    def _serve_polling(self) -> bool:
        if self.request_version != 'HTTP/1.1':
            return False
        route = self._polling_route()
        if route is None:
            return False
        command, headers = self.command, self.headers
        query = route.takes(command, self.path, headers)
        if query is None:
            return False
        self.time_start = time.time()
        engine = route.engine
        r = engine.handle_polling(command, query, headers, self.server.environ['wsgi.url_scheme'], self.rfile.read)
        if r is NotImplemented:
            return False
        if r is None:  # the body never came: no answer, the connection closes
            self.close_connection = True
            return True
        if r.close_connection:
            self.close_connection = True
        if not send_answer(engine, r, command, query, self.socket, self.close_connection):
            self.close_connection = True
            return True
        if getattr(self.server, 'access_log', True):
            self.time_finish = time.time()
            self.log_direct(r.status_line, len(r.body))
        return True

    def log_direct(self, status: str, length: int) -> None:
        """The access-log line of a request answered without WSGI (pywsgi's format)."""
        self.server.log.write(access_line(self.client_address, self.requestline, status, length, self.time_start))

    def log_followed(self, requestline: str, headers: Any, status: str, length: int, started: float) -> None:
        """The access-log line of a long-polling request that followed on a kept-alive connection."""
        self.requestline = requestline
        self.command, _, rest = requestline.partition(' ')
        self.path, _, self.request_version = rest.partition(' ')
        self.headers = headers
        self.time_start = started
        self.log_direct(status, length)

    def log_request(self) -> None:
        # pywsgi's access log, to the server's ``log``.  gevent-websocket's
        # version formats the line for every request (~20 µs) and hands it to
        # its own logger, which shows nothing unless in debug mode.
        if self._detached:  # the websocket goes on: its line comes when it ends (_websocket_ended)
            return
        if getattr(self.server, 'access_log', True):
            pywsgi.WSGIHandler.log_request(self)

    # -- websockets ------------------------------------------------------------------
    #
    # gevent-websocket's ``run_websocket`` calls the application and, once it
    # returns, ends the websocket and sets ``environ['wsgi.websocket']`` to
    # None.  Under this server (``make_server``) the Engine.IO server may
    # instead detach the connection's socket and return at once (``DETACH``):
    # the request is then over for the server, which neither closes the
    # connection nor keeps the handler, and the environ keeps the
    # application's websocket (applications close a client with
    # ``environ['wsgi.websocket'].close()``).

    def run_websocket(self) -> None:
        if getattr(self, 'prevent_wsgi_call', False):
            return
        clients = self.server.__dict__.setdefault('clients', {})
        environ = self.environ
        websocket = self.websocket
        clients[self.client_address] = Client(self.client_address, websocket)
        try:
            list(self.application(environ, lambda s, h, e=None: []))
        finally:
            self._send_upgrade_answer()  # if the application did not take the connection over
            del clients[self.client_address]
            if not websocket.closed:
                websocket.close()
            self.websocket = None
            if self.socket is not None and self.socket.fileno() < 0:  # detached: the application serves it
                self.socket = None
                self._detached = True
                self._log_at_end(environ.get('wsgi.websocket'))
            else:
                environ['wsgi.websocket'] = None

    def _log_at_end(self, websocket: Any) -> None:
        """Have the access-log line of a detached websocket written when it ends, with its real duration."""
        transport = getattr(websocket, 'transport', None)
        if transport is not None and getattr(self.server, 'access_log', True):
            transport.on_end = self._websocket_ended

    def _websocket_ended(self) -> None:
        self._detached = False
        self.time_finish = time.time()
        self.log_request()

    # -- the answer to a websocket upgrade --------------------------------------------
    #
    # gevent-websocket writes its 101 answer as soon as it accepts an upgrade.
    # When the upgrade is for greensio's Engine.IO server (which takes the
    # connection over), the answer is held back instead and leaves with the
    # server's first frame, the open packet, in one write: one system call
    # less, and the client is woken once for both.  Any other write on the
    # connection sends it first.

    #: the held 101 answer; ``WebSocketTransport.take_over`` takes it
    upgrade_answer: bytes | None = None

    def write(self, data: bytes) -> None:
        if (self.code == 101 and not data and not self.headers_sent and self.provided_date is not None
                and self._for_engine()):
            # what pywsgi would write: gevent-websocket's headers, no Date
            self.upgrade_answer = b''.join([b'HTTP/1.1 ', self.status, b'\r\n',
                                            *[b'%s: %s\r\n' % item for item in self.response_headers], b'\r\n'])
            self.headers_sent = self.connection_upgraded = True
            self.response_length += len(self.upgrade_answer)  # as pywsgi counts it, for the access log
            return
        self._send_upgrade_answer()
        super().write(data)

    def _send_upgrade_answer(self) -> None:
        answer = self.upgrade_answer
        if answer is not None:
            self.upgrade_answer = None
            self.socket.sendall(answer)

    def _for_engine(self) -> bool:
        route = self._polling_route()
        return route is not None and self.path.partition('?')[0] == route.path

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


def make_server(app: Any, host: str = '127.0.0.1', port: int = 5000, log: Any = None,
                idle_timeout: float = IDLE_TIMEOUT, **kwargs: Any) -> pywsgi.WSGIServer:
    """A ready-to-start WSGI server for ``app`` (port 0 picks a free port).

    ``idle_timeout``: see :data:`IDLE_TIMEOUT`.  Other keyword arguments go to
    gevent's ``WSGIServer``.
    """
    server = pywsgi.WSGIServer((host, port), app, handler_class=GreenHandler, log=log, **kwargs)
    server.idle_timeout = idle_timeout
    server.access_log = log is not None
    # a websocket is served outside the server's greenlets once upgraded; not
    # with a pool (``spawn=``), which should bound websockets too
    server.detach_websockets = server.pool is None
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
