"""tornado glue for :class:`greensio.AsyncServer` (``socketio.get_tornado_handler``).

Integration ring: python-socketio's name for the Engine.IO server's tornado
request handler.
"""

from __future__ import annotations

from typing import Any

from .engineio.async_drivers.tornado import get_tornado_handler as _engineio_handler


def get_tornado_handler(socketio_server: Any) -> Any:
    """A tornado request handler class serving ``socketio_server`` (an ``AsyncServer(async_mode='tornado')``).

    Route Socket.IO's path to it: ``tornado.web.Application([(r'/socket.io/', get_tornado_handler(sio))])``.
    """
    return _engineio_handler(socketio_server.eio)
