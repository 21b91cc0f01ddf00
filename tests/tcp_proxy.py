"""A TCP proxy between the app and PostgreSQL that a test can break, the way networks break.

    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()         # listens on 127.0.0.1:proxy.port
    await proxy.cut()           # every connection reset, new ones refused
    proxy.blackhole()           # nothing goes through either way; new connections
                                # are accepted and never answered
    proxy.vanish()              # the server side of every open connection is gone,
                                # and the client side stays open and silent forever
    await proxy.restore()       # new connections work; blackholed ones resume
    await proxy.close()

A blackhole holds the bytes rather than dropping them: restored before the
client gives up, a connection carries on, as across a short partition. A
vanished connection never answers again, as when the server's host dies.

The client's peer is this proxy's socket, which keeps acknowledging what it
receives: TCP keepalive cannot see a blackhole or a vanished peer here, only
the service's own timeouts and pings can.
"""

import asyncio
import contextlib
import socket
import struct


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with a RST, as a peer whose connection was torn down does."""
    if writer is None:
        return
    sock = writer.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One client connection and its connection to the server."""

    def __init__(
        self, proxy: "TcpProxy", reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.client = (reader, writer)
        self.server_writer: asyncio.StreamWriter | None = None
        self.vanished = False

    async def run(self) -> None:
        proxy = self.proxy
        await proxy.flowing.wait()  # blackholed: accepted, never answered
        if proxy.refusing:
            _reset(self.client[1])
            return
        try:
            server_reader, self.server_writer = await asyncio.open_connection(
                proxy.upstream_host, proxy.upstream_port
            )
        except OSError:
            _reset(self.client[1])
            return
        await asyncio.gather(
            self._pump(self.client[0], self.server_writer, to_server=True),
            self._pump(server_reader, self.client[1], to_server=False),
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_server: bool
    ) -> None:
        flowing = self.proxy.flowing
        try:
            while True:
                await flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await flowing.wait()  # read just before a blackhole: held, not lost
                if self.vanished:
                    if to_server:
                        continue  # swallowed: the client hears nothing, ever
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            if not self.vanished:  # one side closed: so does the other
                self.client[1].transport.close()
                if self.server_writer is not None:
                    self.server_writer.transport.close()

    def vanish(self) -> None:
        self.vanished = True
        if self.server_writer is not None:
            self.server_writer.transport.abort()  # the server's end: gone

    def reset(self) -> None:
        _reset(self.client[1])
        _reset(self.server_writer)


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.refusing = False
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:  # raced with cut()
            _reset(writer)
            return
        link = _Link(self, reader, writer)
        self._links.add(link)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await link.run()
        except asyncio.CancelledError:
            link.reset()
        finally:
            self._links.discard(link)
            self._tasks.discard(task)

    async def cut(self) -> None:
        """Reset every connection; refuse new ones until restored."""
        self.refusing = True
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            link.reset()
        self.flowing.set()  # blackholed links wake up to find their sockets gone
        await asyncio.sleep(0)

    def blackhole(self) -> None:
        """Forward nothing, either way; accept new connections and never answer them."""
        self.flowing.clear()

    def vanish(self) -> None:
        """The server side of every open connection is gone; the client is never told."""
        for link in list(self._links):
            link.vanish()

    async def restore(self) -> None:
        self.refusing = False
        if self._server is None:
            await self.start()
        self.flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.flowing.set()
        for link in list(self._links):
            link.reset()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
