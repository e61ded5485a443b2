"""ASGI glue for :class:`greensio.AsyncServer` (``socketio.ASGIApp``).

Integration ring.  :class:`greensio.engineio.ASGIApp` does the routing (the
Socket.IO path, static files, another ASGI app, lifespan); this class only
gives it python-socketio's parameter names.
"""

from __future__ import annotations

from typing import Any

from .engineio.asgi import ASGIApp as EngineIOASGIApp


class ASGIApp(EngineIOASGIApp):
    """An ASGI application serving a :class:`greensio.AsyncServer`.

    :param socketio_server: the :class:`greensio.AsyncServer`.
    :param other_asgi_app: an ASGI app that gets every other request.
    :param static_files: static file rules, as for :class:`greensio.WSGIApp`.
    :param socketio_path: where Socket.IO is served (``None``: everything).
    :param on_startup: called (or awaited) on ASGI lifespan startup.
    :param on_shutdown: called (or awaited) on ASGI lifespan shutdown.

    Run it with uvicorn, for example ``uvicorn.run(app, host='127.0.0.1',
    port=5000, ws_max_size=sio.eio.max_http_buffer_size)``: ``ws_max_size``
    lets uvicorn refuse an oversize websocket message from its frame header.
    """

    def __init__(self, socketio_server: Any, other_asgi_app: Any = None, static_files: dict | None = None,
                 socketio_path: str | None = 'socket.io', on_startup: Any = None, on_shutdown: Any = None) -> None:
        super().__init__(socketio_server.eio, other_asgi_app, static_files=static_files, engineio_path=socketio_path,
                         on_startup=on_startup, on_shutdown=on_shutdown)
        socketio_server.async_mode = socketio_server.eio.async_mode
