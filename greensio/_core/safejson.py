"""The default JSON module for packets: the standard library, hardened.

It has the ``dumps``/``loads`` interface of :mod:`json`, so it can be swapped
for a user's module through the ``json=`` option, exactly like python-socketio.
Decoding refuses what a peer could use to hurt us or other clients.
"""

import json as _json
from typing import Any

#: Integers longer than this many digits are refused: converting a huge
#: decimal string to ``int`` is quadratic (CPython caps it at 4300 digits).
MAX_INT_DIGITS = 100

#: JSON nesting deeper than this is refused before Python's recursion limit
#: turns it into a ``RecursionError``.
MAX_DEPTH = 64


def _parse_int(text: str) -> int:
    if len(text.lstrip('-')) > MAX_INT_DIGITS:
        raise ValueError('integer with too many digits')
    return int(text)


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; relaying them would break every
    # standards-compliant peer that receives a broadcast.
    raise ValueError(f'{name} is not valid JSON')


def _parse_float(text: str) -> float:
    value = float(text)
    # 1e999 is valid JSON syntax but decodes to Infinity: refused for the same reason
    if value - value != 0.0:
        raise ValueError(f'{text[:20]} overflows to a non-finite number')
    return value


_decoder = _json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
_compact = _json.JSONEncoder(separators=(',', ':'), allow_nan=False, check_circular=False).encode
JSONDecodeError = _json.JSONDecodeError


def _too_deep(text: str) -> bool:
    # Cheap upper bound: count brackets only when the text could nest deeply.
    if len(text) <= MAX_DEPTH:
        return False
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == '\\':
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in '[{':
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in ']}':
            depth -= 1
    return False


def loads(text: str | bytes, **kwargs: Any) -> Any:
    if kwargs:
        return _json.loads(text, **kwargs)
    if isinstance(text, (bytes, bytearray)):
        text = text.decode('utf-8')
    if text.count('[') + text.count('{') > MAX_DEPTH and _too_deep(text):
        raise ValueError('JSON nested too deeply')
    return _decoder.decode(text)


def dumps(obj: Any, **kwargs: Any) -> str:
    if kwargs.get('separators') == (',', ':') and len(kwargs) == 1:
        return _compact(obj)
    kwargs.setdefault('allow_nan', False)
    return _json.dumps(obj, **kwargs)
