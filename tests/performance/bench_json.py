#!/usr/bin/env python
"""greensio's hardened JSON decoder next to the standard library's, on the same payloads.

    python tests/performance/bench_json.py [--repeat 7]

``greensio._core.safejson.loads`` decodes every packet a peer sends and every
message from the queue; it refuses nesting deeper than ``MAX_DEPTH``, integers
longer than ``MAX_INT_DIGITS`` digits and non-finite numbers, which plain
``json.loads`` accepts.  This prints both per call (the best of ``--repeat``
rounds, in microseconds) and their ratio.  It measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import timeit
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from greensio._core import safejson


def payloads() -> dict[str, str]:
    compact = {'separators': (',', ':')}
    wide = [{'id': i, 'nick': f'n{i:04d}', 'x': i % 97} for i in range(3000)]
    chat = ['chat', {'room': 'lobby', 'text': 'hello, how are you?', 'ts': 1712345678901}]
    # strings holding brackets and escaped quotes take the decoder's slower path
    quoted = [{'id': i, 'text': f'see [{i}] and {{"q": "\\"{i}\\""}}'} for i in range(1000)]
    return {
        'wide: 3,000 objects': json.dumps(wide, **compact),
        'small event': json.dumps(chat, **compact),
        'brackets in strings': json.dumps(quoted, **compact),
        f'{safejson.MAX_DEPTH} levels deep': '[' * safejson.MAX_DEPTH + ']' * safejson.MAX_DEPTH,
    }


def per_call(fn: Callable[[str], Any], text: str, repeat: int) -> float:
    """Seconds per call, the best of ``repeat`` rounds of about 0.2 s each."""
    timer = timeit.Timer(lambda: fn(text))
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeat', type=int, default=7, help='rounds per figure; the best one counts')
    args = parser.parse_args()
    print(f'{"payload":24} {"bytes":>8} {"json.loads":>12} {"safejson":>12} {"ratio":>7}')
    for name, text in payloads().items():
        assert safejson.loads(text) == json.loads(text)
        plain = per_call(json.loads, text, args.repeat)
        safe = per_call(safejson.loads, text, args.repeat)
        print(f'{name:24} {len(text):>8,} {plain * 1e6:>9.1f} µs {safe * 1e6:>9.1f} µs {safe / plain:>6.2f}x')


if __name__ == '__main__':
    main()
