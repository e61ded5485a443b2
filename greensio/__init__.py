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
    'AsyncAioPikaManager': '.managers.async_aiopika_manager',
    'AsyncClient': '.aio.async_client',
    'AsyncClientNamespace': '.aio.async_namespace',
    'AsyncManager': '.managers.async_manager',
    'AsyncNamespace': '.aio.async_namespace',
    'AsyncRedisManager': '.managers.async_redis_manager',
    'AsyncServer': '.aio.async_server',
    'AsyncSimpleClient': '.aio.async_simple_client',
    'Client': '.green.client',
    'ClientNamespace': '.green.namespace',
    'KombuManager': '.managers.kombu_manager',
    'Manager': '.managers.manager',
    'Middleware': '.middleware',
    'Namespace': '.green.namespace',
    'PubSubManager': '.managers.pubsub_manager',
    'RedisManager': '.managers.redis_manager',
    'Server': '.green.server',
    'SimpleClient': '.green.simple_client',
    'WSGIApp': '.middleware',
    'get_tornado_handler': '.tornado',
    'make_server': '.serving',
    'run': '.serving',
}

# python-socketio's modules, by the names its package has them under
# (``socketio.server.Server``); greensio keeps them in its ring folders.
_MODULES = {
    'async_aiopika_manager': '.managers.async_aiopika_manager',
    'async_client': '.aio.async_client',
    'async_manager': '.managers.async_manager',
    'async_namespace': '.aio.async_namespace',
    'async_pubsub_manager': '.managers.async_pubsub_manager',
    'async_redis_manager': '.managers.async_redis_manager',
    'async_server': '.aio.async_server',
    'async_simple_client': '.aio.async_simple_client',
    'base_client': '.common.base_client',
    'base_manager': '.managers.base_manager',
    'base_namespace': '.common.base_namespace',
    'base_server': '.common.base_server',
    'client': '.green.client',
    'kombu_manager': '.managers.kombu_manager',
    'manager': '.managers.manager',
    'namespace': '.green.namespace',
    'pubsub_manager': '.managers.pubsub_manager',
    'redis_manager': '.managers.redis_manager',
    'server': '.green.server',
    'simple_client': '.green.simple_client',
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name], __name__)
    elif name in _submodules():  # greensio.flask, greensio.testing, ...
        value = importlib.import_module(f'.{name}', __name__)
    else:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    globals()[name] = value
    return value


def _submodules() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(__path__)}


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES) | _submodules())


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
