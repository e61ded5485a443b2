"""An in-process Socket.IO test client for Flask apps (``socketio.test_client(app)``).

Integration ring, part of the public ``greensio.testing`` toolkit.  No socket
and no Engine.IO transport: the client stands in for one Engine.IO
connection (the machinery is ``greensio.common.inprocess``, shared with
``greensio.testing.TestClient``).  Handlers run inline, so when ``emit()``
returns, the handler has run and its ack and emits have arrived.

The cookies of a Flask test client (``flask_test_client=``) travel with the
connection, so the Flask session of a logged-in user is visible to handlers.
"""

from __future__ import annotations

from typing import Any

import gevent
from flask.testing import EnvironBuilder

from .common.inprocess import InProcessClient

__all__ = ['SocketIOTestClient']

#: Seconds ``get_received()`` waits in gevent so background tasks run first.
TASKS_TURN = 0.001


class SocketIOTestClient(InProcessClient):
    """A Socket.IO client for a Flask app's tests that runs in-process, without sockets.

    :param app: the Flask application.
    :param socketio: its :class:`greensio.flask.SocketIO`.
    :param namespace: the namespace to connect to (``'/'`` by default).
    :param query_string: e.g. ``'token=abc'``, seen by handlers in ``request.args``.
    :param headers: extra request headers, seen by handlers in ``request.headers``.
    :param auth: the connect payload handed to the connect handler.
    :param flask_test_client: a ``app.test_client()`` whose cookies (the Flask
        session) and base environ go with the connection.

    Received events are collected per namespace; :meth:`get_received` returns
    and clears them as ``{'name': event, 'args': [...], 'namespace': ns}``;
    for ``message`` and ``json`` events ``args`` is the payload itself.

    An exception a handler raises and no ``on_error`` handler takes comes out
    of the call that delivered the event (:meth:`emit`, :meth:`send`,
    :meth:`connect`, :meth:`disconnect`), so a test sees it.
    """

    # as before the shared base existed: a server event without an on() handler gets no ack
    _ack_unhandled = False

    def __init__(self, app: Any, socketio: Any, namespace: str | None = None, query_string: str | None = None,
                 headers: dict | None = None, auth: Any = None, flask_test_client: Any = None) -> None:
        self.app = app
        self.socketio = socketio
        self.flask_test_client = flask_test_client
        if socketio.server is None:
            raise RuntimeError('SocketIO.init_app() has not been called')
        super().__init__(socketio.server)
        self.connect(namespace=namespace, query_string=query_string, headers=headers, auth=auth)

    # -- public API ---------------------------------------------------------------

    def connect(self, namespace: str | None = None, query_string: str | None = None,
                headers: dict | None = None, auth: Any = None) -> None:
        """Connect to ``namespace``; a refusal leaves :meth:`is_connected` false.

        The refusal payload is in ``connect_errors[namespace]``.
        """
        self._connect(namespace or '/', auth, lambda: self._environ(query_string, headers))

    def emit(self, event: str, *args: Any, callback: bool = False, namespace: str | None = None,
             **kwargs: Any) -> Any:
        """Emit ``event`` to the server; with ``callback=True`` return the handler's ack.

        An ack of one value returns it, of several or none a list; no ack
        (``callback=False``) returns ``None``.  Other keyword arguments
        (``broadcast=``, ``to=``...) mean nothing for a client and are ignored.
        """
        ack = self._emit(event, args, callback, namespace)
        if ack is None:
            return None
        return ack[0] if len(ack) == 1 else list(ack)

    def send(self, data: Any, json: bool = False, callback: bool = False, namespace: str | None = None,
             **kwargs: Any) -> Any:
        """Send a ``message`` (``json=True``: ``json``) event; see :meth:`emit`."""
        return self.emit('json' if json else 'message', data, callback=callback, namespace=namespace)

    def get_received(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Events the server sent to ``namespace`` since the last call, oldest first.

        Background tasks get a turn first, those whose sleep has run out
        included: they are greenlets, which run only while the test waits
        in gevent, and an unpatched ``time.sleep()`` is no such wait.
        """
        # a short timer rather than sleep(0): gevent's loop then also fires
        # the timers that expired meanwhile, before this one
        gevent.sleep(TASKS_TURN)
        return super().get_received(namespace)

    # -- the fake Engine.IO connection ----------------------------------------------

    def _received(self, event: str, args: list[Any], namespace: str) -> dict[str, Any]:
        if event in ('message', 'json'):
            # these carry one payload, handed over as it is
            return {'name': event, 'args': args[0] if len(args) == 1 else args, 'namespace': namespace}
        return super()._received(event, args, namespace)

    def _feed(self, pkt: Any) -> None:
        errors: list[Exception] = []
        outer, self.socketio._handler_errors = self.socketio._handler_errors, errors
        try:
            super()._feed(pkt)
        finally:
            self.socketio._handler_errors = outer
        if errors:
            raise errors[0]

    def _environ(self, query_string: str | None, headers: dict | None) -> dict:
        # exactly the test's query string: what a real client adds (EIO=4,
        # transport) is the transport's business, not the handler's
        options: dict[str, Any] = {'path': '/socket.io', 'query_string': (query_string or '').lstrip('?') or None,
                                   'headers': headers}
        if self.flask_test_client is not None:
            options['environ_base'] = self.flask_test_client.environ_base
        environ = EnvironBuilder(self.app, **options).get_environ()
        environ['flask.app'] = self.app
        if self.flask_test_client is not None:
            # werkzeug's test client has no public way to render its cookie jar
            self.flask_test_client._add_cookies_to_wsgi(environ)
        return environ
