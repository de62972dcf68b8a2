"""The remote command gateway of ``clusterpro_trn``.

Commands run with ``-a`` or ``-h HOST`` reach other servers through it, also when that server's
``clusterpro`` is stopped (``clpcl -s -h server2`` must be able to start it). Operations:

* ``service``: ``{"action": "start"|"stop", "service": "clusterpro"}`` through the service manager
* ``control``: ``{"op": ..., "args": {...}}`` forwarded to the local ``clusterpro`` control socket

Every frame is authenticated (:mod:`clp.net.frames`); anything else is counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from clp.control import client as control
from clp.net import frames
from clp.paths import InstallRoot
from clp.platform.services import ServiceError, service_manager

log = logging.getLogger("clp.trn")

SERVICES = ("clusterpro",)
MAX_OP_TIMEOUT = 3600.0  # a forwarded control operation (group start, ...) may take this long


class Gateway:
    def __init__(self, root: InstallRoot, cluster: str, key: bytes) -> None:
        self.root, self.cluster, self.key = root, cluster, key
        self.guard = frames.NonceGuard()
        self.rejected: Counter[str] = Counter()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            request = await asyncio.wait_for(frames.read_frame(reader, self.key), timeout=10)
            self.guard.check(request, self.cluster, time.time())
        except (TimeoutError, frames.FrameError, asyncio.IncompleteReadError, ConnectionError) as e:
            self.rejected[type(e).__name__] += 1
            log.warning("refused a request from %s: %s", peer, e or type(e).__name__)
            writer.close()
            return
        try:
            reply = await asyncio.to_thread(self.handle, request["op"], request["args"])
        except Exception as e:  # noqa: BLE001 - answer, and keep serving the others
            log.exception("%s from %s (%s) failed", request["op"], request.get("from"), peer)
            reply = {"ok": False, "code": 11, "message": f"internal error: {e}"}
        log.info("%s from %s (%s): %s", request["op"], request.get("from"), peer,
                 reply.get("message") or ("ok" if reply.get("ok") else "failed"))
        await frames.send_reply(writer, self.key, request, reply)

    def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "service":
            return self._service(args)
        if op == "control":
            inner, inner_args = args.get("op"), args.get("args", {})
            timeout = args.get("timeout", 30.0)
            if not isinstance(inner, str) or not isinstance(inner_args, dict) \
                    or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_OP_TIMEOUT:
                return {"ok": False, "code": 2, "message": "Invalid request."}
            try:
                r = control.call(self.root.control_socket, inner, inner_args, timeout=timeout)
            except control.NotRunning:
                return {"ok": False, "code": 5, "message": "The cluster service is not running."}
            except TimeoutError:
                return {"ok": False, "code": 11,
                        "message": f"No answer from the cluster service within {timeout:g} s."}
            return {"ok": r.ok, "code": r.code, "message": r.message, "data": r.data}
        return {"ok": False, "code": 2, "message": f"Invalid request: unknown operation {op!r}"}

    def _service(self, args: dict[str, Any]) -> dict[str, Any]:
        action, name = args.get("action"), args.get("service")
        if action not in ("start", "stop") or name not in SERVICES:
            return {"ok": False, "code": 2, "message": f"Invalid request: {action} {name}"}
        try:
            mgr = service_manager(self.root)
            getattr(mgr, action)(name)
        except ServiceError as e:
            return {"ok": False, "code": 11, "message": str(e)}
        return {"ok": True, "code": 0, "message": ""}
