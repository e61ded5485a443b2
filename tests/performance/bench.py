#!/usr/bin/env python
"""Side-by-side benchmark: greensio vs python-socketio and Node's socket.io, same run, same
Node load generator.

    python tests/performance/bench.py [--quick] [--scenarios rtt,broadcast,...] [--runs N]

Each measurement starts a fresh server (server_app.py, or server_node.js for Node's socket.io,
pinned to CPU 0 with taskset) and a fresh load generator (loadgen.js, pinned to CPU 1). The
load generator warms up, says "ready", the harness samples the server's CPU time (utime+stime
from /proc/<pid>/stat) and RSS (VmRSS), tells it "go", and samples again when it reports the
end of the measured phase. Implementations are interleaved within each run (order rotating
between runs); every figure is the median over the runs. The first implementation is compared
with each of the others; targets are greensio's goals relative to the second (python-socketio
by default); the exit code is 0 whether or not they are met, 1 only if a measurement crashed.

BENCH_IMPLS=socketio,socketio (or --impls) runs python-socketio on both sides, to prove the
harness itself; any two or more implementations may be compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVER_APP = os.path.join(HERE, 'server_app.py')
ASYNC_SERVER_APP = os.path.join(HERE, 'async_server_app.py')
NODE_SERVER_APP = os.path.join(HERE, 'server_node.js')
LOADGEN = os.path.join(HERE, 'loadgen.js')
CLK_TCK = os.sysconf('SC_CLK_TCK')
SERVER_START_TIMEOUT_S = 30.0  # python + gevent + socketio import and bind
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL
NPM_CI_TIMEOUT_S = 300.0
IDLE_SETTLE_S = 1.0  # let the server finish per-connection work before reading RSS
#: greensio+metrics is greensio with greensio.metrics on: --impls greensio+metrics,greensio
#: shows the metrics' cost as ratios of the same run; greensio+recovery, with connection state
#: recovery on, likewise.
#: greensio-asgi / socketio-asgi: the AsyncServers under uvicorn (async_server_app.py).
#: node: Node's socket.io 4.8 with the same app (server_node.js), for reference.
IMPLS = frozenset({'greensio', 'greensio+metrics', 'greensio+recovery', 'socketio', 'greensio-asgi',
                   'socketio-asgi', 'node'})
DEFAULT_IMPLS = 'greensio,socketio,node'
LOADGEN_BOUND_PCT = 90.0  # loadgen busier than this: rates may measure the client, not the server
BUSY_MACHINE_PCT = 15.0  # other processes (or the hypervisor) took this much: rates are suspect

# ----------------------------------------------------------------------------- parameters


@dataclasses.dataclass
class Params:
    runs: int = 5
    warmup: float = 2.0
    duration: float = 10.0
    rtt_clients: int = 50
    poll_clients: int = 50
    broadcast_clients: int = 1000
    broadcast_count: int = 200
    broadcast_warmup_count: int = 20
    binary_size: int = 65536
    idle_clients: int = 10000


QUICK = {'runs': 2, 'warmup': 1.0, 'duration': 3.0, 'broadcast_count': 50,
         'broadcast_warmup_count': 5, 'idle_clients': 2000}


@dataclasses.dataclass
class Metric:
    key: str
    label: str
    better: str  # 'lower' or 'higher'
    target: float | None = None  # required improvement factor of the first impl, or None
    ratio: bool = True  # False: context only (e.g. CPU %), no ratio shown

    def factor(self, a: float, b: float) -> float | None:
        """How many times better impl A is than impl B (>1: A is better)."""
        if a is None or b is None:
            return None
        if self.better == 'lower':
            return b / a if a > 0 else None
        return a / b if b > 0 else None


@dataclasses.dataclass
class Scenario:
    name: str
    title: str
    metrics: list[Metric]
    loadgen_args: Callable[[Params], list[str]]
    end_timeout: Callable[[Params], float]


INFO = [
    Metric('server_cpu_pct', 'server CPU % (of one core)', 'lower', ratio=False),
    Metric('loadgen_cpu_pct', 'loadgen CPU % (of one core)', 'lower', ratio=False),
    Metric('other_cpu_pct', 'other processes + steal CPU %', 'lower', ratio=False),
]


def polling_scenario(transport: str, title: str) -> Scenario:
    """N long-polling clients, emit-with-ack in a closed loop; loadgen.js's --transport."""
    return Scenario(
        transport, title,
        [Metric('units_per_s', 'round trips / s', 'higher', 5.0),
         Metric('cpu_us_per_unit', 'server CPU us / round trip', 'lower')] + INFO,
        lambda p: ['--mode', 'rtt', '--transport', transport,
                   '--clients', p.poll_clients, '--duration', p.duration],
        lambda p: p.duration + 60)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            'rtt', '(a) {p.rtt_clients} clients, emit-with-ack over websocket',
            [Metric('cpu_us_per_unit', 'server CPU us / round trip', 'lower', 2.0),
             Metric('units_per_s', 'round trips / s', 'higher')] + INFO,
            lambda p: ['--mode', 'rtt', '--transport', 'websocket',
                       '--clients', p.rtt_clients, '--duration', p.duration],
            lambda p: p.duration + 60),
        Scenario(
            'broadcast', '(b) one broadcast at a time to {p.broadcast_clients} clients '
                         '({p.broadcast_count} broadcasts)',
            [Metric('cpu_us_per_unit', 'server CPU us / delivered msg', 'lower', 2.0),
             Metric('units_per_s', 'messages delivered / s', 'higher')] + INFO,
            lambda p: ['--mode', 'broadcast', '--clients', p.broadcast_clients,
                       '--count', p.broadcast_count,
                       '--warmup-count', p.broadcast_warmup_count],
            lambda p: p.broadcast_clients * p.broadcast_count * 300e-6 + 60),
        Scenario(
            'burst', '(b2) {p.broadcast_count} broadcasts queued at once to {p.broadcast_clients} '
                     'clients',
            [Metric('cpu_us_per_unit', 'server CPU us / delivered msg', 'lower'),
             Metric('units_per_s', 'messages delivered / s', 'higher')] + INFO,
            lambda p: ['--mode', 'broadcast', '--clients', p.broadcast_clients,
                       '--count', p.broadcast_count,
                       '--warmup-count', p.broadcast_warmup_count, '--burst', 1],
            lambda p: p.broadcast_clients * p.broadcast_count * 300e-6 + 60),
        Scenario(
            'binary', '(c) {p.binary_size} B binary echo, one client',
            [Metric('mb_per_s', 'MB/s echoed (payload, one way)', 'higher', 20.0),
             Metric('cpu_us_per_unit', 'server CPU us / echo', 'lower')] + INFO,
            lambda p: ['--mode', 'binary', '--size', p.binary_size,
                       '--duration', p.duration],
            lambda p: p.duration + 60),
        polling_scenario('polling', '(d) {p.poll_clients} polling-only clients, emit-with-ack'),
        polling_scenario('polling-raw', '(d2) {p.poll_clients} raw long-polling clients '
                                        '(raw_polling.js), emit-with-ack'),
        Scenario(
            'idle', '(e) {p.idle_clients} idle websocket connections',
            [Metric('kib_per_conn', 'server KiB RSS / connection', 'lower', 2.0),
             Metric('rss_after_kib', 'server RSS after connect, KiB', 'lower'),
             Metric('units_per_s', 'connections set up / s', 'higher')] + INFO,
            lambda p: ['--mode', 'idle', '--clients', p.idle_clients],
            lambda p: p.idle_clients * 0.05 + 60),
    ]
}

# ----------------------------------------------------------------------------- processes


def read_cpu_ticks(pid: int) -> int:
    with open(f'/proc/{pid}/stat') as f:
        stat = f.read()
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(')') + 2:].split()
    return int(fields[11]) + int(fields[12])


def read_tree_cpu_ticks(pid: int) -> int:
    """CPU ticks of a process and all its descendants alive now (a gunicorn master and its worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    stat = f.read()
            except OSError:  # gone meanwhile
                continue
            ppid = int(stat[stat.rindex(')') + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        pid = todo.pop()
        try:
            total += read_cpu_ticks(pid)
        except OSError:
            continue
        todo.extend(children.get(pid, ()))
    return total


def read_rss_kib(pid: int) -> int:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError(f'no VmRSS for pid {pid}')


def read_machine_busy_ticks() -> int:
    """CPU ticks spent by anything (user, system, irq, steal) on all CPUs."""
    with open('/proc/stat') as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return user + nice + system + irq + softirq + steal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Child:
    """A child process whose stdout JSON lines are read by a thread into a queue."""

    def __init__(self, name: str, argv: list[str], log_dir: str, stdin: bool = False,
                 env: dict | None = None, cwd: str | None = None):
        self.name = name
        self.log_path = os.path.join(log_dir, f'{name}.stderr')
        self._log = open(self.log_path, 'wb')  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(a) for a in argv], stdout=subprocess.PIPE, stderr=self._log,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env, cwd=cwd)
        self.pid = self.proc.pid
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors='replace').strip())
        self.lines.put(None)

    def expect(self, key: str, value: Any, timeout: float) -> dict:
        """Wait for a JSON line with line[key] == value; fail on EOF, error or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f'{self.name}: timed out after {timeout:.0f}s waiting for '
                                   f'{key}={value!r}{self.stderr_tail()}')
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f'{self.name}: exited (rc={self.proc.poll()}) before '
                                   f'{key}={value!r}{self.stderr_tail()}')
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get('phase') == 'error':
                raise RuntimeError(f'{self.name}: {msg.get("error")}{self.stderr_tail()}')
            if msg.get(key) == value:
                return msg

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b'\n')
        self.proc.stdin.flush()

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                data = f.read()[-n:].decode(errors='replace').strip()
        except OSError:
            return ''
        return f'\n--- {self.name} stderr (tail) ---\n{data}' if data else ''

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_GRACE_S)
            except ProcessLookupError:
                pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                try:
                    stream.close()
                except OSError:
                    pass
        self._log.close()


def pin_prefix(cpu: int, pinning: bool) -> list[str]:
    return ['taskset', '-c', str(cpu)] if pinning else []


def pinning_available() -> bool:
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return False
    return shutil.which('taskset') is not None and {0, 1} <= cpus


def raise_fd_limit() -> None:
    # Node inherits this limit: the idle scenario holds thousands of sockets on both ends.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def ensure_node_modules() -> None:
    if all(os.path.isdir(os.path.join(HERE, 'node_modules', m)) for m in ('socket.io-client',
                                                                           'socket.io')):
        return
    npm = shutil.which('npm')
    if npm is None:
        raise SystemExit('npm not found: install Node.js 18+ to run the load generator')
    print('installing the load generator (npm ci) ...', flush=True)
    subprocess.run([npm, 'ci', '--no-audit', '--no-fund'], cwd=HERE, check=True,
                   timeout=NPM_CI_TIMEOUT_S, stdout=subprocess.DEVNULL)


# ----------------------------------------------------------------------------- measuring


def start_profiler(pid: int, path: str, pinning: bool) -> subprocess.Popen:
    """py-spy on a Python server, pinned with the load generator, until stop_profiler."""
    py_spy = shutil.which('py-spy')
    if py_spy is None:
        raise SystemExit('--profile needs py-spy (pip install py-spy)')
    return subprocess.Popen(pin_prefix(1, pinning) + [
        py_spy, 'record', '--nonblocking', '--format', 'raw', '--rate', '200', '-o', path,
        '-p', str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # py-spy writes its file and exits
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def top_frames(paths: list[str], n: int = 15) -> list[tuple[str, float]]:
    """The functions most often on top of the stack in py-spy raw files: (frame, % of samples)."""
    self_counts: dict[str, int] = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                stack, _, count = line.rstrip().rpartition(' ')
                leaf = stack.rpartition(';')[2]
                # 'function (path/to/file.py:123)': one entry per function, any line
                name, _, where = leaf.partition(' (')
                frame = f'{name} ({where.rpartition(":")[0].split("site-packages/")[-1]})'
                self_counts[frame] = self_counts.get(frame, 0) + int(count)
    total = sum(self_counts.values()) or 1
    top = sorted(self_counts.items(), key=lambda kv: -kv[1])[:n]
    return [(frame, 100.0 * count / total) for frame, count in top]


def measure(scen: Scenario, impl: str, params: Params, pinning: bool, log_dir: str,
            tag: str, profile_dir: str | None = None) -> dict:
    port = free_port()
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    children: list[Child] = []
    try:
        if impl == 'node':
            server_argv = ['node', NODE_SERVER_APP, '--port', port]
        else:
            app = ASYNC_SERVER_APP if impl.endswith('-asgi') else SERVER_APP
            server_argv = [sys.executable, app, '--impl', impl, '--port', port]
        server = Child(f'{tag}-server', pin_prefix(0, pinning) + server_argv + [
            '--scenario', scen.name], log_dir, env=env, cwd=REPO)
        children.append(server)
        ready = server.expect('ready', True, SERVER_START_TIMEOUT_S)

        end_timeout = scen.end_timeout(params)
        ready_timeout = 60 + 2 * params.warmup + 0.05 * max(
            params.broadcast_clients, params.idle_clients)
        loadgen = Child(f'{tag}-loadgen', pin_prefix(1, pinning) + [
            'node', LOADGEN, '--url', f'http://127.0.0.1:{port}', '--warmup', params.warmup,
            '--timeout', int(ready_timeout + end_timeout + 30)] + scen.loadgen_args(params),
            log_dir, stdin=True, cwd=HERE)
        children.append(loadgen)
        loadgen.expect('phase', 'ready', ready_timeout)

        rss0 = read_rss_kib(server.pid)
        m0 = read_machine_busy_ticks()
        s0, l0, t0 = read_tree_cpu_ticks(server.pid), read_cpu_ticks(loadgen.pid), time.monotonic()
        loadgen.send('go')
        if profile_dir and impl != 'node':
            profiler = start_profiler(server.pid, os.path.join(profile_dir, f'{tag}.txt'), pinning)
        end = loadgen.expect('phase', 'end', end_timeout)
        if profile_dir and impl != 'node':
            stop_profiler(profiler)
        s1, l1, t1 = read_tree_cpu_ticks(server.pid), read_cpu_ticks(loadgen.pid), time.monotonic()
        m1 = read_machine_busy_ticks()
        rss1 = read_rss_kib(server.pid)
        if scen.name == 'idle':
            time.sleep(IDLE_SETTLE_S)
            rss1 = read_rss_kib(server.pid)
            loadgen.send('exit')
        if server.proc.poll() is not None:
            raise RuntimeError(f'server exited during the run{server.stderr_tail()}')

        wall = t1 - t0
        cpu_s = (s1 - s0) / CLK_TCK
        count, elapsed = end['count'], end['elapsed']
        out = {
            'serving': ready.get('serving'),
            'count': count,
            'elapsed_s': elapsed,
            'wall_s': wall,
            'server_cpu_s': cpu_s,
            'server_cpu_pct': 100.0 * cpu_s / wall if wall > 0 else None,
            'loadgen_cpu_pct': 100.0 * (l1 - l0) / CLK_TCK / wall if wall > 0 else None,
            'other_cpu_pct': (100.0 * max(0, (m1 - m0) - (s1 - s0) - (l1 - l0)) / CLK_TCK / wall
                              if wall > 0 else None),
            'units_per_s': count / elapsed if elapsed > 0 else None,
            'cpu_us_per_unit': 1e6 * cpu_s / count if count else None,
            'rss_before_kib': rss0,
            'rss_after_kib': rss1,
        }
        if 'bytes' in end:
            out['mb_per_s'] = end['bytes'] / elapsed / 1e6 if elapsed > 0 else None
        if scen.name == 'idle':
            out['kib_per_conn'] = (rss1 - rss0) / count if count else None
        return out
    finally:
        for child in reversed(children):
            child.stop()


# ----------------------------------------------------------------------------- reporting


def fmt(v: float | None) -> str:
    if v is None:
        return 'n/a'
    if abs(v) >= 1000:
        return f'{v:,.0f}'
    if abs(v) >= 100:
        return f'{v:.0f}'
    if abs(v) >= 10:
        return f'{v:.1f}'
    return f'{v:.2f}'


def median_of(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def ratio_text(f: float | None) -> str:
    return 'n/a' if f is None else f'{f:.2f}x'


def spread_of(runs: list[dict], key: str) -> list[float] | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return [min(vals), max(vals)] if vals else None


def report(scen: Scenario, params: Params, labels: list[str], results: dict) -> dict:
    """Print one scenario's table: medians per impl, the first impl's ratio to each other."""
    first, others = labels[0], labels[1:]
    title = scen.title.format(p=params)
    runs = '/'.join(str(len(results[lb])) for lb in labels)
    print(f'\n{title}   [median of {runs} runs]')
    for label in labels:
        serving = {r.get('serving') for r in results[label]}
        print(f'  {label}: served by {", ".join(sorted(s for s in serving if s)) or "?"}')
    head = (f'  {"metric":34} ' + ' '.join(f'{lb:>12}' for lb in labels) + ' '
            + ' '.join(f'{"vs " + lb:>12}' for lb in others) + f'  {"target":16} verdict')
    print(head)
    print('  ' + '-' * (len(head) - 2))
    summary = {}
    for m in scen.metrics:
        vals = {lb: median_of(results[lb], m.key) for lb in labels}
        factors = {lb: m.factor(vals[first], vals[lb]) for lb in others} if m.ratio else {}
        f = factors.get(others[0])
        if m.target is None:
            target, verdict = '-', ''
        else:
            target = f'>={m.target:g}x {m.better}'
            verdict = 'n/a' if f is None else ('PASS' if f >= m.target else 'FAIL')
        ratios = ' '.join(f'{ratio_text(factors.get(lb)) if m.ratio else "":>12}' for lb in others)
        print(f'  {m.label:34} ' + ' '.join(f'{fmt(vals[lb]):>12}' for lb in labels)
              + f' {ratios}  {target:16} {verdict}')
        summary[m.key] = {**vals, 'label': m.label, 'better': m.better, 'factor': f,
                          'factors': factors, 'target': m.target, 'verdict': verdict,
                          'spread': {lb: spread_of(results[lb], m.key) for lb in labels}}
    main = scen.metrics[0]
    print(f'  {main.label}, spread (min-max): ' + ', '.join(
        f'{lb} {fmt(lo)}-{fmt(hi)}' for lb, (lo, hi) in summary[main.key]['spread'].items()))
    summary['run_factors'] = {}
    for other in others:
        paired = {r['run']: r.get(main.key) for r in results[other]}
        factors = sorted(f for f in (main.factor(r.get(main.key), paired.get(r['run']))
                                     for r in results[first]) if f is not None)
        if factors:
            # Noise shared by both sides of one run cancels out in its ratio.
            print(f'  {main.label}, {first} vs {other} run by run: median '
                  f'{statistics.median(factors):.3f}x, min {factors[0]:.3f}x, '
                  f'max {factors[-1]:.3f}x ({len(factors)} runs)')
            summary['run_factors'][other] = factors
    for label in labels:
        busy = median_of(results[label], 'other_cpu_pct')
        if busy is not None and busy > BUSY_MACHINE_PCT:
            print(f'  note: other processes took {busy:.0f}% of a core during {label} runs: '
                  'rates are suspect; CPU per unit of work is the robust figure')
        lg = median_of(results[label], 'loadgen_cpu_pct')
        if lg is not None and lg > LOADGEN_BOUND_PCT and scen.name != 'idle':
            print(f'  note: loadgen CPU {lg:.0f}% with {label}: rates may be client-bound; '
                  'server CPU per unit is still valid')
    print(f'  ratio: how many times better {first} is than each other column')
    return summary


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="greensio vs python-socketio and Node's socket.io "
                                             'benchmark')
    ap.add_argument('--quick', action='store_true', help='2 runs, shorter phases')
    ap.add_argument('--runs', type=int, help='runs per scenario and impl (default 5)')
    ap.add_argument('--scenarios', default=','.join(SCENARIOS),
                    help=f'comma-separated subset of {",".join(SCENARIOS)}')
    ap.add_argument('--impls', default=os.environ.get('BENCH_IMPLS', DEFAULT_IMPLS),
                    help=f'two or more of {",".join(sorted(IMPLS))}: the first is compared with '
                         f'each of the others (default {DEFAULT_IMPLS}; env BENCH_IMPLS)')
    ap.add_argument('--json', metavar='PATH', help='also write raw and median results here')
    ap.add_argument('--no-pin', action='store_true', help='do not use taskset')
    ap.add_argument('--profile', metavar='DIR',
                    help='sample the Python servers with py-spy during each measured phase '
                         '(raw stacks in DIR) and print their top frames per scenario; '
                         'py-spy shares the load generator\'s CPU, so rates are lower')
    for field in dataclasses.fields(Params):
        if field.name != 'runs':
            ap.add_argument('--' + field.name.replace('_', '-'),
                            type=int if field.type == 'int' else float,
                            help=f'default {field.default}')
    args = ap.parse_args(argv)

    params = Params()
    if args.quick:
        params = dataclasses.replace(params, **QUICK)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Params)
                 if getattr(args, f.name, None) is not None}
    params = dataclasses.replace(params, **overrides)

    impls = [i.strip() for i in args.impls.split(',') if i.strip()]
    if len(impls) < 2 or not set(impls) <= IMPLS:
        raise SystemExit(f'--impls needs two or more of {",".join(sorted(IMPLS))}')
    labels = impls if len(set(impls)) == len(impls) else [f'{i}#{n}' for n, i in enumerate(impls, 1)]
    names = [s.strip() for s in args.scenarios.split(',') if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f'unknown scenarios: {unknown}; known: {list(SCENARIOS)}')

    pinning = not args.no_pin and pinning_available()
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    raise_fd_limit()
    ensure_node_modules()
    print(f'greensio benchmark: {" vs ".join(labels)}; runs={params.runs}; '
          f'pinning={"server CPU 0, loadgen CPU 1" if pinning else "off"}; '
          f'params={dataclasses.asdict(params)}', flush=True)

    results: dict[str, dict[str, list[dict]]] = {n: {lb: [] for lb in labels} for n in names}
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix='greensio-bench-') as log_dir:
        for run in range(params.runs):
            for name in names:
                order = list(zip(labels, impls))
                order = order[run % len(order):] + order[:run % len(order)]
                for label, impl in order:
                    tag = f'{name}-{label.replace("#", "")}-run{run + 1}'
                    t = time.monotonic()
                    try:
                        r = measure(SCENARIOS[name], impl, params, pinning, log_dir, tag,
                                    args.profile)
                    except Exception as exc:  # noqa: BLE001 - report, go on with the other measurements
                        errors.append(f'{tag}: {exc}')
                        print(f'  {tag}: ERROR {exc}', flush=True)
                        continue
                    r['run'] = run + 1
                    results[name][label].append(r)
                    main_metric = SCENARIOS[name].metrics[0]
                    print(f'  {tag}: {main_metric.label} = {fmt(r.get(main_metric.key))}'
                          f'  ({time.monotonic() - t:.1f}s)', flush=True)

    summaries = {}
    for name in names:
        if all(results[name][lb] for lb in labels):
            summaries[name] = report(SCENARIOS[name], params, labels, results[name])
        else:
            print(f'\n{SCENARIOS[name].title.format(p=params)}: no complete result')
    if args.profile:
        for name in names:
            for label in labels:
                paths = [os.path.join(args.profile, f) for f in sorted(os.listdir(args.profile))
                         if f.startswith(f'{name}-{label.replace("#", "")}-run')]
                paths = [p for p in paths if os.path.getsize(p)]
                if paths:
                    print(f'\n{name}, {label}: top frames (own time, % of py-spy samples)')
                    for frame, pct in top_frames(paths):
                        print(f'  {pct:5.1f}%  {frame}')
    if errors:
        print(f'\n{len(errors)} measurement(s) failed:')
        for e in errors:
            print('  ' + e)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'labels': labels, 'impls': impls, 'params': dataclasses.asdict(params),
                       'pinning': pinning, 'summary': summaries, 'runs': results,
                       'errors': errors}, f, indent=2)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
