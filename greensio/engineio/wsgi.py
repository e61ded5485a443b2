"""HTTP requests to the Engine.IO path: the WSGI entry, the handshake and long-polling.

Shell ring.  The core (``_core.eio_server``) routes each request and decides
its answer; this part of the green server reads and writes around it: a WSGI
call (:meth:`HttpRequests.handle_request`), or a request already parsed by
greensio's own server (:meth:`HttpRequests.handle_polling`, see ``direct``),
and a long-polling GET with nothing to send waits on an event the core's
``wake_poll`` sets.
"""

from __future__ import annotations

import os
import socket as _socket
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._core import eio_http
from .._core.eio_http import HttpRefused, Response
from .direct import KeptAlive, PollingRoute

if TYPE_CHECKING:
    from .socket import Socket

_monotonic = time.monotonic


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


class _EnvironHeaders:
    """A WSGI environ's request headers, looked up by lower-case name (what the core reads)."""

    __slots__ = ('environ',)

    def __init__(self, environ: dict) -> None:
        self.environ = environ

    def get(self, name: str, default: Any = None) -> Any:
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            key = _ENVIRON_KEYS[name] = 'HTTP_' + name.upper().replace('-', '_')
        return self.environ.get(key) or default


#: header name -> WSGI environ key (the few the core asks about, filled as asked)
_ENVIRON_KEYS = {'content-length': 'CONTENT_LENGTH', 'content-type': 'CONTENT_TYPE'}


#: connections whose TCP_NODELAY is set, by their reader (one per connection under pywsgi)
_nodelay_done: weakref.WeakSet = weakref.WeakSet()


def _set_nodelay(environ: dict) -> None:
    """TCP_NODELAY on the connection of a request served by a server greensio does not own.

    pywsgi writes a response's headers and its body with two sends; without
    TCP_NODELAY the body waits for the client's delayed ACK, ~40 ms, and a
    long-polling round trip, two such responses, can never be faster.  The
    option is set on a duplicate of the connection's descriptor (the same
    socket), once per connection.
    """
    if 'greensio.nodelay' in environ:  # greensio's own server set it when it accepted the connection
        return
    sock = environ.get('gunicorn.sock') or environ.get('gunicorn.socket')  # gunicorn's gevent / sync workers
    stream = environ.get('wsgi.input')
    key = getattr(stream, 'rfile', stream)  # pywsgi's input wraps the connection's reader
    if key is None:
        return
    try:
        if key in _nodelay_done:
            return
        _nodelay_done.add(key)
    except TypeError:  # not weakly referenceable: no way to do it once per connection
        return
    try:
        if sock is not None:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return
        fd = key.fileno()
        with _socket.socket(fileno=os.dup(fd)) as dup:
            if dup.family in (_socket.AF_INET, _socket.AF_INET6):
                dup.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except (OSError, ValueError, AttributeError):  # not a socket, or not TCP
        pass


class HttpRequests:
    """The green ``Server``'s HTTP side (a part of :class:`greensio.engineio.server.Server`)."""

    def handle_request(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Serve an HTTP request to the Engine.IO path (the WSGI application)."""
        gevent = self._gevent
        if gevent is not None:
            if gevent.getcurrent().parent is None and not _on_main_thread():
                # a plain OS thread: its greenlets would never run, and every request would hang
                raise RuntimeError(
                    "greensio's gevent mode needs a gevent server (greensio.run/make_server, gunicorn with "
                    "greensio.gunicorn.GeventWebSocketWorker), or gevent.monkey.patch_all() first thing; "
                    "this request came from an OS thread of a threading server (such as 'flask run' or "
                    "Django's runserver): to keep that server, create greensio.Server(async_mode='threading')")
            _set_nodelay(environ)
        fault = _framing_fault(environ)
        if fault is not None:
            self.logger.warning('refused a request with %s (its body length is in doubt), closing the connection',
                                fault)
            r = eio_http.refuse(eio_http.BAD_REQUEST, message='Bad framing', close_connection=True).response()
            return self._wsgi_answer(start_response, r, environ)
        headers = _EnvironHeaders(environ)
        method = environ['REQUEST_METHOD']
        verdict = self._origin_verdict(headers.get('origin'), environ)
        with self._lock:
            route = self._core.route(method, environ.get('QUERY_STRING', ''), headers,
                                     scheme=environ.get('wsgi.url_scheme', 'http'), origin_verdict=verdict)
        if isinstance(route, eio_http.Poll):
            r = self._poll(route, headers.get('accept-encoding'))
            return self._wsgi_answer(start_response, r, environ, keep_alive=True)
        if isinstance(route, eio_http.Post):
            posted = self._post(route, lambda size: environ['wsgi.input'].read(size))
            # no body: nobody to answer either
            r = posted or eio_http.refuse(eio_http.BAD_REQUEST, close_connection=True).response()
            return self._wsgi_answer(start_response, r, environ, keep_alive=True)
        if isinstance(route, eio_http.Handshake):
            r = self._handshake(route, environ)
        elif isinstance(route, eio_http.WebSocketRequest):
            return self._websocket(route, environ, start_response)
        elif isinstance(route, eio_http.Refusal):
            r = self._refused(route, method, headers)
        else:  # Preflight
            r = route.response()
        return self._wsgi_answer(start_response, r, environ)

    def handle_polling(self, method: str, query: str, headers: Any, scheme: str,
                       read: Callable[[int], bytes]) -> Any:
        """Serve a long-polling request of an existing session from a server's parsed request.

        greensio's server calls this instead of ``handle_request`` for
        requests that carry a ``sid`` and no upgrade: no WSGI environ is
        built.  ``headers.get`` takes lower-case names; ``read(n)`` reads the
        body.  Returns the answer, which the caller writes in one send (if
        that fails, it calls :meth:`polling_lost`); ``NotImplemented`` when
        the request needs the WSGI path (an Origin to ask a callable about);
        None when the body could not be read (close the connection, no
        answer).
        """
        if self._callable_origins and headers.get('origin') is not None:
            return NotImplemented
        with self._lock:
            route = self._core.route(method, query, headers, scheme=scheme)
        if isinstance(route, eio_http.Poll):
            return self._poll(route, headers.get('accept-encoding'))
        if isinstance(route, eio_http.Post):
            return self._post(route, read)
        if isinstance(route, eio_http.Refusal):
            return self._refused(route, method, headers)
        if isinstance(route, eio_http.Preflight):
            return route.response()
        return NotImplemented  # a handshake or a websocket: the caller checked it is not

    def _refused(self, refusal: eio_http.Refusal, method: str, headers: Any) -> Response:
        if refusal.closed is not None:
            what = 'polling POST over maxPayload' if refusal.status == 413 else 'overlapping polling POST'
            self.logger.warning('%s: %s, closing session', refusal.closed.sid, what)
        r = refusal.response()
        if method == 'POST':
            length = eio_http.content_length_of(headers.get('content-length'))
            if length:
                # the body is not read: the connection cannot carry another request
                r.close_connection = True
                if length > self.max_http_buffer_size:
                    r.status, r.body = 413, b'Payload Too Large'
                    r.headers = [*refusal.headers, ('Content-Type', 'text/plain')]
        return r

    def polling_lost(self, sid: str) -> None:
        """The answer to a long-polling GET could not be written: what it carried is lost."""
        socket = self.sockets.get(sid)
        if socket is not None:
            with self._lock:
                socket.state.poll_aborted()

    def _wsgi_answer(self, start_response: Callable, r: Response, environ: dict,
                     keep_alive: bool = False) -> Iterable[bytes]:
        """Answer through WSGI; ``keep_alive``: a polling request, whose connection may then be kept (``direct``)."""
        headers = r.headers
        if keep_alive and not r.close_connection:
            kept = self._kept_alive(start_response, environ, r.body)
            if kept is not None:
                start_response(r.status_line, [*headers, ('Content-Length', str(len(r.body)))])
                return kept
        if r.close_connection:
            headers = [*headers, ('Connection', 'close')]
            body = environ.get('wsgi.input')
            if body is not None and hasattr(body, 'chunked_input'):
                # pywsgi would read (and discard) the whole announced body
                # before closing: a peer that never sends it held the
                # connection and its greenlet
                body.content_length = body.position
                body.chunked_input = False
        start_response(r.status_line, headers)
        return [r.body]

    def _kept_alive(self, start_response: Callable, environ: dict, body: bytes) -> KeptAlive | None:
        """A result that serves the connection's next polling requests itself, when pywsgi calls this directly.

        Not under greensio's own server, which answers them without WSGI from the start.
        """
        if self._gevent is None or 'greensio.nodelay' in environ or environ.get('SERVER_PROTOCOL') != 'HTTP/1.1':
            return None
        from gevent.pywsgi import WSGIHandler

        handler = getattr(start_response, '__self__', None)
        if not isinstance(handler, WSGIHandler):
            return None
        route = PollingRoute.of(handler.application)
        if route is None or route.engine is not self:
            return None
        return KeptAlive(body, handler, route, environ.get('wsgi.url_scheme', 'http'))

    def _handshake(self, route: eio_http.Handshake, environ: dict) -> Response:
        sid = self.generate_id()
        with self._lock:
            state, _ = self._core.open(sid, route.transport, _monotonic())
            socket = self.sockets[sid] = self._socket_class(self, state)
            self._arm(socket)
        refusal = self._connect(socket, environ)
        if refusal is not None:
            return refusal
        cookie = self._cookie(route.cookie)
        with self._lock:
            try:
                body = state.poll(_monotonic())
            except HttpRefused as exc:  # the connect handler closed it
                return exc.refusal.response()
        return route.response_for(state, body or '', cookie)

    def _poll(self, route: eio_http.Poll, accept_encoding: str | None) -> Response:
        state = route.session
        socket: Socket = state.context
        with self._lock:
            try:
                body = state.poll(_monotonic())
            except HttpRefused as exc:
                if exc.refusal.closed is not None:
                    self.logger.warning('%s: overlapping polling GET, closing session', state.sid)
                return exc.refusal.response()
            if body is None:
                event = socket._poll_event
                if event is None:
                    event = socket._poll_event = self.create_event()
                else:
                    event.clear()
        if body is None:
            socket._polling = True
            try:
                event.wait()
            finally:
                socket._polling = False
            with self._lock:
                body = state.finish_poll()
        r = route.response(body)
        if self.http_compression:
            r.body, encoding = eio_http.compress(r.body, accept_encoding, self.compression_methods,
                                                 self.compression_threshold)
            if encoding is not None:
                r.headers.append(('Content-Encoding', encoding))
        return r

    def _post(self, route: eio_http.Post, read: Callable[[int], bytes]) -> Response | None:
        length = route.content_length
        state = route.session
        try:
            body = read(route.max_body + 1 if length is None else min(length, route.max_body))
        except OSError:  # the body stalled past the server's timeout, or the peer left inside it
            with self._lock:
                state.post_aborted()
            return None
        with self._lock:
            try:
                state.receive_post(body, _monotonic(), post=route)
            except HttpRefused as exc:
                self.logger.warning('%s: malformed polling payload (%s), closing session', state.sid,
                                    exc.refusal.message)
                r = exc.refusal.response()
                if length is not None and len(body) < length:
                    r.close_connection = True  # the body was cut: the framing is lost
                return r
        return route.ok()


def _on_main_thread() -> bool:
    """Whether this is the process's main OS thread, even when gevent has patched ``threading``."""
    from gevent.monkey import get_original

    return get_original('_thread', 'get_ident')() == get_original('threading', 'main_thread')().ident
