"""The asyncio Socket.IO client (``socketio.AsyncClient``).

Shell ring, the asyncio twin of ``client.py``.  python-engineio's
``engineio.AsyncClient`` (aiohttp) carries the transport; ``BaseClient``
holds the options, registration and docstrings; ``_core.client_session``
the protocol state and ``_core.reconnect`` the backoff.  Messages are
decoded in order on the Engine.IO reader task (binary attachments
included); each handler runs in its own task, so a handler that awaits
``call()`` never stops acks from arriving.

``_AsyncEngineClient`` corrects python-engineio's asyncio client where the
green client's ``_EngineClient`` corrects the threaded one: a task per
message (which reorders packets and splits a binary packet's parts), a
polling response of more than 16 packets refused, every queued packet put
in one POST (python-engineio servers refuse more than 16), and a writer
left waiting after a disconnect made on the reader.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

import engineio
from engineio import base_client as eio_base_client
from engineio import packet as eio_packet
from engineio import payload as eio_payload

from . import exceptions
from ._asyncio import settle
from ._core.client_events import (
    AckArrived,
    EventArrived,
    NamespaceConnected,
    NamespaceDisconnected,
    NamespaceRefused,
)
from ._core.errors import LocalProtocolError, RemoteProtocolError
from ._core.handlers import call_trimmed
from ._core.reconnect import backoff_schedule
from .base_client import BaseClient, _real

try:
    import aiohttp
except ImportError:  # no 'asyncio' extra: python-engineio reports it when connecting
    aiohttp = None

#: Packets per long-polling POST: python-engineio servers refuse payloads of more than 16.
MAX_PACKETS_PER_POST = 16
#: How long ``disconnect()`` lets queued packets (the DISCONNECTs) reach the server.
FLUSH_SECONDS = 1.0

_SEND_ERRORS: tuple[type[BaseException], ...] = (OSError,)
if aiohttp is not None:
    _SEND_ERRORS = (OSError, aiohttp.ClientError)


class _AsyncEngineClient(engineio.AsyncClient):
    """``engineio.AsyncClient`` that hands messages over on its reader, in order."""

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.state == 'disconnected':
            # a fresh queue per connection: packets of the last one (and its
            # sentinel) can never reach this one's writer
            self.queue = self.create_queue()
        return await super().connect(*args, **kwargs)

    def send_nowait(self, data: str | bytes) -> None:
        """Queue a MESSAGE without yielding, so a packet's parts stay together."""
        if self.state == 'connected':
            self.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=data))

    async def _reset(self) -> None:
        writer = self.write_loop_task
        await super()._reset()
        if writer is not None and writer is not asyncio.current_task() and not writer.done():
            # python-engineio drained the queue, sentinel included: the writer
            # would wait for ping_interval + ping_timeout
            self.queue.put_nowait(None)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == 'message':  # inline, on the reader: python-engineio started a task per message
            handler = self.handlers.get('message')
            if handler is not None:
                await handler(*args)
            return None
        return await super()._trigger_event(event, *args, **kwargs)

    async def _read_loop_polling(self) -> None:
        """Long-poll until the connection ends (python-engineio's decoder refused more than 16 packets)."""
        while self.state == 'connected' and self.write_loop_task:
            response = await self._send_request('GET', self.base_url + self._get_url_timestamp(),
                                                timeout=max(self.ping_interval, self.ping_timeout) + 5)
            packets = await self._poll_packets(response)
            if packets is None:
                self.queue.put_nowait(None)  # ends the writer too
                break
            for pkt in packets:
                await self._receive_packet(pkt)
        if self.write_loop_task is not None:
            await self.write_loop_task
        if self.state == 'connected':
            await self._trigger_event('disconnect', self.reason.TRANSPORT_ERROR, run_async=False)
            if self in eio_base_client.connected_clients:
                eio_base_client.connected_clients.remove(self)
            await self._reset()

    async def _poll_packets(self, response: Any) -> list[Any] | None:
        """The packets of a polling response, or None when the connection is unusable."""
        if response is None or isinstance(response, str):
            self.logger.warning('polling request failed: %s', response or 'connection refused')
            return None
        if not 200 <= response.status < 300:
            self.logger.warning('polling request failed with status %s', response.status)
            return None
        try:
            body = (await response.read()).decode('utf-8')
            return [eio_packet.Packet(encoded_packet=part) for part in body.split('\x1e')] if body else []
        except ValueError as exc:  # UnicodeDecodeError and binascii.Error included
            self.logger.warning('invalid polling response: %s', exc)
            return None
        except _SEND_ERRORS as exc:
            self.logger.warning('polling response lost: %s', exc)
            return None

    async def _write_loop(self) -> None:
        """Send what is queued until the connection ends, at most ``MAX_PACKETS_PER_POST`` per POST."""
        timeout = max(self.ping_interval, self.ping_timeout) + 5
        while self.state == 'connected':
            try:
                first = await asyncio.wait_for(self.queue.get(), timeout)
            except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                self.logger.error('packet queue is empty, aborting')
                break
            batch, last = self._take_batch(first)
            if batch and not await self._send_batch(batch):
                break
            if last:
                break
        self.write_loop_task = None

    def _take_batch(self, first: Any) -> tuple[list[Any], bool]:
        """``first`` and what else is queued, up to the limit; True if the end marker came."""
        batch: list[Any] = []
        item = first
        while item is not None:
            batch.append(item)
            if len(batch) >= MAX_PACKETS_PER_POST:
                return batch, False
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return batch, False
        self.queue.task_done()  # the end marker
        return batch, True

    async def _send_batch(self, batch: list[Any]) -> bool:
        """Send packets on the current transport; False once it failed."""
        try:
            if self.current_transport == 'polling':
                body = eio_payload.Payload(packets=batch).encode()
                response = await self._send_request('POST', self.base_url, body=body,
                                                    headers={'Content-Type': 'text/plain'},
                                                    timeout=self.request_timeout)
                if response is None or isinstance(response, str) or not 200 <= response.status < 300:
                    self.logger.warning('polling POST failed (%s), aborting', getattr(response, 'status', response))
                    return False
                response.release()
                return True
            for pkt in batch:
                if pkt.binary:
                    await self.ws.send_bytes(pkt.encode())
                else:
                    await self.ws.send_str(pkt.encode())
            return True
        except _SEND_ERRORS:
            self.logger.warning('WebSocket connection was closed, aborting')
            return False
        finally:
            for _ in batch:
                self.queue.task_done()


class _CallFuture:
    """The callback ``call()`` uses: resolved on the reader, never queued behind handlers."""

    def __init__(self) -> None:
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()

    def __call__(self, *args: Any) -> None:
        if not self.future.done():
            self.future.set_result(args)


class AsyncClient(BaseClient):
    """A Socket.IO client for asyncio; drop-in for ``socketio.AsyncClient``.

    The arguments are those of :class:`greensio.Client`.  Needs aiohttp
    (``pip install greensio[asyncio]``).
    """

    _engine_base = engineio.AsyncClient

    def __init__(self, reconnection: bool = True, reconnection_attempts: int = 0, reconnection_delay: float = 1,
                 reconnection_delay_max: float = 5, randomization_factor: float = 0.5, logger: Any = False,
                 serializer: Any = 'default', json: Any = None, handle_sigint: bool = True, **kwargs: Any) -> None:
        super().__init__(reconnection, reconnection_attempts, reconnection_delay, reconnection_delay_max,
                         randomization_factor, logger, serializer, json, handle_sigint, **kwargs)
        self._answered: set[str] = set()
        self._answer = asyncio.Event()
        self._finished = asyncio.Event()
        self._finished.set()
        self._reconnect_task: asyncio.Task | None = None
        self._reconnect_abort = asyncio.Event()
        self._reconnect_idle = asyncio.Event()  # set while no reconnection loop runs
        self._reconnect_idle.set()
        self._tasks: set[asyncio.Task] = set()  # handler tasks, referenced until done

    def _create_engine(self, options: dict[str, Any]) -> _AsyncEngineClient:
        return _AsyncEngineClient(**options)

    # -- connecting (docstrings on BaseClient) ------------------------------------------------

    async def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                      namespaces: Any = None, socketio_path: str = 'socket.io', wait: bool = True,
                      wait_timeout: float = 1, retry: bool = False) -> None:
        if self.connected:
            raise exceptions.ConnectionError('Already connected')
        await self._stop_reconnecting()
        self._remember(url, headers, auth, transports, namespaces, socketio_path, wait_timeout)
        self._finished.clear()
        try:
            await self._attempt(self.connection_namespaces, wait, wait_timeout)
        except exceptions.ConnectionError as exc:
            if not (retry and isinstance(exc.__cause__, engineio.exceptions.ConnectionError) and await self._retry()):
                self._finished.set()
                raise
        except BaseException:
            self._finished.set()
            raise

    async def _retry(self) -> bool:
        """``connect(retry=True)``: the reconnection schedule, run in the caller's task."""
        me = asyncio.current_task()
        self._reconnect_abort.clear()
        self._reconnect_task = me
        try:
            return await self._reconnect_loop(self.connection_namespaces)
        finally:
            if self._reconnect_task is me:
                self._reconnect_task = None

    async def _attempt(self, namespaces: list[str], wait: bool, wait_timeout: float, in_loop: bool = False) -> None:
        """One Engine.IO connection plus its namespaces; raises ``ConnectionError``."""
        self._attempt_namespaces = namespaces
        self._answered = set()
        self._answer.clear()
        args, kwargs = self._engine_connect_args()
        try:
            await self.eio.connect(*args, **kwargs)
        except engineio.exceptions.ConnectionError as exc:
            detail = self._connect_error_detail(exc)
            for namespace in namespaces:
                await self._run_handler('connect_error', namespace, detail)
            raise exceptions.ConnectionError(exc.args[0] if exc.args else 'Connection error') from exc
        if wait:
            await self._wait_for_namespaces(namespaces, wait_timeout)
        if self.eio.state != 'connected':
            raise exceptions.ConnectionError('Connection lost while connecting')
        self.connected = True
        if in_loop:  # from here on a lost connection needs a new reconnection task
            self._reconnect_task = None

    async def _wait_for_namespaces(self, namespaces: list[str], wait_timeout: float) -> None:
        wanted = set(namespaces)
        # each wake-up is one namespace's answer or the connection's end, so
        # this loop runs at most len(namespaces) + 1 times past its timeouts
        while not wanted <= self._answered and self.eio.state == 'connected':
            try:
                await asyncio.wait_for(self._answer.wait(), wait_timeout)
            except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                break
            self._answer.clear()
        connected = set(self._session.namespaces)
        if wanted <= connected:
            return
        missing = [ns for ns in namespaces if ns not in connected]
        refused = [ns for ns in missing if ns in self._session.failed]
        lost = self.eio.state != 'connected'
        await self._drop_connection()
        if lost:
            raise exceptions.ConnectionError('Connection lost while connecting')
        if refused:
            raise exceptions.ConnectionError('One or more namespaces failed to connect: ' + ', '.join(refused))
        raise exceptions.ConnectionError('Timed out waiting for namespaces: ' + ', '.join(missing))

    async def wait(self) -> None:
        await self._finished.wait()

    # -- emitting --------------------------------------------------------------------------------

    async def emit(self, event: str, data: Any = None, namespace: str | None = None,
                   callback: Callable | None = None) -> None:
        namespace = namespace or '/'
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('Emitting event "%s" [%s]', event, namespace)
        try:
            pkt = self._session.emit(namespace, event, data, callback)
        except LocalProtocolError as exc:
            if namespace not in self._session.namespaces:
                raise exceptions.BadNamespaceError(str(exc)) from None
            raise
        self._send_packet(pkt)

    async def send(self, data: Any, namespace: str | None = None, callback: Callable | None = None) -> None:
        await self.emit('message', data=data, namespace=namespace, callback=callback)

    async def call(self, event: str, data: Any = None, namespace: str | None = None,
                   timeout: float | None = 60) -> Any:
        waiter = _CallFuture()
        await self.emit(event, data=data, namespace=namespace, callback=waiter)
        try:
            args = await asyncio.wait_for(waiter.future, timeout)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            raise exceptions.TimeoutError() from None
        return self._call_result(args)

    # -- disconnecting ---------------------------------------------------------------------------

    async def disconnect(self) -> None:
        await self._stop_reconnecting()
        for pkt in self._session.disconnect():
            self._send_packet(pkt)
        await self._flush(FLUSH_SECONDS)
        await self.eio.disconnect(abort=self._in_reader())
        self.connected = False  # never connected, or already lost: nothing ran _finish
        self._finished.set()

    async def shutdown(self) -> None:
        await self.disconnect()

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)

    # -- sending ---------------------------------------------------------------------------------

    def _send_packet(self, pkt: Any) -> None:
        """Queue a packet's Engine.IO messages, all at once (nothing yields in between)."""
        encoded = pkt.encode()
        if isinstance(encoded, list):
            for part in encoded:
                self.eio.send_nowait(part)
        else:
            self.eio.send_nowait(encoded)

    async def _flush(self, timeout: float) -> None:
        """Wait (bounded) until the writer has sent what is queued."""
        if self.eio.state != 'connected' or asyncio.current_task() is self.eio.write_loop_task:
            return
        try:
            await asyncio.wait_for(self.eio.queue.join(), timeout)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            pass

    async def _drop_connection(self) -> None:
        """Close a connection that never became usable, without running handlers."""
        self.connected = False
        for pkt in self._session.disconnect():
            self._send_packet(pkt)
        await self.eio.disconnect(abort=self._in_reader())

    def _in_reader(self) -> bool:
        return asyncio.current_task() is self.eio.read_loop_task

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- inbound ---------------------------------------------------------------------------------

    def _handle_eio_connect(self) -> None:
        self.sid = self.eio.sid
        auth = _real(self.connection_auth)
        for pkt in self._session.open(self.eio.sid, self._attempt_namespaces, auth):
            self._send_packet(pkt)

    async def _handle_eio_message(self, data: str | bytes) -> None:
        try:
            events = self._session.receive(data)
        except RemoteProtocolError as exc:
            self.logger.warning('protocol violation by the server, closing the connection: %s', exc)
            await self.eio.disconnect(abort=True, reason=self.reason.TRANSPORT_ERROR)
            return
        for event in events:
            kind = type(event)
            if kind is EventArrived:
                self._spawn(self._handle_event(event))
            elif kind is AckArrived:
                if type(event.callback) is _CallFuture:
                    event.callback(*event.args)
                else:
                    self._spawn(self._handle_ack(event))
            elif kind is NamespaceConnected:
                self.logger.info('Namespace %s is connected', event.namespace)
                self._spawn(self._handle_answer('connect', event.namespace, ()))
            elif kind is NamespaceRefused:
                self.logger.info('Connection to namespace %s was rejected', event.namespace)
                self._spawn(self._handle_answer('connect_error', event.namespace, event.args))
            elif kind is NamespaceDisconnected:
                self._handle_server_disconnect(event.namespace)
            else:
                self.logger.warning('%s [%s], packet ignored', event.reason, event.namespace)

    async def _handle_answer(self, handler: str, namespace: str, args: tuple[Any, ...]) -> None:
        # connect() returns once the connect handlers ran, as in python-socketio
        await self._run_handler(handler, namespace, *args)
        self._answered.add(namespace)
        self._answer.set()

    async def _handle_event(self, event: EventArrived) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('Received event "%s" [%s]', event.event, event.namespace)
        try:
            result = await self._trigger_event(event.event, event.namespace, *event.args)
        except Exception:
            self.logger.exception('event handler error: "%s" [%s]', event.event, event.namespace)
            return
        if event.ack_id is not None:  # the client acks even without a handler
            self._send_packet(self._session.ack(event.namespace, event.ack_id, result))

    async def _handle_ack(self, ack: AckArrived) -> None:
        try:
            result = ack.callback(*ack.args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.logger.exception('ack callback error [%s]', ack.namespace)

    def _handle_server_disconnect(self, namespace: str) -> None:
        self.logger.info('Namespace %s was disconnected by the server', namespace)
        if not self.connected:  # connect() is still waiting; it sees the namespace gone
            self._answer.set()
            return
        closing = not self._session.namespaces
        if closing:
            self.connected = False
        self._spawn(self._finish_server_disconnect(namespace, closing))

    async def _finish_server_disconnect(self, namespace: str, closing: bool) -> None:
        await self._run_handler('disconnect', namespace, self.reason.SERVER_DISCONNECT)
        await self._run_handler('__disconnect_final', namespace)
        if closing:  # no namespace left: close the transport, from here and not from its reader
            await self.eio.disconnect()
            self._finished.set()

    async def _handle_eio_disconnect(self, reason: str | None = None) -> None:
        """The Engine.IO connection ended (engineio runs this on its reader or in ``disconnect``)."""
        reason = reason or self.reason.TRANSPORT_ERROR
        was_connected, self.connected = self.connected, False
        lost = self._session.connection_lost()
        # engineio's state is still 'connected' only when the transport failed
        will_reconnect = self.reconnection and was_connected and self.eio.state == 'connected'
        self.sid = None
        self._answer.set()  # wake a connect() waiting for namespace answers
        if not was_connected:  # an attempt that failed: connect() reports it
            return
        self.logger.info('Engine.IO connection dropped (%s)', reason)
        for namespace in lost:
            await self._run_handler('disconnect', namespace, reason)
            if not will_reconnect:
                await self._run_handler('__disconnect_final', namespace)
        if not will_reconnect:
            self._finished.set()
            return
        # disconnect() from a disconnect handler sets _finished: no reconnection then
        if self._reconnect_task is None and not self._finished.is_set():
            self._reconnect_abort.clear()
            self._reconnect_task = self.start_background_task(self._reconnect_main, lost or self.connection_namespaces)

    # -- reconnection ------------------------------------------------------------------------------

    async def _reconnect_main(self, namespaces: list[str]) -> None:
        try:
            reconnected = await self._reconnect_loop(namespaces)
        finally:
            if self._reconnect_task is asyncio.current_task():
                self._reconnect_task = None
        if not reconnected:
            self._finished.set()

    async def _reconnect_loop(self, namespaces: list[str]) -> bool:
        """Retry on the backoff schedule; True once connected again."""
        self._reconnect_idle.clear()
        try:
            return await self._reconnect_attempts(namespaces)
        finally:
            self._reconnect_idle.set()

    async def _reconnect_attempts(self, namespaces: list[str]) -> bool:
        schedule = backoff_schedule(self.reconnection_delay, self.reconnection_delay_max,
                                    self.randomization_factor, self.reconnection_attempts)
        for attempt, delay in enumerate(schedule, 1):
            self.logger.info('Connection failed, new attempt in %.02f seconds', delay)
            try:
                await asyncio.wait_for(self._reconnect_abort.wait(), delay)
            except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                pass
            else:
                self.logger.info('Reconnect task aborted')
                break
            try:
                await self._attempt(namespaces, True, self._wait_timeout, in_loop=True)
            except (exceptions.ConnectionError, ValueError) as exc:
                self.logger.info('Reconnection attempt %d failed: %s', attempt, exc)
                continue
            if self._reconnect_abort.is_set():  # shutdown() while the attempt was under way
                await self._drop_connection()
                break
            self.logger.info('Reconnection successful')
            return True
        else:
            self.logger.info('Maximum reconnection attempts reached, giving up')
        for namespace in namespaces:
            await self._run_handler('__disconnect_final', namespace)
        return False

    async def _stop_reconnecting(self) -> None:
        task = self._reconnect_task
        if task is None or task is asyncio.current_task():
            return
        self._reconnect_abort.set()
        # an attempt under way ends within the request timeout plus the namespace wait
        try:
            await asyncio.wait_for(self._reconnect_idle.wait(), self.eio.request_timeout + self._wait_timeout + 1)
        except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
            self.logger.warning('the reconnection loop did not stop in time')

    # -- handlers ----------------------------------------------------------------------------------

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        found = self._registry.resolve(namespace, event)
        if found is None:
            return None
        handler, lead = found
        if event == 'disconnect':  # reason is optional (legacy handlers take none)
            result = call_trimmed(handler, lead + args, 1)
        else:
            result = handler(*lead, *args)
        return await settle(result)

    async def _run_handler(self, event: str, namespace: str, *args: Any) -> None:
        """Run a lifecycle handler; its errors are logged, never raised into the connection."""
        try:
            await self._trigger_event(event, namespace, *args)
        except Exception:
            self.logger.exception('%s handler error [%s]', event, namespace)
