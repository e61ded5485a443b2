"""JSON with bytes, tuples and non-string keys, for the asyncio test harness.

``tests/async_app.py`` (an ``AsyncServer`` on uvicorn in its own process)
and ``tests/async_support.py`` (its proxy in the gevent test process) pass
Python values through this so that assertions written for an in-process
server (tuples of args, binary payloads, ``{(namespace, sid): auth}``) hold
unchanged.  Standard library only: the server process must not load gevent.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def encode(value: Any) -> Any:
    """A JSON-able form of ``value``; anything JSON cannot carry becomes its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {'$b': base64.b64encode(bytes(value)).decode('ascii')}
    if isinstance(value, tuple):
        return {'$t': [encode(v) for v in value]}
    if isinstance(value, (list, set, frozenset)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith('$') for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {'$d': [[encode(k), encode(v)] for k, v in value.items()]}
    return {'$r': repr(value)}


def decode(value: Any) -> Any:
    """The inverse of :func:`encode` (a repr stays a string)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if '$b' in value:
            return base64.b64decode(value['$b'])
        if '$t' in value:
            return tuple(decode(v) for v in value['$t'])
        if '$d' in value:
            return {_hashable(decode(k)): decode(v) for k, v in value['$d']}
        if '$r' in value:
            return value['$r']
        return {k: decode(v) for k, v in value.items()}
    return value


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value)).encode('utf-8')


def loads(data: bytes) -> Any:
    return decode(json.loads(data))
