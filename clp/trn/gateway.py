"""The remote command gateway of ``clusterpro_trn``.

Commands run with ``-a`` or ``-h HOST`` reach other servers through it, also when that server's
``clusterpro`` is stopped (``clpcl -s -h server2`` must be able to start it). Operations:

* ``service``: ``{"action": "start"|"stop", "service": "clusterpro"}`` through the service manager
* ``control``: ``{"op": ..., "args": {...}}`` forwarded to the local ``clusterpro`` control socket
* ``config``: ``clpcfctrl``'s push and pull (:mod:`clp.trn.config_transfer`)
* ``rexec``: a request from outside the cluster (``clprexec``): ``failover`` of a group (or of
  the groups running here), ``script`` (one of the scripts placed in ``work/trnreq/``),
  ``notice`` / ``clear`` of an mrw monitor's error
* ``logcc``: ``clplogcc``'s collection of this server, streamed back (:mod:`clp.trn.logstream`)

Every frame is authenticated (:mod:`clp.net.frames`); anything else is counted and dropped.
Frames between servers are signed with the cluster key; ``clprexec`` signs with a key derived
from it (:func:`clp.keys.rexec_key`), which is accepted for ``rexec`` and nothing else, so a host
given that key for clprexec cannot stop a service or operate groups through ``control``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clp.control import client as control
from clp.keys import rexec_key
from clp.net import frames
from clp.paths import InstallRoot
from clp.platform import proc
from clp.platform.services import ServiceError, service_manager

log = logging.getLogger("clp.trn")

# the services a remote clpcl may start or stop (--web, --alert: where they are installed)
SERVICES = ("clusterpro", "clusterpro_webmgr", "clusterpro_alertsync")
SCRIPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")  # a file in work/trnreq/
MAX_SCRIPT_TIMEOUT = 3600.0
DENIED_EVERY = 60.0  # seconds between two "denied" alerts for one address
MAX_OP_TIMEOUT = 3600.0  # a forwarded control operation (group start, ...) may take this long
REXEC_WORKERS = 4  # clprexec actions running at once; more are refused, not queued


class Gateway:
    def __init__(self, root: InstallRoot, cluster: str, key: bytes) -> None:
        self.root, self.cluster, self.key = root, cluster, key
        self.rexec_key = rexec_key(key)  # what a host outside the cluster holds
        self.guard = frames.NonceGuard()
        self.rejected: Counter[str] = Counter()
        self._denied: dict[str, float] = {}  # address -> when it was last alerted
        # clprexec's actions run here, never in the pool the servers' own requests use
        self._rexec_pool = ThreadPoolExecutor(REXEC_WORKERS, thread_name_prefix="rexec")
        self._rexec_slots = threading.BoundedSemaphore(REXEC_WORKERS)
        self.on_config_commit: Callable[[], None] | None = None  # the service's reaction

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        try:
            request, key = await asyncio.wait_for(self._read(reader), timeout=10)
            self.guard.check(request, self.cluster, time.time())
        except (TimeoutError, frames.FrameError, asyncio.IncompleteReadError, ConnectionError) as e:
            self.rejected[type(e).__name__] += 1
            self._refused(address, e or type(e).__name__)
            writer.close()
            return
        if key is self.rexec_key and request["op"] != "rexec":
            self.rejected["rexec_key"] += 1
            self._refused(address, f"{request['op']} signed with the clprexec key")
            writer.close()
            return
        if request["op"] == "logcc":  # clplogcc: an archive, streamed in many frames
            from clp.trn import logstream

            what = await logstream.serve(self.root, writer, key, request)
            log.info("logcc from %s (%s): %s", request.get("from"), peer, what)
            return
        try:
            if request["op"] == "rexec":
                reply = await self._rexec_async(request["args"], address)
            else:
                reply = await asyncio.to_thread(self.handle, request["op"], request["args"],
                                                address)
        except Exception as e:  # noqa: BLE001 - answer, and keep serving the others
            log.exception("%s from %s (%s) failed", request["op"], request.get("from"), peer)
            reply = {"ok": False, "code": 11, "message": f"internal error: {e}"}
        log.info("%s from %s (%s): %s", request["op"], request.get("from"), peer,
                 reply.get("message") or ("ok" if reply.get("ok") else "failed"))
        await frames.send_reply(writer, key, request, reply)

    async def _read(self, reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
        """The request and the key it is signed with: the cluster key, or clprexec's."""
        head = await reader.readexactly(4)
        rest = await reader.readexactly(frames.frame_length(head) + 32)
        try:
            return frames.unpack_body(self.key, head, rest), self.key
        except frames.FrameError:
            return frames.unpack_body(self.rexec_key, head, rest), self.rexec_key

    async def _rexec_async(self, args: dict[str, Any], address: str) -> dict[str, Any]:
        if not self._rexec_slots.acquire(blocking=False):
            return {"ok": False, "code": 11, "message": f"{REXEC_WORKERS} clprexec requests are "
                                                        f"running on this server; try later."}
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._rexec_pool, self._rexec, args, address)
        finally:
            self._rexec_slots.release()

    def close(self) -> None:
        self._rexec_pool.shutdown(wait=False, cancel_futures=True)

    def _refused(self, address: str, why: object) -> None:
        """Every refused request is logged; an alert (trnsv 1) at most once a minute for one
        address, so a port scan cannot flood the alert log."""
        now = time.monotonic()
        self._denied = {a: t for a, t in self._denied.items() if now - t < DENIED_EVERY}
        alert = address not in self._denied
        if alert:
            self._denied[address] = now
        log.warning("There was a notification from external (IP=%s), but it was denied. (%s)",
                    address, why, extra={"event_id": 1, "alert": alert,
                                         "evt_module": "trnsv"})

    def handle(self, op: str, args: dict[str, Any], address: str = "local") -> dict[str, Any]:
        if op == "service":
            return self._service(args)
        if op == "rexec":  # the servers' own clprexec (tests, a script on a server)
            return self._rexec(args, address)
        if op == "config":
            from clp.trn import config_transfer

            return config_transfer.handle(self.root, args, self.on_config_commit)
        if op == "control":
            inner, inner_args = args.get("op"), args.get("args", {})
            timeout = args.get("timeout", 30.0)
            if not isinstance(inner, str) or not isinstance(inner_args, dict) \
                    or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_OP_TIMEOUT:
                return {"ok": False, "code": 2, "message": "Invalid request."}
            return self._control(inner, inner_args, timeout)
        return {"ok": False, "code": 2, "message": f"Invalid request: unknown operation {op!r}"}

    def _control(self, op: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            r = control.call(self.root.control_socket, op, args, timeout=timeout)
        except control.NotRunning:
            return {"ok": False, "code": 5, "message": "The cluster service is not running."}
        except TimeoutError:
            return {"ok": False, "code": 11,
                    "message": f"No answer from the cluster service within {timeout:g} s."}
        return {"ok": r.ok, "code": r.code, "message": r.message, "data": r.data}

    def _rexec(self, args: dict[str, Any], address: str) -> dict[str, Any]:
        """clprexec: what a host outside the cluster may ask of this server."""
        action, timeout = args.get("action"), args.get("timeout", 180)
        if not isinstance(timeout, int | float) or not 0 < timeout <= MAX_SCRIPT_TIMEOUT:
            return {"ok": False, "code": 2, "message": f"Invalid timeout {timeout!r}."}
        if action in ("failover", "script"):  # a notice is alerted by the mrw it reaches
            log.info("There was a notification (%s) from external (IP=%s).", action, address,
                     extra={"event_id": 10, "alert": True, "evt_module": "trnsv"})
        if action == "failover":
            return self._control("group_move", {"group": args.get("group"),
                                                "resource": args.get("resource"),
                                                "timeout": timeout}, timeout + 5)
        if action in ("notice", "clear"):
            return self._control("mrw_notice", {
                "category": args.get("category"), "keyword": args.get("keyword"),
                "monitor": args.get("monitor"), "message": args.get("message", ""),
                "state": "error" if action == "notice" else "normal", "from": address}, 30)
        if action == "script":
            return self._script(args.get("script"), float(timeout))
        return {"ok": False, "code": 2, "message": f"Invalid request: unknown action {action!r}"}

    def _script(self, name: object, timeout: float) -> dict[str, Any]:
        if not isinstance(name, str) or not SCRIPT_NAME.fullmatch(name):
            return {"ok": False, "code": 2, "message": f"Invalid script name {name!r}: a file "
                                                       f"name of work/trnreq/."}
        script = self.root.work_dir / "trnreq" / name
        if not script.is_file() or not os.access(script, os.X_OK):
            return {"ok": False, "code": 2,
                    "message": f"{script} does not exist or is not executable."}
        result = proc.run([str(script)], timeout=timeout, cwd=script.parent, log=log)
        ok = result.ok
        log.log(logging.INFO if ok else logging.ERROR, "Action (script %s) has %s.", name,
                "been completed" if ok else f"failed (exit code {result.returncode})",
                extra={"event_id": 30 if ok else 31, "alert": True, "evt_module": "trnsv"})
        return {"ok": ok, "code": 0 if ok else 17,
                "message": "" if ok else f"{name} exited with code {result.returncode}"
                           + (" (timed out)" if result.timed_out else ""),
                "data": {"exit_code": result.returncode, "output": result.output[-2000:]}}

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
