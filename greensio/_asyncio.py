"""What the asyncio twins share beyond their base classes.

Shell ring: asyncio only, no protocol logic.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any


async def settle(result: Any) -> Any:
    """The value of a handler's result: awaited when the handler was a coroutine.

    Handlers may be plain functions or coroutines; as in python-socketio, a
    coroutine handler that is cancelled returns ``None``.
    """
    if inspect.isawaitable(result):
        try:
            return await result
        except asyncio.CancelledError:
            return None
    return result
