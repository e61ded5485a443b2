"""The hardened JSON decoder: its refusals, and that it accepts what it should.

The nesting bound is checked before decoding without looking at each
character in Python; these tests pin it to a plain reference scanner on
texts built to fool a bracket counter (brackets, quotes and backslashes
inside strings, unbalanced text).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from greensio._core import safejson

DEPTH = safejson.MAX_DEPTH


def reference_depth(text: str) -> int:
    """The deepest nesting the decoder reaches: a character-by-character scan."""
    depth = deepest = 0
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
            deepest = max(deepest, depth)
        elif ch in ']}':
            depth -= 1
    return deepest


def nested(depth: int, inner: Any = 1, key: str | None = None) -> Any:
    """``depth`` levels of containers around ``inner``: lists, or dicts under ``key``."""
    value = inner
    for level in range(depth):
        value = {key: value} if key is not None and level % 2 else [value]
    return value


def test_wide_but_shallow_payloads_are_accepted() -> None:
    wide = [{'id': i, 'nick': f'n{i:04d}', 'tags': ['a', 'b'], 'x': i / 4} for i in range(3000)]
    text = json.dumps(wide)
    assert safejson.loads(text) == wide
    assert safejson.loads(text.encode()) == wide


@pytest.mark.parametrize('key', [None, 'k', 'a]]]"}}', '[[[{{{'])
def test_the_limit_is_exact(key: str | None) -> None:
    deepest = json.dumps(nested(DEPTH, 'x', key))
    assert reference_depth(deepest) == DEPTH
    assert safejson.loads(deepest) == json.loads(deepest)
    too_deep = json.dumps(nested(DEPTH + 1, 'x', key))
    with pytest.raises(ValueError, match='nested too deeply'):
        safejson.loads(too_deep)


@pytest.mark.parametrize(
    'decoy',
    [
        ']' * 200,  # closers in a string must not hide real depth
        '}' * 200 + '"',
        '\\"' + ']' * 200,  # an escaped quote does not end the string
        ']]\\\\' * 50,  # nor does an escaped backslash start an escape of the quote
        '\\\\\\"]]]' * 40,
        '""]]',
    ],
)
def test_brackets_in_strings_neither_hide_nor_add_depth(decoy: str) -> None:
    hidden = json.dumps([decoy, nested(DEPTH)])
    with pytest.raises(ValueError, match='nested too deeply'):
        safejson.loads(hidden)
    shallow = json.dumps([decoy, nested(DEPTH - 1), decoy.replace(']', '[').replace('}', '{')])
    assert safejson.loads(shallow) == json.loads(shallow)


def test_many_strings_with_brackets_and_escapes() -> None:
    value = [{'text': f'see [{i}] and {{"q": "\\"{i}\\\\"}}', 'n': [[i]]} for i in range(500)]
    text = json.dumps(value)
    assert safejson.loads(text) == value


@pytest.mark.parametrize('text', ['[' * (DEPTH + 1), '[' * 200_000, '{"a":' * (DEPTH + 1) + '1'])
def test_unbalanced_deep_text_is_refused_before_decoding(text: str) -> None:
    with pytest.raises(ValueError, match='nested too deeply'):
        safejson.loads(text)


@pytest.mark.parametrize(
    'text',
    [
        '[' * DEPTH + '1',
        ']' * 200 + '[1]',
        '[1]' + ']' * 200,
        ']' * 100 + ('[' * 60 + '1],') * 2,  # the decoder stops at the first closer
        '["' + '[' * 100,  # and at a string that never ends
    ],
)
def test_shallow_invalid_text_is_the_decoders_to_refuse(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        safejson.loads(text)


def test_random_texts_agree_with_the_reference_scanner() -> None:
    rng = random.Random(20240607)
    pieces = ['[', ']', '{', '}', '"', '\\', '\\\\', '\\"', 'a', ',', '1', ':', '"k":', '[]', '""']

    def string() -> str:
        return json.dumps(''.join(rng.choice(pieces) for _ in range(rng.randrange(6))))

    def value(depth: int, spine: bool) -> str:
        """A container ``depth`` deep along one spine, with shallow siblings beside it."""
        if depth == 0 or (not spine and rng.random() < 0.75):
            return rng.choice([string(), '1', 'true', 'null', '-2.5'])
        items = [value(depth - 1, False) for _ in range(rng.randrange(3))]
        items.insert(rng.randrange(len(items) + 1), value(depth - 1, spine))
        if rng.random() < 0.5:
            return '[' + ','.join(items) + ']'
        return '{' + ','.join(f'{string()}:{item}' for item in items) + '}'

    for _ in range(200):
        text = value(rng.randrange(DEPTH - 3, DEPTH + 3), True)
        expected = json.loads(text)
        if reference_depth(text) > DEPTH:
            with pytest.raises(ValueError, match='nested too deeply'):
                safejson.loads(text)
        else:
            assert safejson.loads(text) == expected


def test_long_integers_are_refused_also_in_wide_texts() -> None:
    padding = [[i] for i in range(100)]  # enough containers for the digit scan
    limit = safejson.MAX_INT_DIGITS
    assert safejson.loads(json.dumps([*padding, int('9' * limit)]))[-1] == int('9' * limit)
    with pytest.raises(ValueError, match='too many digits'):
        safejson.loads(json.dumps([*padding, int('9' * (limit + 1))]))
    with pytest.raises(ValueError, match='too many digits'):
        safejson.loads(json.dumps([*padding, -int('9' * (limit + 1))]))
    # a long run of digits in a string is only text
    assert safejson.loads(json.dumps([*padding, '9' * 500, 7]))[-2:] == ['9' * 500, 7]
    # as is a long fraction or mantissa, as long as the float is finite
    assert safejson.loads('[' + '[1],' * 100 + '1' * 150 + '.5]')[-1] == float('1' * 150 + '.5')


@pytest.mark.parametrize('number', ['1e999', '-1E400', '1' * 320 + '.0', '0.5e+308' + '0', 'NaN', '-Infinity'])
@pytest.mark.parametrize('containers', [0, 100])
def test_non_finite_numbers_are_refused(number: str, containers: int) -> None:
    with pytest.raises(ValueError):
        safejson.loads(f'[{"[1]," * containers}{number}]')


def test_other_options_use_the_standard_library() -> None:
    assert safejson.loads('[NaN]', parse_constant=str) == ['NaN']
