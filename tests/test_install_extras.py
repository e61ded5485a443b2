"""``pip install greensio`` without extras must import: each optional dependency is hidden in turn.

A module set to ``None`` in ``sys.modules`` fails to import, as if it were
not installed; the check runs in a child interpreter so this process keeps
its modules.
"""

import subprocess
import sys

import pytest

OPTIONAL = ['websocket', 'requests', 'kombu', 'redis', 'msgpack', 'flask', 'gunicorn', 'aiohttp', 'prometheus_client']


@pytest.mark.timeout(60)
@pytest.mark.parametrize('module', OPTIONAL)
def test_greensio_imports_without(module):
    code = f'import sys; sys.modules[{module!r}] = None; import greensio; greensio.Server(); print("ok")'
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=50, check=False)
    assert run.returncode == 0 and run.stdout.strip() == 'ok', run.stderr


@pytest.mark.timeout(60)
def test_greensio_flask_imports_without_gunicorn_and_clients():
    code = ('import sys\n'
            'for name in ("websocket", "gunicorn", "kombu", "redis"): sys.modules[name] = None\n'
            'import greensio.flask, greensio.testing; print("ok")')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=50, check=False)
    assert run.returncode == 0 and run.stdout.strip() == 'ok', run.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize('module, package', [('requests', 'requests'), ('websocket', 'websocket-client')])
@pytest.mark.parametrize('client', ['Client().connect', 'SimpleClient().connect'])
def test_client_without_its_extra_says_which_to_install(module, package, client):
    # nothing listens on port 9: the check must come before any connection attempt
    code = (f'import sys; sys.modules[{module!r}] = None\n'
            'import greensio\n'
            'try:\n'
            f'    greensio.{client}("http://127.0.0.1:9")\n'
            'except ModuleNotFoundError as exc:\n'
            '    print(exc)\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=50, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"greensio.Client needs the 'client' extra: pip install 'greensio[client]' " \
                                 f"(missing: {package})", run.stdout + run.stderr
    assert 'is not installed' not in run.stderr  # python-engineio never got to try


@pytest.mark.timeout(60)
def test_client_with_one_transport_needs_only_its_package():
    code = ('import sys; sys.modules["requests"] = None\n'
            'import greensio\n'
            'try:\n'
            '    greensio.Client().connect("http://127.0.0.1:9", transports=["websocket"], wait_timeout=0.2)\n'
            'except greensio.exceptions.ConnectionError:\n'
            '    print("connection refused, as it should be")\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=50, check=False)
    assert run.stdout.strip() == 'connection refused, as it should be', run.stdout + run.stderr


@pytest.mark.timeout(60)
def test_metrics_without_its_extra_says_which_to_install_and_health_needs_none():
    code = ('import sys; sys.modules["prometheus_client"] = None\n'
            'import greensio, greensio.health\n'
            'greensio.health.Health(greensio.Server())\n'
            'try:\n'
            '    import greensio.metrics\n'
            'except ModuleNotFoundError as exc:\n'
            '    print(exc)\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=50, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ("greensio.metrics needs the 'metrics' extra: pip install 'greensio[metrics]' "
                                  '(missing: prometheus-client)'), run.stdout + run.stderr
