"""``pip install greensio`` without extras must import: each optional dependency is hidden in turn.

A module set to ``None`` in ``sys.modules`` fails to import, as if it were
not installed; the check runs in a child interpreter so this process keeps
its modules.
"""

import subprocess
import sys

import pytest

OPTIONAL = ['websocket', 'requests', 'kombu', 'redis', 'msgpack', 'flask', 'gunicorn', 'aiohttp']


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
