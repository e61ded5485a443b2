"""The client's reconnection schedule: exponential backoff with jitter (sans-IO).

Core ring.  The shells only wait the delays this module computes and make
the attempts; the schedule itself is a pure function of its arguments and an
injected random source, so it is tested without a clock.

Attempt ``n`` (counting from 0) waits::

    base_n  = min(reconnection_delay * 2**n, reconnection_delay_max)
    delay_n = base_n * (1 + randomization_factor * (2 * random() - 1))

so ``randomization_factor`` is a +/- *fraction* of the delay, as in the
JavaScript client (0.5 spreads a 4 s delay over 2-6 s).  python-socketio adds
``randomization_factor`` *seconds* instead, which makes its jitter vanish for
long delays and dominate short ones; greensio follows the name.
"""

from collections.abc import Callable, Iterator
from random import random as _default_random

#: Doubling stops once the exponent reaches this: 2**64 dwarfs any sane cap
#: and ``float * 2**n`` would overflow for unbounded ``n``.
MAX_DOUBLINGS = 64


def backoff_delay(
    attempt: int,
    reconnection_delay: float,
    reconnection_delay_max: float,
    randomization_factor: float,
    random: Callable[[], float] = _default_random,
) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (0-based).

    ``random`` returns a float in ``[0, 1)``; the result is never negative.
    """
    if attempt < 0:
        raise ValueError('attempt must be >= 0')
    base = min(reconnection_delay * 2.0 ** min(attempt, MAX_DOUBLINGS), reconnection_delay_max)
    factor = min(max(randomization_factor, 0.0), 1.0)
    return max(base * (1 + factor * (2 * random() - 1)), 0.0)


def backoff_schedule(
    reconnection_delay: float,
    reconnection_delay_max: float,
    randomization_factor: float,
    attempts: int = 0,
    random: Callable[[], float] = _default_random,
) -> Iterator[float]:
    """The delays before each reconnection attempt, in order.

    Endless when ``attempts`` is 0 (python-socketio's "retry forever"),
    otherwise exactly ``attempts`` delays.  The caller waits each delay and
    makes one attempt per item; running out means "give up".
    """
    attempt = 0
    while not attempts or attempt < attempts:
        yield backoff_delay(attempt, reconnection_delay, reconnection_delay_max, randomization_factor, random)
        attempt += 1
