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


class AsyncioPrimitives:
    """python-engineio's runtime helpers of its asyncio classes (server and client alike)."""

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> asyncio.Task:
        """Run the coroutine function ``target(*args, **kwargs)`` as an ``asyncio.Task``."""
        return asyncio.ensure_future(target(*args, **kwargs))

    async def sleep(self, seconds: float = 0) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue:
        """An ``asyncio.Queue``."""
        return asyncio.Queue(*args, **kwargs)

    def get_queue_empty_exception(self) -> type[BaseException]:
        """``asyncio.QueueEmpty``."""
        return asyncio.QueueEmpty

    def create_event(self, *args: Any, **kwargs: Any) -> asyncio.Event:
        """An ``asyncio.Event``."""
        return asyncio.Event(*args, **kwargs)
