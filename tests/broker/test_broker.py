"""The consumer side of framework-contract §9 against a real RabbitMQ.

The connection is made the way waldur-site-agent 1.0.7 makes it: WebSocket STOMP,
host header = vhost, login = rmq_username, passcode = the offering token, and a
subscription to the pre-created queue through /amq/queue/<name> with auto-ack.
"""

from __future__ import annotations

import json
import queue as queue_module
import uuid
from collections.abc import Iterator

import pytest
import stomp
from stomp.exception import ConnectFailedException
from stomp.utils import Frame

from tests.broker import broker_env, offering_token, publish, purge, queue_depth

pytestmark = pytest.mark.broker

WAIT = 15  # seconds to wait for a frame before giving up


class Collector(stomp.ConnectionListener):
    """Puts every MESSAGE and ERROR frame on a queue for the test thread."""

    def __init__(self) -> None:
        self.messages: queue_module.Queue[Frame] = queue_module.Queue()
        self.errors: queue_module.Queue[Frame] = queue_module.Queue()

    def on_message(self, frame: Frame) -> None:
        self.messages.put(frame)

    def on_error(self, frame: Frame) -> None:
        self.errors.put(frame)


def connection(env: dict[str, str]) -> stomp.WSStompConnection:
    return stomp.WSStompConnection(
        [(env["RMQ_HOST"], int(env["RMQ_WS_PORT"]))],
        ws_path=env["RMQ_WS_PATH"],
        vhost=env["RMQ_VHOST"],
        reconnect_attempts_max=1,
        heartbeats=(10000, 10000),
    )


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    settings = broker_env()
    purge()
    yield settings
    purge()


@pytest.fixture
def subscriber(env: dict[str, str]) -> Iterator[tuple[stomp.WSStompConnection, Collector]]:
    """A connected consumer of the offering queue, not yet subscribed."""
    conn = connection(env)
    collector = Collector()
    conn.set_listener("collector", collector)
    conn.connect(env["RMQ_USER"], offering_token(env), wait=True, headers={"accept-version": "1.2"})
    yield conn, collector
    if conn.is_connected():
        conn.disconnect()


def subscribe(conn: stomp.WSStompConnection, env: dict[str, str]) -> None:
    name = env["RMQ_QUEUE"]
    conn.subscribe(destination=f"/amq/queue/{name}", id=name, ack="auto")


def event() -> dict[str, object]:
    return {
        "object_type": "order",
        "order_uuid": uuid.uuid4().hex,
        "order_state": "executing",
        "note": 'grüße, 東京 — "quoted"\nsecond line',
        "nested": {"limits": {"cpu": 1000, "mem": 2.5}, "tags": [], "none": None},
    }


def test_published_event_reaches_the_subscriber_intact(
    env: dict[str, str], subscriber: tuple[stomp.WSStompConnection, Collector]
) -> None:
    conn, collector = subscriber
    subscribe(conn, env)
    message = event()

    publish(message)

    frame = collector.messages.get(timeout=WAIT)
    assert json.loads(frame.body) == message
    assert frame.headers["subscription"] == env["RMQ_QUEUE"]
    assert frame.headers["content-type"] == "application/json"
    assert collector.errors.empty()


def test_event_published_while_offline_waits_in_the_queue(
    env: dict[str, str], subscriber: tuple[stomp.WSStompConnection, Collector]
) -> None:
    conn, collector = subscriber
    first, second = event(), event()
    publish(first)
    publish(second)
    assert queue_depth() == 2

    subscribe(conn, env)

    received = [json.loads(collector.messages.get(timeout=WAIT).body) for _ in range(2)]
    assert received == [first, second]
    assert queue_depth() == 0  # auto-ack: delivered means gone


def test_wrong_password_is_refused(env: dict[str, str]) -> None:
    conn = connection(env)
    collector = Collector()
    conn.set_listener("collector", collector)

    with pytest.raises(ConnectFailedException):
        conn.connect(env["RMQ_USER"], "not-the-token", wait=True)

    error = collector.errors.get(timeout=WAIT)
    assert "refused" in (error.headers.get("message", "") + error.body).lower()
    assert not conn.is_connected()
