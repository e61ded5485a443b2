"""The workers directory of ``greensio.forwarding``: tags, owners, stale sockets, permissions.

Connections handed over between real gunicorn workers are tested in
``tests/mq/test_multiworker.py``, requests carried by the queue in
``tests/mq/test_forwarding_queue.py``.
"""

from __future__ import annotations

import os
import socket

import pytest

from greensio import forwarding
from greensio.engineio.base_server import BaseServer


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / 'workers'
    path.mkdir(mode=0o700)
    return str(path)


def test_a_sid_names_its_owner_only_while_the_owner_listens(directory) -> None:
    mine, theirs = forwarding.Peers(directory), forwarding.Peers(directory)
    assert mine.tag != theirs.tag and len(mine.tag) == forwarding.TAG_LENGTH
    sid = theirs.tag + 'AbCdEfGhIjKlMnOpQrSt'
    assert mine.owner(sid) is None  # not listening yet
    with theirs.listen():
        assert mine.owner(sid) == theirs.path
        assert mine.owner(mine.tag + 'AbCdEfGhIjKlMnOpQrSt') is None  # its own
        assert theirs.owner(sid) is None
        for forged in ('', theirs.tag, '../../etc/x' + 'A' * 20, theirs.tag.upper() + 'A' * 20,
                       'zzzzzzzz' + 'A' * 20):
            assert mine.owner(forged) is None
    theirs.close()
    assert mine.owner(sid) is None


def test_a_dead_workers_socket_is_swept_and_a_live_one_kept(directory) -> None:
    dead, alive, new = (forwarding.Peers(directory) for _ in range(3))
    listener = dead.listen()
    listener.close()  # killed: its file stays, nobody accepts on it
    assert os.path.exists(dead.path)
    with alive.listen(), new.listen():
        assert not os.path.exists(dead.path)
        assert os.path.exists(alive.path) and os.path.exists(new.path)


def test_the_directory_must_be_private(tmp_path) -> None:
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(RuntimeError, match='mode 0700'):
        forwarding.Peers(str(shared)).listen()
    assert not any(p.name.endswith('.sock') for p in shared.iterdir())


def test_enable_prefixes_every_sid_and_can_be_turned_off(directory, monkeypatch) -> None:
    monkeypatch.setattr(BaseServer, 'sid_prefix', BaseServer.sid_prefix)
    monkeypatch.setattr(forwarding, 'peers', None)
    monkeypatch.setenv('GREENSIO_FORWARDING', 'off')
    assert forwarding.enable(directory) is None and BaseServer.sid_prefix == ''
    monkeypatch.delenv('GREENSIO_FORWARDING')
    peers = forwarding.enable(directory)
    assert forwarding.peers is peers
    import greensio.engineio

    sid = greensio.engineio.Server().generate_id()
    assert sid.startswith(peers.tag) and len(sid) == forwarding.TAG_LENGTH + 20


def test_a_hand_over_to_an_owner_that_is_gone_reports_it(directory) -> None:
    gone = os.path.join(directory, 'abcdefgh.sock')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(gone)
    listener.close()
    assert forwarding.hand_over(object(), gone) is False
