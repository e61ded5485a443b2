"""The cluster as one server, measured: broadcast acks and fetch_sockets across workers on RabbitMQ.

    . .venv/bin/activate
    python tests/performance/bench_cluster.py                     # 1,000 and 3,000 clients, 5 runs
    python tests/performance/bench_cluster.py --ack-clients 100 --fetch-clients 150 --runs 1

1. **Broadcast with acks**: two worker processes (``tests/mq/cluster_worker.py``,
   gevent, ``KombuManager`` on a fresh channel), ``--ack-clients`` websocket
   clients split between them.  Worker A emits to everyone with a callback and
   a timeout; the figure is the time from the emit until the callback has
   every client's answer, as the worker measures it.
2. **fetch_sockets**: three workers, ``--fetch-clients`` clients split
   between them; worker A fetches every socket of the cluster (handshake,
   rooms, session); the figure is the call's latency.

The clients are raw websocket connections in this process that answer every
ack request at once, so the load generator stays cheap next to the workers.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

import gevent
import gevent.event

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_mq import CountingClient, masked_text_frame

WORKER = os.path.join(HERE, '..', 'mq', 'cluster_worker.py')
AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672//'
#: An event that asks for an ack, as the server frames it: ``42<id>["ask",...]``.
ASK = re.compile(rb'42(\d+)\["ask"')


class AckClient(CountingClient):
    """A websocket Socket.IO client that answers every ack request and every ping."""

    def __init__(self, port: int) -> None:
        self.buf = b''
        super().__init__(port, 'ask')  # the handshake, then ``_read`` below on its own greenlet

    def _frames(self):
        while True:
            while len(self.buf) >= 2:
                length, start = self.buf[1] & 0x7F, 2
                if length == 126:
                    length, start = int.from_bytes(self.buf[2:4], 'big'), 4
                elif length == 127:
                    length, start = int.from_bytes(self.buf[2:10], 'big'), 10
                if len(self.buf) < start + length:
                    break
                payload, self.buf = self.buf[start:start + length], self.buf[start + length:]
                yield payload
            data = self.sock.recv(65536)
            if not data:
                return
            self.buf += data

    def _read(self) -> None:
        self.buf = self._tail
        try:
            for payload in self._frames():
                if payload == b'2':
                    self.sock.sendall(masked_text_frame('3'))
                elif payload.startswith(b'40{'):
                    self.connected.set()
                else:
                    match = ASK.match(payload)
                    if match:
                        self.sock.sendall(masked_text_frame(f'43{match[1].decode()}["ok"]'))
        except OSError:
            return



class Worker:
    def __init__(self, channel: str) -> None:
        self.proc = subprocess.Popen([sys.executable, WORKER, '--backend', 'kombu', '--url', AMQP_URL,
                                      '--channel', channel, '--heartbeat', '1'],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self._line('PORT'))

    def _line(self, key: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(key + ' '):
                return line.split(' ', 1)[1]
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f'worker gave no {key}')

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + '\n')
        self.proc.stdin.flush()
        return json.loads(self._line('RESULT'))

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fleet(workers: int, clients: int) -> tuple[list[Worker], list[AckClient]]:
    channel = f'greensio-bench-{uuid.uuid4().hex[:8]}'
    fleet_workers = [Worker(channel) for _ in range(workers)]
    connected = []
    for i in range(clients):
        connected.append(AckClient(fleet_workers[i % workers].port))
        if i % 100 == 99:
            gevent.sleep(0)
    deadline = time.monotonic() + 60
    while not all(c.connected.is_set() for c in connected):
        if time.monotonic() > deadline:
            raise RuntimeError('clients did not connect')
        gevent.sleep(0.01)
    for worker in fleet_workers:  # a request waits only for the workers it knows
        while len(worker.ask(cmd='workers')) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError('workers did not find each other')
            gevent.sleep(0.1)
    return fleet_workers, connected


def close(workers: list[Worker], clients: list[AckClient]) -> None:
    for client in clients:
        client.close()
    for worker in workers:
        worker.stop()


def bench_acks(clients: int, runs: int) -> list[float]:
    workers, connected = fleet(2, clients)
    try:
        workers[0].ask(cmd='broadcast', event='ask', data='warm-up', timeout=30)
        times = []
        for _ in range(runs):
            result = workers[0].ask(cmd='broadcast', event='ask', data='x', timeout=30)
            if len(result['answers']) != clients or result['missing']:
                raise RuntimeError(f'{len(result["answers"])} answers, {result["missing"]} missing')
            times.append(result['seconds'])
        return times
    finally:
        close(workers, connected)


def bench_fetch(clients: int, runs: int) -> list[float]:
    workers, connected = fleet(3, clients)
    try:
        workers[0].ask(cmd='fetch', count_only=True)
        times = []
        for _ in range(runs):
            result = workers[0].ask(cmd='fetch', count_only=True, timeout=30)
            if result['count'] != clients:
                raise RuntimeError(f'fetched {result["count"]} of {clients} sockets')
            times.append(result['seconds'])
        return times
    finally:
        close(workers, connected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ack-clients', type=int, default=1000)
    parser.add_argument('--fetch-clients', type=int, default=3000)
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args()
    acks = bench_acks(args.ack_clients, args.runs)
    fetch = bench_fetch(args.fetch_clients, args.runs)
    print(f'(medians of {args.runs} runs)')
    print(f'broadcast with acks to {args.ack_clients} clients on 2 workers, until every ack is in: '
          f'{statistics.median(acks) * 1000:.1f} ms (min {min(acks) * 1000:.1f}, max {max(acks) * 1000:.1f})')
    print(f'fetch_sockets of {args.fetch_clients} clients on 3 workers: '
          f'{statistics.median(fetch) * 1000:.1f} ms (min {min(fetch) * 1000:.1f}, max {max(fetch) * 1000:.1f})')


if __name__ == '__main__':
    main()
