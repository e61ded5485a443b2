"""greensio/_core type-checks under ``mypy --strict`` (the shells are
annotated but not held to strict mode)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import greensio

CORE = pathlib.Path(greensio.__file__).parent / '_core'


@pytest.mark.timeout(180)
def test_core_type_checks_strictly(tmp_path: pathlib.Path) -> None:
    out = subprocess.run(
        [sys.executable, '-m', 'mypy', '--strict', '--follow-imports=silent', '--cache-dir', str(tmp_path),
         str(CORE)],
        capture_output=True, text=True, timeout=170, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
