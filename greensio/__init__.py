"""greensio: a gevent-first Socket.IO server and client.

``import greensio as socketio`` runs python-socketio 5.x code unchanged.
"""

import importlib
import pkgutil
from typing import Any

from . import exceptions, packet

# The names are imported when first used: an asyncio process reaches the
# asyncio twins without importing gevent, which the green ones need.
_LAZY = {
    'ASGIApp': '.asgi',
    'AsyncAioPikaManager': '.async_aiopika_manager',
    'AsyncClient': '.async_client',
    'AsyncClientNamespace': '.async_namespace',
    'AsyncManager': '.async_manager',
    'AsyncNamespace': '.async_namespace',
    'AsyncRedisManager': '.async_redis_manager',
    'AsyncServer': '.async_server',
    'AsyncSimpleClient': '.async_simple_client',
    'Client': '.client',
    'ClientNamespace': '.namespace',
    'KombuManager': '.kombu_manager',
    'Manager': '.manager',
    'Middleware': '.middleware',
    'Namespace': '.namespace',
    'PubSubManager': '.pubsub_manager',
    'RedisManager': '.redis_manager',
    'Server': '.server',
    'SimpleClient': '.simple_client',
    'WSGIApp': '.middleware',
    'get_tornado_handler': '.tornado',
    'make_server': '.serving',
    'run': '.serving',
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
    elif name in _submodules():  # greensio.server etc., as python-socketio's package has them
        value = importlib.import_module(f'.{name}', __name__)
    else:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    globals()[name] = value
    return value


def _submodules() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(__path__)}


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _submodules())


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
    'get_tornado_handler',
    'make_server',
    'packet',
    'run',
]
