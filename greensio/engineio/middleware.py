"""WSGI glue for an Engine.IO server: its path, static files, and another WSGI app for the rest.

Integration ring.  python-engineio's ``WSGIApp`` and ``Middleware``, with
its static-file rules (``{'/': 'index.html', '/static': './public'}``, or
dicts with ``filename`` and ``content_type``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .static_files import get_static_file


class WSGIApp:
    """WSGI application for an Engine.IO server.

    :param engineio_app: the :class:`greensio.engineio.Server`.
    :param wsgi_app: a WSGI app for every other URL.
    :param static_files: static file rules, as in python-engineio.
    :param engineio_path: the endpoint, ``'engine.io'`` by default.
    """

    #: greensio's server, or a keep-alive connection of another pywsgi
    #: handler, may answer long-polling requests of existing sessions
    #: without calling this app (see ``greensio.engineio.direct``); a
    #: subclass that must see every request sets this to False
    fast_polling = True

    def __init__(self, engineio_app: Any, wsgi_app: Any = None, static_files: dict | None = None,
                 engineio_path: str = 'engine.io') -> None:
        self.engineio_app = engineio_app
        self.wsgi_app = wsgi_app
        self.engineio_path = engineio_path
        if not self.engineio_path.startswith('/'):
            self.engineio_path = '/' + self.engineio_path
        if not self.engineio_path.endswith('/'):
            self.engineio_path += '/'
        self.static_files = static_files or {}

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        path = environ['PATH_INFO']
        if path is not None and path.startswith(self.engineio_path):
            return self.engineio_app.handle_request(environ, start_response)
        static_file = get_static_file(path, self.static_files) if self.static_files else None
        if static_file and os.path.exists(static_file['filename']):
            start_response('200 OK', [('Content-Type', static_file['content_type'])])
            with open(static_file['filename'], 'rb') as f:
                return [f.read()]
        if self.wsgi_app is not None:
            return self.wsgi_app(environ, start_response)
        return self.not_found(start_response)

    def not_found(self, start_response: Callable) -> list[bytes]:
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'Not Found']


class Middleware(WSGIApp):
    """Deprecated alias of :class:`WSGIApp` without static files."""

    def __init__(self, engineio_app: Any, wsgi_app: Any = None, engineio_path: str = 'engine.io') -> None:
        super().__init__(engineio_app, wsgi_app, engineio_path=engineio_path)
