"""Four workers without sticky sessions against four behind nginx ip_hash: round trips and latency.

    . .venv/bin/activate
    python tests/performance/bench_nosticky.py                  # 100 clients, 3 runs of 10 s, ~3 min
    python tests/performance/bench_nosticky.py --setups sticky --clients 20 --duration 3 --runs 1

Both setups run four greensio workers of ``tests/mq/multiworker_app.py`` on
one RabbitMQ channel (a fresh one per measurement):

- ``forwarded``: ``gunicorn -w 4`` on one socket.  The kernel hands each TCP
  connection to any worker; a request for a session that another worker owns
  goes to the owner.
- ``machines``: nginx round-robin in front of two gunicorns of two workers
  each, as if on two machines (a workers directory each): a request for a
  session of the other gunicorn travels through the message queue, and a
  websocket upgrade to it is relayed through the queue.
- ``sticky``: nginx with ``ip_hash`` in front of four gunicorns of one worker
  each.  Every client has a source address of its own (127.0.<i>.1), so that
  ip_hash spreads the clients over the four.

Transports: ``polling`` (long-polling only) and ``upgrade`` (polling, then
websocket: the measured phase runs on the websocket).  The clients are the
official JS client (``tests/js/multiworker_driver.js --mode rtt``), each with one
``echo`` with ack in flight (a closed loop).  Figures: round trips per second of
all clients together and the latency of one round trip (p50, p99); medians of
the runs, min-max in brackets.  The order of the setups alternates between
runs.  A setup that fails prints why in its row and the others carry on.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import contextlib
import os
import statistics
import sys
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from mq.multiworker import Driver, channel, gunicorn_app, gunicorns, nginx

WORKERS = 4
SETUPS = ('forwarded', 'machines', 'sticky')
TRANSPORTS = ('polling', 'upgrade')


@contextlib.contextmanager
def forwarded(name: str) -> Iterator[str]:
    with gunicorn_app(WORKERS, name) as (url, _):
        yield url


@contextlib.contextmanager
def machines(name: str) -> Iterator[str]:
    with gunicorns(2, WORKERS // 2, name, machines=True) as instances, \
            nginx([url for url, _ in instances], sticky=False) as url:
        yield url


@contextlib.contextmanager
def sticky(name: str) -> Iterator[str]:
    with gunicorns(WORKERS, 1, name) as instances, nginx([url for url, _ in instances], sticky=True) as url:
        yield url


def measure(setup: str, transport: str, args: argparse.Namespace) -> dict:
    """One run: the driver's "end" line, or ``{'error': ...}``."""
    start = {'forwarded': forwarded, 'machines': machines, 'sticky': sticky}[setup]
    with channel() as name, start(name) as url:
        driver = Driver(url, timeout=args.duration + args.warmup + 60, mode='rtt', clients=args.clients,
                        warmup=args.warmup, duration=args.duration, spread=setup == 'sticky',
                        transports='default' if transport == 'upgrade' else transport)
        try:
            return driver.phase('end')
        except AssertionError as exc:
            return {'error': str(exc).splitlines()[0][:300]}
        finally:
            driver.stop()


def cell(values: list[float], fmt: str) -> str:
    if not values:
        return '-'
    return f'{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--clients', type=int, default=100)
    parser.add_argument('--duration', type=float, default=10, help='seconds measured per run')
    parser.add_argument('--warmup', type=float, default=2, help='seconds of echoes before measuring')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--setups', default=','.join(SETUPS), help=f'comma-separated, of {", ".join(SETUPS)}')
    parser.add_argument('--transports', default=','.join(TRANSPORTS), help=f'of {", ".join(TRANSPORTS)}')
    args = parser.parse_args()
    setups = args.setups.split(',')
    transports = args.transports.split(',')
    results: dict[tuple[str, str], list[dict]] = {(s, t): [] for s in setups for t in transports}
    for run in range(args.runs):
        for setup in setups if run % 2 == 0 else setups[::-1]:
            for transport in transports:
                result = measure(setup, transport, args)
                results[setup, transport].append(result)
                print(f'run {run + 1} {setup} {transport}: '
                      + (result.get('error') or f'{result["count"] / result["elapsed"]:.0f} rt/s'),
                      file=sys.stderr, flush=True)
    print(f'\n{args.clients} clients, {WORKERS} workers, one echo in flight per client, '
          f'{args.duration:g} s per run (medians of {args.runs} runs, min-max)')
    print(f'{"setup":<10} {"transport":<10} {"round trips/s":>22} {"p50 ms":>20} {"p99 ms":>20}  workers used')
    for (setup, transport), runs in results.items():
        good = [r for r in runs if 'error' not in r]
        rates = [r['count'] / r['elapsed'] for r in good]
        used = sorted({len(r['workers']) for r in good})
        row = (f'{setup:<10} {transport:<10} {cell(rates, ".0f"):>22} {cell([r["p50_ms"] for r in good], ".1f"):>20} '
               f'{cell([r["p99_ms"] for r in good], ".1f"):>20}  {",".join(map(str, used)) or "-"}')
        errors = [r['error'] for r in runs if 'error' in r]
        print(row + (f'  failed {len(errors)} of {len(runs)}: {errors[0]}' if errors else ''))


if __name__ == '__main__':
    main()
