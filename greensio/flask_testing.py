"""An in-process Socket.IO test client for Flask apps (``socketio.test_client(app)``).

Integration ring, part of the public ``greensio.testing`` toolkit.  No socket
and no Engine.IO transport: the client stands in for one Engine.IO
connection (the machinery is ``greensio._inprocess``, shared with
``greensio.testing.TestClient``).  Handlers run inline, so when ``emit()``
returns, the handler has run and its ack and emits have arrived.

The cookies of a Flask test client (``flask_test_client=``) travel with the
connection, so the Flask session of a logged-in user is visible to handlers.
"""

from __future__ import annotations

from typing import Any

from werkzeug.test import EnvironBuilder

from ._inprocess import InProcessClient

__all__ = ['SocketIOTestClient']


class SocketIOTestClient(InProcessClient):
    """A Socket.IO client for a Flask app's tests that runs in-process, without sockets.

    :param app: the Flask application.
    :param socketio: its :class:`greensio.flask.SocketIO`.
    :param namespace: the namespace to connect to (``'/'`` by default).
    :param query_string: e.g. ``'token=abc'``, seen by handlers in ``request.args``.
    :param headers: extra request headers, seen by handlers in ``request.headers``.
    :param auth: the connect payload handed to the connect handler.
    :param flask_test_client: a ``app.test_client()`` whose cookies (the Flask
        session) go with the connection.

    Received events are collected per namespace; :meth:`get_received` returns
    and clears them as ``{'name': event, 'args': [...], 'namespace': ns}``.
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

    # -- the fake Engine.IO connection ----------------------------------------------

    def _environ(self, query_string: str | None, headers: dict | None) -> dict:
        builder = EnvironBuilder('/socket.io/', query_string=query_string, headers=headers)
        environ = builder.get_environ()
        environ['QUERY_STRING'] = '&'.join(filter(None, ['EIO=4&transport=polling', environ.get('QUERY_STRING')]))
        environ['flask.app'] = self.app
        if self.flask_test_client is not None:
            # werkzeug's test client has no public way to render its cookie jar
            self.flask_test_client._add_cookies_to_wsgi(environ)
        return environ
