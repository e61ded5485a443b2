"""greensio's sans-IO core: protocol state and codecs, no I/O and no user code.

Everything here takes strings/bytes and returns events plus packets to send.
It imports nothing from gevent, asyncio, engineio, kombu or redis (a test
checks), so the green and asyncio shells share one protocol implementation.
"""
