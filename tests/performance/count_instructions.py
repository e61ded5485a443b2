#!/usr/bin/env python
"""Instructions per unit of work, counted by callgrind: a steady second measure next to bench.py.

    python tests/performance/count_instructions.py --impls greensio+metrics,greensio \\
        --scenarios rtt,broadcast

The same server (server_app.py) and load generator (loadgen.js) as bench.py, but the server runs
under ``valgrind --tool=callgrind`` with instrumentation off until the load generator has warmed
up; it is switched on for the measured phase only (``callgrind_control -i on/off``) and the
server's instructions are divided by the round trips or delivered messages.  Callgrind counts
the server's own user-space instructions, so other processes do not change the figure (the
kernel's work is not in it); a server under callgrind runs some 50x slower, so the load is
smaller than bench.py's and packets batch differently: compare the two columns of one run, not
these counts with bench.py's CPU times.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench import (
    HERE,
    IMPLS,
    LOADGEN,
    REPO,
    SERVER_APP,
    Child,
    ensure_node_modules,
    free_port,
    raise_fd_limit,
)

VALGRIND_START_TIMEOUT_S = 300.0
CONTROL_TIMEOUT_S = 120.0


def callgrind_control(*args: str) -> None:
    subprocess.run(['callgrind_control', *args], check=True, timeout=CONTROL_TIMEOUT_S,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def total_instructions(out_dir: str, tag: str) -> int:
    """Sum of the ``totals:`` lines of every dump callgrind wrote for ``tag``."""
    total = 0
    for name in os.listdir(out_dir):
        if name.startswith(tag + '.'):
            with open(os.path.join(out_dir, name)) as f:
                found = re.search(r'^totals: (\d+)', f.read(), re.MULTILINE)
            if found:
                total += int(found.group(1))
    return total


def measure(scenario: str, impl: str, args: argparse.Namespace, out_dir: str, tag: str) -> tuple[int, int]:
    """(instructions, units of work) of one measured phase."""
    port = free_port()
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    if scenario == 'rtt':
        load = ['--mode', 'rtt', '--transport', 'websocket', '--clients', args.rtt_clients,
                '--duration', args.duration]
    else:
        load = ['--mode', 'broadcast', '--clients', args.broadcast_clients, '--count', args.broadcast_count,
                '--warmup-count', 2]
    children: list[Child] = []
    try:
        server = Child(f'{tag}-server', [
            'valgrind', '--tool=callgrind', '--instr-atstart=no', f'--callgrind-out-file={out_dir}/{tag}.%p',
            sys.executable, SERVER_APP, '--impl', impl, '--port', port, '--scenario', scenario],
            out_dir, env=env, cwd=REPO)
        children.append(server)
        server.expect('ready', True, VALGRIND_START_TIMEOUT_S)
        loadgen = Child(f'{tag}-loadgen', ['node', LOADGEN, '--url', f'http://127.0.0.1:{port}', '--warmup', 2,
                                           '--timeout', 3000, *load], out_dir, stdin=True, cwd=HERE)
        children.append(loadgen)
        loadgen.expect('phase', 'ready', 1200)
        callgrind_control('-z', str(server.pid))
        callgrind_control('-i', 'on', str(server.pid))
        loadgen.send('go')
        end = loadgen.expect('phase', 'end', 2400)
        callgrind_control('-i', 'off', str(server.pid))
        callgrind_control('-d', str(server.pid))
    finally:
        for child in reversed(children):
            child.stop()
    time.sleep(1)  # the final dump at exit holds nothing measured, but let it be written first
    return total_instructions(out_dir, tag), end['count']


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--impls', default='greensio+metrics,greensio', help='two of ' + ','.join(sorted(IMPLS)))
    ap.add_argument('--scenarios', default='rtt,broadcast', help='rtt and/or broadcast')
    ap.add_argument('--runs', type=int, default=1)
    ap.add_argument('--rtt-clients', type=int, default=50)
    ap.add_argument('--duration', type=float, default=10.0, help='rtt phase, seconds of (slowed) run')
    ap.add_argument('--broadcast-clients', type=int, default=1000)
    ap.add_argument('--broadcast-count', type=int, default=20)
    args = ap.parse_args()
    impls = args.impls.split(',')
    raise_fd_limit()
    ensure_node_modules()
    print(f'instructions per unit (callgrind): {" vs ".join(impls)}', flush=True)
    with tempfile.TemporaryDirectory(prefix='greensio-count-') as out_dir:
        for scenario in args.scenarios.split(','):
            per_unit: dict[str, list[float]] = {impl: [] for impl in impls}
            for run in range(args.runs):
                for impl in impls if run % 2 == 0 else impls[::-1]:
                    tag = f'{scenario}-{impl}-run{run + 1}'.replace('+', '_')
                    instructions, units = measure(scenario, impl, args, out_dir, tag)
                    per_unit[impl].append(instructions / units)
                    print(f'  {tag}: {instructions:,} instructions / {units:,} = {instructions / units:,.0f}',
                          flush=True)
            a, b = (statistics.median(per_unit[impl]) for impl in impls)
            unit = 'round trip' if scenario == 'rtt' else 'delivered message'
            print(f'{scenario}: instructions / {unit}: {impls[0]} {a:,.0f}, {impls[1]} {b:,.0f}, '
                  f'{a / b:.3f}x ({a - b:+,.0f})', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
