"""The seed document's AsyncChatNamespace and AsyncGameNamespace, run as written on greensio.

The classes live in ``examples/seed_async_namespaces.py`` (``import greensio
as socketio``) and are served by an ``AsyncServer`` under uvicorn in its own
process (``tests/async_app.py``, kind ``'seed'``); the JS socket.io-client
4.8 plays the users.  What the namespaces print is read back from that process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from async_support import AsyncServerProcess, RemoteServer, skip_reason
from e2e_helpers import fence, needs_node, wait_until
from jsclient import JSClient, jsclients

pytestmark = [
    needs_node,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ''),
    pytest.mark.timeout(30),
]


@pytest.fixture
def remote(async_server: AsyncServerProcess) -> AsyncServerProcess:
    async_server.reset('seed')
    return async_server


@pytest.fixture
def js(remote: AsyncServerProcess) -> Iterator[JSClient]:
    with jsclients() as make:
        yield make()


def _join(js: JSClient, url: str, ns: str, names: list[str], transports: dict[str, list[str]]) -> dict[str, str]:
    """Connect one socket per name to ``ns`` (separate connections); name -> sid."""
    sids = {}
    for name in names:
        msg = js.connect(url + ns, sock=name, forceNew=True, transports=transports.get(name, ['websocket']),
                         wait=True)
        assert msg['type'] == 'connect', msg
        sids[name] = msg['id']
    return sids


def _args(js: JSClient, sock: str, event: str) -> list:
    return [e['args'] for e in js.events(sock=sock, event=event)]


def _printed(remote: AsyncServerProcess) -> str:
    return ''.join(remote('PRINTED'))


def test_the_example_registers_its_namespaces(remote: AsyncServerProcess) -> None:
    assert remote('sorted(sio.namespace_handlers)') == ['/chat', '/game']
    assert remote('[type(h).__mro__[1].__name__ for h in sio.namespace_handlers.values()]') == [
        'AsyncNamespace', 'AsyncNamespace']
    assert remote('type(sio).__name__, sio.async_mode') == ('AsyncServer', 'asgi')
    assert remote('app.game.games') == {}


def test_async_chat_namespace(remote: AsyncServerProcess, js: JSClient) -> None:
    names = ['alice', 'bob', 'carol']
    sids = _join(js, remote.url, '/chat', names, {'bob': ['polling']})
    sio = RemoteServer(remote)

    # on_connect: welcome to the new client only, everyone in the lobby
    for name in names:
        assert js.wait_event('welcome', sock=name)['args'] == [{'message': 'Welcome!'}]
        assert sorted(remote('app.chat.rooms(sid)', sid=sids[name])) == sorted([sids[name], 'lobby'])
    assert all(f'Client {sids[n]} connected to async chat namespace' in _printed(remote) for n in names)

    # join_room: status to the joiner, user_joined to the others already there
    js.emit('join_room', {'room': 'general'}, sock='alice')
    assert js.wait_event('status', sock='alice')['args'] == [{'message': 'Joined general'}]
    js.emit('join_room', {'room': 'general'}, sock='bob')
    assert js.wait_event('status', sock='bob')['args'] == [{'message': 'Joined general'}]
    assert js.wait_event('user_joined', sock='alice')['args'] == [{'sid': sids['bob']}]

    # chat_message reads the session with ``async with self.session(sid)``: a
    # name saved there shows, and no name is Anonymous
    remote("sio.save_session(sid, {'username': 'Alice'}, namespace='/chat')", sid=sids['alice'])
    before = time.time()
    js.emit('chat_message', {'message': 'hello general', 'room': 'general'}, sock='alice')
    for name in ('alice', 'bob'):
        (message,) = js.wait_event('message', sock=name)['args']
        assert message['username'] == 'Alice' and message['message'] == 'hello general'
        assert before - 1 <= message['timestamp'] <= time.time() + 1
    js.emit('chat_message', {'message': 'hi lobby'}, sock='carol')
    for name in names:
        assert js.wait_event('message', sock=name, timeout=5)['args'][0]['username'] == 'Anonymous'
    for name in names:
        fence(js, name, sio, sids[name], namespace='/chat')
    assert [a[0]['message'] for a in _args(js, 'carol', 'message')] == ['hi lobby']
    assert _args(js, 'bob', 'user_joined') == [] and _args(js, 'carol', 'user_joined') == []

    # get_user_info: a coroutine handler's return value is the ack
    start = time.monotonic()
    assert js.call('get_user_info', {'user_id': 7}, sock='bob') == [
        {'user_info': {'id': 7, 'name': 'User 7', 'status': 'online'}}]
    assert time.monotonic() - start >= 0.1  # it awaited its simulated database
    # handlers run concurrently: five 0.1 s lookups overlap (one after another they take >= 0.5 s;
    # the margin leaves room for a busy CI machine)
    start = time.monotonic()
    cids = [js.emit('get_user_info', {'user_id': i}, sock='alice', ack=True) for i in range(1, 6)]
    assert [js.wait_ack(cid)['args'][0]['user_info']['id'] for cid in cids] == [1, 2, 3, 4, 5]
    assert time.monotonic() - start < 0.45

    # the seed's one-argument on_disconnect(self, sid) runs, and cleans the cache
    remote("app.chat.user_cache.__setitem__(sid, 'cached')", sid=sids['carol'])
    js.disconnect(sock='carol')
    wait_until(lambda: f'Client {sids["carol"]} disconnected from async chat' in _printed(remote),
               what='on_disconnect output')
    assert remote('app.chat.user_cache') == {}


def test_async_game_namespace(remote: AsyncServerProcess, js: JSClient) -> None:
    sids = _join(js, remote.url, '/game', ['p1', 'p2'], {'p2': ['polling']})
    sio = RemoteServer(remote)
    assert all(f'Player {sid} connected to async game namespace' in _printed(remote) for sid in sids.values())

    before = time.time()
    js.emit('create_game', {'game_id': 'g1'}, sock='p1')
    assert js.wait_event('game_created', sock='p1')['args'] == [{'game_id': 'g1'}]
    game = remote("app.game.games['g1']")
    assert game['players'] == [sids['p1']] and game['status'] == 'waiting'
    assert before - 1 <= game['created_at'] <= time.time() + 1

    # an unknown game id is ignored
    js.emit('join_game', {'game_id': 'nope'}, sock='p2')
    js.emit('join_game', {'game_id': 'g1'}, sock='p2')
    started = time.monotonic()
    for name in ('p1', 'p2'):
        assert js.wait_event('player_joined', sock=name)['args'] == [{'sid': sids['p2']}]
        # emit(..., room=game_id) without data: an event with no arguments
        assert js.wait_event('game_started', sock=name)['args'] == []
    game = remote("app.game.games['g1']")
    assert game['players'] == [sids['p1'], sids['p2']] and game['status'] == 'playing'
    assert remote('sorted(app.game.games)') == ['g1']

    # the game task started with asyncio.create_task reports after its second
    for name in ('p1', 'p2'):
        assert js.wait_event('game_update', sock=name, timeout=5)['args'] == [{'status': 'running'}]
    assert time.monotonic() - started >= 0.9
    for name in ('p1', 'p2'):
        fence(js, name, sio, sids[name], namespace='/game')
        assert len(_args(js, name, 'player_joined')) == 1 and len(_args(js, name, 'game_started')) == 1
        assert len(_args(js, name, 'game_update')) == 1
    assert _args(js, 'p2', 'game_created') == []
