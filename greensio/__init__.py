"""greensio: a gevent-first Socket.IO server and client.

``import greensio as socketio`` runs python-socketio 5.x code unchanged.
"""

from . import exceptions, packet
from .asgi import ASGIApp
from .async_aiopika_manager import AsyncAioPikaManager
from .async_client import AsyncClient
from .async_manager import AsyncManager
from .async_namespace import AsyncClientNamespace, AsyncNamespace
from .async_redis_manager import AsyncRedisManager
from .async_server import AsyncServer
from .async_simple_client import AsyncSimpleClient
from .client import Client
from .kombu_manager import KombuManager
from .manager import Manager
from .middleware import Middleware, WSGIApp
from .namespace import ClientNamespace, Namespace
from .pubsub_manager import PubSubManager
from .redis_manager import RedisManager
from .server import Server
from .serving import make_server, run
from .simple_client import SimpleClient

__version__ = '0.1.0'

__all__ = [
    'ASGIApp',
    'AsyncAioPikaManager',
    'AsyncClient',
    'AsyncClientNamespace',
    'AsyncManager',
    'AsyncNamespace',
    'AsyncRedisManager',
    'AsyncServer',
    'AsyncSimpleClient',
    'Client',
    'ClientNamespace',
    'KombuManager',
    'Manager',
    'Middleware',
    'Namespace',
    'PubSubManager',
    'RedisManager',
    'Server',
    'SimpleClient',
    'WSGIApp',
    'exceptions',
    'make_server',
    'packet',
    'run',
]
