"""Check every answer with ``waldur_api_client``'s own response parser before it is sent.

For a route declared with ``api="marketplace_orders.marketplace_orders_list"`` the
answer is wrapped in an ``httpx.Response`` and handed to
``waldur_api_client.api.marketplace_orders.marketplace_orders_list._parse_response``.
That parser raises ``UnexpectedStatus`` for a status the API does not document and
``KeyError``/``ValueError`` from the model's ``from_dict`` for a body the client
cannot read, which is exactly what would break the real agent.
"""

from __future__ import annotations

import functools
import importlib
import json
from types import ModuleType, TracebackType
from typing import Any

import httpx
from waldur_api_client import Client


class ResponseDriftError(Exception):
    """An answer that ``waldur_api_client`` would not accept."""

    def __init__(self, api: str, model: str | None, cause: BaseException) -> None:
        """Name the API module, the model that failed (if any) and the cause."""
        where = f"{model}.from_dict" if model else f"{api}._parse_response"
        super().__init__(f"{where} rejected the answer: {type(cause).__name__}: {cause}")
        self.model = model


@functools.cache
def api_module(api: str) -> ModuleType:
    """The ``waldur_api_client.api.<api>`` module (``tag.module_name``)."""
    return importlib.import_module(f"waldur_api_client.api.{api}")


def _failing_model(tb: TracebackType | None) -> str | None:
    """Name of the innermost model whose ``from_dict`` was running when it failed."""
    model = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "from_dict":
            cls = frame.f_locals.get("cls")
            if isinstance(cls, type):
                model = cls.__name__
        tb = tb.tb_next
    return model


def encode(body: Any) -> bytes:
    """JSON bytes of a reply body; ``None`` means an empty body."""
    if body is None:
        return b""
    return json.dumps(body, default=str).encode()


def validate(
    api: str,
    *,
    method: str,
    url: str,
    status: int,
    content: bytes,
    headers: dict[str, str],
) -> Any:
    """Parse the answer as the client would; returns the parsed object.

    Raises:
        ResponseDriftError: the status is undocumented or the body does not parse.
    """
    module = api_module(api)
    response = httpx.Response(
        status,
        content=content,
        headers={"Content-Type": "application/json", **headers},
        request=httpx.Request(method, url),
    )
    base_url = url.split("/api/", 1)[0]
    try:
        return module._parse_response(client=Client(base_url=base_url), response=response)
    except Exception as err:
        raise ResponseDriftError(api, _failing_model(err.__traceback__), err) from err
