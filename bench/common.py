"""Helpers every benchmark uses."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"bench: {url} did not answer")


class WebsocketClient(asyncio.Protocol):
    """One websocket on websockets' sans-I/O ClientProtocol (no task, no queue per connection,
    so the load generator takes little CPU). Each text frame goes to `id_of`; the arrival time of
    every frame it names an id for is appended to `received[id]`."""

    def __init__(
        self,
        uri: str,
        received: dict[int, list[float]],
        opened: asyncio.Future[bool],
        id_of: Callable[[bytes], int | None],
        *,
        cookie: str | None = None,
        max_size: int | None = None,
    ) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.protocol = ClientProtocol(parse_uri(uri), **({"max_size": max_size} if max_size else {}))
        self.request = self.protocol.connect()
        if cookie is not None:
            self.request.headers["Cookie"] = cookie
        self.received = received
        self.opened = opened
        self.id_of = id_of
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Response

        now = time.time()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if not self.opened.done():
                    self.opened.set_result(event.status_code == 101)
            elif isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                found = self.id_of(event.data)
                if found is not None:
                    self.received.setdefault(found, []).append(now)
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            else:
                self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(False)
