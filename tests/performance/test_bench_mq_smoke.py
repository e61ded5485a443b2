"""Smoke test for bench_mq.py: both implementations produce figures and lose nothing.

One tiny run; asserts nothing about speed.
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from mq.helpers import rabbitmq_up


@pytest.mark.benchmark
@pytest.mark.timeout(120)
@pytest.mark.skipif(not rabbitmq_up(), reason='RabbitMQ is not running on 127.0.0.1:5672')
def test_bench_mq_runs_both_implementations():
    out = subprocess.run([sys.executable, os.path.join(HERE, 'bench_mq.py'), '--runs', '1', '--count', '200',
                          '--clients', '2'], capture_output=True, text=True, timeout=110, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    table = out.stdout.split('medians of 1 runs)')[1]
    assert 'greensio' in table and 'socketio' in table
    lost = next(line for line in table.splitlines() if line.startswith('messages lost'))
    assert lost.split()[-2:] == ['0.0', '0.0'], out.stdout


@pytest.mark.benchmark
@pytest.mark.timeout(150)
@pytest.mark.skipif(not rabbitmq_up(), reason='RabbitMQ is not running on 127.0.0.1:5672')
def test_bench_cluster_runs_small():
    """bench_cluster.py: broadcast acks and fetch_sockets, every ack and socket counted."""
    out = subprocess.run([sys.executable, os.path.join(HERE, 'bench_cluster.py'), '--ack-clients', '40',
                          '--fetch-clients', '30', '--runs', '1'], capture_output=True, text=True, timeout=140,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'broadcast with acks to 40 clients on 2 workers' in out.stdout
    assert 'fetch_sockets of 30 clients on 3 workers' in out.stdout
