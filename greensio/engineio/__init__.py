"""``greensio.engineio``: python-engineio's public API on greensio's Engine.IO core.

``import greensio.engineio as engineio`` runs python-engineio applications
unchanged.  Shell ring: each runtime's server is a thin loop of I/O around
the sans-IO core in ``greensio._core`` (``eio_server``, ``eio_http``,
``eio_codec``).

The names are imported when first used (one line each below): an asyncio
process reaches ``AsyncServer`` and ``ASGIApp`` without importing gevent,
which the green names need.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import exceptions

_LAZY = {
    'Server': '.server',
    'WSGIApp': '.middleware',
    'Middleware': '.middleware',
    'ASGIApp': '.asgi',
    'AsyncServer': '.async_server',
    'Client': '.client',
    'AsyncClient': '.async_client',
    'get_tornado_handler': '.async_drivers.tornado',
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ['exceptions', *_LAZY]  # noqa: PLE0604 - names resolved by __getattr__
