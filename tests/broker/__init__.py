"""The RabbitMQ of scripts/rabbitmq.sh, seen from the tests: settings, publish, purge.

Import as ``from tests.broker import publish``; the tier's own tests live beside it.

Waldur Mastermind publishes events to each offering's ``consumer_<uuid>`` queue; the
tests do the same through the management HTTP API. Reading the settings and the
passwords needs root, like the script itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests.exports import exports

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rabbitmq.sh"


def broker_env() -> dict[str, str]:
    """The ``export NAME=value`` lines of ``scripts/rabbitmq.sh env`` as a dict.

    Keys: RMQ_HOST, RMQ_AMQP_PORT, RMQ_STOMP_PORT, RMQ_WS_PORT, RMQ_WS_PATH,
    RMQ_MGMT_PORT, RMQ_VHOST, RMQ_USER, RMQ_PASSWORD_FILE, RMQ_QUEUE, RMQ_ADMIN_USER,
    RMQ_ADMIN_PASSWORD_FILE. The RMQ_* variables of this process choose the values.
    """
    out = subprocess.run(
        ["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True
    ).stdout
    env = exports(out)
    if "RMQ_QUEUE" not in env:
        raise RuntimeError(f"{SCRIPT} env printed no settings: {out!r}")
    return env


def offering_token(env: dict[str, str] | None = None) -> str:
    """The consumer's STOMP password: the offering's ``waldur_api_token``."""
    env = env or broker_env()
    return Path(env["RMQ_PASSWORD_FILE"]).read_text()


def admin_password(env: dict[str, str] | None = None) -> str:
    """The management administrator's password."""
    env = env or broker_env()
    return Path(env["RMQ_ADMIN_PASSWORD_FILE"]).read_text()


def _api(env: dict[str, str], method: str, path: str, body: Any = None) -> httpx.Response:
    url = f"http://{env['RMQ_HOST']}:{env['RMQ_MGMT_PORT']}/api{path}"
    response = httpx.request(
        method,
        url,
        json=body,
        auth=(env["RMQ_ADMIN_USER"], admin_password(env)),
        timeout=10,
    )
    response.raise_for_status()
    return response


def _queue_path(env: dict[str, str], queue: str | None) -> str:
    vhost = quote(env["RMQ_VHOST"], safe="")
    return f"/queues/{vhost}/{quote(queue or env['RMQ_QUEUE'], safe='')}"


def publish(message: dict[str, Any], queue: str | None = None) -> None:
    """Publish ``message`` as JSON to ``queue`` (default: the offering's queue).

    Like Mastermind: through the default exchange, routing key = queue name, persistent.

    Raises:
        RuntimeError: the broker routed the message to no queue (the queue is missing).
    """
    env = broker_env()
    queue = queue or env["RMQ_QUEUE"]
    body = {
        "properties": {"content_type": "application/json", "delivery_mode": 2},
        "routing_key": queue,
        "payload": json.dumps(message),
        "payload_encoding": "string",
    }
    vhost = quote(env["RMQ_VHOST"], safe="")
    result = _api(env, "POST", f"/exchanges/{vhost}/amq.default/publish", body).json()
    if not result.get("routed"):
        raise RuntimeError(f"message not routed: no queue {queue!r} in vhost {env['RMQ_VHOST']}")


def purge(queue: str | None = None) -> None:
    """Drop every ready message of ``queue`` (default: the offering's queue)."""
    env = broker_env()
    _api(env, "DELETE", f"{_queue_path(env, queue)}/contents")


def queue_depth(queue: str | None = None) -> int:
    """The number of ready messages in ``queue`` (default: the offering's queue), now.

    The management statistics lag by seconds, so this fetches one message and puts it
    back: the broker's answer tells how many are left behind it. The message keeps its
    place but is marked redelivered.
    """
    env = broker_env()
    got = _api(
        env,
        "POST",
        f"{_queue_path(env, queue)}/get",
        {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"},
    ).json()
    return 0 if not got else int(got[0]["message_count"]) + 1
