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
import os
import sys
from collections.abc import Callable
from typing import Any

import flask
from flask.ctx import RequestContext
from flask.sessions import SessionMixin
from werkzeug.debug import DebuggedApplication

from . import _reload, exceptions
from ._core.handlers import call_trimmed
from ._core.payload import from_args
from .flask_testing import SocketIOTestClient
from .green.namespace import Namespace as _GreenNamespace
from .green.server import Server
from .middleware import WSGIApp
from .serving import _serve_until_interrupted, make_server

#: Raised by a connect handler to refuse the client (re-exported under Flask-SocketIO's name).
ConnectionRefusedError = exceptions.ConnectionRefusedError

__all__ = [
    'ConnectionRefusedError',
    'Namespace',
    'SocketIO',
    'SocketIOTestClient',
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

#: Options ``SocketIO`` consumes itself: they never reach :class:`greensio.Server`.
#: ``message_queue`` stays in ``server_options`` (apps read it back), as does
#: the ``client_manager`` built from it.
_OWN_OPTIONS = ('manage_session', 'message_queue', 'channel', 'path', 'resource', 'write_only')

#: The ``async_mode`` values greensio serves: its gevent server (the
#: default), and OS threads for a threaded WSGI server such as ``flask run``.
_ASYNC_MODES = ('gevent', 'threading')

#: Flask-SocketIO's other modes, with what to use instead.
_REFUSED_MODES = {
    'eventlet': "greensio runs on gevent, not eventlet: drop async_mode (or pass 'gevent') and "
                'replace eventlet.monkey_patch() with gevent.monkey.patch_all()',
    'gevent_uwsgi': "greensio serves websockets itself: drop async_mode='gevent_uwsgi' and run uWSGI in "
                    'gevent mode with greensio as the WSGI app, or use socketio.run() or the gunicorn worker',
}

_REFUSALS = (exceptions.ConnectionRefusedError, builtins.ConnectionRefusedError)

#: Message queue URL schemes Flask-SocketIO accepts that greensio has no manager for.
_UNSUPPORTED_QUEUES = ('kafka://', 'zmq')


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

    if url.startswith(_UNSUPPORTED_QUEUES):
        raise ValueError(f'message_queue={url!r}: greensio has no Kafka or ZeroMQ manager; '
                         'use RabbitMQ (amqp://) or Redis (redis://)')
    name = 'RedisManager' if url.startswith(('redis://', 'rediss://', 'unix://')) else 'KombuManager'
    manager_class = getattr(greensio, name, None)
    if manager_class is None:
        raise RuntimeError(f'message_queue={url!r} needs greensio.{name}, which this installation does not have')
    return manager_class(url, channel=channel, write_only=write_only)


@functools.cache
def _warn_unpatched() -> None:
    from gevent import monkey

    if not monkey.is_module_patched('time'):
        logger.warning('greensio.flask: background tasks are greenlets and run only while the rest of the '
                       'program waits in gevent; time.sleep() and threading waits do not, because gevent '
                       'has not patched the standard library. Call gevent.monkey.patch_all() first thing '
                       '(in tests: at the top of conftest.py), or wait with socketio.sleep() or task.join()')


def _check_async_mode(mode: str | None) -> None:
    if mode is None or mode in _ASYNC_MODES:
        return
    hint = _REFUSED_MODES.get(mode, "greensio serves async_mode 'gevent' (the default) or 'threading'")
    raise ValueError(f'async_mode={mode!r} is not supported: {hint}')


class _AppJSON:
    """``flask.json`` with the app's context pushed, so every packet uses the app's JSON provider.

    Without it, an emit from a background task (no app context) would be
    encoded by Flask's default provider and one from a handler by the app's.
    """

    def __init__(self, app: flask.Flask) -> None:
        self.app = app

    def dumps(self, *args: Any, **kwargs: Any) -> str:
        with self.app.app_context():
            return flask.json.dumps(*args, **kwargs)

    def loads(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.app_context():
            return flask.json.loads(*args, **kwargs)


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
        self.async_mode: str | None = None
        self.sockio_mw: _FlaskMiddleware | None = None
        self.wsgi_server: Any = None
        self.manage_session = True
        self.exception_handlers: dict[str, Callable[[Exception], Any]] = {}
        self.default_exception_handler: Callable[[Exception], Any] | None = None
        self._pending_handlers: list[tuple[str, Callable, str]] = []
        self._pending_namespaces: list[_GreenNamespace] = []
        self._app: flask.Flask | None = None
        self._queue_manager: Any = None  # the manager built for message_queue
        #: While a test client delivers a packet: the exceptions that no
        #: error handler took, for the client to raise (the server logs them).
        self._handler_errors: list[Exception] | None = None
        if app is not None or 'message_queue' in kwargs:
            self.init_app(app, **kwargs)
        else:
            self.server_options.update(kwargs)

    def init_app(self, app: flask.Flask | None, **kwargs: Any) -> None:
        """Attach to ``app`` (``None`` with ``message_queue`` makes a write-only emitter)."""
        if app is not None:
            app.extensions['socketio'] = self
        options = self.server_options
        options.update(kwargs)
        self.manage_session = options.pop('manage_session', self.manage_session)
        channel = options.pop('channel', 'flask-socketio')
        write_only = options.pop('write_only', app is None)
        path = options.pop('path', None) or options.pop('resource', None) or 'socket.io'
        options.pop('resource', None)
        url = options.get('message_queue')
        # a manager the app passed is kept; one built here for an earlier app is not shared
        if url and options.get('client_manager') in (None, self._queue_manager):
            options['client_manager'] = self._queue_manager = _message_queue_manager(url, channel, write_only)
        if options.get('json') is flask.json and app is not None:
            options['json'] = _AppJSON(app)
        if os.environ.get('FLASK_RUN_FROM_CLI') and options.get('async_mode') is None:
            # 'flask run' serves on Werkzeug's OS threads, not on gevent
            options['async_mode'] = 'threading'
        _check_async_mode(options.get('async_mode'))
        self.server = Server(**{k: v for k, v in options.items() if k not in _OWN_OPTIONS})
        self.async_mode = self.server.async_mode
        for event, handler, namespace in self._pending_handlers:
            self.server.on(event, handler, namespace=namespace)
        for namespace_handler in self._pending_namespaces:
            self.server.register_namespace(namespace_handler)
        self._pending_handlers, self._pending_namespaces = [], []
        if app is not None:
            self._app = app
            self.sockio_mw = _FlaskMiddleware(self.server, app, path.strip('/'))
            app.wsgi_app = self.sockio_mw  # type: ignore[method-assign]

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
        """Adapt a Flask-style handler to the server's ``(lead..., sid, *args)`` calling convention.

        A catch-all event handler (``'*'``) gets the event name first; a
        catch-all namespace handler gets nothing extra: the namespace is in
        ``request.namespace``.
        """
        # catch-alls get the event name and/or namespace before the sid
        n_lead = (event == '*') + (namespace == '*')

        def server_handler(*args: Any) -> Any:
            lead, sid, rest = args[:n_lead], args[n_lead], args[n_lead + 1:]
            real_event = lead[0] if event == '*' else event
            real_namespace = lead[-1] if namespace == '*' else namespace
            return self._handle_event(handler, real_event, real_namespace, sid, rest, lead[:event == '*'])

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

    def _handle_event(self, handler: Callable, event: str | None, namespace: str, sid: str,
                      args: tuple[Any, ...], lead: tuple[Any, ...] = ()) -> Any:
        with self._request_context(sid, namespace) as ctx:
            request = flask.request
            request.sid = sid  # type: ignore[attr-defined]
            request.namespace = namespace  # type: ignore[attr-defined]
            request.event = {'message': event, 'args': args}  # type: ignore[attr-defined]
            try:
                if event == 'connect':
                    # the server passes (environ, auth); Flask handlers take (auth) or ()
                    auth = args[1] if len(args) > 1 else None
                    result = call_trimmed(handler, (*lead, auth), 1)
                elif event == 'disconnect':
                    result = call_trimmed(handler, (*lead, *args), 1)
                else:
                    result = handler(*lead, *args)
            except _REFUSALS:
                raise
            except Exception as exc:
                error_handler = self.exception_handlers.get(namespace, self.default_exception_handler)
                if error_handler is None:
                    self._unhandled(exc)
                    raise
                try:
                    return error_handler(exc)
                except Exception as again:
                    self._unhandled(again)
                    raise
            if not self.manage_session:
                # the app's session interface owns the session: a server-side
                # one (Flask-Session) stores what the handler changed
                session = ctx.session
                if getattr(session, 'modified', True):
                    ctx.app.session_interface.save_session(ctx.app, session, ctx.app.response_class())
            return result

    def _unhandled(self, exc: Exception) -> None:
        """Note an exception that leaves the handlers, for a test client that is delivering an event."""
        if self._handler_errors is not None:  # the client raises it once the server is done
            self._handler_errors.append(exc)

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
            server = self.server
            if server is None or server.get_environ(sid, namespace=namespace) is None:
                return callback(*args)  # the emitting client has gone
            # as an event without a name: same context, session and error handlers
            return self._handle_event(callback, None, namespace, sid, args)

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
             callback: Callable | None = None, include_self: bool = True, skip_sid: Any = None,
             room: Any = None, ignore_queue: bool = False, **kwargs: Any) -> None:
        """Send a ``message`` event (``json=True``: a ``json`` event); targets as :meth:`emit`."""
        self.emit('json' if json else 'message', data, namespace=namespace, to=to, room=room,
                  include_self=include_self, skip_sid=skip_sid, callback=callback, ignore_queue=ignore_queue)

    def call(self, event: str, *args: Any, to: Any = None, room: Any = None, sid: str | None = None,
             namespace: str | None = None, timeout: float | None = 60, ignore_queue: bool = False,
             **kwargs: Any) -> Any:
        """Emit to one client (``to``, ``room`` or ``sid``) and wait for its ack; see :meth:`greensio.Server.call`."""
        if self._handler_errors is not None:
            raise RuntimeError('call() from a handler cannot wait under the test client: it runs handlers inline, '
                               'so the answer could only come after the handler returns; test this handler over '
                               'a real socket (see "Coming from Flask-SocketIO" in the docs)')
        return self._require_server().call(event, from_args(args), to=to or room, sid=sid,
                                           namespace=namespace or '/', timeout=timeout, ignore_queue=ignore_queue)

    def close_room(self, room: Any, namespace: str | None = None) -> None:
        """Take every client out of ``room``."""
        self._require_server().close_room(room, namespace=namespace or '/')

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``target`` on a greenlet; the returned object has ``join()``.

        A greenlet runs only while the code that started it waits in gevent
        (``socketio.sleep()``, ``task.join()``, I/O); without
        ``gevent.monkey.patch_all()``, ``time.sleep()`` is not such a wait.
        """
        server = self._require_server()
        if server.async_mode == 'gevent':
            _warn_unpatched()
        return server.start_background_task(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep without blocking other greenlets."""
        self._require_server().sleep(seconds)

    # -- serving -------------------------------------------------------------------------

    def run(self, app: flask.Flask, host: str | None = None, port: int | None = None, **kwargs: Any) -> None:
        """Serve ``app`` on gevent's WSGI server with websocket support, until :meth:`stop`.

        :param host: default 127.0.0.1.
        :param port: default ``SERVER_NAME``'s port, or 5000.
        :param debug: default ``app.debug``; in debug mode the Werkzeug
            debugger wraps the Flask side (not the Socket.IO endpoint).
        :param use_reloader: default ``debug``: restart the process when a
            loaded module changes.
        :param reloader_options: ``extra_files``, ``exclude_patterns``,
            ``interval``, ``reloader_type`` (every type polls file times).
        :param extra_files: files to watch besides the loaded modules
            (older spelling of ``reloader_options['extra_files']``).
        :param log_output: default ``debug``: log each HTTP request.
        :param allow_unsafe_werkzeug: only with ``async_mode='threading'``,
            where the server is Werkzeug's threaded development server
            (long-polling only): ``True`` runs it even without a terminal.
            Otherwise the server is gevent's and the option means nothing.

        Other keyword arguments go to ``gevent.pywsgi.WSGIServer`` (``keyfile``,
        ``certfile``...).  Ctrl-C stops the server with one line, no traceback,
        and this call returns (a program that ends there exits with status 0).
        """
        if host is None:
            host = '127.0.0.1'
        if port is None:
            server_name = app.config.get('SERVER_NAME') or ''
            port = int(server_name.rsplit(':', 1)[1]) if ':' in server_name else 5000
        debug = kwargs.pop('debug', None)
        app.debug = app.debug if debug is None else debug
        log_output = kwargs.pop('log_output', None)
        log_output = app.debug if log_output is None else log_output
        use_reloader = kwargs.pop('use_reloader', None)
        use_reloader = app.debug if use_reloader is None else use_reloader
        reloader_options = dict(kwargs.pop('reloader_options', None) or {})
        extra_files = kwargs.pop('extra_files', None)
        if extra_files:
            reloader_options['extra_files'] = extra_files
        allow_unsafe_werkzeug = kwargs.pop('allow_unsafe_werkzeug', False)
        if self.server is not None and self.server.async_mode == 'threading':
            self._run_werkzeug(app, host, port, use_reloader, reloader_options, allow_unsafe_werkzeug, kwargs)
            return
        reloader_type = reloader_options.pop('reloader_type', 'auto')
        if reloader_type not in _reload.RELOADER_TYPES:
            raise ValueError(f'reloader_type={reloader_type!r}: expected one of {_reload.RELOADER_TYPES}')
        if use_reloader and not _reload.is_child():
            raise SystemExit(_reload.supervise())
        if app.debug and self.sockio_mw is not None and not isinstance(self.sockio_mw.wsgi_app, DebuggedApplication):
            self.sockio_mw.wsgi_app = DebuggedApplication(self.sockio_mw.wsgi_app, evalex=True)
        self.wsgi_server = make_server(app, host, port, log='default' if log_output else None, **kwargs)
        self.wsgi_server.start()  # binds now, so port 0 is resolved before the banner
        print(f'greensio serving on http://{host}:{self.wsgi_server.server_port}', flush=True)
        changed: list[str] = []
        watcher = None
        if use_reloader:
            server = self.wsgi_server

            def restart(path: str) -> None:
                changed.append(path)
                server.stop(timeout=1)

            watcher = _reload.watch(restart, **reloader_options)
        try:
            _serve_until_interrupted(self.wsgi_server)
        finally:
            self.wsgi_server = None
            if watcher is not None:
                watcher.kill()
        if changed:
            raise SystemExit(_reload.RESTART)

    @staticmethod
    def _run_werkzeug(app: flask.Flask, host: str, port: int, use_reloader: bool, reloader_options: dict,
                      allow_unsafe: bool, kwargs: dict) -> None:
        """``async_mode='threading'``: Werkzeug's threaded development server, long-polling only."""
        if not allow_unsafe and not (sys.stdin and sys.stdin.isatty()):
            raise RuntimeError("async_mode='threading' makes socketio.run() use Werkzeug's development server, "
                               'which is not meant for production and has no websockets: drop async_mode to '
                               "serve on gevent, or pass allow_unsafe_werkzeug=True to run it anyway")
        logger.warning("greensio.flask: async_mode='threading' serves on Werkzeug's development server, "
                       'long-polling only; drop async_mode for gevent and websockets')
        app.run(host=host, port=port, threaded=True, use_reloader=use_reloader, **reloader_options, **kwargs)

    def stop(self) -> None:
        """Stop the server started by :meth:`run` (from a handler or another greenlet)."""
        if self.server is not None:
            self.server.shutdown()
        if self.wsgi_server is not None:
            self.wsgi_server.stop()

    def test_client(self, app: flask.Flask, namespace: str | None = None, query_string: str | None = None,
                    headers: dict | None = None, auth: Any = None, flask_test_client: Any = None) -> Any:
        """An in-process client for tests, no sockets; see :class:`SocketIOTestClient`."""
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
        """Dispatch an event to ``on_<event>`` inside a request context.

        An exception no ``on_error`` handler takes goes to the namespace's
        ``error(exc)`` method, if it has one; its value is the ack.
        """
        handler = self._handler_for(event)
        if handler is None or self.socketio is None:
            return None
        namespace = self.namespace
        if namespace == '*':  # a catch-all namespace: the real one is in request.namespace
            namespace, args = args[0], args[1:]
        try:
            return self.socketio._handle_event(handler, event, namespace, args[0], args[1:])
        except _REFUSALS:
            raise
        except Exception as exc:
            on_error = getattr(self, 'error', None)
            if on_error is None:
                raise
            errors = self.socketio._handler_errors
            if errors and errors[-1] is exc:  # handled after all: a test client must not raise it
                errors.pop()
            try:
                return on_error(exc)
            except Exception as again:
                self.socketio._unhandled(again)
                raise

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

