"""Redis Sentinel URLs parse as in python-socketio (no I/O)."""

import pytest
import socketio.redis_manager as theirs

from greensio import redis_manager as ours

URLS = [
    'redis+sentinel://h1:26379',
    'redis+sentinel://h1:26379,h2:26380/2',
    'redis+sentinel://u:p@h1:26379,h2:26380/2/my-service',
    'redis+sentinel://:secret@10.0.0.1:26379/0/svc',
]


@pytest.mark.parametrize('url', URLS)
def test_sentinel_urls_parse_like_python_socketio(url: str) -> None:
    assert ours.parse_redis_sentinel_url(url) == theirs.parse_redis_sentinel_url(url)


def test_credentials_are_percent_decoded() -> None:
    # as redis-py's from_url does; python-socketio passes them on still encoded
    url = 'valkey+sentinel://u%40x:p%2Fw@h:1/3/s'
    assert ours.parse_redis_sentinel_url(url) == ([('h', 1)], 's', {'username': 'u@x', 'password': 'p/w', 'db': 3})


def test_a_plain_redis_url_is_not_a_sentinel_url() -> None:
    with pytest.raises(ValueError):
        ours.parse_redis_sentinel_url('redis://localhost:6379/0')
