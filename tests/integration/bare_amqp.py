"""A bare AMQP 0-9-1 publisher that sets no message id, as pika and many other clients
do by default (aio-pika, through aiormq, always sets a random one): the frames written
with pamqp over a plain socket, with publisher confirms."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from urllib.parse import unquote, urlsplit

from pamqp import commands
from pamqp.body import ContentBody
from pamqp.frame import marshal, unmarshal
from pamqp.header import ContentHeader, ProtocolHeader

FRAME_HEADER_BYTES = 7


class BareChannel:
    """One connection, one confirming channel: ``publish`` waits for the broker's acks."""

    def __init__(self, url: str) -> None:
        self._url = urlsplit(url)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._published = 0

    async def __aenter__(self) -> BareChannel:
        url = self._url
        self._reader, self._writer = await asyncio.open_connection(url.hostname, url.port or 5672)
        self._writer.write(marshal(ProtocolHeader(), 0))
        await self._expect(commands.Connection.Start)
        response = f"\0{unquote(url.username or 'guest')}\0{unquote(url.password or 'guest')}"
        self._send(commands.Connection.StartOk(response=response))
        tune = await self._expect(commands.Connection.Tune)
        assert isinstance(tune, commands.Connection.Tune)
        self._send(commands.Connection.TuneOk(tune.channel_max, tune.frame_max, 0))
        vhost = unquote(url.path.lstrip("/")) or "/"
        self._send(commands.Connection.Open(virtual_host=vhost))
        await self._expect(commands.Connection.OpenOk)
        self._send(commands.Channel.Open(), 1)
        await self._expect(commands.Channel.OpenOk)
        self._send(commands.Confirm.Select(), 1)
        await self._expect(commands.Confirm.SelectOk)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._writer is not None
        self._send(
            commands.Connection.Close(reply_code=200, reply_text="done", class_id=0, method_id=0)
        )
        await self._expect(commands.Connection.CloseOk)
        self._writer.close()

    async def publish(self, exchange: str, routing_key: str, bodies: Sequence[bytes]) -> None:
        """Publish ``bodies`` (persistent JSON, no message id) and wait for their confirms."""
        for body in bodies:
            self._send(commands.Basic.Publish(exchange=exchange, routing_key=routing_key), 1)
            properties = commands.Basic.Properties(content_type="application/json", delivery_mode=2)
            self._send(ContentHeader(0, len(body), properties), 1)
            self._send(ContentBody(body), 1)
        self._published += len(bodies)
        acked = 0
        while acked < self._published:
            ack = await self._expect(commands.Basic.Ack)
            assert isinstance(ack, commands.Basic.Ack)
            acked = ack.delivery_tag

    def _send(self, frame: object, channel: int = 0) -> None:
        assert self._writer is not None
        self._writer.write(marshal(frame, channel))  # type: ignore[arg-type]

    async def _expect(self, kind: type) -> object:
        """The next frame, which must be a ``kind``."""
        assert self._reader is not None
        header = await self._reader.readexactly(FRAME_HEADER_BYTES)
        size = int.from_bytes(header[3:7], "big")
        rest = await self._reader.readexactly(size + 1)
        _, _, frame = unmarshal(header + rest)
        if not isinstance(frame, kind):
            raise AssertionError(f"expected {kind.__name__}, the broker sent {frame!r}")
        return frame
