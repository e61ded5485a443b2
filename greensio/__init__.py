"""greensio: a gevent-first Socket.IO server and client.

``import greensio as socketio`` runs python-socketio 5.x code unchanged.
"""

from . import exceptions
from .manager import Manager
from .middleware import Middleware, WSGIApp
from .namespace import Namespace
from .serving import make_server, run
from .server import Server

__version__ = '0.1.0'

__all__ = [
    'Manager',
    'Middleware',
    'Namespace',
    'Server',
    'WSGIApp',
    'exceptions',
    'make_server',
    'run',
]
