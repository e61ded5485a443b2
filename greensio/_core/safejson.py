"""The default JSON module for packets: the standard library, hardened.

It has the ``dumps``/``loads`` interface of :mod:`json`, so it can be swapped
for a user's module through the ``json=`` option, exactly like python-socketio.
Decoding refuses what a peer could use to hurt us or other clients.
"""

import itertools
import json as _json
import operator
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
# For a text without a run of digits long enough to be a refused integer, the
# C scanner converts the integers itself, saving a Python call for each.
_unchecked_ints_decoder = _json.JSONDecoder(parse_float=_parse_float, parse_constant=_refuse_constant)
_compact = _json.JSONEncoder(separators=(',', ':'), allow_nan=False, check_circular=False).encode
JSONDecodeError = _json.JSONDecodeError

_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_TOO_MANY_DIGITS = b'0' * (MAX_INT_DIGITS + 1)
_NOT_A_MARK = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_SAME_BRACKETS = bytes.maketrans(b'{}', b'[]')
_TOO_MANY_OPENERS = b'[' * (MAX_DEPTH + 1)
_OPENER_AS_TWO = bytes.maketrans(b'[]', b'\x02\x00')
_PAIRING_PASSES = 8


def _nesting(data: bytes) -> int:
    """How deep the decoder would nest on JSON text ``data``, as far as ``MAX_DEPTH`` matters.

    Exact when the brackets balance (past ``MAX_DEPTH`` it may say any number
    above it); for invalid text never lower than what the decoder reaches
    before it stops at the error.  Each step is one C call over the text (a
    translate, a replace, a count, a running sum), never a Python loop over
    its characters.
    """
    if b'\\' in data:
        # An escaped quote is string content.  Escaped backslashes go first,
        # pair by pair from the left as the decoder reads them, so the quote
        # in ``\\"`` still ends its string; other escapes hold no quote or bracket.
        data = data.replace(b'\\\\', b'').replace(b'\\"', b'')
    marks = data.translate(_SAME_BRACKETS, _NOT_A_MARK)  # only [, ] and " are left
    quotes = marks.count(b'"')
    if quotes and marks.count(b'""') * 2 != quotes:
        # Some string holds a bracket.  Two adjacent quotes close one string and
        # open the next, or delimit a string without brackets: dropping them
        # leaves every other mark on its side, and few strings to split off.
        marks = b''.join(marks.replace(b'""', b'').split(b'"')[::2])
    else:
        marks = marks.translate(None, b'"')
    if _TOO_MANY_OPENERS in marks:
        return MAX_DEPTH + 1
    # Each pass removes the innermost pairs, one level: enough for most payloads.
    passes = 0
    while marks and passes < _PAIRING_PASSES:
        inner_removed = marks.replace(b'[]', b'')
        if len(inner_removed) == len(marks):
            break
        marks = inner_removed
        passes += 1
    if not marks:
        return passes
    # The rest by a running sum: an opener counts 2, a closer 0, so the depth
    # after the i-th bracket is the sum less i.
    depths = map(operator.sub, itertools.accumulate(marks.translate(_OPENER_AS_TWO)), itertools.count(1))
    deepest: int = max(depths)
    return passes + max(0, deepest)


def loads(text: str | bytes, **kwargs: Any) -> Any:
    if kwargs:
        return _json.loads(text, **kwargs)
    if isinstance(text, (bytes, bytearray)):
        text = text.decode('utf-8')
    if text.count('[') + text.count('{') <= MAX_DEPTH:
        return _decoder.decode(text)
    data = text.encode('utf-8', 'surrogatepass')
    if _nesting(data) > MAX_DEPTH:
        raise ValueError('JSON nested too deeply')
    # Many containers usually hold many numbers: one scan for a run of digits
    # costs less than a Python call per integer.
    if _TOO_MANY_DIGITS in data.translate(_DIGITS_AS_ZEROS):
        return _decoder.decode(text)
    return _unchecked_ints_decoder.decode(text)


def dumps(obj: Any, **kwargs: Any) -> str:
    if kwargs.get('separators') == (',', ':') and len(kwargs) == 1:
        return _compact(obj)
    kwargs.setdefault('allow_nan', False)
    return _json.dumps(obj, **kwargs)
