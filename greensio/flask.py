"""Flask integration: ``SocketIO``, context helpers and a Flask-aware ``Namespace``.

Integration ring.  ``SocketIO`` owns a :class:`greensio.Server`, mounts it in
front of the Flask app's ``wsgi_app`` and registers Flask-style handlers: they
drop the ``sid`` argument and run inside a Flask request context rebuilt from
the environ of the Socket.IO connection, so ``request``, ``session``,
``current_app`` and ``g`` work as in a view.  ``request.sid`` and
``request.namespace`` say who is talking; the module-level helpers
(:func:`emit`, :func:`send`, :func:`join_room`, ...) default to them.

The conventions are Flask-SocketIO's, so an app written for it ports by
changing its imports.  ``run()`` serves on gevent with websocket support; see
the deployment docs for gunicorn.
"""

from __future__ import annotations

import builtins
import functools
import logging
from collections.abc import Callable
from typing import Any

import flask
from flask.ctx import RequestContext
from flask.sessions import SessionMixin

from . import exceptions
from ._core.handlers import call_trimmed
from ._core.payload import from_args
from .middleware import WSGIApp
from .namespace import Namespace as _GreenNamespace
from .server import Server
from .serving import _serve_until_interrupted, make_server

__all__ = [
    'Namespace',
    'SocketIO',
    'call',
    'close_room',
    'disconnect',
    'emit',
    'join_room',
    'leave_room',
    'rooms',
    'send',
]

logger = logging.getLogger('greensio.flask')

#: Options ``SocketIO`` consumes itself; everything else goes to :class:`greensio.Server`.
_OWN_OPTIONS = ('manage_session', 'message_queue', 'channel', 'path', 'resource', 'write_only')

_REFUSALS = (exceptions.ConnectionRefusedError, builtins.ConnectionRefusedError)


class _ManagedSession(dict, SessionMixin):
    """The Socket.IO copy of a user's Flask session (``manage_session=True``).

    Taken from the session cookie at connect time; changes stay on the
    server, for this connection: a Socket.IO event has no HTTP response
    that could carry a new cookie.
    """


class _EventContext(RequestContext):
    """The request context of one Socket.IO event.

    An event is not a route: URL matching (Flask's documented
    ``match_request`` hook) is skipped, a fifth of the context's cost; the
    URL adapter stays, so ``url_for`` works in handlers.
    """

    def match_request(self) -> None:
        pass


class _FlaskMiddleware(WSGIApp):
    """Routes ``/socket.io/`` to greensio and the rest to Flask; tags the environ with the app."""

    # the tag matters only when a connection starts (its environ is kept):
    # long-polling requests of existing sessions may skip this app
    fast_polling = True

    def __init__(self, server: Server, flask_app: flask.Flask, socketio_path: str) -> None:
        self.flask_app = flask_app
        super().__init__(server, flask_app.wsgi_app, socketio_path=socketio_path)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        # a connection keeps this environ; handlers find their app in it
        environ['flask.app'] = self.flask_app
        return super().__call__(environ, start_response)


def _message_queue_manager(url: str, channel: str, write_only: bool) -> Any:
    """A pub/sub manager for ``message_queue``: Redis for ``redis://``/``rediss://``, kombu otherwise."""
    import greensio

    name = 'RedisManager' if url.startswith(('redis://', 'rediss://', 'unix://')) else 'KombuManager'
    manager_class = getattr(greensio, name, None)
    if manager_class is None:
        raise RuntimeError(f'message_queue={url!r} needs greensio.{name}, which this installation does not have')
    return manager_class(url, channel=channel, write_only=write_only)


class SocketIO:
    """Socket.IO for a Flask application.

    ``SocketIO(app)`` or, for application factories, ``socketio = SocketIO()``
    then ``socketio.init_app(app)``.

    :param app: the Flask application (optional; see :meth:`init_app`).
    :param manage_session: ``True`` (default): handlers see a private copy
        of the Flask session taken when the client connected; ``False``:
        the app's session interface is used as is (share server-side
        sessions with HTTP routes).
    :param message_queue: a broker URL (``amqp://...``, ``redis://...``) to
        coordinate several worker processes; with no ``app`` the instance is
        a write-only emitter for external processes (Celery tasks, scripts).
    :param channel: the broker channel, ``'flask-socketio'`` by default.
    :param path: the Socket.IO endpoint, ``'socket.io'`` by default.
    :param kwargs: every :class:`greensio.Server` and Engine.IO option
        (``cors_allowed_origins``, ``ping_interval``, ``client_manager``...).
    """

    def __init__(self, app: flask.Flask | None = None, **kwargs: Any) -> None:
        self.server: Server | None = None
        self.server_options: dict[str, Any] = {}
        self.wsgi_server: Any = None
        self.manage_session = True
        self.exception_handlers: dict[str, Callable[[Exception], Any]] = {}
        self.default_exception_handler: Callable[[Exception], Any] | None = None
        self._pending_handlers: list[tuple[str, Callable, str]] = []
        self._pending_namespaces: list[_GreenNamespace] = []
        self._app: flask.Flask | None = None
        if app is not None or 'message_queue' in kwargs:
            self.init_app(app, **kwargs)
        else:
            self.server_options.update(kwargs)

    def init_app(self, app: flask.Flask | None, **kwargs: Any) -> None:
        """Attach to ``app`` (``None`` with ``message_queue`` makes a write-only emitter)."""
        options = {**self.server_options, **kwargs}
        self.server_options = options
        self.manage_session = options.get('manage_session', True)
        server_options = {k: v for k, v in options.items() if k not in _OWN_OPTIONS}
        url = options.get('message_queue')
        if url and 'client_manager' not in server_options:
            write_only = options.get('write_only', app is None)
            server_options['client_manager'] = _message_queue_manager(
                url, options.get('channel', 'flask-socketio'), write_only)
        self.server = Server(**server_options)
        for event, handler, namespace in self._pending_handlers:
            self.server.on(event, handler, namespace=namespace)
        for namespace_handler in self._pending_namespaces:
            self.server.register_namespace(namespace_handler)
        self._pending_handlers, self._pending_namespaces = [], []
        if app is not None:
            self._app = app
            path = options.get('path', options.get('resource', 'socket.io')).strip('/')
            app.wsgi_app = _FlaskMiddleware(self.server, app, path)  # type: ignore[method-assign]
            app.extensions['socketio'] = self

    @property
    def reason(self) -> Any:
        """Disconnect reasons (``reason.CLIENT_DISCONNECT``, ...), as on the server."""
        return Server.reason

    # -- handler registration ---------------------------------------------------

    def on(self, message: str, namespace: str | None = None) -> Callable[[Callable], Callable]:
        """Decorator registering a handler for the event ``message``.

        Handlers take the event's arguments without the ``sid``; connect
        handlers take ``auth`` (optional), disconnect handlers ``reason``
        (optional).  ``'*'`` catches every event without a handler of its
        own (the event name comes first).  A return value is the ack.
        """
        if not isinstance(message, str):
            raise ValueError('message must be a string')  # noqa: TRY004 - Flask-SocketIO's type
        namespace = namespace or '/'

        def decorator(handler: Callable) -> Callable:
            self._register(message, self._flask_handler(handler, message, namespace), namespace)
            return handler

        return decorator

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """``@socketio.event`` or ``@socketio.event(namespace=...)``: the function name is the event."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def decorator(handler: Callable) -> Callable:
            return self.on(handler.__name__, *args, **kwargs)(handler)

        return decorator

    def on_event(self, message: str, handler: Callable, namespace: str | None = None) -> None:
        """Register ``handler`` for ``message`` without a decorator."""
        self.on(message, namespace=namespace)(handler)

    def on_namespace(self, namespace_handler: _GreenNamespace) -> None:
        """Register a class-based namespace.

        A :class:`greensio.flask.Namespace` runs in Flask request context; a
        plain :class:`greensio.Namespace` (``on_x(self, sid, ...)``) is
        registered on the server as it is.
        """
        if not isinstance(namespace_handler, _GreenNamespace):
            raise ValueError('Not a namespace instance.')  # noqa: TRY004 - as register_namespace
        if isinstance(namespace_handler, Namespace):
            namespace_handler._set_socketio(self)
        if self.server is None:
            self._pending_namespaces.append(namespace_handler)
        else:
            self.server.register_namespace(namespace_handler)

    def on_error(self, namespace: str | None = None) -> Callable[[Callable], Callable]:
        """Decorator: the handler for exceptions raised by handlers of ``namespace``.

        It is called with the exception, in the same request context; its
        return value is sent as the ack.
        """

        def decorator(handler: Callable) -> Callable:
            if not callable(handler):
                raise ValueError('exception_handler must be callable')  # noqa: TRY004 - Flask-SocketIO's type
            self.exception_handlers[namespace or '/'] = handler
            return handler

        return decorator

    def on_error_default(self, handler: Callable) -> Callable:
        """Decorator: the exception handler for namespaces without their own."""
        if not callable(handler):
            raise ValueError('exception_handler must be callable')  # noqa: TRY004 - Flask-SocketIO's type
        self.default_exception_handler = handler
        return handler

    def _register(self, event: str, handler: Callable, namespace: str) -> None:
        if self.server is None:
            self._pending_handlers.append((event, handler, namespace))
        else:
            self.server.on(event, handler, namespace=namespace)

    def _flask_handler(self, handler: Callable, event: str, namespace: str) -> Callable:
        """Adapt a Flask-style handler to the server's ``(lead..., sid, *args)`` calling convention."""
        # catch-alls get the event name and/or namespace before the sid
        n_lead = (event == '*') + (namespace == '*')

        def server_handler(*args: Any) -> Any:
            lead, sid, rest = args[:n_lead], args[n_lead], args[n_lead + 1:]
            real_event = lead[0] if event == '*' else event
            real_namespace = lead[-1] if namespace == '*' else namespace
            return self._handle_event(handler, real_event, real_namespace, sid, rest, lead)

        functools.update_wrapper(server_handler, handler)
        # the server inspects this signature (to pass connect's auth and
        # disconnect's reason): it must not follow __wrapped__ to the user's
        del server_handler.__wrapped__
        return server_handler

    # -- dispatch in request context ------------------------------------------------

    def _request_context(self, sid: str, namespace: str) -> RequestContext:
        """A Flask request context for the connection of ``sid``."""
        environ = self.server.get_environ(sid, namespace=namespace) if self.server else None
        if environ is None:
            raise RuntimeError(f'no connection for sid {sid} in namespace {namespace}')
        app = environ.get('flask.app') or self._app
        if app is None:
            raise RuntimeError('this SocketIO instance is not attached to a Flask app')
        if not self.manage_session:
            ctx = _EventContext(app, environ)
        else:
            request = app.request_class(environ)
            session = environ.get('saved_session')
            if session is None:
                # first use on this connection (its connect): copy what the cookie holds
                opened = app.session_interface.open_session(app, request)
                session = environ['saved_session'] = _ManagedSession(opened or {})
            ctx = _EventContext(app, environ, request=request, session=session)
        return ctx

    def _handle_event(self, handler: Callable, event: str, namespace: str, sid: str,
                      args: tuple[Any, ...], lead: tuple[Any, ...] = ()) -> Any:
        with self._request_context(sid, namespace):
            request = flask.request
            request.sid = sid  # type: ignore[attr-defined]
            request.namespace = namespace  # type: ignore[attr-defined]
            request.event = {'message': event, 'args': args}  # type: ignore[attr-defined]
            try:
                if event == 'connect':
                    # the server passes (environ, auth); Flask handlers take (auth) or ()
                    auth = args[1] if len(args) > 1 else None
                    return call_trimmed(handler, (*lead, auth), 1)
                if event == 'disconnect':
                    return call_trimmed(handler, (*lead, *args), 1)
                return handler(*lead, *args)
            except _REFUSALS:
                raise
            except Exception as exc:
                error_handler = self.exception_handlers.get(namespace, self.default_exception_handler)
                if error_handler is None:
                    raise
                return error_handler(exc)

    def _ack_with_context(self, callback: Callable | None) -> Callable | None:
        """Run an emit's ack ``callback`` in the request context of the emitting handler's client."""
        if callback is None or not flask.has_request_context():
            return callback
        sid = getattr(flask.request, 'sid', None)
        namespace = getattr(flask.request, 'namespace', '/')
        if sid is None:
            return callback

        @functools.wraps(callback)
        def with_context(*args: Any) -> Any:
            try:
                ctx = self._request_context(sid, namespace)
            except RuntimeError:  # the emitting client has gone
                return callback(*args)
            with ctx:
                flask.request.sid = sid  # type: ignore[attr-defined]
                flask.request.namespace = namespace  # type: ignore[attr-defined]
                return callback(*args)

        return with_context

    # -- server-side API (usable anywhere) ------------------------------------------------

    def _require_server(self) -> Server:
        if self.server is None:
            raise RuntimeError('SocketIO.init_app() has not been called')
        return self.server

    def emit(self, event: str, *args: Any, namespace: str | None = None, to: Any = None, room: Any = None,
             include_self: bool = True, skip_sid: Any = None, callback: Callable | None = None,
             ignore_queue: bool = False, **kwargs: Any) -> None:
        """Emit ``event`` to everyone in ``namespace``, or to ``to`` (a sid, a room or a list).

        Several ``args`` travel as several arguments.  ``include_self=False``
        inside a handler skips the client being handled.
        """
        server = self._require_server()
        if not include_self and skip_sid is None:
            skip_sid = flask.request.sid  # type: ignore[attr-defined]
        server.emit(event, from_args(args), to=to or room, skip_sid=skip_sid, namespace=namespace or '/',
                    callback=self._ack_with_context(callback), ignore_queue=ignore_queue)

    def send(self, data: Any, json: bool = False, namespace: str | None = None, to: Any = None,
             room: Any = None, include_self: bool = True, skip_sid: Any = None,
             callback: Callable | None = None, ignore_queue: bool = False, **kwargs: Any) -> None:
        """Send a ``message`` event (``json=True``: a ``json`` event)."""
        self.emit('json' if json else 'message', data, namespace=namespace, to=to, room=room,
                  include_self=include_self, skip_sid=skip_sid, callback=callback, ignore_queue=ignore_queue)

    def call(self, event: str, *args: Any, to: Any = None, sid: str | None = None, namespace: str | None = None,
             timeout: float | None = 60, ignore_queue: bool = False, **kwargs: Any) -> Any:
        """Emit to one client and wait for its ack; see :meth:`greensio.Server.call`."""
        return self._require_server().call(event, from_args(args), to=to, sid=sid, namespace=namespace or '/',
                                           timeout=timeout, ignore_queue=ignore_queue)

    def close_room(self, room: Any, namespace: str | None = None) -> None:
        """Take every client out of ``room``."""
        self._require_server().close_room(room, namespace=namespace or '/')

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``target`` on a greenlet; the returned object has ``join()``."""
        return self._require_server().start_background_task(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep without blocking other greenlets."""
        self._require_server().sleep(seconds)

    # -- serving -------------------------------------------------------------------------

    def run(self, app: flask.Flask, host: str | None = None, port: int | None = None, debug: bool | None = None,
            use_reloader: bool | None = None, log_output: bool | None = None, **kwargs: Any) -> None:
        """Serve ``app`` on gevent's WSGI server with websocket support, until :meth:`stop`.

        ``host`` defaults to 127.0.0.1, ``port`` to ``SERVER_NAME``'s port or
        5000; ``log_output`` (default: ``debug``) logs each HTTP request.
        Extra keyword arguments go to ``gevent.pywsgi.WSGIServer`` (``keyfile``,
        ``certfile``...).  There is no reloader: restart the process.  Ctrl-C
        stops the server with one line, no traceback, and this call returns (a
        program that ends there exits with status 0, as ``flask run`` does).
        """
        if host is None:
            host = '127.0.0.1'
        if port is None:
            server_name = app.config.get('SERVER_NAME') or ''
            port = int(server_name.rsplit(':', 1)[1]) if ':' in server_name else 5000
        if debug is not None:
            app.debug = debug
        if use_reloader:
            logger.warning('greensio.flask: the reloader is not supported; restart the process after changes')
        if log_output is None:
            log_output = app.debug
        for ignored in ('allow_unsafe_werkzeug', 'reloader_options'):
            kwargs.pop(ignored, None)
        self.wsgi_server = make_server(app, host, port, log='default' if log_output else None, **kwargs)
        self.wsgi_server.start()  # binds now, so port 0 is resolved before the banner
        print(f'greensio serving on http://{host}:{self.wsgi_server.server_port}', flush=True)
        try:
            _serve_until_interrupted(self.wsgi_server)
        finally:
            self.wsgi_server = None

    def stop(self) -> None:
        """Stop the server started by :meth:`run` (from a handler or another greenlet)."""
        if self.server is not None:
            self.server.shutdown()
        if self.wsgi_server is not None:
            self.wsgi_server.stop()

    def test_client(self, app: flask.Flask, namespace: str | None = None, query_string: str | None = None,
                    headers: dict | None = None, auth: Any = None, flask_test_client: Any = None) -> Any:
        """An in-process client for tests, no sockets; see :class:`greensio.testing.SocketIOTestClient`."""
        from .flask_testing import SocketIOTestClient

        return SocketIOTestClient(app, self, namespace=namespace, query_string=query_string, headers=headers,
                                  auth=auth, flask_test_client=flask_test_client)


class Namespace(_GreenNamespace):
    """A class-based namespace whose ``on_<event>`` methods run in Flask request context.

    Methods take the event's arguments without the ``sid`` (use
    ``request.sid``), like ``SocketIO.on`` handlers: ``on_connect(self[,
    auth])``, ``on_disconnect(self[, reason])``, ``on_<event>(self, *args)``.
    """

    def __init__(self, namespace: str | None = None) -> None:
        super().__init__(namespace)
        self.socketio: SocketIO | None = None

    def _set_socketio(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Dispatch an event to ``on_<event>`` inside a request context."""
        handler = self._handler_for(event)
        if handler is None or self.socketio is None:
            return None
        lead: tuple[Any, ...] = ()
        namespace = self.namespace
        if namespace == '*':  # a catch-all namespace gets the real one first
            namespace = args[0]
            lead, args = (namespace,), args[1:]
        return self.socketio._handle_event(handler, event, namespace, args[0], args[1:], lead)

    def emit(self, event, data=None, room=None, include_self=True, namespace=None, callback=None,
             to=None, skip_sid=None, ignore_queue=False):
        """Emit to ``room``/``to``, or everyone in the namespace; see :meth:`SocketIO.emit`."""
        return self.socketio.emit(event, *((data,) if data is not None else ()), to=to or room,
                                  include_self=include_self, skip_sid=skip_sid,
                                  namespace=namespace or self.namespace, callback=callback,
                                  ignore_queue=ignore_queue)

    def send(self, data, room=None, include_self=True, namespace=None, callback=None, to=None,
             skip_sid=None, ignore_queue=False):
        """Send a ``message`` event; see :meth:`SocketIO.send`."""
        return self.socketio.send(data, to=to or room, include_self=include_self, skip_sid=skip_sid,
                                  namespace=namespace or self.namespace, callback=callback,
                                  ignore_queue=ignore_queue)

    def close_room(self, room, namespace=None):
        """Take every client out of ``room``."""
        return self.socketio.close_room(room, namespace=namespace or self.namespace)


# -- helpers for use inside handlers ---------------------------------------------------------


def _current() -> SocketIO:
    try:
        return flask.current_app.extensions['socketio']
    except (RuntimeError, KeyError):
        raise RuntimeError('greensio.flask helpers need a Socket.IO handler context') from None


def _here(namespace: str | None) -> str:
    return namespace or getattr(flask.request, 'namespace', None) or '/'


def emit(event: str, *args: Any, namespace: str | None = None, to: Any = None, room: Any = None,
         broadcast: bool = False, include_self: bool = True, skip_sid: Any = None,
         callback: Callable | None = None, ignore_queue: bool = False, **kwargs: Any) -> None:
    """Emit from a handler: to the client being handled unless ``to``/``room`` or ``broadcast=True``.

    ``include_self=False`` leaves out the client being handled;
    ``callback`` receives the ack, in this client's request context.
    """
    socketio = _current()
    to = to or room
    if to is None and not broadcast:
        to = flask.request.sid  # type: ignore[attr-defined]
    socketio.emit(event, *args, namespace=_here(namespace), to=to, include_self=include_self,
                  skip_sid=skip_sid, callback=callback, ignore_queue=ignore_queue)


def send(message: Any, json: bool = False, namespace: str | None = None, to: Any = None, room: Any = None,
         broadcast: bool = False, include_self: bool = True, skip_sid: Any = None,
         callback: Callable | None = None, ignore_queue: bool = False, **kwargs: Any) -> None:
    """Send a ``message`` (``json=True``: ``json``) event from a handler; targets as :func:`emit`."""
    emit('json' if json else 'message', message, namespace=namespace, to=to, room=room, broadcast=broadcast,
         include_self=include_self, skip_sid=skip_sid, callback=callback, ignore_queue=ignore_queue)


def call(event: str, *args: Any, to: Any = None, namespace: str | None = None, timeout: float | None = 60,
         ignore_queue: bool = False, **kwargs: Any) -> Any:
    """Emit to a client (default: the one being handled) and wait for its ack."""
    socketio = _current()
    return socketio.call(event, *args, to=to or flask.request.sid,  # type: ignore[attr-defined]
                         namespace=_here(namespace), timeout=timeout, ignore_queue=ignore_queue)


def join_room(room: Any, sid: str | None = None, namespace: str | None = None) -> None:
    """Put the client being handled (or ``sid``) in ``room``."""
    _current()._require_server().enter_room(sid or flask.request.sid, room,  # type: ignore[attr-defined]
                                            namespace=_here(namespace))


def leave_room(room: Any, sid: str | None = None, namespace: str | None = None) -> None:
    """Take the client being handled (or ``sid``) out of ``room``."""
    _current()._require_server().leave_room(sid or flask.request.sid, room,  # type: ignore[attr-defined]
                                            namespace=_here(namespace))


def close_room(room: Any, namespace: str | None = None) -> None:
    """Take every client out of ``room``."""
    _current().close_room(room, namespace=_here(namespace))


def rooms(sid: str | None = None, namespace: str | None = None) -> list:
    """Rooms of the client being handled (or ``sid``), including its own sid room."""
    return _current()._require_server().rooms(sid or flask.request.sid,  # type: ignore[attr-defined]
                                              namespace=_here(namespace))


def disconnect(sid: str | None = None, namespace: str | None = None, silent: bool = False) -> None:
    """Disconnect the client being handled (or ``sid``) from the namespace.

    ``silent`` does nothing: Flask-SocketIO 5 keeps it, deprecated and
    ignored, so that older calls still work, and so does greensio.
    """
    _current()._require_server().disconnect(sid or flask.request.sid,  # type: ignore[attr-defined]
                                            namespace=_here(namespace))

