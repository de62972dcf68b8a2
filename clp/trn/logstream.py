"""``clplogcc`` through ``clusterpro_trn``: a collection made on the server, streamed back.

A frame is at most :data:`clp.net.frames.MAX_FRAME` bytes and an archive may be megabytes, so
the answer to a ``logcc`` request is a series of frames, each signed and echoing the request's
nonce: ``{"progress": item}`` every ``PROGRESS_EVERY`` seconds while the server collects (so the
caller tells a slow collection from a dead server), ``{"chunk": base64, "seq": n}`` for each
``CHUNK`` bytes of the archive, and last ``{"reply": {"ok", "size", "sha256", ...}}``. Neither
side holds the archive in memory: the server writes it to ``work/logcc/`` and reads it back a
chunk at a time; the caller writes each chunk to ``<name>.part``, checks size and digest, and
renames. One collection at a time on a server; a second request is answered ``Busy``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from clp.net import frames
from clp.paths import InstallRoot
from clp.trn import logcollect

log = logging.getLogger("clp.trn")

CHUNK = 96 * 1024  # raw bytes per frame: base64 makes 128 KiB, under frames.MAX_FRAME
MAX_ARCHIVE = 4 << 30  # bytes one server's archive may take on the caller's disk
PROGRESS_EVERY = 2.0
MAX_BUDGET = 3600.0  # the longest collection a request may ask for
_busy = threading.Lock()  # one collection at a time on this server


def request_args(collect_type: str, syslog_generations: int, budget: float) -> dict[str, Any]:
    return {"type": collect_type, "syslog": syslog_generations, "budget": budget}


def _check_args(args: dict[str, Any]) -> tuple[str, int, float]:
    collect_type, generations, budget = args.get("type"), args.get("syslog"), args.get("budget")
    if collect_type not in logcollect.TYPES or not isinstance(generations, int) \
            or not 1 <= generations <= 99 or not isinstance(budget, int | float) \
            or not 0 < budget <= MAX_BUDGET:
        raise logcollect.CollectError(f"Invalid request: {args!r}")
    return collect_type, generations, float(budget)


async def serve(root: InstallRoot, writer: asyncio.StreamWriter, key: bytes,
                request: dict[str, Any]) -> str:
    """Answer one ``logcc`` request on ``writer``; what happened, for the gateway's log line."""
    nonce = request["nonce"]

    async def send(obj: dict[str, Any]) -> None:
        writer.write(frames.pack(key, {"nonce": nonce, **obj}))
        await writer.drain()

    try:
        try:
            collect_type, generations, budget = _check_args(request["args"])
        except logcollect.CollectError as e:
            await send({"reply": {"ok": False, "code": 2, "message": str(e)}})
            return str(e)
        if not _busy.acquire(blocking=False):
            await send({"reply": {"ok": False, "code": 11, "busy": True,
                                  "message": "Busy: a collection is running on this server."}})
            return "busy"
        try:
            return await _collect_and_send(root, send, collect_type, generations, budget)
        finally:
            _busy.release()
    except (ConnectionError, OSError) as e:
        return f"the caller went away ({e})"
    except Exception as e:  # noqa: BLE001 - logged; the gateway goes on serving the others
        log.exception("logcc failed")
        return f"failed: {e}"
    finally:
        writer.close()


async def _collect_and_send(root: InstallRoot, send: Any, collect_type: str, generations: int,
                            budget: float) -> str:
    spool = root.work_dir / "logcc"
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in spool.iterdir():  # left by a collection that was killed
        with contextlib.suppress(OSError):
            old.unlink()
    server = logcollect.local_server(root)
    out = spool / logcollect.archive_name(server)
    task = asyncio.create_task(asyncio.to_thread(
        logcollect.collect, root, server, collect_type, generations, out, budget))
    try:
        while not task.done():
            await asyncio.wait([task], timeout=PROGRESS_EVERY)
            if not task.done():
                await send({"progress": "collecting"})
        try:
            index = task.result()
        except (logcollect.CollectError, OSError) as e:
            await send({"reply": {"ok": False, "code": 11, "message": str(e)}})
            return f"collection failed: {e}"
        size, digest = await _send_file(out, send)
        out.unlink()  # gone before the caller hears the end
        failed = [e["item"] for e in index["items"] if not e.get("ok")]
        await send({"reply": {"ok": True, "code": 0, "message": "", "name": out.name,
                              "size": size, "sha256": digest, "failed_items": failed}})
        return f"sent {out.name} ({size} bytes)"
    finally:
        if not task.done():  # the caller went away: let the thread finish, then clean up
            with contextlib.suppress(Exception):
                await task
        out.unlink(missing_ok=True)


async def _send_file(path: Path, send: Any) -> tuple[int, str]:
    h, size, seq = hashlib.sha256(), 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            await send({"chunk": base64.b64encode(chunk).decode(), "seq": seq})
            seq += 1
    return size, h.hexdigest()


# the caller's side

class FetchError(Exception):
    """A server that did not give its archive; ``word`` is the product's result word,
    ``connected`` whether the connection was made (else another address may be tried)."""

    def __init__(self, word: str, message: str, connected: bool = True) -> None:
        super().__init__(message)
        self.word, self.connected = word, connected


def fetch(address: str, port: int, key: bytes, request: dict[str, Any], out_dir: Path,
          deadline: float, connect_timeout: float, idle_timeout: float) -> tuple[Path, dict]:
    """Send a ``logcc`` request and write the archive streamed back into ``out_dir``; the file
    and the final reply. Never waits past ``deadline`` (time.monotonic())."""

    def left(limit: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("Timeout", "no archive within the time allowed")
        return min(limit, remaining)

    if deadline <= time.monotonic():
        raise FetchError("Timeout", f"{address}: not tried, the time allowed had run out",
                         connected=False)
    try:
        sock = socket.create_connection((address, port), timeout=left(connect_timeout))
    except TimeoutError:
        raise FetchError("Timeout", f"{address}: no answer to the connection",
                         connected=False) from None
    except OSError as e:
        raise FetchError("Failed", f"{address}: {e.strerror or e}", connected=False) from None
    with sock:
        sock.sendall(frames.pack(key, request))
        part = out_dir / f".{request['nonce']}.part"
        try:
            return _receive(sock, key, request, part, left, idle_timeout)
        except TimeoutError:
            raise FetchError("Timeout", f"{address}: the server stopped answering") from None
        except (frames.FrameError, logcollect.CollectError, ConnectionError, EOFError,
                binascii.Error) as e:
            raise FetchError("Failed", f"{address}: {e or type(e).__name__}") from None
        except OSError as e:
            word = "No Freespace" if e.errno == 28 else "Failed"
            raise FetchError(word, f"{e.strerror or e}") from None
        finally:
            part.unlink(missing_ok=True)


def _receive(sock: socket.socket, key: bytes, request: dict[str, Any], part: Path,
             left: Any, idle_timeout: float) -> tuple[Path, dict]:
    h, size, seq = hashlib.sha256(), 0, 0
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        while True:
            sock.settimeout(left(idle_timeout))
            head = _read_exact(sock, 4, left, idle_timeout)
            obj = frames.unpack_body(key, head, _read_exact(
                sock, frames.frame_length(head) + 32, left, idle_timeout))
            if obj.get("nonce") != request["nonce"]:
                raise frames.FrameError("frame does not answer our request")
            if "chunk" in obj:
                if obj.get("seq") != seq:
                    raise frames.FrameError(f"chunk {obj.get('seq')} where {seq} was due")
                data = base64.b64decode(obj["chunk"], validate=True)
                if size + len(data) > MAX_ARCHIVE:
                    raise frames.FrameError(f"archive larger than {MAX_ARCHIVE >> 20} MiB")
                f.write(data)
                h.update(data)
                size, seq = size + len(data), seq + 1
            elif isinstance(obj.get("reply"), dict):
                break
    reply = obj["reply"]
    if not reply.get("ok"):
        raise FetchError("Busy" if reply.get("busy") else "Failed", str(reply.get("message")))
    if reply.get("size") != size or reply.get("sha256") != h.hexdigest():
        raise frames.FrameError(f"archive incomplete: {size} bytes received, "
                                f"{reply.get('size')} sent")
    name = logcollect.safe_name(str(reply.get("name")))
    if "/" in name or not name.endswith(".tar.gz"):
        raise frames.FrameError(f"unexpected archive name {name!r}")
    logcollect.check_archive(part)
    final = part.parent / name
    os.link(part, final)  # never over a file already there (an older collection, anything)
    return final, reply


def _read_exact(sock: socket.socket, n: int, left: Any, idle_timeout: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(left(idle_timeout))
        data = sock.recv(min(n - len(buf), 1 << 20))
        if not data:
            raise EOFError("the server closed the connection")
        buf += data
    return bytes(buf)
