"""A TCP delay line: forwards connections to a local port and delivers every chunk a fixed time late.

Why: on loopback a request to Azurite costs ~0.1 ms of network, so a benchmark there measures
only client and server CPU, not the round trips that Blob Batch saves against a real storage
account, where every request crosses a network. This proxy adds ``--one-way-ms`` to each
direction (a request and its answer pay twice that), without limiting bandwidth or reordering
bytes, so a request costs one emulated round trip whatever its size. It runs as its own process so
that its work does not compete for the benchmark's GIL.

    python benchmarks/latency_proxy.py --target-port 10000 --one-way-ms 1.0
    (prints the port it listens on, then serves until terminated)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction: a reader task stamps each chunk, this loop delivers it at stamp + delay."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while chunk := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, chunk))
        queue.put_nowait((loop.time() + delay, b""))

    reading = asyncio.create_task(read())
    try:
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


async def serve(target_port: int, one_way: float) -> None:
    async def connect(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pump(client_reader, server_writer, one_way),
            _pump(server_reader, client_writer, one_way),
            return_exceptions=True,
        )
        for writer in (client_writer, server_writer):
            writer.close()

    server = await asyncio.start_server(connect, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--one-way-ms", type=float, required=True)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.target_port, args.one_way_ms / 1000))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
