"""The sample cluster's application: a tiny TCP service whose data lives on the shared disk.

Every line received is appended to the data file and fsync'ed before the answer
``<hostname> <line>`` is sent, so a line a client saw answered is on the disk, and a test can
find it there after a failover. Run as ``python3 -m clp.lab.demo_app --port 8080 --data
/mnt/disk1/app.log`` (the sample's exec1 start.sh does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

MAX_LINE = 4096


class DataFile:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())
        os.fsync(self.fd)


async def serve(host: str, port: int, data: DataFile) -> None:
    me = socket.gethostname()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while raw := await reader.readline():
                line = raw[:MAX_LINE].decode(errors="replace").rstrip("\r\n")
                data.append(line)
                writer.write(f"{me} {line}\n".encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, host, port, reuse_address=True)
    print(f"demo_app on {me}: listening on {host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m clp.lab.demo_app")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--data", required=True, help="file every received line is appended to")
    opts = p.parse_args(args)
    try:
        asyncio.run(serve(opts.host, opts.port, DataFile(opts.data)))
    except OSError as e:
        print(f"demo_app: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
