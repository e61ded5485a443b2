"""The chat demo in a real browser: headless Chromium, two tabs, one conversation.

Needs Debian's Chromium (``apt-get install -y chromium``) and playwright-core
(``npm ci`` in tests/browser); playwright never downloads a browser here.
The screenshot lands in tests/artifacts/chat_two_tabs.png.
"""

import os
import subprocess

import pytest

try:
    from demo_process import (
        BROWSER_DIR,
        BROWSER_SOCKETIO_JS,
        CHROMIUM,
        ROOT,
        browser_skip_reason,
        chat_demo,
    )
except ImportError:  # pragma: no cover
    from tests.demo_process import (
        BROWSER_DIR,
        BROWSER_SOCKETIO_JS,
        CHROMIUM,
        ROOT,
        browser_skip_reason,
        chat_demo,
    )

SCRIPT = os.path.join(BROWSER_DIR, 'chat_two_tabs.js')
ARTIFACTS = os.path.join(ROOT, 'tests', 'artifacts')

SKIP = browser_skip_reason(BROWSER_SOCKETIO_JS, 'socket.io-client')
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or '')


@pytest.mark.timeout(90)
def test_message_typed_in_one_tab_appears_in_the_other():
    os.makedirs(ARTIFACTS, exist_ok=True)
    screenshot = os.path.join(ARTIFACTS, 'chat_two_tabs.png')
    if os.path.exists(screenshot):
        os.unlink(screenshot)
    with chat_demo(GREENSIO_SOCKETIO_JS=BROWSER_SOCKETIO_JS) as (url, _):
        run = subprocess.run(['node', SCRIPT, url, screenshot], check=False, cwd=BROWSER_DIR, capture_output=True, text=True,
                             timeout=75, env={**os.environ, 'CHROMIUM': CHROMIUM})
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert '"step":"lobby message crossed tabs"' in run.stdout, report
    assert '"step":"room message crossed tabs"' in run.stdout, report
    with open(screenshot, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
