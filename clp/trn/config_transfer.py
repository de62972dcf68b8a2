"""``clusterpro_trn``'s side of ``clpcfctrl``: the ``config`` operation of the gateway.

``{"action": ...}`` one of:

* ``generation``: the generation this server's files are (``clpcfctrl`` compares them)
* ``pull``: that generation and its files (``clpcfctrl --pull``, and the plan of a push)
* ``stage``: ``{"txn", "generation", "hash", "files", "source", "deadline", "base"}``: write the
  pushed files beside the running ones (:meth:`ConfigStore.stage`); refused while another push's
  stage is here, or when this server no longer runs ``base``, the generation the push was
  planned against (another push committed meanwhile)
* ``commit`` / ``abort``: ``{"txn"}``: switch to the staged files with one rename / remove them

The request reached here signed with the cluster key (the gateway refuses anything else, and the
clprexec key never reaches this operation). One operation at a time per server (a lock), so two
pushes racing for one server's stage cannot both win it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from clp.paths import InstallRoot
from clp.trn.config_store import Busy, ConfigStore, StoreError

log = logging.getLogger("clp.trn")

_LOCK = threading.Lock()
# Transactions aborted here: a stage that arrives after its abort (this server was frozen while
# both waited in its socket) is refused instead of locking the next push out. Kept an hour.
_ABORTED: dict[str, float] = {}
ABORTED_KEEP = 3600.0
E_INVALID, E_BUSY, E_FAILED = 2, 128, 11  # codes of the replies (clp.cli.common.Code)


def handle(root: InstallRoot, args: dict[str, Any],
           committed: Callable[[], None] | None = None) -> dict[str, Any]:
    """One ``config`` request; ``committed`` is called after a successful commit."""
    action = args.get("action")
    store = ConfigStore(root.config_dir)
    with _LOCK:
        try:
            reply = _run(store, action, args)
        except Busy as e:
            return {"ok": False, "code": E_BUSY, "message": str(e)}
        except StoreError as e:
            return {"ok": False, "code": E_INVALID, "message": str(e)}
        except OSError as e:
            log.error("configuration %s failed: %s", action, e)
            return {"ok": False, "code": E_FAILED, "message": f"{action} failed: {e}"}
    if action == "commit" and committed is not None:
        committed()
    return reply


def _run(store: ConfigStore, action: object, args: dict[str, Any]) -> dict[str, Any]:
    if action == "generation":
        gen = store.current()
        return _ok(generation=gen.to_dict() if gen else None, staged=len(store.staged()))
    if action == "pull":
        gen, files = store.snapshot()
        return _ok(generation=gen.to_dict() if gen else None, files=files)
    if action == "stage":
        txn, deadline = args.get("txn"), args.get("deadline")
        now = time.time()
        if txn in _ABORTED:
            raise StoreError(f"transaction {txn} was aborted")
        if not isinstance(deadline, int | float) or now > deadline:
            raise StoreError(f"transaction {txn} came too late (its pusher gave up waiting)")
        if "base" in args:  # clpcfctrl always sends it
            _check_base(store, args["base"])
        store.stage(args.get("txn"), args.get("generation"), args.get("files"),
                    str(args.get("hash")), str(args.get("source", "")))
        log.info("configuration generation %s staged (transaction %s from %s)",
                 args.get("generation"), args.get("txn"), args.get("source"))
        return _ok()
    if action == "commit":
        gen = store.commit(args.get("txn"))
        log.info("configuration generation %d (%s) is now in force on this server (from %s)",
                 gen.number, gen.digest[:12], gen.source,
                 extra={"event_id": 20, "alert": True, "evt_module": "trnsv"})
        return _ok(generation=gen.to_dict())
    if action == "abort":
        now = time.time()
        for old in [t for t, at in _ABORTED.items() if now - at > ABORTED_KEEP]:
            del _ABORTED[old]
        _ABORTED[str(args.get("txn"))] = now
        removed = store.abort(args.get("txn"))
        if removed:
            log.warning("configuration transaction %s aborted: staged files removed",
                        args.get("txn"))
        return _ok(removed=removed)
    raise StoreError(f"unknown configuration action {action!r}")


def _check_base(store: ConfigStore, base: Any) -> None:
    """The push was planned against ``base`` (this server's generation when it was asked): if
    another push committed since, this one's plan and generation number are stale (Busy)."""
    gen = store.current()
    now = None if gen is None else {"generation": gen.number, "hash": gen.digest}
    was = None if base is None else {"generation": base.get("generation"),
                                     "hash": base.get("hash")} if isinstance(base, dict) else base
    if now != was:
        raise Busy(f"the configuration changed since this push read it (now generation "
                   f"{now['generation'] if now else 'none'}): run clpcfctrl again")


def _ok(**data: Any) -> dict[str, Any]:
    return {"ok": True, "code": 0, "message": "", "data": data}


def waiting_gateway(root: InstallRoot, key: bytes) -> Any:
    """The gateway of a server that has its cluster key but no clp.conf (reinstalled, its etc/
    restored from nothing): it knows neither the cluster's name nor its addresses, and accepts
    only ``config`` requests signed with the key, from any address, until a push commits."""
    from clp.net import frames
    from clp.trn.gateway import Gateway

    class AnyClusterGuard(frames.NonceGuard):
        def check(self, request: dict[str, Any], cluster: str, now: float) -> None:
            super().check(request, request.get("cluster"), now)  # type: ignore[arg-type]

    class WaitingGateway(Gateway):
        def handle(self, op: str, args: dict[str, Any], address: str = "local"
                   ) -> dict[str, Any]:
            if op != "config":
                return {"ok": False, "code": 5, "message": "This server has no cluster "
                        "configuration yet: only clpcfctrl --push is served."}
            return super().handle(op, args, address)

    gateway = WaitingGateway(root, "", key)
    gateway.guard = AnyClusterGuard()
    return gateway
