"""WSGI glue: ``WSGIApp`` routes Socket.IO requests, static files and a
wrapped WSGI app such as Flask (integration ring)."""

from .engineio.middleware import WSGIApp as EngineIOWSGIApp


class WSGIApp(EngineIOWSGIApp):
    """WSGI application for a :class:`greensio.Server`.

    :param socketio_app: the :class:`greensio.Server`.
    :param wsgi_app: a WSGI app for every other URL (Flask, Django...).
    :param static_files: ``{'/': 'index.html', '/static': './public'}`` style
        rules, as in python-socketio.
    :param socketio_path: the endpoint, ``'socket.io'`` by default.
    """

    def __init__(self, socketio_app, wsgi_app=None, static_files=None, socketio_path='socket.io'):
        super().__init__(socketio_app, wsgi_app, static_files=static_files, engineio_path=socketio_path)


class Middleware(WSGIApp):
    """Deprecated alias of :class:`WSGIApp` without static files."""

    def __init__(self, socketio_app, wsgi_app=None, socketio_path='socket.io'):
        super().__init__(socketio_app, wsgi_app, socketio_path=socketio_path)
